// Whether a model can be trained on this machine at all, decided from its config before any weight is
// read: one CPU process keeps float32 weights, gradients and both AdamW moments, 16 bytes per parameter,
// before any activation; several processes, full sharding and GPUs change what the host holds
// (hostTrainingNeed). A model that needs more than the machine's memory (e.g. the 30B-A3B policy on a CPU
// host) is refused with the numbers instead of failing hours into loading.
import os from 'node:os';

import type { Device } from '../config/schema.js';
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

/** How a run places its processes: the trainer's world and worker.actor's device and fsdp keys. */
export interface TrainingPlacement {
  device: Device;
  /** Processes in the run, and on this machine. */
  ranks: number;
  localRanks: number;
  /** worker.actor.fsdp.enable_full_shard */
  fullShard: boolean;
}
const ONE_PROCESS: TrainingPlacement = { device: 'cpu', ranks: 1, localRanks: 1, fullShard: false };

/**
 * Host memory this machine needs to train `c` as placed, before activations, and what it is made of.
 * On a GPU the training state lives on the devices, but every process reads the weights whole into host
 * memory before its GPU takes them or its shard (4 bytes a parameter, each local process). On the CPU a
 * process keeps 16 bytes a parameter alone; data parallel (ZeRO-1) whole weights and gradients and 1/N of
 * the moments; fully sharded its load, the whole weights and the host copy its shards are cut from (8 bytes
 * a parameter, more than 1/N of the state from two ranks on): every rank reads the weights whole before
 * keeping its slices (EasyR1's enable_rank0_init is not implemented), so on one machine sharding lowers the
 * steady state but not the peak; across machines it lowers both.
 */
export function hostTrainingNeed(c: Qwen3Config, p: TrainingPlacement): { bytes: number; what: string } {
  const P = parameterCount(c);
  const each = p.localRanks > 1 ? `, for each of this machine's ${p.localRanks} processes` : '';
  if (p.device === 'cuda')
    return { bytes: 4 * P * p.localRanks, what: `float32 weights read whole before they go to the GPU${each}` };
  if (p.ranks === 1)
    return {
      bytes: 16 * P,
      what: 'float32 weights, gradients and AdamW moments, 16 bytes per parameter, before activations',
    };
  if (!p.fullShard)
    return {
      bytes: (8 * P + (8 * P) / p.ranks) * p.localRanks,
      what: `float32 weights and gradients, and 1/${p.ranks} of the AdamW moments${each}`,
    };
  // From two ranks on, the load (8 bytes a parameter) needs more than the sharded state (16 / N).
  return {
    bytes: 8 * P * p.localRanks,
    what: `float32 weights read whole and the copy each rank's shards are cut from, while loading${each}`,
  };
}

/**
 * Throws, naming `source`, when what this machine needs to train `c` as placed (hostTrainingNeed; one CPU
 * process by default) exceeds `totalBytes` (default: this machine's memory).
 */
export function assertTrainingFits(
  c: Qwen3Config,
  source: string,
  totalBytes = os.totalmem(),
  placement: TrainingPlacement = ONE_PROCESS,
): void {
  const need = hostTrainingNeed(c, placement);
  if (need.bytes <= totalBytes) return;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  throw new Error(
    `${source}: this model has ${(parameterCount(c) / 1e9).toFixed(2)}B parameters; training it needs at least ` +
      `${gb(need.bytes)} (${need.what}), but this machine has ${gb(totalBytes)}`,
  );
}
