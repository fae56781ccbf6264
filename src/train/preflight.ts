// `medix train CONFIG --check`: what a run would use, checked before any GPU hour is spent on it, and
// nothing written. Trainer.prepare does the checks a run does at its start (the model fits this machine, the
// tokenizer, the reward's embedding model and custom functions, every data split, the image processor, where a
// resume would start); then one probe pair goes through the judge (past its cache, so the endpoint itself is
// asked) and through the judge-free components, so a wrong URL, model name, key or ONNX file shows now, not
// at the first rollout. The weights are not loaded: their shapes come from config.json.
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { TrainingConfig } from '../config/index.js';
import { world } from '../engine/world.js';
import { hostTrainingNeed, parameterCount } from '../model/memory-check.js';
import { readHfConfig } from '../model/load.js';
import { Trainer, type TrainRunOptions } from './trainer.js';

/** A probe pair the judge has to be asked about: the same finding in other words, never an exact match. */
const PROBE = {
  response:
    '<X_RAY><thinking>An opacity fills the right lower lobe.</thinking><answer>right lower lobe pneumonia</answer>',
  groundTruth: '<X_RAY> pneumonia of the right lower lobe',
};

export interface PreflightResult {
  /** One line per finding, for the console. */
  lines: string[];
  /** False when something would stop or degrade the run (an unreachable judge). */
  ok: boolean;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export async function preflight(cfg: TrainingConfig, o: TrainRunOptions = {}): Promise<PreflightResult> {
  const p = await Trainer.prepare(cfg, o);
  const lines: string[] = [];
  let ok = true;
  try {
    const m = cfg.worker.actor.model;
    if (m.model_path) {
      const c = readHfConfig(p.path(m.model_path)).config;
      const vision = c.vision ? ', with a vision tower' : '';
      const experts = c.numExperts ? `, ${c.numExperts} experts` : '';
      const w = world();
      const need = hostTrainingNeed(c, {
        device: cfg.worker.actor.device,
        ranks: w.size,
        localRanks: w.localSize,
        fullShard: cfg.worker.actor.fsdp.enable_full_shard,
      });
      lines.push(
        `model: ${p.path(m.model_path)}: ${(parameterCount(c) / 1e9).toFixed(2)}B parameters${vision}${experts}; ` +
          `${gib(need.bytes)} of host memory (${need.what}), against this machine's ${gib(totalmem())} ` +
          `(device ${cfg.worker.actor.device}, compute ${m.dtype})`,
      );
    } else lines.push(`model: a new one from worker.actor.model.init (hidden ${m.init?.hidden_size})`);
    lines.push(`tokenizer: ${p.tokenizerDir} (${p.tokenizer.vocabSize} tokens)`);

    const perStep = cfg.data.rollout_batch_size;
    const perEpoch = Math.ceil(p.train.length / perStep);
    const steps = cfg.trainer.max_steps ?? cfg.trainer.total_epochs * perEpoch;
    lines.push(
      `data: ${p.train.length} training rows (${perEpoch} steps of ${perStep} prompts an epoch; ${steps} steps), ` +
        `${p.val.length} held-out rows${p.images ? " (the image processor's settings read; images decode at the first step)" : ''}`,
    );
    // As the run: a resume after the warm-up neither runs it nor reads sft.train_files again.
    if (p.from?.sftDone && cfg.sft.epochs > 0) lines.push('sft: the warm-up was done before the checkpoint');
    else if (cfg.sft.epochs > 0) {
      const sftRows = cfg.sft.train_files ? (await p.loadSplit('sft')).length : p.train.length;
      lines.push(
        `sft: ${cfg.sft.epochs} epochs over ${sftRows} rows${cfg.sft.train_files ? ' (sft.train_files)' : ''}`,
      );
    }

    const local = await p.reward.localScore(PROBE.response, PROBE.groundTruth);
    lines.push(
      local.embedFallback
        ? 'reward: no embedding model: accuracy_embed is the character-trigram fallback'
        : `reward: embedding model answered (probe similarity ${local.similarity?.toFixed(3)})`,
    );
    const judge = p.reward.judge;
    if (judge) {
      const j = cfg.worker.reward.judge!;
      // One probe for the run, from the root (the ranks share the endpoint), with the judge's own retries.
      const asked = await p.w.fromRoot(() =>
        judge.probe(local.answer, local.reference).then(
          (verdict) => ({ verdict, error: null as string | null }),
          (e: unknown) => ({ verdict: 0, error: (e as Error).message }),
        ),
      );
      if (asked.error === null)
        lines.push(
          `reward: judge ${j.model} at ${j.base_url} answered (probe verdict ${asked.verdict ? 'YES' : 'NO'})`,
        );
      else {
        ok = false;
        lines.push(`reward: judge ${j.model} at ${j.base_url} did not answer: ${asked.error}`);
      }
    } else lines.push('reward: no judge: accuracy_llm is the case- and spacing-insensitive match fallback');

    lines.push(
      p.from
        ? `resume: from ${p.from.dir} (step ${p.from.step})`
        : `run: ${p.runDir} (a fresh start${o.resume ? ': no checkpoint to resume from' : ''})`,
    );
    if (p.w.size > 1) lines.push(`processes: ${p.w.size} (this machine's ${availableParallelism()} cores shared)`);
    lines.push(
      `medix wrote nothing (custom reward functions ran on the probe); the run writes ${join(p.runDir, 'config.yaml')} ` +
        'and its logs when it starts',
    );
  } finally {
    await p.reward.close();
    await p.images?.close();
  }
  return { lines, ok };
}
