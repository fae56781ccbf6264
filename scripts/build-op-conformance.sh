#!/usr/bin/env bash
# Builds build/op-conformance/op_conformance (native/tests/op_conformance.cc): every op of the op table,
# forward and backward, on every backend the program has, against the CPU reference, and the CPU
# backward against finite differences. Plain g++ over the native core and ops (no Node, OpenBLAS, MPI
# or CUDA); objects are kept and rebuilt when their source or any native header is newer.
#
#   bash scripts/build-op-conformance.sh          build (JOBS=2 compilers at a time)
#   bash scripts/build-op-conformance.sh --run    build, then run it
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/op-conformance
mkdir -p "$out/obj"
flags=(-std=c++17 -O2 -fexceptions -Wall -Wextra -Wno-unused-parameter -Inative)
[ "$(uname -m)" = x86_64 ] && flags+=(-march=x86-64-v3)
mapfile -t sources < <(ls native/core/*.cc native/ops/*.cc native/tests/op_conformance.cc)

newest_header=$(ls -t native/core/*.h native/ops/*.h native/tests/*.h | head -1)
jobs_max=${JOBS:-2}
pids=()
objs=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(basename "$src").o"
  objs+=("$obj")
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then
    while [ "${#pids[@]}" -ge "$jobs_max" ]; do wait "${pids[0]}"; pids=("${pids[@]:1}"); done
    g++ "${flags[@]}" -c "$src" -o "$obj" &
    pids+=($!)
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
g++ "${objs[@]}" -o "$out/op_conformance" -pthread
if [ "${1:-}" = --run ]; then exec "$out/op_conformance"; fi
