// Checkpoints of a fully sharded run (worker.actor.fsdp.enable_full_shard): no rank holds a whole
// tensor, so each writes what its shards hold, slices/rank-0000R-of-0000W.safetensors with one 1-D
// tensor per part of a parameter it holds (the weights under the parameter's name, the moments under
// momentNames), and trainer_state.json's shards manifest records each part's place in its tensor
// ("slices": name, from, count). model/ holds the config and tokenizer but no weights: the loaders
// (loadCheckpoint, `medix merge`) assemble the whole tensors from the parts, so such a checkpoint
// loads into any number of processes and either sharding mode. Written like every checkpoint under
// a temporary name and renamed into place when every rank's file is complete.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../config/schema.js';
import { fullShardSlices } from '../engine/full-shard.js';
import { Model } from '../engine/model.js';
import type { World } from '../engine/world.js';
import { readHfConfig } from '../model/load.js';
import { SafetensorsFile } from '../model/safetensors.js';
import { bytesOf, writeSafetensors, type TensorSource } from '../model/safetensors-writer.js';
import {
  CheckpointCorruptError,
  momentNames,
  startCheckpoint,
  STATE_FILE,
  type CheckpointOptions,
  type StateFile,
  type TrainerState,
} from './checkpoint.js';
import { commitAcrossRanks, momentSources, rankFileName } from './checkpoint-ranks.js';
import { sha256File } from './file-checksums.js';

/** Whether a checkpoint holds parts of tensors (a fully sharded run's) rather than whole ones. */
export const holdsSlices = (state: StateFile) => state.shards?.ranks.some((r) => r.slices) ?? false;

/**
 * Writes checkpoints/step_NNNNNN of a fully sharded `model` with every rank of `world` (all call
 * it at the same step); resolves on every rank with the checkpoint's directory once it is in place.
 */
export async function saveFullShardCheckpoint(
  world: World,
  runDir: string,
  model: Model,
  state: TrainerState,
  options: CheckpointOptions = {},
): Promise<string> {
  const tmp = await world.broadcastJson(world.isRoot ? startCheckpoint(runDir, state.step) : undefined);
  if (world.isRoot) for (const sub of ['model', 'slices']) mkdirSync(join(tmp, sub));
  await world.barrier(); // the folders exist before any rank writes into them
  const { parts, weights } = fullShardSlices(model);
  const opt = model.getOptimizerState();
  const tensors: TensorSource[] = [];
  for (const p of parts) {
    const part = () => bytesOf(weights.subarray(p.at, p.at + p.count));
    tensors.push({ name: p.name, dtype: 'F32', shape: [p.count], bytes: part });
    tensors.push(...momentSources(p.name, [p.count], opt, p.at, p.count));
  }
  const file = rankFileName('slices', world.rank, world.size);
  writeSafetensors(join(tmp, file), tensors);
  const report = {
    rank: world.rank,
    parameters: [...new Set(parts.map((p) => p.name))],
    files: [file],
    slices: parts.map(({ name, from, count }) => ({ name, from, count })),
    sha: sha256File(join(tmp, file)),
  };
  const reports = await world.allgatherJson(report);
  return commitAcrossRanks(world, runDir, tmp, model, state, options, {
    optimizerStep: opt.step,
    files: Object.fromEntries(reports.map((r) => [r.files[0], r.sha])),
    shards: {
      worldSize: world.size,
      ranks: reports.map(({ rank, parameters, files, slices }) => ({ rank, parameters, files, slices })),
    },
  });
}

/** The whole weights and moments of every parameter, in the flat params() layout. */
export interface WholeState {
  model: Model;
  m: Float32Array;
  v: Float32Array;
}

/**
 * Assembles a fully sharded run's checkpoint into a whole, unsharded model and its flat moments;
 * a missing or overlapping part is an error naming the tensor.
 */
export function assembleSlices(dir: string, state: StateFile, device?: Device): WholeState {
  const model = Model.create(readHfConfig(join(dir, 'model')).config, { initStd: 0, device });
  const n = model.numParameters;
  const w = new Float32Array(n);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const where = new Map<string, { offset: number; numel: number; filled: number }>();
  let offset = 0;
  for (const p of model.parameters()) {
    where.set(p.name, { offset, numel: p.numel, filled: 0 });
    offset += p.numel;
  }
  for (const r of state.shards!.ranks) {
    const file = join(dir, r.files[0]);
    const st = SafetensorsFile.open(file);
    try {
      for (const s of r.slices ?? []) {
        const t = where.get(s.name);
        if (!t || s.from < 0 || s.from + s.count > t.numel)
          throw new CheckpointCorruptError(`${file}: part [${s.from}, +${s.count}) of '${s.name}' fits no parameter`);
        const read = (name: string) => {
          const x = st.readFloat32(name);
          if (x.length !== s.count)
            throw new CheckpointCorruptError(`${file}: ${name} has ${x.length} values, the manifest says ${s.count}`);
          return x;
        };
        const names = momentNames(s.name);
        w.set(read(s.name), t.offset + s.from);
        m.set(read(names.m), t.offset + s.from);
        v.set(read(names.v), t.offset + s.from);
        t.filled += s.count;
      }
    } finally {
      st.close();
    }
  }
  for (const [name, t] of where)
    if (t.filled !== t.numel)
      throw new CheckpointCorruptError(
        `${join(dir, STATE_FILE)}: the ranks' parts of '${name}' hold ${t.filled} of its ${t.numel} values`,
      );
  for (const [name, t] of where) model.setParameter(name, w.subarray(t.offset, t.offset + t.numel));
  return { model, m, v };
}
