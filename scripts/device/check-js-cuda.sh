#!/usr/bin/env bash
# On the GPU machine: unpacks .gpu-bundle/medix-js.tar.xz (scripts/device/pack-js-bundle.sh) and runs
# the JS path of device cuda (scripts/device/cuda-model-check.ts) with cuBLASLt from the NVIDIA wheels.
# Writes $OUT/cuda_model_check.json (the check's JSON line plus the GPU, the commit and the date).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/medix-js-check}
dir=$(mktemp -d)
mkdir -p "$out"
if command -v xz >/dev/null; then xz -dc .gpu-bundle/medix-js.tar.xz | tar -C "$dir" -xf -
else python3 -c 'import lzma, sys, tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' \
  .gpu-bundle/medix-js.tar.xz "$dir"; fi
node="$dir/node"
# The machine's libstdc++ first; ours (Node's build needs its GLIBCXX) only when that one is too old.
"$node" -e 0 2>/dev/null || export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MEDIX_CUDA_LIBS=${MEDIX_CUDA_LIBS:-$(bash scripts/device/cuda-libs.sh)}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
result=$(cd "$dir" && timeout 300 "$node" dist/js/cuda-model-check.mjs 2>"$out/cuda_model_check.log" | tail -n 1)
rc=$?
[ -n "$result" ] || result='{"cuda_model_check":"error","error":"no output (see cuda_model_check.log)"}'
echo "{\"gpu\":\"$gpu\",\"commit\":\"$(cat "$dir/commit.txt")\",\"date\":\"$(date -u +%FT%TZ)\",\"result\":$result}" \
  | tee "$out/cuda_model_check.json"
exit $rc
