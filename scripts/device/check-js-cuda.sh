#!/usr/bin/env bash
# On the GPU machine: unpacks .gpu-bundle/medix-js.tar.xz (scripts/device/pack-js-bundle.sh) and runs
# the JS path of device cuda (scripts/device/cuda-model-check.ts) with cuBLASLt from the NVIDIA wheels.
# Writes $OUT/cuda_model_check.json (the check's JSON line plus the GPU, the commit and the date).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/medix-js-check}
mkdir -p "$out"
source scripts/device/js-bundle-env.sh
result=$(cd "$bundle" && timeout 300 "$node" dist/js/cuda-model-check.mjs 2>"$out/cuda_model_check.log" | tail -n 1)
rc=$?
[ -n "$result" ] || result='{"cuda_model_check":"error","error":"no output (see cuda_model_check.log)"}'
echo "{\"gpu\":\"$gpu\",\"commit\":\"$(cat "$bundle/commit.txt")\",\"date\":\"$(date -u +%FT%TZ)\",\"result\":$result}" \
  | tee "$out/cuda_model_check.json"
exit $rc
