// `medix create-model --preset tiny|small|tiny-vl|small-vl|tiny-moe|tiny-vl-moe --out DIR`: a randomly initialised Qwen3-shaped model
// directory with the real Qwen3 tokenizer, the way to try medix (and to test it) without a download.
import { Option, type Command } from 'commander';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MODEL_PRESETS, MODEL_PRESET_NAMES, type ModelPreset } from '../model/presets.js';
import { writeRandomModelDir } from '../model/random-model-dir.js';
import { nonNegativeInt } from './options.js';

/**
 * Whether writing to `out` replaces something: an empty directory is simply used. --force only
 * replaces a model directory (one with config.json), so a mistyped --out never deletes other files.
 */
function replacesExisting(out: string, force: boolean): boolean {
  if (!existsSync(out)) return false;
  if (!statSync(out).isDirectory()) throw new Error(`--out ${out}: exists and is not a directory`);
  if (readdirSync(out).length === 0) return true;
  if (!force)
    throw new Error(`--out ${out}: directory exists and is not empty (pass --force to replace the model in it)`);
  if (!existsSync(join(out, 'config.json')))
    throw new Error(`--out ${out}: not a model directory (no config.json); --force only replaces a model directory`);
  return true;
}

const describe = (p: ModelPreset) => {
  const s = MODEL_PRESETS[p];
  const experts = 'numExperts' in s ? `, ${s.numExperts} experts top-${s.numExpertsPerTok}` : '';
  return `${p} (hidden ${s.hiddenSize}, ${s.numLayers} layers, ${s.numHeads} heads${experts})`;
};

export function registerCreateModel(program: Command): void {
  program
    .command('create-model')
    .description(
      'write a randomly initialised Qwen3-shaped model directory with the real Qwen3 tokenizer (no download); every medix command that takes a model directory accepts it',
    )
    .addOption(
      new Option('--preset <name>', `model shape: ${MODEL_PRESET_NAMES.map(describe).join(', ')}`)
        .choices(MODEL_PRESET_NAMES)
        .makeOptionMandatory(),
    )
    .requiredOption(
      '--out <dir>',
      'model directory to write (config.json, generation_config.json, model.safetensors, tokenizer files)',
    )
    .option('--seed <n>', 'seed of the initialisation: the same seed writes the same bytes', nonNegativeInt, 0)
    .option('--force', 'replace the model directory at --out if there is one')
    .action(async (o: { preset: ModelPreset; out: string; seed: number; force?: boolean }) => {
      const out = resolve(o.out);
      const overwrite = replacesExisting(out, o.force ?? false);
      const params = await writeRandomModelDir(out, { preset: o.preset, seed: o.seed, overwrite });
      console.log(
        `medix create-model: wrote ${o.out} (${describe(o.preset)}, ${(params / 1e6).toFixed(1)}M parameters, seed ${o.seed})`,
      );
    });
}
