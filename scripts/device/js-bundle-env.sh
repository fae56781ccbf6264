#!/usr/bin/env bash
# Sourced by the GPU machine's JS scripts (check-js-cuda.sh, gpu-model-bench.sh), from the repository
# root: unpacks .gpu-bundle/medix-js.tar.xz (scripts/device/pack-js-bundle.sh) into a temporary folder
# and sets `bundle` (that folder), `node` (its Node binary), `gpu` (the device's name), LD_LIBRARY_PATH
# (the bundle's libstdc++ only when the machine's own is too old for Node or the addon) and MEDIX_CUDA_LIBS (cuBLASLt
# and NCCL from the Python wheels, unless already set).
bundle=$(mktemp -d)
if command -v xz >/dev/null; then xz -dc .gpu-bundle/medix-js.tar.xz | tar -C "$bundle" -xf -
else python3 -c 'import lzma, sys, tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' \
  .gpu-bundle/medix-js.tar.xz "$bundle"; fi
node="$bundle/node"
# The addon, built with a newer GCC, needs more of libstdc++ than Node does: it decides, not `node -e 0`.
"$node" -e "require('$bundle/build/Release/medix.node')" 2>/dev/null \
  || export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
MEDIX_CUDA_LIBS=${MEDIX_CUDA_LIBS:-$(bash scripts/device/cuda-libs.sh)}
export MEDIX_CUDA_LIBS
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
