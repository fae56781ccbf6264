// Full sharding on the CPU (issue 15): the same model trained fully sharded by 1, 2 and 4 ranks
// under mpirun (oversubscribed when the machine has fewer cores), same global batch. Records per
// N: the step time, one rank's resident weights + gradients + optimizer state over the same state
// in one unsharded process, and the bytes all-gathered and reduce-scattered per step against the
// bandwidth model of the README:
//   all-gather per step     = 2 × padded fp32 bytes of every unit, less the embedding's once (its
//                             backward needs no weights), received by each rank
//   reduce-scatter per step = padded fp32 bytes of every unit, sent by each rank
// (a ring moves (N − 1)/N of each across every link).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mpirun, mpiUnavailable } from '../test/helpers/mpirun.js';
import { fsdpBenchModel, type FsdpRankResult } from './fsdp-model.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

const rankScript = join(import.meta.dirname, 'fsdp-rank.ts');

const bench: BenchModule = {
  order: 40,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const unavailable = mpiUnavailable();
    if (unavailable) {
      ctx.log(`fsdp: skipped: ${unavailable}`);
      return [];
    }
    const c = fsdpBenchModel(ctx.quick);
    const records: BenchRecord[] = [];
    for (const n of [1, 2, 4]) {
      const out = join(mkdtempSync(join(tmpdir(), 'medix-fsdp-bench-')), 'result.json');
      const run = await mpirun(n, rankScript, [out, ctx.quick ? 'quick' : 'full', ctx.quick ? '1' : '3']);
      if (run.code !== 0) throw new Error(`fsdp bench: mpirun -np ${n} failed (exit ${run.code})\n${run.output}`);
      const r = JSON.parse(readFileSync(out, 'utf8')) as FsdpRankResult;
      const shape = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(r.numParameters / 1e6).toFixed(2)}M params, ${n} ranks`;
      const padded = 4 * r.numParameters; // ≈ padded bytes: padding is < N floats per unit
      const embedding = 4 * c.vocabSize * c.hiddenSize;
      const modelGather = 2 * padded - embedding;
      ctx.log(`fsdp n${n}: step ${r.stepMs.toFixed(0)} ms, rank state ${(r.residentBytes / 2 ** 20).toFixed(2)} MiB of ${(r.wholeStateBytes / 2 ** 20).toFixed(2)} MiB, gathered ${(r.allgatherBytesPerStep / 2 ** 20).toFixed(2)} MiB/step (model ${(modelGather / 2 ** 20).toFixed(2)})`);
      records.push({ name: 'fsdp', metric: `step_ms_n${n}`, value: r.stepMs, unit: 'ms', note: shape });
      if (n > 1)
        records.push({ name: 'fsdp', metric: `rank_state_bytes_ratio_n${n}`, value: r.residentBytes / r.wholeStateBytes, unit: 'fraction', note: `${shape}; ideal 1/${n} + one unit (${(r.largestUnitBytes / r.wholeStateBytes).toFixed(3)})` });
      records.push({ name: 'fsdp', metric: `allgather_bytes_per_step_n${n}`, value: r.allgatherBytesPerStep, unit: 'bytes', note: `${shape}; model ${modelGather}` });
      records.push({ name: 'fsdp', metric: `reduce_scatter_bytes_per_step_n${n}`, value: r.reduceScatterBytesPerStep, unit: 'bytes', note: `${shape}; model ${padded}` });
    }
    return records;
  },
};

export default bench;
