// `medix merge CHECKPOINT OUT`: export a training checkpoint as a Hugging Face model directory.
import type { Command } from 'commander';
import { latestValidCheckpoint } from '../train/checkpoint.js';
import { mergeCheckpoint } from '../train/merge.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('write a Hugging Face model directory (safetensors shards + index, config, tokenizer) from a training checkpoint')
    .argument('<checkpoint>', 'a checkpoint directory (RUN/checkpoints/step_NNNNNN), or a run directory for its newest valid checkpoint')
    .argument('<out>', 'output model directory')
    .option('--dtype <dtype>', 'bf16 or f32', 'bf16')
    .option('--max-shard-gb <gb>', 'largest shard in GB', (v) => Number.parseFloat(v), 5)
    .option('--overwrite', 'replace OUT if it exists')
    .action(async (ckpt: string, out: string, opts: { dtype: string; maxShardGb: number; overwrite?: boolean }) => {
      if (opts.dtype !== 'bf16' && opts.dtype !== 'f32') throw new Error(`--dtype must be bf16 or f32, got '${opts.dtype}'`);
      let dir = ckpt;
      if (existsSync(join(ckpt, 'checkpoints'))) {
        const latest = latestValidCheckpoint(ckpt);
        if (!latest) throw new Error(`${ckpt}: no valid checkpoint in the run`);
        dir = latest.dir;
      }
      const r = await mergeCheckpoint(dir, out, { dtype: opts.dtype, maxShardBytes: opts.maxShardGb * 1e9, overwrite: opts.overwrite });
      console.log(`medix merge: wrote ${out} (step ${r.step}, ${r.parameters} parameters, ${opts.dtype})`);
    });
}
