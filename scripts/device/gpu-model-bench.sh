#!/usr/bin/env bash
# On the GPU machine (issue 14's train-step and decode benchmarks): transformers first
# (scripts/device/hf_model_bench.py, PyTorch's Python), then medix from the JS bundle
# (scripts/device/pack-js-bundle.sh) with `--device cuda --hf`, then both merged into
# $OUT/results/<gpu>-<date>.json (merge_gpu_bench.py --records). Within one budget (default 540 s,
# $DEVICE_BUDGET; steps.sh): at most 240 s transformers (its static-cache generate compiles the forward:
# HF_COMPILE=off skips that), 270 s medix (model creation, a warm-up and a timed f32 step, decode).
# Back under $OUT: summary.json, results/<gpu>-<date>.json and gpu-model-bench-logs.tar.gz (the logs and
# both sides' raw JSON); the last stdout line is the summary.
#   run command="bash scripts/device/gpu-model-bench.sh" carry=[".gpu-bundle/medix-js.tar.xz"]
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/steps.sh gpu-model-bench 540
source scripts/device/js-bundle-env.sh
commit=$(cat "$bundle/commit.txt")
py=${PYTHON:-python3}
"$py" -c 'import torch, transformers' 2>/dev/null || { [ -x /opt/torch/.venv/bin/python3 ] && py=/opt/torch/.venv/bin/python3; }

hf_rc=125 medix_rc=125 merge_rc=127 results=""
limit=$(step_limit 240)
if [ "$limit" -gt 0 ]; then
  timeout "$limit" "$py" scripts/device/hf_model_bench.py --compile "${HF_COMPILE:-auto}" >"$logs/hf_model_bench.json" \
    2>"$logs/hf_model_bench.log"
  hf_rc=$?
  tail -n 20 "$logs/hf_model_bench.log" >&2
fi
pack_logs
hf=()
[ "$hf_rc" -eq 0 ] && hf=(--hf "$logs/hf_model_bench.json")
limit=$(step_limit 270)
if [ "$limit" -gt 0 ]; then
  (cd "$bundle" && timeout "$limit" "$node" dist/js/bench.mjs --device cuda "${hf[@]}" \
    --json "$logs/gpu_model_records.json") >"$logs/medix_model_bench.log" 2>&1
  medix_rc=$?
  tail -n 30 "$logs/medix_model_bench.log" >&2
fi
if [ "$medix_rc" -eq 0 ] && [ "$hf_rc" -eq 0 ]; then
  results=$(timeout 30 "$py" scripts/device/merge_gpu_bench.py --records "$logs/gpu_model_records.json" \
    --commit "$commit" --out-dir "$out/results" 2>>"$logs/merge.log")
  merge_rc=$?
fi
pack_logs
status=pass
[ "$hf_rc" -eq 0 ] && [ "$medix_rc" -eq 0 ] && [ "$merge_rc" -eq 0 ] || status=fail
echo "{\"gpu_model_bench\":\"$status\",\"gpu\":\"$gpu\",\"commit\":\"$commit\",\"hf\":\"$(rc_word $hf_rc)\"," \
  "\"medix\":\"$(rc_word $medix_rc)\",\"merge\":\"$(rc_word $merge_rc)\",\"results_file\":\"$results\"," \
  "\"seconds\":$(($(date +%s) - start))}" | tee "$out/summary.json"
[ "$status" = pass ]
