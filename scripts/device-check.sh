#!/usr/bin/env bash
# The GPU machine's check (issue 14), most valuable first, every step under its own time limit and all
# of them within one budget (default 480 s, $DEVICE_BUDGET; scripts/device/steps.sh):
#   1. the conformance program (every kernel against the CPU reference ops, tiny and Qwen3-like shapes,
#      the cuBLASLt linear and bf16 fused log-probs included), with cuBLASLt taken from the Python
#      wheels' site-packages/nvidia/*/lib (MEDIX_CUDA_LIBS) unless MEDIX_CUDA_LIBS is already set;
#   2. the op-table conformance (native/tests/op_conformance.cc) with the CUDA backend: every entry of the
#      op table, forward and backward, through the Backend interface on the device;
#   3. the NCCL communicator's check (issue 15): every collective of a 1-rank communicator on the device
#      against its direct formula, NCCL from the same wheels;
#   4. the GPU fused log-prob benchmark (medix), then the same shapes in PyTorch eager, merged into
#      bench records ($OUT/results/<gpu>-<date>.json);
#   5. compute-sanitizer memcheck and racecheck on the tiny shapes, where it is installed (last: the
#      slowest, and a time-out there says nothing about the kernels).
# The programs come from .gpu-bundle/cuda-check.tar.xz (scripts/build-cuda-check.sh packs it; carry that
# file alone) or build/cuda-check/. What comes back under $OUT (the tool brings back 8 files): summary.json
# (every step's status, rewritten after each step), conformance.json (the conformance program's record),
# results/<gpu>-<date>.json (bench records) and device-check-logs.tar.gz (every log). The last stdout line
# is a short summary: statuses, counts and the names of failed cases. Exits non-zero if a step fails.
#
# Usage there: bash scripts/device-check.sh   (carry .gpu-bundle/cuda-check.tar.xz)
# The JS side (the model on cuda, a short `medix train` on the GPU) and the train-step and decode
# benchmarks need Node: scripts/device/check-js-cuda.sh and gpu-model-bench.sh run them from a bundle.
# The order of calls for a lent session: scripts/device/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device/steps.sh device-check 480
dir=build/cuda-check
if [ -f .gpu-bundle/cuda-check.tar.xz ]; then
  dir=$(mktemp -d)
  if command -v xz >/dev/null; then xz -dc .gpu-bundle/cuda-check.tar.xz | tar -C "$dir" -xf -
  else python3 -c 'import lzma, sys, tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' \
    .gpu-bundle/cuda-check.tar.xz "$dir"; fi
  [ $? -eq 0 ] || echo "device-check: unpacking .gpu-bundle/cuda-check.tar.xz failed" | tee "$logs/unpack.log" >&2
fi
conformance=$dir/cuda_conformance
op_table=$dir/op_conformance
bench=$dir/gpu_logprob_bench
nccl=$dir/nccl_check
for b in "$conformance" "$op_table" "$bench" "$nccl"; do [ -f "$b" ] && [ ! -x "$b" ] && chmod +x "$b"; done  # carried copies lose modes
if { [ ! -x "$conformance" ] || [ ! -x "$op_table" ] || [ ! -x "$bench" ] || [ ! -x "$nccl" ]; } \
    && command -v nvcc >/dev/null && [ "$(step_limit 300 60)" -gt 0 ]; then
  echo "device-check: a program is missing; building ($(nproc) jobs)" >&2
  dir=build/cuda-check conformance=build/cuda-check/cuda_conformance op_table=build/cuda-check/op_conformance
  bench=build/cuda-check/gpu_logprob_bench nccl=build/cuda-check/nccl_check
  JOBS=$(nproc) timeout "$(step_limit 300 60)" bash scripts/build-cuda-check.sh >"$logs/build.log" 2>&1 \
    || echo "device-check: build failed" >&2
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
{ nvidia-smi 2>&1 || echo "nvidia-smi not available"; ldd "$conformance" 2>&1; echo "commit $commit";
  echo "MEDIX_CUDA_LIBS=${MEDIX_CUDA_LIBS:-}"; echo "python $py"; } >"$logs/machine.txt" 2>&1
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)

conf_rc=127 op_table_rc=127 nccl_rc=127 bench_rc=127 torch_rc=127 merge_rc=127 memcheck_rc=127 racecheck_rc=127
results="" op_table_line="" digest=null
# summary.json: every step's status so far (written after each step, so a call cut off still says it).
write_summary() {
  local status=$1
  {
    printf '{"device_check":"%s","gpu":"%s","commit":"%s","date":"%s","seconds":%d,' "$status" "$gpu" "$commit" \
      "$(date -u +%FT%TZ)" $(($(date +%s) - start))
    printf '"conformance":"%s","op_table":"%s","nccl":"%s","gpu_logprob_bench":"%s","torch_logprob_bench":"%s",' \
      "$(rc_word $conf_rc)" "$(rc_word $op_table_rc)" "$(rc_word $nccl_rc)" "$(rc_word $bench_rc)" "$(rc_word $torch_rc)"
    printf '"merge":"%s","memcheck":"%s","racecheck":"%s","results_file":"%s","op_table_last_line":"%s",' \
      "$(rc_word $merge_rc)" "$(rc_word $memcheck_rc)" "$(rc_word $racecheck_rc)" "$results" "$op_table_line"
    printf '"conformance_digest":%s}\n' "$digest"
  } >"$out/summary.json"
  pack_logs
}
# Runs "$@" under a limit of at most $1 seconds (cut to the budget), output to $logs/$2.{out,log}; sets rc.
run_step() {
  local want=$1 name=$2 limit
  shift 2
  limit=$(step_limit "$want")
  if [ "$limit" -eq 0 ]; then
    echo "device-check: $name skipped (no time left)" >&2
    rc=125
    return
  fi
  timeout "$limit" "$@" >"$logs/$name.out" 2>"$logs/$name.log"
  rc=$?
  echo "device-check: $name $(rc_word $rc) in the limit of ${limit}s" >&2
}
write_summary running

# 1. Conformance: every op, tiny and Qwen3-like shapes. --require-gpu: no usable device is a failure.
if [ -x "$conformance" ]; then
  run_step 150 conformance "$conformance" --require-gpu
  conf_rc=$rc
  [ -s "$logs/conformance.out" ] && tail -n 1 "$logs/conformance.out" >"$out/conformance.json"
  # A cuBLASLt check reported as not run (library not found) fails the check here: the libraries are expected.
  if [ "$conf_rc" -eq 0 ] && ! grep -qs '"not_run":0' "$out/conformance.json"; then conf_rc=4; fi
  # Counts and the failed or unrun cases' names, short enough for the last line.
  digest=$("$py" - "$out/conformance.json" <<'PY' 2>/dev/null || echo null
import json, sys
c = json.load(open(sys.argv[1]))
bad = [f"{o['op']}[{o.get('shape', '')[:40]}]:{o['status']}" for o in c.get("ops", []) if o.get("status") != "pass"]
print(json.dumps({k: c.get(k) for k in ("device", "passed", "failed", "cpu_only", "not_run", "total_ms")}
                 | {"not_passed": bad[:30]}, separators=(",", ":")))
PY
  )
  tail -n 40 "$logs/conformance.log" >&2
fi
write_summary running
# 2. The op table on the CUDA backend (--require-cuda: no usable device is a failure).
if [ -x "$op_table" ]; then
  run_step 60 op_conformance "$op_table" --require-cuda
  op_table_rc=$rc
  op_table_line=$(tail -n 1 "$logs/op_conformance.out" | tr -d '"\\' | tr -cd '[:print:]' | cut -c1-300)
  grep -hE '^(FAIL|cuda|op conformance)' "$logs/op_conformance.out" "$logs/op_conformance.log" | tail -n 20 >&2
fi
write_summary running
# 3. NCCL: a 1-rank communicator round-trips every collective (exit 2 names a missing device or library).
if [ -x "$nccl" ]; then
  run_step 30 nccl_check "$nccl"
  nccl_rc=$rc
  tail -n 10 "$logs/nccl_check.log" >&2
fi
write_summary running
# 4. The fused log-prob benchmark, medix then PyTorch, merged into bench records.
if [ -x "$bench" ]; then
  run_step 60 gpu_logprob_bench "$bench"
  bench_rc=$rc
  tail -n 10 "$logs/gpu_logprob_bench.log" >&2
fi
if command -v "$py" >/dev/null && [ "$bench_rc" -eq 0 ]; then
  run_step 90 torch_logprob_bench "$py" scripts/device/torch_logprob_bench.py
  torch_rc=$rc
  tail -n 10 "$logs/torch_logprob_bench.log" >&2
  if [ "$torch_rc" -eq 0 ]; then
    run_step 20 merge "$py" scripts/device/merge_gpu_bench.py "$logs/gpu_logprob_bench.out" \
      "$logs/torch_logprob_bench.out" --commit "$commit" --out-dir "$out/results"
    merge_rc=$rc
    results=$(tail -n 1 "$logs/merge.out")
  fi
fi
write_summary running
# 5. compute-sanitizer on the tiny shapes, where it is installed.
sanitizer=$(command -v compute-sanitizer || true)
for d in ${CUDA_HOME:-} /usr/local/cuda /usr/local/cuda-*; do
  [ -z "$sanitizer" ] && [ -x "$d/bin/compute-sanitizer" ] && sanitizer="$d/bin/compute-sanitizer"
done
if [ -n "$sanitizer" ]; then
  run_step 90 memcheck "$sanitizer" --tool memcheck --error-exitcode 3 "$conformance" --tiny --require-gpu
  memcheck_rc=$rc
  grep -hE 'ERROR SUMMARY|LEAK SUMMARY' "$logs/memcheck.out" "$logs/memcheck.log" >&2
  write_summary running
  run_step 60 racecheck "$sanitizer" --tool racecheck --error-exitcode 3 "$conformance" --tiny --require-gpu
  racecheck_rc=$rc
  grep -hE 'RACECHECK SUMMARY|ERROR SUMMARY' "$logs/racecheck.out" "$logs/racecheck.log" >&2
fi

# The kernels and the communicator must pass; a benchmark or sanitizer that ran out of time is reported
# as such ("timeout", "skipped") without failing the check, one that found an error fails it.
status=pass
for r in $conf_rc $op_table_rc $nccl_rc; do [ "$r" -eq 0 ] || status=fail; done
for r in $bench_rc $torch_rc $merge_rc $memcheck_rc $racecheck_rc; do
  case $r in 0 | 124 | 125 | 127) ;; *) status=fail ;; esac
done
write_summary "$status"
cat "$out/summary.json"
[ "$status" = pass ]
