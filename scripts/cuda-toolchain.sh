#!/usr/bin/env bash
# Finds the CUDA toolchain for the builds (no GPU needed): prints two lines, the nvcc to use and
# CUDA's static runtime (libcudart_static.a), or names what is missing on stderr and exits 1.
# nvcc: $NVCC, else $CUDA_HOME/bin/nvcc, else the nvcc on PATH. The static runtime: under CUDA_HOME,
# next to nvcc's real location, or under /usr/local/cuda. MEDIX_NO_CUDA=1 reports "disabled" (exit 1).
# scripts/build-cuda-check.sh and scripts/detect-cuda.cjs both run it, so they agree.
set -euo pipefail
if [ "${MEDIX_NO_CUDA:-}" = 1 ]; then echo "cuda-toolchain: disabled by MEDIX_NO_CUDA=1" >&2; exit 1; fi
nvcc=${NVCC:-}
[ -z "$nvcc" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && nvcc=$CUDA_HOME/bin/nvcc
[ -z "$nvcc" ] && nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || { echo "cuda-toolchain: nvcc not found (looked at \$NVCC, \$CUDA_HOME/bin and PATH)" >&2; exit 1; }
for d in ${CUDA_HOME:-} "$(dirname "$(readlink -f "$nvcc")")/.." /usr/local/cuda; do
  if [ -f "$d/lib64/libcudart_static.a" ]; then
    echo "$nvcc"
    readlink -f "$d/lib64/libcudart_static.a"
    exit 0
  fi
done
echo "cuda-toolchain: libcudart_static.a not found under \$CUDA_HOME/lib64, next to $nvcc (../lib64) or in \
/usr/local/cuda/lib64 (set CUDA_HOME)" >&2
exit 1
