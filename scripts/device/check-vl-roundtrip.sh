#!/usr/bin/env bash
# One prepared command for a lent GPU machine (the `device` tool): transformers loads medix's
# tiny-vl and tiny-vl-moe directories (test/fixtures/hf/medix_written_vl*/) unchanged and records its
# inputs and logits for them (scripts/fixtures/check_transformers_vl_roundtrip.py), within one budget
# (default 240 s, $DEVICE_BUDGET; steps.sh). Writes $OUT/medix_written_vl.transformers.json, to be
# committed as test/fixtures/hf/medix_written_vl.transformers.json, and $OUT/check-vl-roundtrip-logs.tar.gz.
# Usage there: bash scripts/device/check-vl-roundtrip.sh   (nothing to carry)
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/steps.sh check-vl-roundtrip 240
export PYTHONUNBUFFERED=1
limit=$(step_limit 240)
status=125
if [ "$limit" -gt 0 ]; then
  timeout "$limit" python3 scripts/fixtures/check_transformers_vl_roundtrip.py "$out" >"$logs/roundtrip.log" 2>&1
  status=$?
fi
pack_logs
tail -n 20 "$logs/roundtrip.log"
echo "check-vl-roundtrip: $(rc_word $status); JSON: $out/medix_written_vl.transformers.json" \
  "(commit as test/fixtures/hf/medix_written_vl.transformers.json)"
exit "$status"
