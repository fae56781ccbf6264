#!/usr/bin/env bash
# Builds, under build/op-conformance/:
#   op_conformance (native/tests/op_conformance.cc): every op of the op table, forward and backward, on
#     every backend the program has (the CPU, and the device-memory guard of native/tests/guard_backend.h
#     on the device path), against the CPU reference, and the CPU backward against finite differences;
#   device_memory_guard (native/tests/device_memory_guard.cc): the model's training and generation on a
#     backend whose memory the host cannot touch outside an op, checking the Backend contract's host and
#     device pointers and the CUDA kernels' limits, so `device: cuda` paths are checked without a GPU.
# Plain g++ over the native core and ops (and the model and dist for the guard); no Node, OpenBLAS, MPI
# or CUDA. Objects are kept and rebuilt when their source or any native header is newer.
#
#   bash scripts/build-op-conformance.sh          build both (JOBS=2 compilers at a time)
#   bash scripts/build-op-conformance.sh --run    build, then run op_conformance
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/op-conformance
mkdir -p "$out/obj"
flags=(-std=c++17 -O2 -fexceptions -Wall -Wextra -Wno-unused-parameter -Inative)
[ "$(uname -m)" = x86_64 ] && flags+=(-march=x86-64-v3)

newest_header=$(ls -t native/core/*.h native/ops/*.h native/model/*.h native/dist/*.h native/tests/*.h | head -1)
jobs_max=${JOBS:-2}
pids=()
# Compiles the sources given (when stale) and prints their objects, one per line.
compile() {
  for src in "$@"; do
    local obj="$out/obj/$(basename "$src").o"
    echo "$obj"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then
      while [ "${#pids[@]}" -ge "$jobs_max" ]; do wait "${pids[0]}"; pids=("${pids[@]:1}"); done
      g++ "${flags[@]}" -c "$src" -o "$obj" >&2 &
      pids+=($!)
    fi
  done
}
objects() { compile "$@" >"$out/list"; mapfile -t listed <"$out/list"; }
objects native/core/*.cc native/ops/*.cc
ops=("${listed[@]}")
objects native/model/*.cc native/dist/*.cc
model=("${listed[@]}")
objects native/tests/op_conformance.cc native/tests/device_memory_guard.cc
programs=("${listed[@]}")
for p in "${pids[@]}"; do wait "$p"; done
g++ "${ops[@]}" "${programs[0]}" -o "$out/op_conformance" -pthread
g++ "${ops[@]}" "${model[@]}" "${programs[1]}" -o "$out/device_memory_guard" -pthread
if [ "${1:-}" = --run ]; then exec "$out/op_conformance"; fi
