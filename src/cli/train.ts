// `medix train CONFIG.yaml [key=value ...] [--resume]`: RL (and SFT warm-up) training, in one
// process or, started by mpirun/srun, as every rank of a data-parallel run.
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadTrainingConfig } from '../config/index.js';
import { Trainer, configDir } from '../train/trainer.js';
import { world } from '../engine/world.js';
import { RUN_FILES } from '../report/run-files.js';
import { listCheckpoints } from '../train/checkpoint.js';
import { preflight } from '../train/preflight.js';

/**
 * A fresh run writes its resolved config and logs into its directory: a config file at one of those
 * paths (e.g. config.yaml with trainer.save_checkpoint_path: .) would be overwritten, comments and all.
 * Continuing a run (--resume) that has checkpoints from the config.yaml it wrote is fine.
 */
function refuseOverwritingConfig(file: string, runDir: string, resume: boolean): void {
  const hit = Object.values(RUN_FILES).find((f) => resolve(runDir, f) === resolve(file));
  // A run's own config.yaml is medix's when the run has checkpoints to resume from; otherwise it may be the user's.
  const ownConfig = hit === RUN_FILES.config && resume && listCheckpoints(runDir).length > 0;
  if (hit && !ownConfig)
    throw new Error(
      `${file}: the run writes its ${hit} there (trainer.save_checkpoint_path is ${runDir}), which would overwrite this file; set trainer.save_checkpoint_path to another directory`,
    );
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'train with GRPO/DAPO (and an SFT warm-up) from a YAML config; key=value arguments override config keys',
    )
    .argument('<config>', 'YAML config (EasyR1 section and key names)')
    .argument('[overrides...]', 'dotted overrides, e.g. worker.rollout.n=8 trainer.max_steps=10')
    .option(
      '--resume',
      'continue from the newest valid checkpoint in the run directory (trainer.load_checkpoint_path, when set, names the checkpoint instead)',
    )
    .option(
      '--check',
      "check the run's model, tokenizer, data, reward (one probe through the judge and the embedding model) and resume point, then exit; writes nothing",
    )
    .action(async (file: string, overrides: string[], opts: { resume?: boolean; check?: boolean }) => {
      const cfg = loadTrainingConfig(file, overrides);
      refuseOverwritingConfig(file, cfg.trainer.save_checkpoint_path, opts.resume === true);
      if (opts.check) {
        const r = await preflight(cfg, { resume: opts.resume, baseDir: configDir(file) });
        if (world().isRoot) for (const line of r.lines) console.log(`medix train --check: ${line}`);
        if (!r.ok) process.exitCode = 1;
        return;
      }
      const trainer = await Trainer.create(cfg, { resume: opts.resume, baseDir: configDir(file) });
      const t0 = Date.now();
      const s = await trainer.run();
      if (!world().isRoot) return; // the root speaks for the run
      const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
      const before =
        s.heldout_reward_before_train === null ? '' : `before training ${fmt(s.heldout_reward_before_train)}, `;
      console.log(
        `medix train: ${s.steps} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s; held-out reward ${before}after SFT ${fmt(s.heldout_reward_after_sft)}, after RL ${fmt(s.heldout_reward_after_rl)}`,
      );
      console.log(`medix train: report ${s.report}`);
    });
}
