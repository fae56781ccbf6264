// `medix merge CHECKPOINT OUT`: export a training checkpoint as a Hugging Face model directory.
import { Option, type Command } from 'commander';
import { positiveNumber } from './options.js';
import { latestValidCheckpoint } from '../train/checkpoint.js';
import { mergeCheckpoint } from '../train/merge.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description(
      'write a Hugging Face model directory (safetensors shards + index, config, tokenizer) from a training checkpoint',
    )
    .argument(
      '<checkpoint>',
      'a checkpoint directory (RUN/checkpoints/step_NNNNNN), or a run directory for its newest valid checkpoint',
    )
    .argument('<out>', 'output model directory')
    .addOption(
      new Option('--dtype <dtype>', 'weights dtype of the written model').choices(['bf16', 'f32']).default('bf16'),
    )
    .option('--max-shard-gb <gb>', 'largest shard in GB', positiveNumber, 5)
    .option('--overwrite', 'replace OUT if it exists')
    .action(
      async (ckpt: string, out: string, opts: { dtype: 'bf16' | 'f32'; maxShardGb: number; overwrite?: boolean }) => {
        let dir = ckpt;
        if (existsSync(join(ckpt, 'checkpoints'))) {
          const latest = latestValidCheckpoint(ckpt);
          if (!latest) throw new Error(`${ckpt}: no valid checkpoint in the run`);
          dir = latest.dir;
        }
        const r = await mergeCheckpoint(dir, out, {
          dtype: opts.dtype,
          maxShardBytes: opts.maxShardGb * 1e9,
          overwrite: opts.overwrite,
        });
        console.log(`medix merge: wrote ${out} (step ${r.step}, ${r.parameters} parameters, ${opts.dtype})`);
      },
    );
}
