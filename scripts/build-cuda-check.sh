#!/usr/bin/env bash
# Builds the CUDA programs for a GPU machine that has only a driver, into build/cuda-check/ (and packed
# for the machine's call in .gpu-bundle/cuda-check.tar.xz):
#   cuda_conformance   native/tests/cuda_conformance.cu: every kernel against the CPU reference ops
#   gpu_logprob_bench  bench/gpu/logprob_bench.cu: the fused log-prob timing and peak memory (issue 14)
#   nccl_check         native/tests/nccl_check.cu: every collective of the NCCL communicator (issue 15)
#   op_conformance     native/tests/op_conformance.cc with the CUDA backend: every op-table entry on the
#                      CPU, the device-memory guard and (where a device exists) the CUDA backend
# CUDA runtime, libstdc++ and libgcc are linked statically, so the binaries need nothing but glibc
# there; cuBLASLt is opened at run time (native/cuda/libraries.h). Targets sm_80 and sm_90a (SASS),
# plus compute_80 PTX for newer GPUs. Needs nvcc (no GPU): see scripts/cuda-toolchain.sh.
#
#   bash scripts/build-cuda-check.sh                       both programs
#   bash scripts/build-cuda-check.sh --kernels-only DIR    only DIR/libmedix_kernels.a (kernels/*.cu,
#                                                          position-independent): what binding.gyp links
#                                                          into the addon
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/cuda-check
kernels_only=0
if [ "${1:-}" = --kernels-only ]; then
  [ -n "${2:-}" ] || { echo "build-cuda-check: --kernels-only needs an output folder" >&2; exit 2; }
  kernels_only=1
  out=$2
fi
toolchain=$(bash scripts/cuda-toolchain.sh)
nvcc=$(sed -n 1p <<<"$toolchain")
cudart=$(sed -n 2p <<<"$toolchain")

mkdir -p "$out/obj"
arch=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a
      -gencode arch=compute_80,code=compute_80)
# The same flags .ci/run compiles kernels/ with: warnings are errors, register spills are shown.
nv_flags=(-std=c++17 -O3 -Inative -I. "${arch[@]}" -Werror all-warnings -Xptxas -warn-spills
          -Xcompiler -Wall,-Wno-unused-parameter,-fPIC)
# The CPU side, built as the addon builds it (binding.gyp), without OpenBLAS or MPI: the reference ops,
# and the model with its CPU backend (the whole-model case runs it on both backends).
cc_flags=(-std=c++17 -O3 -fexceptions -fPIC -Wall -Wno-unused-parameter -Inative)
[ "$(uname -m)" = x86_64 ] && cc_flags+=(-march=x86-64-v3)
mapfile -t cpu_sources < <(ls native/core/*.cc native/ops/*.cc native/model/*.cc native/dist/*.cc \
  native/cuda/libraries.cc)

pids=()
compile() {  # source, object, compiler and flags...
  local src=$1 obj=$2
  shift 2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find native/ops native/core native/cuda native/model \
      native/dist kernels native/tests bench/gpu -name '*.h' -newer "$obj" -o -name '*.cuh' -newer "$obj" \
      2>/dev/null | head -1)" ]; then
    "$@" -c "$src" -o "$obj" &
    pids+=($!)
  fi
}
jobs_max=${JOBS:-2}
wait_some() { while [ "${#pids[@]}" -ge "$jobs_max" ]; do wait "${pids[0]}"; pids=("${pids[@]:1}"); done; }
wait_all() { for p in "${pids[@]}"; do wait "$p"; done; pids=(); }
obj() { echo "$out/obj/$(basename "$1").o"; }

# The kernels: one archive, linked whole (the addon references nothing in it by name yet).
kernel_objs=()
for f in kernels/*.cu; do
  wait_some
  compile "$f" "$(obj "$f")" "$nvcc" "${nv_flags[@]}"
  kernel_objs+=("$(obj "$f")")
done
wait_all
rm -f "$out/libmedix_kernels.a"
ar rcs "$out/libmedix_kernels.a" "${kernel_objs[@]}"
if [ "$kernels_only" = 1 ]; then
  echo "build-cuda-check: built $out/libmedix_kernels.a"
  exit 0
fi

cpu_objs=()
for f in native/tests/cuda_conformance.cu native/tests/nccl_check.cu bench/gpu/logprob_bench.cu; do
  wait_some
  compile "$f" "$(obj "$f")" "$nvcc" "${nv_flags[@]}"
done
op_conformance_obj=$out/obj/op_conformance_cuda.o
wait_some
compile native/tests/op_conformance.cc "$op_conformance_obj" g++ "${cc_flags[@]}" -DMEDIX_OP_CONFORMANCE_CUDA
for f in "${cpu_sources[@]}"; do
  wait_some
  compile "$f" "$(obj "$f")" g++ "${cc_flags[@]}"
  cpu_objs+=("$(obj "$f")")
done
wait_all

link() {  # program, its main object, more objects...
  local prog=$1
  shift
  g++ -o "$out/$prog" "$@" -Wl,--whole-archive "$out/libmedix_kernels.a" -Wl,--no-whole-archive "$cudart" \
    -static-libstdc++ -static-libgcc -lpthread -ldl -lrt
  echo "build-cuda-check: built $out/$prog"
  ldd "$out/$prog" | sed 's/^/  /'
  if ldd "$out/$prog" | grep -vE 'linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so' \
      | grep -q '=>'; then
    echo "build-cuda-check: $prog needs more than glibc at run time (see ldd above)" >&2
    exit 1
  fi
}
link cuda_conformance "$(obj native/tests/cuda_conformance.cu)" "${cpu_objs[@]}"
link gpu_logprob_bench "$(obj bench/gpu/logprob_bench.cu)" "${cpu_objs[@]}"
link nccl_check "$(obj native/tests/nccl_check.cu)" "${cpu_objs[@]}"
link op_conformance "$op_conformance_obj" "${cpu_objs[@]}"
# The commit the binaries were built from, for the results (the GPU machine's copy may have no .git).
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain 2>/dev/null)" ] && commit+="-dirty"
echo "$commit" >"$out/commit.txt"
echo "build-cuda-check: commit $commit"
# What a GPU machine's call carries (scripts/device-check.sh unpacks it): the four programs stripped, and
# the commit, xz-compressed (about 2 MB instead of 28: the call's tree must stay under 64 MiB).
stage=$(mktemp -d)
cp "$out"/{cuda_conformance,gpu_logprob_bench,nccl_check,op_conformance,commit.txt} "$stage/"
strip "$stage"/{cuda_conformance,gpu_logprob_bench,nccl_check,op_conformance}
mkdir -p .gpu-bundle
tar -C "$stage" -cf - . | xz -T2 -6 >.gpu-bundle/cuda-check.tar.xz
rm -rf "$stage"
echo "build-cuda-check: packed .gpu-bundle/cuda-check.tar.xz ($(($(stat -c %s .gpu-bundle/cuda-check.tar.xz) / 1024)) KiB)"
