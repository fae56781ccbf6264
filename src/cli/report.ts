// `medix report RUN_DIR`: writes RUN_DIR/report.html (or --out) from the run's logs.
import type { Command } from 'commander';
import { join } from 'node:path';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import { renderReport } from '../report/html.js';
import { readRun } from '../report/run-files.js';
import { positiveInt } from './options.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (curves, samples, config) for a training run')
    .argument('<run-dir>', 'the run directory (metrics.jsonl, samples.jsonl, config.yaml)')
    .option('--out <file>', 'output file (default RUN_DIR/report.html)')
    .option('--max-samples <n>', 'sample generations shown', positiveInt, 20)
    .action((dir: string, opts: { out?: string; maxSamples: number }) => {
      const out = opts.out ?? join(dir, 'report.html');
      const run = readRun(dir);
      atomicWriteFileSync(out, renderReport(run, { maxSamples: opts.maxSamples }));
      console.log(`medix report: wrote ${out} (${run.metrics.length} steps, ${run.samples.length} samples)`);
    });
}
