#!/usr/bin/env bash
# One prepared command for a lent GPU machine (the `device` tool): transformers loads medix's
# tiny-vl and tiny-vl-moe directories (test/fixtures/hf/medix_written_vl*/) unchanged and records its
# inputs and logits for them (scripts/fixtures/check_transformers_vl_roundtrip.py) under $OUT, to be
# committed as test/fixtures/hf/medix_written_vl.transformers.json.
# Usage there: bash scripts/device/check-vl-roundtrip.sh
set -u
out=${OUT:-/tmp/medix-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
timeout 300 python3 scripts/fixtures/check_transformers_vl_roundtrip.py "$out" 2>&1 | tee "$out/check-vl-roundtrip.log"
status=${PIPESTATUS[0]}
echo "JSON: $out/medix_written_vl.transformers.json (commit as test/fixtures/hf/medix_written_vl.transformers.json)"
ls -la "$out"
exit "$status"
