#!/usr/bin/env bash
# On the GPU machine (issue 14's train-step and decode benchmarks): transformers first
# (scripts/device/hf_model_bench.py, PyTorch's Python), then medix from the JS bundle
# (scripts/device/pack-js-bundle.sh) with `--device cuda --hf`, then both merged into
# $OUT/results/<gpu>-<date>.json (merge_gpu_bench.py --records). Logs and JSON under $OUT (else
# /tmp/medix-gpu-model-bench); the last stdout line is one JSON summary. Time limits: 270 s
# transformers (its static-cache generate compiles the forward: HF_COMPILE=off skips that), 300 s medix
# (model creation, a warm-up and a timed f32 step, decode), so the whole fits one 10-minute call.
#   run command="bash scripts/device/gpu-model-bench.sh" carry=[".gpu-bundle"]
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
out=${OUT:-/tmp/medix-gpu-model-bench}
mkdir -p "$out"
source scripts/device/js-bundle-env.sh
commit=$(cat "$bundle/commit.txt")
py=${PYTHON:-python3}
"$py" -c 'import torch, transformers' 2>/dev/null || { [ -x /opt/torch/.venv/bin/python3 ] && py=/opt/torch/.venv/bin/python3; }

timeout 270 "$py" scripts/device/hf_model_bench.py --compile "${HF_COMPILE:-auto}" >"$out/hf_model_bench.json" \
  2>"$out/hf_model_bench.log"
hf_rc=$?
tail -n 20 "$out/hf_model_bench.log" >&2
hf=()
[ "$hf_rc" -eq 0 ] && hf=(--hf "$out/hf_model_bench.json")
(cd "$bundle" && timeout 300 "$node" dist/js/bench.mjs --device cuda "${hf[@]}" --json "$out/gpu_model_records.json") \
  >"$out/medix_model_bench.log" 2>&1
medix_rc=$?
tail -n 30 "$out/medix_model_bench.log" >&2
merge_rc=127 results=""
if [ "$medix_rc" -eq 0 ] && [ "$hf_rc" -eq 0 ]; then
  results=$(timeout 30 "$py" scripts/device/merge_gpu_bench.py --records "$out/gpu_model_records.json" \
    --commit "$commit" --out-dir "$out/results" 2>>"$out/merge.log")
  merge_rc=$?
fi
status=pass
[ "$hf_rc" -eq 0 ] && [ "$medix_rc" -eq 0 ] && [ "$merge_rc" -eq 0 ] || status=fail
echo "{\"gpu_model_bench\":\"$status\",\"gpu\":\"$gpu\",\"commit\":\"$commit\",\"hf_rc\":$hf_rc,\"medix_rc\":$medix_rc," \
  "\"merge_rc\":$merge_rc,\"results_file\":\"$results\",\"seconds\":$(($(date +%s) - start)),\"logs\":\"$out\"}" \
  | tee "$out/summary.json"
[ "$status" = pass ]
