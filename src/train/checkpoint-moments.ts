// Restoring AdamW moments held whole (the flat params() layout, as a single process keeps them)
// into a model of any sharding mode: fully sharded, this rank's parts of every unit; data parallel,
// the consecutive tensors it owns; alone, all of them.
import { fullShardSlices, isFullShard } from '../engine/full-shard.js';
import type { Model } from '../engine/model.js';

export function setWholeMoments(model: Model, step: number, m: Float32Array, v: Float32Array): void {
  if (isFullShard(model)) {
    const offset = new Map<string, number>();
    let at = 0;
    for (const p of model.parameters()) {
      offset.set(p.name, at);
      at += p.numel;
    }
    const n = model.optimizerShard().numel;
    const mine = { step, m: new Float32Array(n), v: new Float32Array(n) };
    for (const p of fullShardSlices(model).parts) {
      const from = offset.get(p.name)! + p.from;
      mine.m.set(m.subarray(from, from + p.count), p.at);
      mine.v.set(v.subarray(from, from + p.count), p.at);
    }
    model.setOptimizerState(mine);
    return;
  }
  const shard = model.optimizerShard();
  const all = model.parameters();
  const first = shard.numel > 0 ? all.slice(0, all.indexOf(shard.parameters[0])).reduce((n, p) => n + p.numel, 0) : 0;
  model.setOptimizerState({
    step,
    m: m.slice(first, first + shard.numel),
    v: v.slice(first, first + shard.numel),
  });
}
