#!/usr/bin/env bash
# On the GPU machine: unpacks .gpu-bundle/medix-js.tar.xz (scripts/device/pack-js-bundle.sh) and runs,
# with cuBLASLt from the NVIDIA wheels, within one budget (default 330 s, $DEVICE_BUDGET; steps.sh):
#   1. the JS path of device cuda (scripts/device/cuda-model-check.ts: training steps and generation of
#      tiny dense, MoE and Qwen3-VL models, the last with images, against the CPU), at most 150 s;
#   2. a short `medix train` on the GPU: the quickstart (tiny Qwen3, SFT warm-up, then 3 DAPO steps with
#      the composite reward) with the actor and the rollouts on cuda, at most 150 s;
#   3. step 1 again with the GPU sampler (MEDIX_CUDA_SAMPLER=gpu, kernels/sampling.cu), at most 90 s.
# Writes $OUT/cuda_model_check.json (every result with the GPU, the commit and the date; the training
# run's summary.json in it) and $OUT/check-js-cuda-logs.tar.gz (the logs, the run's metrics.jsonl).
# Usage there: bash scripts/device/check-js-cuda.sh   (carry .gpu-bundle/medix-js.tar.xz)
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/steps.sh check-js-cuda 330
source scripts/device/js-bundle-env.sh
# Runs the model check (the bundle's cuda-model-check.mjs) as step $1, at most $2 seconds: its JSON line
# goes to $logs/$1.json (an error record when it printed none), and rc is set.
model_check() {
  local limit
  limit=$(step_limit "$2")
  rc=125
  if [ "$limit" -gt 0 ]; then
    (cd "$bundle" && timeout "$limit" "$node" dist/js/cuda-model-check.mjs) >"$logs/$1.out" 2>"$logs/$1.log"
    rc=$?
  fi
  tail -n 1 "$logs/$1.out" 2>/dev/null >"$logs/$1.json"
  # Only a JSON line goes into the record (a stray line last on stdout would make the record invalid).
  "$node" -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$logs/$1.json" 2>/dev/null \
    || echo "{\"cuda_model_check\":\"$(rc_word $rc)\",\"error\":\"no JSON line (see $1.out, $1.log)\"}" >"$logs/$1.json"
  pack_logs
}
model_check cuda_model_check 150
rc_model=$rc

# head_dim 32: the GPU attention's lanes all busy (the quickstart's 16 leaves half idle; the conformance
# program checks that case on its own). No online filtering: with it, these 3 steps keep no group (all
# rewards alike after a 4-epoch warm-up) and the RL update never runs; without it each step updates.
# The run's checkpoints stay in /tmp (they would not come back); its summary and metrics join the logs.
run=$(mktemp -d)
train_rc=125
limit=$(step_limit 150)
if [ "$limit" -gt 0 ]; then
  timeout "$limit" "$node" "$bundle/dist/js/medix.mjs" train examples/quickstart.yaml worker.actor.device=cuda \
    worker.rollout.device=cuda worker.actor.model.init.head_dim=32 algorithm.online_filtering=false \
    sft.epochs=4 trainer.max_steps=3 trainer.val_freq=3 trainer.save_freq=3 \
    trainer.save_checkpoint_path="$run" >"$logs/train.log" 2>&1
  train_rc=$?
  tail -n 15 "$logs/train.log" >&2
  cp "$run/summary.json" "$run/metrics.jsonl" "$logs/" 2>/dev/null
fi
train_summary=$(cat "$run/summary.json" 2>/dev/null | tr -d '\n')
[ -n "$train_summary" ] || train_summary=null
pack_logs

MEDIX_CUDA_SAMPLER=gpu model_check cuda_model_check_gpu_sampler 90
rc_gs=$rc

echo "{\"gpu\":\"$gpu\",\"commit\":\"$(cat "$bundle/commit.txt")\",\"date\":\"$(date -u +%FT%TZ)\"," \
  "\"result\":$(cat "$logs/cuda_model_check.json"),\"train\":\"$(rc_word $train_rc)\"," \
  "\"train_summary\":$train_summary,\"gpu_sampler_result\":$(cat "$logs/cuda_model_check_gpu_sampler.json")," \
  "\"seconds\":$(($(date +%s) - start))}" >"$out/cuda_model_check.json"
# The last line stays short (the reply keeps the output's end): statuses and the failed checks' names.
short() {
  "$node" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const bad = (r.checks ?? []).filter((c) => !c.pass).map((c) => `${c.name} ${c.value} > ${c.limit}`);
    console.log([r.cuda_model_check, ...bad.slice(0, 12), r.error ? String(r.error).replace(/\s+/g, " ").slice(0, 300) : ""].join("; "))' \
    "$logs/$1.json" 2>/dev/null || echo unreadable
}
echo "check-js-cuda: model: $(short cuda_model_check) (rc $rc_model) | train: $(rc_word $train_rc) |" \
  "gpu sampler: $(short cuda_model_check_gpu_sampler) (rc $rc_gs) | full record: cuda_model_check.json"
[ "$rc_model" -eq 0 ] && [ "$train_rc" -eq 0 ] && [ "$rc_gs" -eq 0 ]
