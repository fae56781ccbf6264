// The optimisation half of an RL step, as EasyR1's actor does it: log-probs of the behaviour and
// reference policies, then PPO epochs over mini-batches, each one optimizer step accumulated from
// micro-batches. Micro-batches are normalised by the whole mini-batch's token (or sequence) count,
// so their gradients add up to exactly the mini-batch's gradient whatever the micro-batch size.
// With a world of several processes each rank takes its share of every mini-batch (World.share):
// the ranks' gradients then add up to the mini-batch's, which the data-parallel model's optimizer
// step sums (Model.setDataParallel), and the metrics are summed across the ranks.
import type { Model } from '../engine/model.js';
import type { AdamW } from '../engine/optimizer.js';
import type { World } from '../engine/world.js';
import { bytesOf } from '../model/safetensors-writer.js';
import type { AggOptions } from '../rl/aggregation.js';
import { type PolicyLossMetrics, type PolicyLossOptions, policyLoss } from '../rl/policy-loss.js';
import { sftLoss } from '../rl/sft-loss.js';
import { splitIntoBatches } from '../rl/batching.js';
import { gatherResponse, packExperience, ropeIndexOptionsOf, scatterResponse, type Experience } from './experience.js';
import { RoutingTally } from './moe-stats.js';
import { emptyPass, microBatches } from './micro-batches.js';
import { isFullShard } from '../engine/full-shard.js';

/** Consecutive batches of at most `size` experiences (src/rl's splitter, on the items themselves). */
function chunks(items: readonly Experience[], size: number): Experience[][] {
  return splitIntoBatches(items.length, size).map((idx) => idx.map((i) => items[i]));
}

/**
 * Log-probs of every sample's response tokens under `model`, micro-batch by micro-batch. With a
 * world of several processes each rank computes its share of the samples, and every rank receives all.
 */
export async function computeLogprobs(
  model: Model,
  exps: readonly Experience[],
  microBatch: number,
  temperature = 1,
  world?: World,
): Promise<Float32Array[]> {
  const mine = world ? world.share(exps) : exps;
  const out: Float32Array[] = [];
  const vision = ropeIndexOptionsOf(model.config);
  for (const part of microBatches(model, mine, microBatch, exps.length, world)) {
    if (!part) {
      await emptyPass(model, false);
      continue;
    }
    const packed = packExperience(part, vision);
    const { logp } = await model.forward(packed.batch, { temperature });
    out.push(...gatherResponse(packed, part, logp));
  }
  if (!world || world.size === 1) return out;
  // Each rank sends its share back to back; the lengths are known everywhere from the samples.
  const flat = new Float32Array(out.reduce((n, x) => n + x.length, 0));
  let offset = 0;
  for (const x of out) {
    flat.set(x, offset);
    offset += x.length;
  }
  const all = await world.allgather(bytesOf(flat));
  const result = new Array<Float32Array>(exps.length);
  all.forEach((bytes, rank) => {
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    let at = 0;
    for (let i = rank; i < exps.length; i += world.size) {
      result[i] = values.slice(at, at + exps[i].responseIds.length);
      at += exps[i].responseIds.length;
    }
  });
  return result;
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
  /** Share every mini-batch between this world's ranks (the model must be data parallel or fully sharded over it). */
  world?: World;
}

export interface UpdateMetrics extends Omit<PolicyLossMetrics, 'tokens'> {
  loss: number;
  grad_norm: number;
  lr: number;
  optimizer_steps: number;
  skipped_steps: number;
  /** Mixture-of-experts models: the load-balancing loss and each sparse layer's expert load (moe-stats.ts). */
  [moe: `moe_${string}`]: number | number[];
}

type MicroLoss = (
  logp: Float32Array,
  entropy: Float32Array | undefined,
  part: Experience[],
  packed: ReturnType<typeof packExperience>,
  norm: AggOptions,
) => { loss: number; dlogp: Float32Array; dentropy?: Float32Array; metrics?: PolicyLossMetrics };

async function runUpdate(
  model: Model,
  opt: AdamW,
  exps: readonly Experience[],
  o: UpdateOptions,
  agg: AggOptions,
  wantEntropy: boolean,
  micro: MicroLoss,
): Promise<UpdateMetrics> {
  const sums = {
    loss: 0,
    pg_loss: 0,
    kl_loss: 0,
    entropy: 0,
    pg_clipfrac_higher: 0,
    pg_clipfrac_lower: 0,
    ppo_kl: 0,
    grad_norm: 0,
    tokens: 0,
    lr: 0,
  };
  let steps = 0;
  let skipped = 0;
  let miniBatches = 0;
  const world = o.world;
  const routing = new RoutingTally(model);
  const vision = ropeIndexOptionsOf(model.config);
  if (world && !isFullShard(model) && model.optimizerShard().size !== world.size)
    throw new Error(
      `update: the model is neither data parallel nor fully sharded over the world's ${world.size} processes (call model.setDataParallel() or fullShard() first)`,
    );
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (const mini of chunks(exps, o.miniBatch)) {
      const miniTokens = mini.reduce((n, e) => n + e.responseIds.length, 0);
      const norm: AggOptions = { ...agg, globalTokens: Math.max(miniTokens, 1), globalSeqs: mini.length };
      model.zeroGrad();
      for (const part of microBatches(model, world ? world.share(mini) : mini, o.microBatch, mini.length, world)) {
        if (!part) {
          await emptyPass(model, true);
          continue;
        }
        const packed = packExperience(part, vision);
        const fwd = await model.forward(packed.batch, {
          training: true,
          temperature: o.temperature,
          entropy: wantEntropy,
        });
        const r = micro(fwd.logp, fwd.entropy, part, packed, norm);
        const aux = routing.afterForward(mini.length, packed.batch.tokens.length);
        await model.backward({ dlogp: r.dlogp, dentropy: r.dentropy });
        sums.loss += r.loss + aux;
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
  if (world && world.size > 1) {
    // Every rank saw its share: the sums over the ranks are the whole batch's.
    const keys = [
      'loss',
      'pg_loss',
      'kl_loss',
      'entropy',
      'pg_clipfrac_higher',
      'pg_clipfrac_lower',
      'ppo_kl',
      'tokens',
    ] as const;
    const total = await world.allreduceSum(keys.map((k) => sums[k]));
    keys.forEach((k, i) => (sums[k] = total[i]));
  }
  const moe = await routing.metrics(world);
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
    ...moe,
  };
}

/** PPO-family policy update (ppo / gspo / cispo, KL loss, entropy bonus) over the experience. */
export async function policyUpdate(
  model: Model,
  opt: AdamW,
  exps: readonly Experience[],
  o: UpdateOptions,
  loss: PolicyLossOptions,
): Promise<UpdateMetrics> {
  exps.forEach((e, i) => {
    if (!e.oldLogp) throw new Error(`experience ${i}: oldLogp is missing (run computeLogprobs first)`);
    if (!e.advantages) throw new Error(`experience ${i}: advantages are missing`);
    if (loss.kl && loss.kl !== 'none' && !e.refLogp)
      throw new Error(`experience ${i}: refLogp is missing but the loss has a KL term (${loss.kl})`);
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
export async function sftUpdate(
  model: Model,
  opt: AdamW,
  exps: readonly Experience[],
  o: UpdateOptions,
  agg: AggOptions = { agg: 'token-mean' },
): Promise<UpdateMetrics> {
  return runUpdate(model, opt, exps, o, agg, false, (logp, _entropy, _part, packed, norm) => {
    const r = sftLoss(logp, packed.mask, packed.batch.cuSeqlens, { ...agg, ...norm });
    return { loss: r.loss, dlogp: r.dlogp };
  });
}
