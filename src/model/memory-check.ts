// Whether a model can be trained by this process at all, decided from its config before any weight
// is read: the engine keeps float32 weights, gradients and both AdamW moments, 16 bytes per
// parameter, before any activation. A model that needs more than the machine's memory (e.g. the
// 30B-A3B policy on a CPU host) is refused with the numbers instead of failing hours into loading.
import os from 'node:os';

import { isSparseLayer, type Qwen3Config } from '../engine/model.js';
import { visionParameters } from '../engine/vision.js';

/** Parameters of the engine's model for `c` (the same count as Model.numParameters). */
export function parameterCount(c: Qwen3Config): number {
  const q = c.numHeads * c.headDim,
    kv = c.numKvHeads * c.headDim,
    H = c.hiddenSize;
  const attention = H * q + 2 * H * kv + q * H + 2 * c.headDim + 2 * H;
  let layers = 0;
  for (let l = 0; l < c.numLayers; l++)
    layers +=
      attention +
      (isSparseLayer(c, l) ? c.numExperts! * H * (1 + 3 * c.moeIntermediateSize!) : 3 * H * c.intermediateSize);
  const vision = c.vision ? visionParameters(c.vision).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0) : 0;
  return c.vocabSize * H * (c.tieEmbeddings ? 1 : 2) + layers + H + vision;
}

/** Bytes of weights, gradients and AdamW moments in float32. */
export function trainingStateBytes(c: Qwen3Config): number {
  return 16 * parameterCount(c);
}

/** Throws, naming `source`, when the training state alone exceeds `totalBytes` (default: this machine's memory). */
export function assertTrainingFits(c: Qwen3Config, source: string, totalBytes = os.totalmem()): void {
  const need = trainingStateBytes(c);
  if (need <= totalBytes) return;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  throw new Error(
    `${source}: this model has ${(parameterCount(c) / 1e9).toFixed(2)}B parameters; training it needs at least ${gb(need)} ` +
      `(float32 weights, gradients and AdamW moments, 16 bytes per parameter, before activations), but this machine has ${gb(totalBytes)}`,
  );
}
