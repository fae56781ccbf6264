// The full-shard bandwidth model (src/engine/fsdp-traffic.ts) on its defining properties; the
// engine's measured traffic is compared with the same count by bench/fsdp.bench.ts under MPI.
import t from 'tap';
import { fsdpStepTraffic } from '../../src/engine/fsdp-traffic.js';

const base = { parameters: 1000, gatherBytesPerParameter: 4, ranks: 4, busBytesPerSecond: 100 };

t.test('a world of one sends nothing', async (t) => {
  const one = fsdpStepTraffic({ ...base, ranks: 1 });
  t.same([one.allgatherBytes, one.reduceScatterBytes, one.seconds], [0, 0, 0]);
});

t.test('two gathers of the weights and one fp32 reduce-scatter, each a ring share', async (t) => {
  const x = fsdpStepTraffic(base);
  const share = (base.ranks - 1) / base.ranks;
  t.equal(x.allgatherBytes, 2 * base.parameters * base.gatherBytesPerParameter * share);
  t.equal(x.reduceScatterBytes, 4 * base.parameters * share);
  t.equal(x.seconds, (x.allgatherBytes + x.reduceScatterBytes) / base.busBytesPerSecond);
  const bf16 = fsdpStepTraffic({ ...base, gatherBytesPerParameter: 2 });
  t.equal(bf16.allgatherBytes, x.allgatherBytes / 2, 'bf16 gathers halve the all-gather');
  t.equal(bf16.reduceScatterBytes, x.reduceScatterBytes, 'gradients stay fp32');
});
