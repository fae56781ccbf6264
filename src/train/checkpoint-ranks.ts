// What the two multi-process checkpoint layouts (per-tensor optimizer shards, full-shard slices)
// share: the per-rank file names, the moment tensors of a part of a parameter, and the root's
// closing step (model metadata, every rank's checksums, trainer_state.json, the rename into place),
// whose result every rank receives.
import { join } from 'node:path';
import type { Model, OptimizerState } from '../engine/model.js';
import type { World } from '../engine/world.js';
import { writeModelMetadata } from '../model/save.js';
import { bytesOf, type TensorSource } from '../model/safetensors-writer.js';
import {
  commitCheckpoint,
  momentNames,
  STATE_FILE,
  type CheckpointOptions,
  type ShardManifest,
  type TrainerState,
} from './checkpoint.js';
import { checksumFiles, type FileChecksums } from './file-checksums.js';

/** `folder/rank-0000R-of-0000W.safetensors`, ranks counted from 1. */
export const rankFileName = (folder: string, rank: number, size: number) =>
  `${folder}/rank-${String(rank + 1).padStart(5, '0')}-of-${String(size).padStart(5, '0')}.safetensors`;

/** Both AdamW moments of `count` values of `param` from offset `from` of the flat moments, as `shape`. */
export function momentSources(
  param: string,
  shape: readonly number[],
  opt: OptimizerState,
  from: number,
  count: number,
): TensorSource[] {
  const part = (x: Float32Array) => () => bytesOf(x.subarray(from, from + count));
  const names = momentNames(param);
  return [
    { name: names.m, dtype: 'F32', shape: [...shape], bytes: part(opt.m) },
    { name: names.v, dtype: 'F32', shape: [...shape], bytes: part(opt.v) },
  ];
}

/**
 * The root writes model/'s metadata (and what `writeRoot` adds, e.g. a weight index), the state file
 * with the checksums of every rank's files (`record.files`) and the manifest `record.shards`, and renames `tmp`
 * into place; resolves on every rank with the checkpoint's directory.
 */
export async function commitAcrossRanks(
  world: World,
  runDir: string,
  tmp: string,
  model: Model,
  state: TrainerState,
  options: CheckpointOptions,
  record: { optimizerStep: number; files: FileChecksums; shards: ShardManifest },
  writeRoot: (modelDir: string) => void = () => {},
): Promise<string> {
  let final = '';
  if (world.isRoot) {
    const modelDir = join(tmp, 'model');
    writeModelMetadata(model, modelDir, {
      dtype: 'f32',
      config: options.modelConfig,
      generationConfig: options.generationConfig,
      tokenizerDir: options.tokenizerDir,
    });
    writeRoot(modelDir);
    final = commitCheckpoint(
      runDir,
      tmp,
      {
        format: 'medix-checkpoint-1',
        trainer: state,
        optimizerStep: record.optimizerStep,
        files: checksumFiles(tmp, STATE_FILE, record.files),
        shards: record.shards,
      },
      options.keep ?? 0,
    );
  }
  return world.broadcastJson(final);
}
