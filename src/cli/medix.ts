#!/usr/bin/env node
// The `medix` command line. Each subcommand lives in its own module under src/cli/ and registers
// itself on the program; this file only assembles them.
import { Command } from 'commander';
import { registerInfo } from './info.js';
import { registerReport } from './report.js';
import { registerMerge } from './merge.js';
import { registerReward } from './reward.js';
import { registerTrain } from './train.js';
import { registerServe } from './serve.js';
import { registerEval } from './eval.js';
import { registerCreateModel } from './create-model.js';
import { registerGenerate } from './generate.js';
import { startedWorld } from '../engine/world.js';

const program = new Command('medix')
  .description('Open-ended RL for medical vision-language models (MediX-R1) on a native engine')
  .showHelpAfterError();

registerInfo(program);
registerReport(program);
registerMerge(program);
registerReward(program);
registerTrain(program);
registerServe(program);
registerEval(program);
registerCreateModel(program);
registerGenerate(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const w = startedWorld();
  console.error(`medix: ${w && w.size > 1 ? `rank ${w.rank}: ` : ''}${err instanceof Error ? err.message : String(err)}`);
  // The other ranks of a distributed run would wait for this one forever: end them all.
  if (w && w.size > 1) w.abort(1);
  process.exit(1);
});
