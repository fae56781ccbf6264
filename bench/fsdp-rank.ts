// One rank of the fsdp bench (bench/fsdp.bench.ts runs it under mpirun): trains the bench's model
// fully sharded on this rank's share of a fixed batch and writes, from rank 0, the best step time
// and the largest per-rank memory and traffic to the JSON file named by argv[2].
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fullShard, fullShardMemory, probeFullShardMemory } from '../src/engine/full-shard.js';
import { Model, packSequences } from '../src/engine/model.js';
import { setThreads } from '../src/engine/system.js';
import { world } from '../src/engine/world.js';
import { benchBatch, fsdpBenchModel, type FsdpRankResult } from './fsdp-model.js';

const [out, size, stepsArg] = process.argv.slice(2);
const w = world();
setThreads(Math.max(1, Math.floor(availableParallelism() / w.localSize))); // the ranks share the cores
const model = Model.create(fsdpBenchModel(size === 'quick'), { seed: 1 });
fullShard(model);
const mine = w.share(benchBatch(size === 'quick'));
const packed = packSequences(mine);
const dlogp = new Float32Array(packed.tokens.length).fill(-1e-3);
const step = async () => {
  await w.barrier();
  const t0 = performance.now();
  model.zeroGrad();
  await model.forward(packed, { training: true });
  await model.backward({ dlogp });
  await model.optimizerStep({ lr: 1e-5, maxGradNorm: 1 });
  const ms = performance.now() - t0;
  return (await w.allreduceSum([ms]))[0] / w.size; // the ranks' mean: they wait for each other anyway
};
await step(); // warm-up: workspaces and optimizer state
probeFullShardMemory(model);
const times: number[] = [];
for (let i = 0; i < Number(stepsArg); i++) times.push(await step());
const m = fullShardMemory(model);
const all = await w.allgatherJson({ resident: m.sliceBytes + m.peakGatheredBytes, ...m });
if (w.isRoot) {
  const worst = all.reduce((a, b) => (b.resident > a.resident ? b : a));
  const steps = times.length;
  const result: FsdpRankResult = {
    stepMs: Math.min(...times),
    residentBytes: worst.resident,
    wholeStateBytes: worst.wholeStateBytes,
    largestUnitBytes: worst.largestUnitBytes,
    allgatherBytesPerStep: worst.allgatherBytes / steps,
    reduceScatterBytesPerStep: worst.reduceScatterBytes / steps,
    numParameters: model.numParameters,
  };
  writeFileSync(out, JSON.stringify(result));
}
