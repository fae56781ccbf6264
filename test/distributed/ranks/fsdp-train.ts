// One rank of test/distributed/fsdp-train.test.ts: `medix train` as the tests drive it (a config
// object, the trainer's own code path), probing the full-shard memory from the start; then this
// rank's final weights (gathered whole) to OUT/rank-R.f32 and the engine's memory report to
// OUT/rank-R.json. With --resave DIR, the state the trainer resumed (or started) with is first
// written again, as a fully sharded checkpoint under DIR by this run's ranks, before training.
// Usage: fsdp-train.ts CONFIG.json BASE_DIR OUT [--resume] [--resave DIR]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../../src/config/index.js';
import {
  fullShardMemory,
  isFullShard,
  probeFullShardMemory,
  withWholeWeights,
} from '../../../src/engine/full-shard.js';
import { world } from '../../../src/engine/world.js';
import { Trainer } from '../../../src/train/trainer.js';
import { saveFullShardCheckpoint } from '../../../src/train/checkpoint-full-shard.js';

const [configFile, baseDir, out] = process.argv.slice(2);
const raw = JSON.parse(readFileSync(configFile, 'utf8'));
const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, configFile), baseDir), {
  baseDir,
  resume: process.argv.includes('--resume'),
  log: () => {},
});
const model = trainer.policy;
if (!isFullShard(model)) throw new Error('fsdp-train: the trainer did not shard the model');
const resave = process.argv.indexOf('--resave');
if (resave > 0) await saveFullShardCheckpoint(world(), process.argv[resave + 1], model, { step: 0 });
probeFullShardMemory(model);
await trainer.run();
const memory = fullShardMemory(model);
const weights = await withWholeWeights(model, () => model.parameters().map((p) => model.getParameter(p.name)));
writeFileSync(join(out, `rank-${world().rank}.f32`), Buffer.concat(weights.map((x) => Buffer.from(x.buffer))));
writeFileSync(join(out, `rank-${world().rank}.json`), JSON.stringify({ rank: world().rank, memory }));
