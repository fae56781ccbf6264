// Checkpoints of a data-parallel run, written by all its processes together (the layout is
// described in checkpoint.ts): each rank writes the weights and moments of the tensors it owns
// and their checksums; the root then writes the model's config, tokenizer and weight index, and
// trainer_state.json with every file's checksum and which rank wrote what, and renames the
// directory into place. The run directory must be on a file system every rank sees.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Model, OptimizerState } from '../engine/model.js';
import type { World } from '../engine/world.js';
import { SAFETENSORS_METADATA, tensorSources, weightShardName, writeWeightIndex } from '../model/save.js';
import { writeSafetensors, type TensorSource } from '../model/safetensors-writer.js';
import { saveCheckpoint, startCheckpoint, type CheckpointOptions, type TrainerState } from './checkpoint.js';
import { commitAcrossRanks, momentSources, rankFileName } from './checkpoint-ranks.js';
import { sha256File, type FileChecksums } from './file-checksums.js';

interface RankReport {
  rank: number;
  parameters: string[];
  /** SHA-256 of each file the rank wrote, by path relative to the checkpoint directory. */
  files: FileChecksums;
}

function startShardedCheckpoint(runDir: string, step: number): string {
  const tmp = startCheckpoint(runDir, step);
  for (const sub of ['model', 'optimizer']) mkdirSync(join(tmp, sub));
  return tmp;
}

/** This rank's files: the weights and both moments of the tensors it owns. */
function writeOwnShard(tmp: string, model: Model, opt: OptimizerState, world: World): RankReport {
  const shard = model.optimizerShard();
  const report: RankReport = { rank: world.rank, parameters: shard.parameters.map((p) => p.name), files: {} };
  if (shard.parameters.length === 0) return report;
  const weights = `model/${weightShardName(world.rank, world.size)}`;
  writeSafetensors(join(tmp, weights), tensorSources(model, 'f32', shard.parameters), SAFETENSORS_METADATA);
  const moments: TensorSource[] = [];
  let at = 0;
  for (const p of shard.parameters) {
    moments.push(...momentSources(p.name, p.shape, opt, at, p.numel));
    at += p.numel;
  }
  const optimizer = rankFileName('optimizer', world.rank, world.size);
  writeSafetensors(join(tmp, optimizer), moments);
  for (const f of [weights, optimizer]) report.files[f] = sha256File(join(tmp, f));
  return report;
}

/**
 * Writes checkpoints/step_NNNNNN for `state.step` with every rank of `world` (each must call it
 * with its own model, at the same step); a world of one process writes the single-process layout.
 * Resolves on every rank once the checkpoint is in place.
 */
export async function saveCheckpointAcross(
  world: World,
  runDir: string,
  model: Model,
  state: TrainerState,
  options: CheckpointOptions = {},
): Promise<string> {
  if (world.size === 1) return saveCheckpoint(runDir, model, state, options);
  if (model.optimizerShard().size !== world.size)
    throw new Error(
      `saveCheckpointAcross: the model is not data parallel over the ${world.size} ranks (call model.setDataParallel() first)`,
    );
  // One temporary directory for all ranks, made and named by the root.
  const tmp = await world.broadcastJson(world.isRoot ? startShardedCheckpoint(runDir, state.step) : undefined);
  const opt = model.getOptimizerState();
  const reports = await world.allgatherJson(writeOwnShard(tmp, model, opt, world));
  const byName = new Map(model.parameters().map((p) => [p.name, p]));
  const weightIndex = (modelDir: string) =>
    writeWeightIndex(
      modelDir,
      reports
        .filter((r) => r.parameters.length > 0)
        .map((r) => ({
          file: weightShardName(r.rank, world.size),
          tensors: tensorSources(
            model,
            'f32',
            r.parameters.map((n) => byName.get(n)!),
          ),
        })),
    );
  const record = {
    optimizerStep: opt.step,
    files: Object.assign({}, ...reports.map((r) => r.files)),
    shards: {
      worldSize: world.size,
      ranks: reports.map((r) => ({ rank: r.rank, parameters: r.parameters, files: Object.keys(r.files) })),
    },
  };
  return commitAcrossRanks(world, runDir, tmp, model, state, options, record, weightIndex);
}
