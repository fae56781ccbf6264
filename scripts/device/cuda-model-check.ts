// The JS path of `device: cuda` on a GPU machine (no Node there: scripts/device/pack-js-bundle.sh
// bundles this file with a Node binary and a CUDA build of the addon). Tiny dense, MoE and Qwen3-VL
// models (the VL one with two images in training and one in the generated prompt), each twice with the
// same seed, one per device: three training steps (forward with entropy, backward, clipped AdamW),
// then greedy and sampled generation, each compared with the CPU model (the VL one also fully sharded
// in a world of one, two steps); and the sampler and the MoE
// load-balancing loss and the vision tower alone. The tolerances are for fp32
// CUDA kernels against the fp32 CPU reference, whose sums run in another order. Prints one JSON line;
// exits 1 when a comparison fails. MEDIX_CHECK_DEVICE=cpu runs the second model on the CPU too: the
// script's own check where there is no GPU (every difference is then 0).
import { fullShard, withWholeWeights } from '../../src/engine/full-shard.js';
import { createGenerationEngine } from '../../src/generate/engine.js';
import { sampleLogits } from '../../src/generate/native-generator.js';
import type { GenerationResult } from '../../src/generate/types.js';
import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { moeAuxLoss } from '../../src/engine/moe.js';
import { visionParameters, visionTowerBackward, visionTowerForward } from '../../src/engine/vision.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import type { ProcessedImage } from '../../src/model/vision/image-processor.js';
import { expandImagePads } from '../../src/tokenizer/image-pads.js';
import { packExperience, ropeIndexOptionsOf } from '../../src/train/experience.js';

const device = process.env.MEDIX_CHECK_DEVICE === 'cpu' ? 'cpu' : 'cuda';
const LOGP_TOL = 1e-4; // absolute, per token log-prob
const GRAD_TOL = 1e-3; // max |cuda - cpu| over max |cpu|, per tensor
const WEIGHT_TOL = 1e-5; // absolute, after the steps (lr 1e-3)

interface Check {
  name: string;
  value: number;
  limit: number;
  pass: boolean;
}

/** A smooth pixel pattern for an h x w patch grid (one frame, 3 x 2 x 16 x 16 values per patch). */
const image = (h: number, w: number, phase: number): ProcessedImage => ({
  grid: [1, h, w],
  pixels: Float32Array.from({ length: h * w * 1536 }, (_, i) => Math.sin(0.37 * i + phase)),
});

/**
 * The model's config: vocab 1024, head_dim 32 in text and vision, where the GPU attention's lanes are all
 * busy (the presets' 16 leaves half idle: its own conformance case checks that, so a fault there does not
 * hide these checks).
 */
function checkConfig(preset: 'tiny' | 'tiny-moe' | 'tiny-vl', vocab: number): Qwen3Config {
  const base = { ...structuredClone(MODEL_PRESETS[preset]), vocabSize: vocab, headDim: 32 } as Qwen3Config;
  if (preset !== 'tiny-vl') return base;
  const vision = { ...base.vision!, hiddenSize: 64 };
  return { ...base, mropeSection: [8, 4, 4], imageTokenId: vocab - 1, vision };
}

const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const scale = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-30);

async function main(): Promise<void> {
  const checks: Check[] = [];
  const record = (name: string, value: number, limit: number) =>
    checks.push({ name, value, limit, pass: Number.isFinite(value) && value <= limit });
  const vocab = 1024;
  for (const preset of ['tiny', 'tiny-moe', 'tiny-vl'] as const) {
    const config = checkConfig(preset, vocab);
    const cpu = Model.create(config, { seed: 11 });
    const gpu = Model.create(config, { seed: 11, device });
    const seqs = [
      Array.from({ length: 9 }, (_, i) => (i * 37 + 5) % (vocab - 1)),
      Array.from({ length: 14 }, (_, i) => (i * 91 + 3) % (vocab - 1)),
    ];
    // Qwen3-VL: a 4 x 4 patch image (4 tokens) after the first token of the first sequence, a 2 x 4 one
    // (2) in the second; every later token is a response token, so the whole tower gets gradients.
    const images = [[image(4, 4, 0)], [image(2, 4, 1)]];
    const pads = (k: number) => [(images[k][0].grid[1] * images[k][0].grid[2]) / 4];
    const withImages = (ids: number[], k: number) => expandImagePads([ids[0], vocab - 1, ids[1]], vocab - 1, pads(k));
    const vision = ropeIndexOptionsOf(config);
    const batch = vision
      ? packExperience(
          seqs.map((ids, k) => ({ promptIds: withImages(ids, k), images: images[k], responseIds: ids.slice(2) })),
          vision,
        ).batch
      : packSequences(seqs);
    if (vision) seqs[1] = [...withImages(seqs[1], 1), ...seqs[1].slice(2)];
    for (let step = 0; step < 3; step++) {
      const results = [];
      for (const m of [cpu, gpu]) {
        m.zeroGrad();
        const f = await m.forward(batch, { training: true, entropy: true });
        const dlogp = new Float32Array(f.logp.length).fill(-1 / f.logp.length);
        await m.backward({ dlogp, dentropy: new Float32Array(f.logp.length).fill(0.01) });
        results.push(f);
      }
      record(`${preset} step ${step} logp`, maxAbs(results[0].logp, results[1].logp), LOGP_TOL);
      record(`${preset} step ${step} entropy`, maxAbs(results[0].entropy!, results[1].entropy!), LOGP_TOL);
      let worst = 0;
      for (const p of cpu.parameters()) {
        const g = cpu.getGradient(p.name);
        worst = Math.max(worst, maxAbs(g, gpu.getGradient(p.name)) / scale(g));
      }
      record(`${preset} step ${step} gradients (relative)`, worst, GRAD_TOL);
      const opt = { lr: 1e-3, maxGradNorm: 1 };
      const [a, b] = [await cpu.optimizerStep(opt), await gpu.optimizerStep(opt)];
      record(`${preset} step ${step} grad norm (relative)`, Math.abs(a.gradNorm - b.gradNorm) / a.gradNorm, GRAD_TOL);
    }
    let weights = 0;
    for (const p of cpu.parameters())
      weights = Math.max(weights, maxAbs(cpu.getParameter(p.name), gpu.getParameter(p.name)));
    record(`${preset} weights after 3 steps`, weights, WEIGHT_TOL);
    // Generation: the CUDA model samples from host copies of its logits with the CPU sampler.
    const params = { n: 2, maxNewTokens: 24, temperature: 0, seed: 5, ignoreEos: true };
    const prompt = { promptIds: seqs[1], images: vision ? images[1] : undefined, params };
    const outs: GenerationResult[] = [];
    for (const m of [cpu, gpu]) {
      const engine = createGenerationEngine(m, { eosTokenIds: [] });
      outs.push(await engine.generate(prompt));
      await engine.close();
    }
    const same = outs[0].samples.every((s, i) => s.tokenIds.join() === outs[1].samples[i].tokenIds.join());
    record(`${preset} greedy generation tokens differ`, same ? 0 : 1, 0);
    if (preset === 'tiny-vl')
      record(`${preset} fully sharded: weights after 2 steps`, await shardedSteps(), WEIGHT_TOL);
    // Full sharding in a world of one process (on the device: NCCL over one rank, the layouts in CUDA virtual
    // memory, each unit gathered and reduce-scattered): the same two steps on the CPU and the device.
    async function shardedSteps(): Promise<number> {
      const flat: Float32Array[] = [];
      for (const m of [Model.create(config, { seed: 11 }), Model.create(config, { seed: 11, device })]) {
        fullShard(m);
        for (let step = 0; step < 2; step++) {
          m.zeroGrad();
          const f = await m.forward(batch, { training: true });
          await m.backward({ dlogp: new Float32Array(f.logp.length).fill(-1 / f.logp.length) });
          await m.optimizerStep({ lr: 1e-3, maxGradNorm: 1 });
        }
        flat.push(
          await withWholeWeights(m, () =>
            Float32Array.from(m.parameters().flatMap((p) => [...m.getParameter(p.name)])),
          ),
        );
      }
      return maxAbs(flat[0], flat[1]);
    }
  }
  // The sampler alone on the device (Backend::sample: host copies and the CPU sampler, or kernels/sampling.cu
  // under MEDIX_CUDA_SAMPLER=gpu): 64 rows of a 1,024 vocabulary under mixed filters, each row's tokens
  // and log-probs against the CPU's (the GPU sampler draws the CPU's tokens by construction).
  const rows = 64;
  const logits = Float32Array.from({ length: rows * vocab }, (_, i) => 4 * Math.sin(0.013 * i * i + 0.7 * i));
  const sampling = Array.from({ length: rows }, (_, r) => ({
    temperature: [0, 0.6, 1, 1.3][r % 4],
    topK: [0, 5, 50][r % 3],
    topP: [1, 0.9, 0.5][r % 3],
    minP: [0, 0.05][r % 2],
    repetitionPenalty: [1, 1.2][r % 2],
    seed: 7 + r,
    stream: r % 3,
    counter: r,
  }));
  const histories = Array.from({ length: rows }, (_, r) =>
    Int32Array.from({ length: r % 7 }, (_, j) => (r * 31 + j * 7) % vocab),
  );
  const [onCpu, onDevice] = (['cpu', device] as const).map((be) =>
    sampleLogits(logits, vocab, sampling, histories, be),
  );
  record('sampler tokens differ', onCpu.tokens.filter((x, i) => x !== onDevice.tokens[i]).length, 0);
  record('sampler log-probs', maxAbs(onCpu.logprobs, onDevice.logprobs), LOGP_TOL);
  // The load-balancing loss's routing and gradient on the device (3 layers of 200 tokens in 3 sequences,
  // 16 experts, top 4) against the CPU's.
  const aux = { tokens: 200, experts: 16, topK: 4, layers: 3 };
  const routerLogits = Float32Array.from({ length: 3 * 200 * 16 }, (_, i) => 2 * Math.sin(0.31 * i + 0.002 * i * i));
  const cu = Int32Array.from([0, 60, 130, 200]);
  const [auxCpu, auxDevice] = (['cpu', device] as const).map((backend) =>
    moeAuxLoss(routerLogits, cu, { ...aux, backend }),
  );
  record('moe aux loss', Math.max(...auxCpu.loss.map((x, i) => Math.abs(x - auxDevice.loss[i]))), 1e-6);
  record('moe aux dLogits (relative)', maxAbs(auxCpu.dLogits, auxDevice.dLogits) / scale(auxCpu.dLogits), GRAD_TOL);
  // The vision tower alone on the device (the tiny-vl preset's at head_dim 32, random weights, a 4 x 8 patch
  // image): its outputs and every parameter's gradient against the CPU's.
  const tower = checkConfig('tiny-vl', vocab).vision!;
  const towerParams = visionParameters(tower).map((p, i) =>
    Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, j) => 0.05 * Math.sin(0.7 * j + i)),
  );
  const img = image(4, 8, 2);
  const grids = Int32Array.from(img.grid);
  const towerOut = (['cpu', device] as const).map((backend) =>
    visionTowerForward(towerParams, img.pixels, grids, tower, { backend }),
  );
  record(
    'vision tower merged (relative)',
    maxAbs(towerOut[0].merged, towerOut[1].merged) / scale(towerOut[0].merged),
    GRAD_TOL,
  );
  const dMerged = towerOut[0].merged.map((_, i) => Math.cos(0.3 * i));
  const dDeep = towerOut[0].deepstack.map((d) => d.map((_, i) => Math.sin(0.2 * i)));
  const towerGrads = (['cpu', device] as const).map((backend) =>
    visionTowerBackward(towerParams, img.pixels, grids, tower, dMerged, dDeep, { backend }),
  );
  record(
    'vision tower gradients (relative)',
    Math.max(...towerGrads[0].map((g, i) => maxAbs(g, towerGrads[1][i]) / scale(g))),
    GRAD_TOL,
  );
  const failed = checks.filter((c) => !c.pass).length;
  console.log(JSON.stringify({ cuda_model_check: failed ? 'fail' : 'pass', device, failed, checks }));
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.log(JSON.stringify({ cuda_model_check: 'error', error: String((e as Error).stack ?? e) }));
  process.exitCode = 1;
});
