// The engine end to end on the CPU: a tiny Qwen3-shaped decoder learns a sentence by heart with
// the SFT loss (masked token cross-entropy through the fused log-prob head) and AdamW.
//   npm run demo
import { AdamW } from '../src/engine/optimizer.js';
import { Model, packSequences } from '../src/engine/model.js';
import { sftLoss } from '../src/rl/sft-loss.js';

const text = 'Pneumonia: consolidation on chest X-ray. Pneumothorax: absent lung markings.';
// Byte-level tokens: enough for a demo without a tokenizer.
const tokens = Array.from(Buffer.from(text, 'utf8'));
const model = Model.create(
  {
    vocabSize: 256,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    ropeTheta: 10000,
    rmsEps: 1e-6,
    tieEmbeddings: true,
  },
  { seed: 0 },
);
const batch = packSequences([tokens]);
const mask = Float32Array.from(batch.targets, (t) => (t >= 0 ? 1 : 0));
const optimizer = new AdamW(model, { lr: 3e-3, weightDecay: 0, maxGradNorm: 1 });

for (let step = 1; step <= 150; step++) {
  const { logp } = await model.forward(batch, { training: true });
  const { loss, dlogp } = sftLoss(logp, mask, batch.cuSeqlens, { agg: 'token-mean' });
  model.zeroGrad();
  await model.backward({ dlogp });
  const { gradNorm } = await optimizer.step();
  if (step % 10 === 0 || step === 1)
    console.log(`step ${String(step).padStart(3)}  loss ${loss.toFixed(4)}  grad-norm ${gradNorm.toFixed(3)}`);
}
