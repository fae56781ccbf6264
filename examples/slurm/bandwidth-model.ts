// Prints the full-shard bandwidth model (src/engine/fsdp-traffic.ts) for the 2B and 8B recipes on
// one 8-GPU NVLink node and on two such nodes over 400 Gb/s InfiniBand.
// Run: npx tsx examples/slurm/bandwidth-model.ts
import { fsdpStepTraffic } from '../../src/engine/fsdp-traffic.js';

const GB = 1e9;
// Parameter counts of Qwen3-VL-2B-Instruct and Qwen3-VL-8B-Instruct, rounded.
const models = [
  { name: '2B', parameters: 2.1e9 },
  { name: '8B', parameters: 8.8e9 },
];
// Assumed bus bandwidths: NVLink (H100/H200 class) ring all-gather ~450 GB/s per GPU; across nodes
// the ring is bounded by one 400 Gb/s InfiniBand link per node, 50 GB/s.
const setups = [
  { name: '8 GPUs, NVLink 450 GB/s', ranks: 8, busBytesPerSecond: 450 * GB },
  { name: '2 nodes x 8 GPUs, IB 400 Gb/s', ranks: 16, busBytesPerSecond: 50 * GB },
];

for (const m of models) {
  for (const s of setups) {
    for (const gatherBytesPerParameter of [4, 2]) {
      const t = fsdpStepTraffic({ ...m, gatherBytesPerParameter, ...s });
      const gathered = (t.allgatherBytes / GB).toFixed(1);
      const scattered = (t.reduceScatterBytes / GB).toFixed(1);
      const dtype = gatherBytesPerParameter === 4 ? 'fp32' : 'bf16';
      const ms = (t.seconds * 1000).toFixed(0);
      const sent = `${gathered} GB all-gathered + ${scattered} GB reduce-scattered`;
      console.log(`${m.name} ${s.name}, ${dtype} gathers: ${sent}, ${ms} ms`);
    }
  }
}
