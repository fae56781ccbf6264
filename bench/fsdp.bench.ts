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
      const params = `${(r.numParameters / 1e6).toFixed(2)}M params`;
      const shape = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${params}, ${n} ranks`;
      const padded = 4 * r.numParameters; // the model ignores the padding (< N floats per unit)
      const modelGather = 2 * padded - 4 * c.vocabSize * c.hiddenSize;
      const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
      ctx.log(
        `fsdp n${n}: step ${r.stepMs.toFixed(0)} ms, ` +
          `rank state ${mib(r.residentBytes)} of ${mib(r.wholeStateBytes)}, ` +
          `gathered ${mib(r.allgatherBytesPerStep)}/step (model ${mib(modelGather)})`,
      );
      const record = (metric: string, value: number, unit: string, note: string) =>
        records.push({ name: 'fsdp', metric, value, unit, note });
      record(`step_ms_n${n}`, r.stepMs, 'ms', shape);
      const oneUnit = (r.largestUnitBytes / r.wholeStateBytes).toFixed(3);
      const ratio = r.residentBytes / r.wholeStateBytes;
      const ideal = `${shape}; ideal 1/${n} + one unit (${oneUnit})`;
      if (n > 1) record(`rank_state_bytes_ratio_n${n}`, ratio, 'fraction', ideal);
      record(`allgather_bytes_per_step_n${n}`, r.allgatherBytesPerStep, 'bytes', `${shape}; model ${modelGather}`);
      record(`reduce_scatter_bytes_per_step_n${n}`, r.reduceScatterBytesPerStep, 'bytes', `${shape}; model ${padded}`);
    }
    return records;
  },
};

export default bench;
