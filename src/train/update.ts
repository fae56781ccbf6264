// The optimisation half of an RL step, as EasyR1's actor does it: log-probs of the behaviour and
// reference policies, then PPO epochs over mini-batches, each one optimizer step accumulated from
// micro-batches. Micro-batches are normalised by the whole mini-batch's token (or sequence) count,
// so their gradients add up to exactly the mini-batch's gradient whatever the micro-batch size.
import type { Model } from '../engine/model.js';
import type { AdamW } from '../engine/optimizer.js';
import { policyLoss, sftLoss, type PolicyLossOptions, type PolicyLossMetrics, type AggOptions } from '../engine/losses.js';
import { splitIntoBatches } from '../rl/batching.js';
import { gatherResponse, packExperience, scatterResponse, type Experience } from './experience.js';

/** Consecutive batches of at most `size` experiences (src/rl's splitter, on the items themselves). */
function chunks(items: readonly Experience[], size: number): Experience[][] {
  return splitIntoBatches(items.length, size).map((idx) => idx.map((i) => items[i]));
}

/** Log-probs of every sample's response tokens under `model`, micro-batch by micro-batch. */
export async function computeLogprobs(model: Model, exps: readonly Experience[], microBatch: number, temperature = 1): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const part of chunks(exps, microBatch)) {
    const packed = packExperience(part);
    const { logp } = await model.forward(packed.batch, { temperature });
    out.push(...gatherResponse(packed, part, logp));
  }
  return out;
}

export interface UpdateOptions {
  /** Samples per optimizer step. */
  miniBatch: number;
  /** Samples per forward/backward (gradient accumulation inside a mini-batch). */
  microBatch: number;
  /** Passes over the experience (EasyR1 ppo_epochs). */
  epochs: number;
  temperature: number;
  /** Learning rate of each optimizer step, by the optimizer's step count (schedules). */
  lr: (step: number) => number;
}

export interface UpdateMetrics extends Omit<PolicyLossMetrics, 'tokens'> {
  loss: number;
  grad_norm: number;
  lr: number;
  optimizer_steps: number;
  skipped_steps: number;
}

type MicroLoss = (
  logp: Float32Array,
  entropy: Float32Array | undefined,
  part: Experience[],
  packed: ReturnType<typeof packExperience>,
  norm: AggOptions,
) => { loss: number; dlogp: Float32Array; dentropy?: Float32Array; metrics?: PolicyLossMetrics };

async function runUpdate(model: Model, opt: AdamW, exps: readonly Experience[], o: UpdateOptions, agg: AggOptions, wantEntropy: boolean, micro: MicroLoss): Promise<UpdateMetrics> {
  const sums = { loss: 0, pg_loss: 0, kl_loss: 0, entropy: 0, pg_clipfrac_higher: 0, pg_clipfrac_lower: 0, ppo_kl: 0, grad_norm: 0, tokens: 0, lr: 0 };
  let steps = 0;
  let skipped = 0;
  let miniBatches = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (const mini of chunks(exps, o.miniBatch)) {
      const miniTokens = mini.reduce((n, e) => n + e.responseIds.length, 0);
      const norm: AggOptions = { ...agg, globalTokens: Math.max(miniTokens, 1), globalSeqs: mini.length };
      model.zeroGrad();
      for (const part of chunks(mini, o.microBatch)) {
        const packed = packExperience(part);
        const fwd = await model.forward(packed.batch, { training: true, temperature: o.temperature, entropy: wantEntropy });
        const r = micro(fwd.logp, fwd.entropy, part, packed, norm);
        await model.backward({ dlogp: r.dlogp, dentropy: r.dentropy });
        sums.loss += r.loss;
        if (r.metrics) {
          // Loss terms are globally normalised (they add up); diagnostics are token-weighted means.
          const m = r.metrics;
          sums.pg_loss += m.pg_loss;
          sums.kl_loss += m.kl_loss;
          sums.entropy += m.entropy;
          sums.pg_clipfrac_higher += m.pg_clipfrac_higher * m.tokens;
          sums.pg_clipfrac_lower += m.pg_clipfrac_lower * m.tokens;
          sums.ppo_kl += m.ppo_kl * m.tokens;
          sums.tokens += m.tokens;
        }
      }
      const lr = o.lr(steps);
      const step = await opt.step(lr);
      miniBatches++;
      if (step.skipped) skipped++;
      else sums.grad_norm += step.gradNorm;
      sums.lr = lr;
      steps++;
    }
  }
  const perMini = (x: number) => (miniBatches ? x / miniBatches : 0);
  const perToken = (x: number) => (sums.tokens ? x / sums.tokens : 0);
  return {
    loss: perMini(sums.loss),
    pg_loss: perMini(sums.pg_loss),
    kl_loss: perMini(sums.kl_loss),
    entropy: perMini(sums.entropy),
    pg_clipfrac_higher: perToken(sums.pg_clipfrac_higher),
    pg_clipfrac_lower: perToken(sums.pg_clipfrac_lower),
    ppo_kl: perToken(sums.ppo_kl),
    grad_norm: steps - skipped ? sums.grad_norm / (steps - skipped) : NaN,
    lr: sums.lr,
    optimizer_steps: steps - skipped,
    skipped_steps: skipped,
  };
}

/** PPO-family policy update (ppo / gspo / cispo, KL loss, entropy bonus) over the experience. */
export async function policyUpdate(model: Model, opt: AdamW, exps: readonly Experience[], o: UpdateOptions, loss: PolicyLossOptions): Promise<UpdateMetrics> {
  exps.forEach((e, i) => {
    if (!e.oldLogp) throw new Error(`experience ${i}: oldLogp is missing (run computeLogprobs first)`);
    if (!e.advantages) throw new Error(`experience ${i}: advantages are missing`);
    if (loss.kl && loss.kl !== 'none' && !e.refLogp) throw new Error(`experience ${i}: refLogp is missing but the loss has a KL term (${loss.kl})`);
  });
  const wantEntropy = true; // reported as a metric even without a bonus, as veRL does
  return runUpdate(model, opt, exps, o, loss, wantEntropy, (logp, entropy, part, packed, norm) => {
    const r = policyLoss(
      {
        logp,
        oldLogp: scatterResponse(packed, part, (e) => e.oldLogp!),
        refLogp: loss.kl && loss.kl !== 'none' ? scatterResponse(packed, part, (e) => e.refLogp!) : undefined,
        advantages: scatterResponse(packed, part, (e) => e.advantages!),
        mask: packed.mask,
        entropy,
        cuSeqlens: packed.batch.cuSeqlens,
      },
      { ...loss, ...norm },
    );
    // Without a bonus the entropy is only a metric: no gradient flows back through it.
    return { loss: r.loss, dlogp: r.dlogp, dentropy: loss.entropyCoef ? r.dentropy : undefined, metrics: r.metrics };
  });
}

/** Supervised update (SFT warm-up): masked cross-entropy of the responses given the prompts. */
export async function sftUpdate(model: Model, opt: AdamW, exps: readonly Experience[], o: UpdateOptions, agg: AggOptions = { agg: 'token-mean' }): Promise<UpdateMetrics> {
  return runUpdate(model, opt, exps, o, agg, false, (logp, _entropy, _part, packed, norm) => {
    const r = sftLoss(logp, packed.mask, packed.batch.cuSeqlens, { ...agg, ...norm });
    return { loss: r.loss, dlogp: r.dlogp };
  });
}
