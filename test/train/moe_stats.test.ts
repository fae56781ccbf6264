// The routing figures of an update (src/train/moe-stats.ts) from the engine's per-forward counts:
// tokens per expert summed over forwards, per sparse layer; max and mean load from them; and the
// dropped picks, tokens x top-k x sparse layers minus the picks the experts received. A stand-in
// model gives the counts, so a lost pick can be staged.
import t from 'tap';
import type { Model, Qwen3Config, RoutingStats } from '../../src/engine/model.js';
import { RoutingTally } from '../../src/train/moe-stats.js';

const config = {
  numLayers: 3,
  numExperts: 4,
  numExpertsPerTok: 2,
  mlpOnlyLayers: [1],
  routerAuxLossCoef: 0.5,
} as Qwen3Config; // layers 0 and 2 sparse

function standIn(forwards: RoutingStats[]): { model: Model; weights: number[] } {
  const weights: number[] = [];
  const model = {
    config,
    routing: () => forwards.shift()!,
    setAuxLossWeight: (w: number) => weights.push(w),
  } as unknown as Model;
  return { model, weights };
}

t.test('tokens per expert, max and mean load, dropped 0 when every pick lands', async (t) => {
  // 3 tokens then 2 tokens, top-2, 2 sparse layers: 6 + 4 picks per layer.
  const { model, weights } = standIn([
    { auxLoss: Float64Array.from([1, 2]), expertLoad: Float64Array.from([3, 1, 2, 0, /* layer 2 */ 0, 0, 3, 3]) },
    { auxLoss: Float64Array.from([4]), expertLoad: Float64Array.from([1, 1, 1, 1, /* layer 2 */ 2, 0, 0, 2]) },
  ]);
  const tally = new RoutingTally(model);
  t.equal(tally.afterForward(4, 3), (0.5 * 3) / 4, 'aux term of the objective: coef * sum / mini-batch sequences');
  t.equal(tally.afterForward(4, 2), (0.5 * 4) / 4);
  t.same(weights, [0.125, 0.125], 'backward weights each sequence aux loss by coef / mini-batch sequences');
  const m = await tally.metrics();
  t.same(m, {
    moe_aux_loss: 7 / 3,
    moe_dropped_tokens: 0,
    moe_layer0_tokens_per_expert: [4, 2, 3, 1],
    moe_layer0_max_load: 4,
    moe_layer0_mean_load: 2.5,
    moe_layer1_tokens_per_expert: [2, 0, 3, 5],
    moe_layer1_max_load: 5,
    moe_layer1_mean_load: 2.5,
  });
});

t.test('picks that reach no expert are counted as dropped', async (t) => {
  const load = Float64Array.from([2, 1, 0, 0, /* layer 2 */ 1, 1, 1, 0]);
  const { model } = standIn([{ auxLoss: Float64Array.from([1]), expertLoad: load }]);
  const tally = new RoutingTally(model);
  tally.afterForward(1, 2); // 2 tokens x top-2 x 2 layers = 8 picks, 6 counted
  t.equal((await tally.metrics()).moe_dropped_tokens, 2);
});

t.test('a dense model logs no routing figures', async (t) => {
  const tally = new RoutingTally({ config: { ...config, numExperts: undefined } } as unknown as Model);
  t.equal(tally.afterForward(1, 5), 0);
  t.same(await tally.metrics(), {});
});
