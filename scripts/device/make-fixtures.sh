#!/usr/bin/env bash
# One prepared command for a lent GPU machine (the `device` tool): makes every transformers fixture
# (scripts/fixtures/*.py) into one archive under $OUT, with what the machine was, and lists the
# NVIDIA libraries (cuBLASLt, NCCL, cuDNN) the CUDA backend will dlopen there.
# Usage there: MEDIX_COMMIT=<sha> bash scripts/device/make-fixtures.sh
set -u
out=${OUT:-/tmp/medix-out}
fx=/tmp/medix-fixtures
mkdir -p "$out" "$fx"
export PYTHONUNBUFFERED=1
python3 - "$fx/device.json" <<'PY'
import datetime, json, os, sys, torch, transformers
json.dump({"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "torch": torch.__version__, "transformers": transformers.__version__,
           "commit": os.environ.get("MEDIX_COMMIT"), "date": datetime.datetime.utcnow().isoformat() + "Z"},
          open(sys.argv[1], "w"), indent=1)
PY
timeout 400 python3 scripts/fixtures/make_vl_moe_fixtures.py "$fx" 2>&1 | tee "$out/fixtures.log"
site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
{ nvidia-smi; nvcc --version; ls -l "$site"/nvidia/*/lib 2>&1; ls "$site"/nvidia/*/include 2>&1 | head -80; } \
  > "$fx/nvidia-libs.txt" 2>&1
# One archive per fixture: the tool brings back files of at most 16 MiB, 8 in all.
for d in "$fx"/*/; do tar czf "$out/$(basename "$d").tar.gz" -C "$fx" "$(basename "$d")"; done
tar czf "$out/meta.tar.gz" -C "$fx" --exclude='*/' $(cd "$fx" && ls -p | grep -v /)
ls -la "$out"
