#!/usr/bin/env bash
# Sourced by the GPU machine's scripts (device-check.sh, check-js-cuda.sh, check-vl-roundtrip.sh,
# gpu-model-bench.sh): the limits of the `device` tool, kept in one place.
#   - One call runs at most 10 minutes and a session has 15 in all, machine start included: every
#     script has a budget (seconds, $DEVICE_BUDGET overrides it) and each step's time limit is cut to
#     what is left of it, so a step that hangs never eats the next call's time.
#   - At most 8 files come back from $OUT: logs go to a folder of their own and travel as one archive,
#     $OUT/<name>-logs.tar.gz, rewritten after every step (a call cut off still brings back the logs
#     of the steps that ended).
#   - The reply keeps the last 12,000 characters of output: scripts print a short summary line last.
#   - Several scripts in one call share it: `export DEVICE_DEADLINE=$(($(date +%s) + 540))` first, and no
#     script runs past that moment (epoch seconds), whatever its own budget.
# Usage: source scripts/device/steps.sh NAME BUDGET_SECONDS
# Sets: out ($OUT, else /tmp/medix-NAME), logs (the logs' folder), start and deadline (epoch seconds).
steps_name=$1
out=${OUT:-/tmp/medix-$steps_name}
logs=$(mktemp -d "/tmp/medix-$steps_name-logs.XXXXXX")
mkdir -p "$out"
start=$(date +%s)
deadline=$((start + ${DEVICE_BUDGET:-$2}))
if [ -n "${DEVICE_DEADLINE:-}" ] && [ "$DEVICE_DEADLINE" -lt "$deadline" ]; then deadline=$DEVICE_DEADLINE; fi

# The time limit for a step that wants $1 seconds: at most what is left before the deadline. Prints 0
# when under $2 seconds (default 10) are left: the caller skips the step and says so.
step_limit() {
  local left=$((deadline - $(date +%s))) least=${2:-10}
  if [ "$left" -lt "$least" ]; then echo 0; elif [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}

# Packs the logs' folder into $OUT/NAME-logs.tar.gz (one file, whatever the number of logs).
pack_logs() {
  tar czf "$out/$steps_name-logs.tar.gz.part" -C "$logs" . 2>/dev/null \
    && mv "$out/$steps_name-logs.tar.gz.part" "$out/$steps_name-logs.tar.gz"
}

# A step's status for the summaries: "pass", "skipped" (no time left: rc 125 by our convention),
# "timeout" (rc 124, the step's limit), or "fail:RC".
rc_word() {
  case $1 in
    0) echo pass ;;
    124) echo timeout ;;
    125) echo skipped ;;
    127) echo absent ;;
    *) echo "fail:$1" ;;
  esac
}
