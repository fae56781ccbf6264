// One rank of test/distributed/vision_train.test.ts: `medix train` on the visual quickstart's config
// with the overrides RUN.json lists for this rank (each rank may read its own copy of the data), then
// this rank's log lines to OUT/rank-R.log.
// Usage: vision-train.ts RUN.json OUT
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTrainingConfig } from '../../../src/config/index.js';
import { world } from '../../../src/engine/world.js';
import { configDir, Trainer } from '../../../src/train/trainer.js';

const [runFile, out] = process.argv.slice(2);
const run: { config: string; overrides: string[][] } = JSON.parse(readFileSync(runFile, 'utf8'));
const rank = world().rank;
const logs: string[] = [];
try {
  const cfg = loadTrainingConfig(run.config, run.overrides[rank]);
  const trainer = await Trainer.create(cfg, { baseDir: configDir(run.config), log: (m) => logs.push(m) });
  await trainer.run();
} finally {
  writeFileSync(join(out, `rank-${rank}.log`), logs.join('\n'));
}
