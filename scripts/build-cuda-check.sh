#!/usr/bin/env bash
# Builds the CUDA conformance program (native/tests/cuda_conformance.cu + kernels/*.cu + the CPU
# reference ops it checks against) into build/cuda-check/cuda_conformance, for a GPU machine that
# has only a driver: CUDA runtime, libstdc++ and libgcc linked statically, so the binary needs
# nothing but glibc there. Targets sm_80 and sm_90a (SASS), plus compute_80 PTX for newer GPUs.
# Needs nvcc (no GPU): CUDA_HOME or the nvcc on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

nvcc=${NVCC:-$(command -v nvcc || true)}
[ -n "$nvcc" ] || { echo "build-cuda-check: nvcc not found (set NVCC or put CUDA's bin on PATH)" >&2; exit 1; }
# The static runtime: under CUDA_HOME, next to nvcc's real location, or under /usr/local/cuda.
cudart=
for d in ${CUDA_HOME:-} "$(dirname "$(readlink -f "$nvcc")")/.." /usr/local/cuda; do
  if [ -f "$d/lib64/libcudart_static.a" ]; then cudart="$d/lib64/libcudart_static.a"; break; fi
done
[ -n "$cudart" ] || { echo "build-cuda-check: libcudart_static.a not found under CUDA_HOME, next to $nvcc or in \
/usr/local/cuda (set CUDA_HOME)" >&2; exit 1; }

out=build/cuda-check
mkdir -p "$out/obj"
arch=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a
      -gencode arch=compute_80,code=compute_80)
# The same flags .ci/run compiles kernels/ with: warnings are errors, register spills are shown.
nv_flags=(-std=c++17 -O3 -Inative -I. "${arch[@]}" -Werror all-warnings -Xptxas -warn-spills
          -Xcompiler -Wall,-Wno-unused-parameter)
# The CPU reference ops, built as the addon builds them (binding.gyp), without OpenBLAS or MPI.
cc_flags=(-std=c++17 -O3 -fexceptions -Wall -Wno-unused-parameter -Inative)
[ "$(uname -m)" = x86_64 ] && cc_flags+=(-march=x86-64-v3)
cpu_sources=(native/core/gemm.cc native/core/gemv.cc native/core/threads.cc
             native/ops/adamw.cc native/ops/attention.cc native/ops/embedding.cc native/ops/linear.cc
             native/ops/logprob.cc native/ops/residual.cc native/ops/rmsnorm.cc native/ops/rope.cc native/ops/swiglu.cc)

objs=()
pids=()
compile() {  # source, object, compiler and flags...
  local src=$1 obj=$2
  shift 2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find native/ops native/core kernels native/tests \
      -name '*.h' -newer "$obj" -o -name '*.cuh' -newer "$obj" | head -1)" ]; then
    "$@" -c "$src" -o "$obj" &
    pids+=($!)
  fi
  objs+=("$obj")
}
jobs_max=${JOBS:-2}
wait_some() { while [ "${#pids[@]}" -ge "$jobs_max" ]; do wait "${pids[0]}"; pids=("${pids[@]:1}"); done; }

for f in kernels/*.cu native/tests/cuda_conformance.cu; do
  wait_some
  compile "$f" "$out/obj/$(basename "$f").o" "$nvcc" "${nv_flags[@]}"
done
for f in "${cpu_sources[@]}"; do
  wait_some
  compile "$f" "$out/obj/$(basename "$f").o" g++ "${cc_flags[@]}"
done
for p in "${pids[@]}"; do wait "$p"; done

g++ -o "$out/cuda_conformance" "${objs[@]}" "$cudart" -static-libstdc++ -static-libgcc -lpthread -ldl -lrt
echo "build-cuda-check: built $out/cuda_conformance"
ldd "$out/cuda_conformance" | sed 's/^/  /'
if ldd "$out/cuda_conformance" | grep -vE 'linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so' \
    | grep -q '=>'; then
  echo "build-cuda-check: the binary needs more than glibc at run time (see ldd above)" >&2
  exit 1
fi
