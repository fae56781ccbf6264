// `medix merge`: a training checkpoint -> one Hugging Face model directory (bf16 by default, as
// released checkpoints are), with its config, generation config and tokenizer files. The
// checkpoint is verified first, so a damaged one is refused rather than silently exported.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { CheckpointError, loadModel } from '../model/load.js';
import { PROCESSOR_FILES, saveModel, TOKENIZER_FILES } from '../model/save.js';
import type { SaveDtype } from '../model/hf-config-write.js';
import { verifyCheckpoint } from './checkpoint.js';
import { assembleSlices, holdsSlices } from './checkpoint-full-shard.js';

export interface MergeOptions {
  dtype?: SaveDtype;
  maxShardBytes?: number;
  overwrite?: boolean;
}

export async function mergeCheckpoint(
  checkpointDir: string,
  outDir: string,
  options: MergeOptions = {},
): Promise<{ step: number; parameters: number }> {
  // Replacing OUT must never delete the checkpoint being read (OUT the run, its checkpoints, or inside one).
  const [out, from] = [resolve(outDir), resolve(checkpointDir)];
  const within = (a: string, b: string) => !relative(a, b).startsWith('..') && !isAbsolute(relative(a, b));
  if (within(out, from) || within(from, out))
    throw new CheckpointError(`${outDir}: holds or is inside the checkpoint being merged (${checkpointDir})`);
  const state = verifyCheckpoint(checkpointDir);
  const { trainer } = state;
  const modelDir = join(checkpointDir, 'model');
  // A fully sharded run's checkpoint holds parts of tensors: assembled into the whole model here.
  const model = holdsSlices(state) ? assembleSlices(checkpointDir, state).model : await loadModel(modelDir);
  const json = (f: string) =>
    existsSync(join(modelDir, f)) ? JSON.parse(readFileSync(join(modelDir, f), 'utf8')) : undefined;
  saveModel(model, outDir, {
    dtype: options.dtype ?? 'bf16',
    maxShardBytes: options.maxShardBytes,
    overwrite: options.overwrite,
    config: json('config.json'),
    generationConfig: json('generation_config.json'),
    tokenizerDir: [...TOKENIZER_FILES, ...PROCESSOR_FILES].some((f) => existsSync(join(modelDir, f)))
      ? modelDir
      : undefined,
  });
  return { step: trainer.step, parameters: model.numParameters };
}
