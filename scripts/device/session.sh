#!/usr/bin/env bash
# The one prepared command for a lent GPU session: the most valuable checks in a single call, so the
# machine is started once (a second call after more than 30 s idle starts a fresh machine, minutes of the
# session's 15). Within one deadline (default 560 s from now, $DEVICE_BUDGET):
#   1. scripts/device-check.sh, at most 280 s: the conformance program, the op table on the CUDA backend,
#      NCCL, then the fused log-prob bench and the sanitizers as time allows;
#   2. scripts/device/check-js-cuda.sh, at most 200 s: the model on cuda from JS against the CPU, a short
#      `medix train` on the GPU, the GPU sampler;
#   3. scripts/device/check-vl-roundtrip.sh with what is left: transformers' logits for medix-written Qwen3-VL
#      directories.
# Carry .gpu-bundle/cuda-check.tar.xz and .gpu-bundle/medix-js.tar.xz (scripts/device/README.md). Back under
# $OUT: summary.json, conformance.json, results/<gpu>-<date>.json, cuda_model_check.json,
# medix_written_vl.transformers.json and logs.tar (the three scripts' log archives), 6 files of the 8 allowed.
# The last line is one summary of the three.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/steps.sh session 560
export OUT=$out DEVICE_DEADLINE=$deadline
unset DEVICE_BUDGET
# After each script its console output and log archive join the session's logs folder, packed as $OUT/logs.tar,
# so at most 7 files are under $OUT at any moment (the tool brings back 8), also when the call is cut off.
collect() {
  mv "$out"/*-logs.tar.gz "$logs/" 2>/dev/null
  tar cf "$out/logs.tar.part" -C "$logs" . && mv "$out/logs.tar.part" "$out/logs.tar"
}
DEVICE_BUDGET=280 bash scripts/device-check.sh >"$logs/device-check.out" 2>&1
check_rc=$?
tail -n 25 "$logs/device-check.out"
collect
DEVICE_BUDGET=200 bash scripts/device/check-js-cuda.sh >"$logs/check-js-cuda.out" 2>&1
js_rc=$?
tail -n 8 "$logs/check-js-cuda.out"
collect
bash scripts/device/check-vl-roundtrip.sh >"$logs/check-vl-roundtrip.out" 2>&1
vl_rc=$?
tail -n 4 "$logs/check-vl-roundtrip.out"
collect
echo "session: device-check $(rc_word $check_rc), check-js-cuda $(rc_word $js_rc)," \
  "check-vl-roundtrip $(rc_word $vl_rc);" \
  "files: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
[ "$check_rc" -eq 0 ] && [ "$js_rc" -eq 0 ] && [ "$vl_rc" -eq 0 ]
