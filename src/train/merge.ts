// `medix merge`: a training checkpoint -> one Hugging Face model directory (bf16 by default, as
// released checkpoints are), with its config, generation config and tokenizer files. The
// checkpoint is verified first, so a damaged one is refused rather than silently exported.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CheckpointError, loadModel } from '../model/load.js';
import { assertReplaceable, PROCESSOR_FILES, saveModel, TOKENIZER_FILES } from '../model/save.js';
import type { SaveDtype } from '../model/hf-config-write.js';
import { verifyCheckpoint } from './checkpoint.js';
import { assembleSlices, holdsSlices } from './checkpoint-full-shard.js';

export interface MergeOptions {
  dtype?: SaveDtype;
  maxShardBytes?: number;
  overwrite?: boolean;
}

/** `b` is `a` or lies inside it, on the real paths of what exists (links followed). */
function within(a: string, b: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  const rel = relative(real(a), real(b));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * OUT may be written before anything is loaded: never the checkpoint being read, the run's checkpoints
 * folder (an older checkpoint's model/ has a config.json too) or a folder holding them, and when it
 * exists, only with overwrite and only a model directory.
 */
export function assertMergeTarget(checkpointDir: string, outDir: string, overwrite: boolean): void {
  const parent = dirname(resolve(checkpointDir));
  const guarded = basename(parent) === 'checkpoints' ? parent : checkpointDir;
  if (within(outDir, checkpointDir) || within(guarded, outDir))
    throw new CheckpointError(`${outDir}: holds or is inside the checkpoints being merged (${guarded})`);
  assertReplaceable(outDir, overwrite);
}

export async function mergeCheckpoint(
  checkpointDir: string,
  outDir: string,
  options: MergeOptions = {},
): Promise<{ step: number; parameters: number }> {
  assertMergeTarget(checkpointDir, outDir, options.overwrite === true);
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
