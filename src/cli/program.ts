// The `medix` program with every subcommand registered (each lives in its own module under
// src/cli/), built without parsing so tests can walk its commands and options.
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
import { registerSelftest } from './selftest.js';
import { medixVersion } from './package-version.js';

export function buildProgram(): Command {
  const program = new Command('medix')
    .description('Open-ended RL for medical vision-language models (MediX-R1) on a native engine')
    .version(medixVersion(), '-V, --version', 'print the medix version')
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
  registerSelftest(program);
  return program;
}
