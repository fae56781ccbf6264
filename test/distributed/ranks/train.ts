// One rank of test/distributed/train.test.ts: `medix train` as the tests drive it (a config object, the
// trainer's own code path), then this rank's final in-memory weights to OUT/rank-R.f32.
// Usage: train.ts CONFIG.json BASE_DIR OUT [--resume]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../../src/config/index.js';
import { world } from '../../../src/engine/world.js';
import { Trainer } from '../../../src/train/trainer.js';

const [configFile, baseDir, out] = process.argv.slice(2);
const raw = JSON.parse(readFileSync(configFile, 'utf8'));
const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, configFile), baseDir), {
  baseDir,
  resume: process.argv.includes('--resume'),
  log: () => {},
});
await trainer.run();
const model = trainer.policy;
writeFileSync(
  join(out, `rank-${world().rank}.f32`),
  Buffer.concat(model.parameters().map((p) => Buffer.from(model.getParameter(p.name).buffer))),
);
