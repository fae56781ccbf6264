#!/usr/bin/env bash
# The GPU machine's check (issue 14). Runs the prebuilt CUDA conformance program (every kernel in
# kernels/ against the CPU reference ops, tiny and Qwen3-like shapes), then compute-sanitizer
# (memcheck, racecheck) on the tiny shapes when it is installed. Logs go under $OUT when it is set
# (else /tmp/medix-device-check); the last stdout line is one JSON summary. Exits non-zero if the
# conformance program or a sanitizer fails. With the prebuilt binary its time limits add up to
# under 7 minutes (240 s conformance, 2 x 75 s sanitizers, 20 s sanitizer search); building first
# (only when the binary is missing) can add up to 4 minutes.
#
# Usage: bash scripts/device-check.sh [path/to/cuda_conformance]
#   default binary: build/cuda-check/cuda_conformance (scripts/build-cuda-check.sh makes it; when it
#   is missing and nvcc is present, this script builds it first).
# Not yet here (later slices of the issue): a short `medix train` on the GPU and the GPU benchmarks.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=${OUT:-/tmp/medix-device-check}
mkdir -p "$out"
bin=${1:-build/cuda-check/cuda_conformance}

[ -f "$bin" ] && [ ! -x "$bin" ] && chmod +x "$bin"  # a carried copy may lose its mode bits
if [ ! -x "$bin" ] && command -v nvcc >/dev/null; then
  echo "device-check: $bin missing; building it" >&2
  timeout 240 bash scripts/build-cuda-check.sh >"$out/build.log" 2>&1 || echo "device-check: build failed" >&2
fi
if [ ! -x "$bin" ]; then
  echo "{\"device_check\":\"fail\",\"error\":\"no conformance binary at $bin (run scripts/build-cuda-check.sh)\"}"
  exit 1
fi

{ nvidia-smi 2>&1 || echo "nvidia-smi not available"; ldd "$bin"; } >"$out/machine.txt" 2>&1

# 1. Conformance: every op, tiny and Qwen3-like shapes. --require-gpu: no usable device is a failure.
timeout 240 "$bin" --require-gpu >"$out/conformance.json" 2>"$out/conformance.log"
conf_rc=$?
conf_json=$(tail -n 1 "$out/conformance.json")
[ -n "$conf_json" ] || conf_json=null
tail -n 60 "$out/conformance.log" >&2

# 2. compute-sanitizer on the tiny shapes, where it is installed.
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
  timeout 75 "$sanitizer" --tool "$tool" --error-exitcode 3 "$bin" --tiny --require-gpu \
    >"$out/$tool.json" 2>"$out/$tool.log"
  rc=$?
  # compute-sanitizer reports on stdout (mixed with the program's JSON line), the program logs on stderr.
  summary=$(cat "$out/$tool.json" "$out/$tool.log" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY' \
    | tr '\n' ' ' | tr -d '"')
  [ "$rc" -eq 0 ] || sanitizers_ok=0
  tools_json+="\"$tool\":{\"ran\":true,\"rc\":$rc,\"summary\":\"${summary% }\"},"
  echo "device-check: $tool rc=$rc ${summary}" >&2
done

status=pass
[ "$conf_rc" -eq 0 ] && [ "$sanitizers_ok" -eq 1 ] || status=fail
seconds=$(($(date +%s) - start))
summary="{\"device_check\":\"$status\",\"conformance_rc\":$conf_rc,${tools_json}\"seconds\":$seconds,"
summary+="\"logs\":\"$out\",\"conformance\":$conf_json}"
echo "$summary" >"$out/summary.json"
echo "$summary"
[ "$status" = pass ]
