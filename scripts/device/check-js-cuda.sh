#!/usr/bin/env bash
# On the GPU machine: unpacks .gpu-bundle/medix-js.tar.xz (scripts/device/pack-js-bundle.sh) and runs,
# with cuBLASLt from the NVIDIA wheels:
#   1. the JS path of device cuda (scripts/device/cuda-model-check.ts: training steps and generation of
#      tiny dense, MoE and Qwen3-VL models, the last with images, against the CPU), at most 240 s;
#   2. a short `medix train` on the GPU: the quickstart (tiny Qwen3, SFT warm-up, then 3 DAPO steps with
#      the composite reward) with the actor and the rollouts on cuda, at most 240 s; its summary.json,
#      metrics.jsonl and log under $OUT/train;
#   3. step 1 again with the GPU sampler (MEDIX_CUDA_SAMPLER=gpu, kernels/sampling.cu), at most 120 s.
# Writes $OUT/cuda_model_check.json: both results with the GPU, the commit and the date.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/medix-js-check}
mkdir -p "$out"
source scripts/device/js-bundle-env.sh
result=$(cd "$bundle" && timeout 240 "$node" dist/js/cuda-model-check.mjs 2>"$out/cuda_model_check.log" | tail -n 1)
rc=$?
[ -n "$result" ] || result='{"cuda_model_check":"error","error":"no output (see cuda_model_check.log)"}'

# head_dim 32: the GPU attention's lanes all busy (the quickstart's 16 leaves half idle; the conformance
# program checks that case on its own). No online filtering: with it, these 3 steps keep no group (all
# rewards alike after a 4-epoch warm-up) and the RL update never runs; without it each step updates.
timeout 240 "$node" "$bundle/dist/js/medix.mjs" train examples/quickstart.yaml worker.actor.device=cuda \
  worker.rollout.device=cuda worker.actor.model.init.head_dim=32 algorithm.online_filtering=false \
  sft.epochs=4 trainer.max_steps=3 trainer.val_freq=3 trainer.save_freq=3 \
  trainer.save_checkpoint_path="$out/train" >"$out/train.log" 2>&1
train_rc=$?
tail -n 15 "$out/train.log" >&2
train_summary=$(cat "$out/train/summary.json" 2>/dev/null | tr -d '\n')
[ -n "$train_summary" ] || train_summary=null

result_gs=$(cd "$bundle" && MEDIX_CUDA_SAMPLER=gpu timeout 120 "$node" dist/js/cuda-model-check.mjs \
  2>"$out/cuda_model_check_gpu_sampler.log" | tail -n 1)
rc_gs=$?
[ -n "$result_gs" ] || result_gs='{"cuda_model_check":"error","error":"no output (see cuda_model_check_gpu_sampler.log)"}'

echo "{\"gpu\":\"$gpu\",\"commit\":\"$(cat "$bundle/commit.txt")\",\"date\":\"$(date -u +%FT%TZ)\",\"result\":$result," \
  "\"train_rc\":$train_rc,\"train_summary\":$train_summary,\"gpu_sampler_result\":$result_gs}" |
  tee "$out/cuda_model_check.json"
[ "$rc" -eq 0 ] && [ "$train_rc" -eq 0 ] && [ "$rc_gs" -eq 0 ]
