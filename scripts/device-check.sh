#!/usr/bin/env bash
# The GPU machine's check (issue 14), most valuable first, every step under its own time limit:
#   1. the conformance program (every kernel against the CPU reference ops, tiny and Qwen3-like shapes,
#      the cuBLASLt linear and bf16 fused log-probs included), with cuBLASLt taken from the Python
#      wheels' site-packages/nvidia/*/lib (MEDIX_CUDA_LIBS) unless MEDIX_CUDA_LIBS is already set; then
#      the op-table conformance (native/tests/op_conformance.cc) with the CUDA backend: every entry of the
#      op table, forward and backward, through the Backend interface on the device;
#   2. the GPU fused log-prob benchmark (medix), then the same shapes in PyTorch eager, merged into
#      bench records ($OUT/results/<gpu>-<date>.json);
#   3. compute-sanitizer memcheck and racecheck on the tiny shapes, where it is installed;
#   4. the NCCL communicator's check (issue 15): every collective of a 1-rank communicator on the device
#      against its direct formula, NCCL from the same wheels.
# Logs go under $OUT when it is set (else /tmp/medix-device-check); the last stdout line is one JSON
# summary. Exits non-zero if a step fails. Time limits: 30 s library search, 180 s conformance, 60 s op table, 120 s
# medix bench, 150 s PyTorch bench, 20 s sanitizer search, 2 x 60 s sanitizers, 60 s NCCL: under 9 minutes with
# the prebuilt binaries. Building first (only when a binary is missing and nvcc is present) can add 4.
#
# Usage: bash scripts/device-check.sh   (binaries from scripts/build-cuda-check.sh in build/cuda-check/)
# The JS side (the model on cuda, a short `medix train` on the GPU) and the train-step and decode
# benchmarks need Node: scripts/device/check-js-cuda.sh and gpu-model-bench.sh run them from a bundle.
# The order of calls for a lent session: scripts/device/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=${OUT:-/tmp/medix-device-check}
mkdir -p "$out"
dir=build/cuda-check
conformance=$dir/cuda_conformance
op_table=$dir/op_conformance
bench=$dir/gpu_logprob_bench
nccl=$dir/nccl_check

for b in "$conformance" "$op_table" "$bench" "$nccl"; do [ -f "$b" ] && [ ! -x "$b" ] && chmod +x "$b"; done  # carried copies lose modes
if { [ ! -x "$conformance" ] || [ ! -x "$op_table" ] || [ ! -x "$bench" ] || [ ! -x "$nccl" ]; } \
    && command -v nvcc >/dev/null; then
  echo "device-check: a binary is missing under $dir; building" >&2
  timeout 240 bash scripts/build-cuda-check.sh >"$out/build.log" 2>&1 || echo "device-check: build failed" >&2
fi
if [ ! -x "$conformance" ]; then
  echo "{\"device_check\":\"fail\",\"error\":\"no conformance binary at $conformance" \
    "(run scripts/build-cuda-check.sh)\"}"
  exit 1
fi
commit=$(cat "$dir/commit.txt" 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)
# The Python with PyTorch (and the NVIDIA wheels): $PYTHON, python3, or the image's /opt/torch venv.
py=${PYTHON:-python3}
has_torch() { "$1" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)' 2>/dev/null; }
if ! has_torch "$py" && [ -x /opt/torch/.venv/bin/python3 ]; then py=/opt/torch/.venv/bin/python3; fi

# cuBLASLt (and NCCL, cuDNN) from the NVIDIA wheels next to PyTorch: every site-packages/nvidia/*/lib.
if [ -z "${MEDIX_CUDA_LIBS:-}" ]; then
  MEDIX_CUDA_LIBS=$(PYTHON=$py bash scripts/device/cuda-libs.sh)
  export MEDIX_CUDA_LIBS
fi
{ nvidia-smi 2>&1 || echo "nvidia-smi not available"; ldd "$conformance"; echo "commit $commit";
  echo "MEDIX_CUDA_LIBS=${MEDIX_CUDA_LIBS:-}"; echo "python $py"; } >"$out/machine.txt" 2>&1
echo "device-check: MEDIX_CUDA_LIBS=${MEDIX_CUDA_LIBS:-(none found)}" >&2

# 1. Conformance: every op, tiny and Qwen3-like shapes. --require-gpu: no usable device is a failure.
timeout 180 "$conformance" --require-gpu >"$out/conformance.json" 2>"$out/conformance.log"
conf_rc=$?
conf_json=$(tail -n 1 "$out/conformance.json")
[ -n "$conf_json" ] || conf_json=null
tail -n 60 "$out/conformance.log" >&2
# A cuBLASLt check reported as not run (library not found) fails the check here: the libraries are expected.
if [ "$conf_rc" -eq 0 ] && ! grep -q '"not_run":0' <<<"$conf_json"; then conf_rc=4; fi
# 1b. The op table on the CUDA backend (--require-cuda: no usable device is a failure).
op_table_rc=127
op_table_line=""
if [ -x "$op_table" ]; then
  timeout 60 "$op_table" --require-cuda >"$out/op_conformance.log" 2>&1
  op_table_rc=$?
  op_table_line=$(tail -n 1 "$out/op_conformance.log" | tr -d '"\\')
  grep -E '^(FAIL|cuda|op conformance)' "$out/op_conformance.log" | tail -n 30 >&2
fi

# 2. The fused log-prob benchmark, medix then PyTorch, merged into bench records.
bench_rc=127 torch_rc=127 merge_rc=127 results=""
if [ -x "$bench" ]; then
  timeout 120 "$bench" >"$out/gpu_logprob_bench.json" 2>"$out/gpu_logprob_bench.log"
  bench_rc=$?
  cat "$out/gpu_logprob_bench.log" >&2
fi
if command -v "$py" >/dev/null; then
  timeout 150 "$py" scripts/device/torch_logprob_bench.py >"$out/torch_logprob_bench.json" \
    2>"$out/torch_logprob_bench.log"
  torch_rc=$?
  tail -n 20 "$out/torch_logprob_bench.log" >&2
  if [ "$bench_rc" -eq 0 ] && [ "$torch_rc" -eq 0 ]; then
    results=$(timeout 30 "$py" scripts/device/merge_gpu_bench.py "$out/gpu_logprob_bench.json" \
      "$out/torch_logprob_bench.json" --commit "$commit" --out-dir "$out/results" 2>>"$out/merge.log")
    merge_rc=$?
  fi
fi
bench_json=$(tail -n 1 "$out/gpu_logprob_bench.json" 2>/dev/null)
torch_json=$(tail -n 1 "$out/torch_logprob_bench.json" 2>/dev/null)
[ -n "$bench_json" ] || bench_json=null
[ -n "$torch_json" ] || torch_json=null

# 3. compute-sanitizer on the tiny shapes, where it is installed.
sanitizer=$(command -v compute-sanitizer || true)
for d in ${CUDA_HOME:-} /usr/local/cuda /usr/local/cuda-*; do
  [ -z "$sanitizer" ] && [ -x "$d/bin/compute-sanitizer" ] && sanitizer="$d/bin/compute-sanitizer"
done
if [ -z "$sanitizer" ]; then
  sanitizer=$(timeout 20 find / -xdev -name compute-sanitizer -type f -perm -u+x 2>/dev/null | head -n 1)
fi
tools_json=""
sanitizers_ok=1
for tool in memcheck racecheck; do
  if [ -z "$sanitizer" ]; then
    tools_json+="\"$tool\":{\"ran\":false,\"reason\":\"compute-sanitizer not found\"},"
    continue
  fi
  timeout 60 "$sanitizer" --tool "$tool" --error-exitcode 3 "$conformance" --tiny --require-gpu \
    >"$out/$tool.json" 2>"$out/$tool.log"
  rc=$?
  # compute-sanitizer reports on stdout (mixed with the program's JSON line), the program logs on stderr.
  summary=$(cat "$out/$tool.json" "$out/$tool.log" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY' \
    | tr '\n' ' ' | tr -d '"')
  [ "$rc" -eq 0 ] || sanitizers_ok=0
  tools_json+="\"$tool\":{\"ran\":true,\"rc\":$rc,\"summary\":\"${summary% }\"},"
  echo "device-check: $tool rc=$rc ${summary}" >&2
done

# 4. NCCL: a 1-rank communicator round-trips every collective (exit 2 names a missing device or library).
nccl_rc=127
if [ -x "$nccl" ]; then
  timeout 60 "$nccl" >"$out/nccl_check.json" 2>"$out/nccl_check.log"
  nccl_rc=$?
  tail -n 30 "$out/nccl_check.log" >&2
fi
nccl_json=$(tail -n 1 "$out/nccl_check.json" 2>/dev/null)
[ -n "$nccl_json" ] || nccl_json=null

status=pass
[ "$conf_rc" -eq 0 ] && [ "$op_table_rc" -eq 0 ] && [ "$sanitizers_ok" -eq 1 ] && [ "$bench_rc" -eq 0 ] && [ "$torch_rc" -eq 0 ] \
  && [ "$merge_rc" -eq 0 ] && [ "$nccl_rc" -eq 0 ] || status=fail
seconds=$(($(date +%s) - start))
summary="{\"device_check\":\"$status\",\"commit\":\"$commit\",\"conformance_rc\":$conf_rc,\"bench_rc\":$bench_rc,"
summary+="\"op_table_rc\":$op_table_rc,\"op_table\":\"$op_table_line\","
summary+="\"torch_rc\":$torch_rc,\"merge_rc\":$merge_rc,\"nccl_rc\":$nccl_rc,\"nccl_check\":$nccl_json,\"results_file\":\"$results\",${tools_json}"
summary+="\"seconds\":$seconds,\"logs\":\"$out\",\"gpu_logprob_bench\":$bench_json,\"torch_logprob_bench\":$torch_json,"
summary+="\"conformance\":$conf_json}"
echo "$summary" >"$out/summary.json"
echo "$summary"
[ "$status" = pass ]
