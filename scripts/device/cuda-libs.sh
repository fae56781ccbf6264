#!/usr/bin/env bash
# Prints the folders of NVIDIA's libraries (cuBLASLt, NCCL, cuDNN) installed as Python wheels next to
# PyTorch, colon-separated, for MEDIX_CUDA_LIBS: every site-packages/nvidia/*/lib of $PYTHON, python3,
# or the GPU image's /opt/torch venv. Prints nothing when there is none.
py=${PYTHON:-python3}
has_torch() { "$1" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)' 2>/dev/null; }
if ! has_torch "$py" && [ -x /opt/torch/.venv/bin/python3 ]; then py=/opt/torch/.venv/bin/python3; fi
command -v "$py" >/dev/null || exit 0
timeout 30 "$py" - <<'PY' 2>/dev/null
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()] + [p for p in sys.path if p.endswith("-packages")]
dirs = sorted({d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib"))})
print(":".join(dirs))
PY
