// Full sharding (FSDP full shard) of a model over this process's world (native/model/qwen3_fsdp.cc):
// each rank keeps a 1/size shard of every unit's master weights, gradients and AdamW moments;
// forward and backward all-gather each unit (the embedding, a decoder layer, the final norm, the
// head, the vision tower's blocks) just before it computes and give it back after. Every rank must
// then call forward, backward, optimizer steps and gatherWeights together.
import { native } from './native.js';
import { type Model, nativeModelHandle } from './model.js';

/** One rank's memory under full sharding, in bytes. */
export interface FullShardMemory {
  /** This rank's shards: master weights and gradients, and both moments once the first step made them. */
  sliceBytes: number;
  /** Whole units in place now (weights and gradients, in whole granules: pages on the host, 2 MiB on a GPU). */
  gatheredBytes: number;
  /** The most in place at once since probing started (0 without probing). */
  peakGatheredBytes: number;
  /** Weights, gradients and both moments of the whole model in one process. */
  wholeStateBytes: number;
  /** The weights and gradients of the largest unit. */
  largestUnitBytes: number;
  /** All-gathered into this rank / reduce-scattered from it since probing started (whole padded units). */
  allgatherBytes: number;
  reduceScatterBytes: number;
}

interface FullShardAddon {
  fullShard(model: unknown): void;
  isFullShard(model: unknown): boolean;
  gatherWeights(model: unknown): Promise<void>;
  releaseWeights(model: unknown): void;
  probeFullShardMemory(model: unknown, on: boolean): void;
  fullShardMemory(model: unknown): FullShardMemory;
  fullShardSlices(model: unknown): FullShardSlices;
}

/** One part of a tensor that this rank's shards hold: floats [from, from + count) of tensor `name`. */
export interface OwnedPart {
  name: string;
  from: number;
  count: number;
  /** Where the part starts in this rank's slice buffers (master weights, and both moments). */
  at: number;
}

/** This rank's master weights under full sharding, and which tensor parts they hold. */
export interface FullShardSlices {
  parts: OwnedPart[];
  weights: Float32Array;
}

const addon = () => native<FullShardAddon>();

/**
 * Shards `model` over this process's world (a world of one keeps one shard of everything). Call
 * on whole weights (created or loaded, the same on every rank) before the first optimizer step.
 */
export function fullShard(model: Model): void {
  addon().fullShard(nativeModelHandle(model));
}

export function isFullShard(model: Model): boolean {
  return addon().isFullShard(nativeModelHandle(model));
}

/**
 * Runs `use` with the whole weights in place (rollouts, reading parameters), gathered once and given
 * back after, also when `use` throws. A model that is not fully sharded just runs `use`.
 */
export async function withWholeWeights<T>(model: Model, use: () => Promise<T> | T): Promise<T> {
  if (!isFullShard(model)) return use();
  await addon().gatherWeights(nativeModelHandle(model));
  try {
    return await use();
  } finally {
    addon().releaseWeights(nativeModelHandle(model));
  }
}

/** This rank's slice of the master weights and the parts of tensors it holds (checkpoints). */
export function fullShardSlices(model: Model): FullShardSlices {
  return addon().fullShardSlices(nativeModelHandle(model));
}

/** Starts (or stops) measuring the peak of gathered memory and the traffic, from zero. */
export function probeFullShardMemory(model: Model, on = true): void {
  addon().probeFullShardMemory(nativeModelHandle(model), on);
}

export function fullShardMemory(model: Model): FullShardMemory {
  return addon().fullShardMemory(nativeModelHandle(model));
}
