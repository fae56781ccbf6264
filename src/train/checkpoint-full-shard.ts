// Checkpoints of a fully sharded run (src/engine/full-shard.ts), written by all its processes
// together in the layout of data-parallel checkpoints (checkpoint-sharded.ts), so that loadModel,
// `medix merge` and the checksums treat them alike: model/ is a sharded Hugging Face directory (the
// weights are gathered whole once, as for rollouts, and rank R writes every N-th tensor). The
// moments stay as the ranks hold them: optimizer/rank-R-of-N.safetensors has one 1-D entry per part
// of a tensor that the rank's shards cover ("<name>.exp_avg@<from>", moment-parts.ts), and the
// state file says so (momentParts). Such a checkpoint loads into any number of processes, fully
// sharded (loadFullShardCheckpoint) or not (loadCheckpoint): each reads the parts it needs.
import { join } from 'node:path';
import { fullShard, fullShardParts, getFullShardMoments, setFullShardMoments, withWholeWeights } from '../engine/full-shard.js';
import type { Model } from '../engine/model.js';
import type { World } from '../engine/world.js';
import { loadModel } from '../model/load.js';
import { SAFETENSORS_METADATA, tensorSources, weightShardName } from '../model/save.js';
import { bytesOf, writeSafetensors, type TensorSource } from '../model/safetensors-writer.js';
import { momentNames, readStateFile, verifyCheckpoint, type CheckpointOptions, type TrainerState } from './checkpoint.js';
import { commitAcross, optimizerFileName, startShardedCheckpoint, type RankReport } from './checkpoint-sharded.js';
import { sha256File } from './file-checksums.js';
import { MomentParts, partKey } from './moment-parts.js';

/** This rank's moment parts, as written to its optimizer file. */
function momentSources(model: Model): TensorSource[] {
  const { m, v } = getFullShardMoments(model);
  const params = model.parameters();
  return fullShardParts(model).flatMap((p) => {
    const names = momentNames(params[p.tensor].name);
    const part = (x: Float32Array, key: string): TensorSource => ({ name: partKey(key, p.from), dtype: 'F32', shape: [p.count], bytes: () => bytesOf(x.subarray(p.at, p.at + p.count)) });
    return [part(m, names.m), part(v, names.v)];
  });
}

/**
 * Writes checkpoints/step_NNNNNN for `state.step` with every rank of `world` (each must call it with
 * its fully sharded model, at the same step). Resolves on every rank once the checkpoint is in place.
 */
export async function saveFullShardCheckpoint(world: World, runDir: string, model: Model, state: TrainerState, options: CheckpointOptions = {}): Promise<string> {
  const tmp = await world.broadcastJson(world.isRoot ? startShardedCheckpoint(runDir, state.step) : undefined);
  const optimizer = optimizerFileName(world.rank, world.size);
  writeSafetensors(join(tmp, optimizer), momentSources(model));
  const mine = world.share([...model.parameters()]);
  const report: RankReport = { rank: world.rank, parameters: mine.map((p) => p.name), files: {} };
  const { step } = getFullShardMoments(model);
  return withWholeWeights(model, () => {
    if (mine.length > 0) {
      const weights = `model/${weightShardName(world.rank, world.size)}`;
      writeSafetensors(join(tmp, weights), tensorSources(model, 'f32', mine), SAFETENSORS_METADATA);
      report.files[weights] = sha256File(join(tmp, weights));
    }
    report.files[optimizer] = sha256File(join(tmp, optimizer));
    return commitAcross(world, runDir, tmp, model, report, state, step, options, { momentParts: true });
  });
}

/**
 * Loads a checkpoint written by saveFullShardCheckpoint (with any number of ranks) into a model
 * fully sharded over this process's world, with this rank's share of the moments.
 */
export async function loadFullShardCheckpoint(dir: string, o: { verify?: boolean } = {}): Promise<{ model: Model; trainer: TrainerState }> {
  const state = o.verify === false ? readStateFile(dir) : verifyCheckpoint(dir);
  if (!state.momentParts || !state.shards)
    throw new Error(`${join(dir, 'trainer_state.json')}: not a checkpoint of a fully sharded run (load it with loadCheckpoint)`);
  const model = await loadModel(join(dir, 'model'));
  fullShard(model);
  const parts = MomentParts.open(dir, state.shards.ranks.flatMap((r) => r.files.filter((f) => f.startsWith('optimizer/'))));
  try {
    const { m, v } = getFullShardMoments(model); // zeros of the right length (no step yet)
    const params = model.parameters();
    for (const p of fullShardParts(model)) {
      const names = momentNames(params[p.tensor].name);
      parts.read(names.m, p.from, p.count, m, p.at);
      parts.read(names.v, p.from, p.count, v, p.at);
    }
    setFullShardMoments(model, { step: state.optimizerStep, m, v });
  } finally {
    parts.close();
  }
  return { model, trainer: state.trainer };
}
