// Mixture-of-experts bookkeeping of an update: the load-balancing loss joins the objective with
// weight router_aux_loss_coef per sequence, normalised like the mini-batch (mean over its
// sequences, so micro-batching does not change the gradient), and the routing figures of every
// forward are tallied for metrics.jsonl: the loss, and per sparse layer the largest and the mean
// number of token picks per expert (every token is routed; none is dropped).
import { isSparseLayer, type Model } from '../engine/model.js';
import type { World } from '../engine/world.js';

export class RoutingTally {
  private auxSum = 0; // coef-free aux losses, summed over sequences
  private seqs = 0;
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
   * After a training forward of a micro-batch whose mini-batch holds `miniSeqs` sequences: sets the
   * aux weight backward uses, tallies the routing, and returns the aux term of the objective.
   */
  afterForward(miniSeqs: number): number {
    if (!this.active) return 0;
    const coef = this.model.config.routerAuxLossCoef ?? 0;
    this.model.setAuxLossWeight(coef / miniSeqs);
    const r = this.model.routing();
    const aux = r.auxLoss.reduce((a, b) => a + b, 0);
    this.auxSum += aux;
    this.seqs += r.auxLoss.length;
    r.expertLoad.forEach((v, i) => (this.load[i] += v));
    return (coef * aux) / miniSeqs;
  }

  /** moe_aux_loss (mean per sequence), moe_layer<k>_max_load and _mean_load, summed over the world's ranks. */
  async metrics(world?: World): Promise<Record<`moe_${string}`, number>> {
    if (!this.active) return {};
    const E = this.model.config.numExperts!;
    let sums: Float64Array = Float64Array.from([this.auxSum, this.seqs, ...this.load]);
    if (world && world.size > 1) sums = await world.allreduceSum(sums);
    const [aux, seqs] = sums;
    const load = sums.subarray(2);
    const out: Record<`moe_${string}`, number> = { moe_aux_loss: seqs ? aux / seqs : 0 };
    for (let k = 0; k * E < load.length; k++) {
      const row = load.slice(k * E, (k + 1) * E);
      out[`moe_layer${k}_max_load`] = Math.max(...row);
      out[`moe_layer${k}_mean_load`] = row.reduce((a, b) => a + b, 0) / E;
    }
    return out;
  }
}
