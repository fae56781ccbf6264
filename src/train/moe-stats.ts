// Mixture-of-experts bookkeeping of an update: the load-balancing loss joins the objective with
// weight router_aux_loss_coef per sequence, normalised like the mini-batch (mean over its
// sequences, so micro-batching does not change the gradient), and the routing figures of every
// forward are tallied for metrics.jsonl: the loss, and per sparse layer the token picks of each
// expert with their largest and mean, and the picks missing from them (dropped: the engine routes
// every token to its top-k experts, so this is 0 unless routing loses tokens).
import { isSparseLayer, type Model } from '../engine/model.js';
import type { World } from '../engine/world.js';

export class RoutingTally {
  private auxSum = 0; // coef-free aux losses, summed over sequences
  private seqs = 0;
  private tokens = 0;
  private readonly load: Float64Array; // [sparse layers, experts], summed over forwards

  constructor(private readonly model: Model) {
    const c = model.config;
    const sparse = Array.from({ length: c.numLayers }, (_, l) => isSparseLayer(c, l)).filter(Boolean).length;
    this.load = new Float64Array(sparse * (c.numExperts ?? 0));
  }

  get active(): boolean {
    return Boolean(this.model.config.numExperts);
  }

  /**
   * After a training forward of `tokens` tokens of a mini-batch that holds `miniSeqs` sequences: sets
   * the aux weight backward uses, tallies the routing, and returns the aux term of the objective.
   */
  afterForward(miniSeqs: number, tokens: number): number {
    if (!this.active) return 0;
    this.tokens += tokens;
    const coef = this.model.config.routerAuxLossCoef ?? 0;
    this.model.setAuxLossWeight(coef / miniSeqs);
    const r = this.model.routing();
    const aux = r.auxLoss.reduce((a, b) => a + b, 0);
    this.auxSum += aux;
    this.seqs += r.auxLoss.length;
    r.expertLoad.forEach((v, i) => (this.load[i] += v));
    return (coef * aux) / miniSeqs;
  }

  /**
   * Summed over the world's ranks: moe_aux_loss (mean per sequence); for sparse layer k,
   * moe_layer<k>_tokens_per_expert (token picks of each expert, an array), _max_load and _mean_load;
   * moe_dropped_tokens, the picks (tokens x top-k x sparse layers) that no expert received.
   */
  async metrics(world?: World): Promise<Record<`moe_${string}`, number | number[]>> {
    if (!this.active) return {};
    const { numExperts: E, numExpertsPerTok: k } = this.model.config;
    let sums: Float64Array = Float64Array.from([this.auxSum, this.seqs, this.tokens, ...this.load]);
    if (world && world.size > 1) sums = await world.allreduceSum(sums);
    const [aux, seqs, tokens] = sums;
    const load = sums.subarray(3);
    const layers = load.length / E!;
    const routed = load.reduce((a, b) => a + b, 0);
    const out: Record<`moe_${string}`, number | number[]> = {
      moe_aux_loss: seqs ? aux / seqs : 0,
      moe_dropped_tokens: tokens * k! * layers - routed,
    };
    for (let l = 0; l < layers; l++) {
      const row = Array.from(load.subarray(l * E!, (l + 1) * E!));
      out[`moe_layer${l}_tokens_per_expert`] = row;
      out[`moe_layer${l}_max_load`] = Math.max(...row);
      out[`moe_layer${l}_mean_load`] = row.reduce((a, b) => a + b, 0) / E!;
    }
    return out;
  }
}
