// Typed face of the mixture-of-experts ops (native/ops/moe.h; the block through runOp, the loss native/bindings/moe_ops.cc), one
// sparse block at a time, for tests and tools: router linear, softmax, top-k routing, SwiGLU
// experts over tokens grouped by expert, and transformers' load-balancing loss. Synchronous, CPU,
// float32, deterministic; bad input throws an Error naming the function and the argument.
import { native } from './native.js';
import { type OpBackend, runOp } from './ops.js';

export interface MoeBlockOptions {
  tokens: number;
  hidden: number;
  /** Each expert's intermediate size (moe_intermediate_size). */
  intermediate: number;
  experts: number;
  topK: number;
  /** Renormalise the top-k probabilities to sum 1 (norm_topk_prob; default true). */
  normTopk?: boolean;
}

export interface MoeBlockResult {
  /** [tokens, hidden] */
  out: Float32Array;
  /** [tokens, experts] */
  routerLogits: Float32Array;
  probs: Float32Array;
  /** [tokens, topK]: chosen experts by descending probability, and their weights. */
  experts: Int32Array;
  weights: Float32Array;
  /** The assignments t*topK + k sorted by expert (stable); expert e's run is offsets[e]..offsets[e+1]. */
  order: Int32Array;
  offsets: Int32Array;
}

export interface MoeBlockGradients {
  dx: Float32Array;
  dRouter: Float32Array;
  dGateUp: Float32Array;
  dDown: Float32Array;
}

interface MoeAddon {
  moeRoutingSeconds(): number;
  moeAuxLoss(
    logits: Float32Array,
    cuSeqlens: Int32Array,
    o: { tokens: number; experts: number; topK: number; layers: number; backend?: OpBackend },
  ): {
    loss: number[];
    dLogits: Float32Array;
  };
}

/** One sparse block: router [experts, hidden], gateUp [experts, 2*intermediate, hidden], down [experts, hidden, intermediate]. */
export function moeBlockForward(
  x: Float32Array,
  router: Float32Array,
  gateUp: Float32Array,
  down: Float32Array,
  o: MoeBlockOptions,
): MoeBlockResult {
  const r = runOp<MoeBlockResult>('moe_block.forward', 'cpu', { x, router, gateUp, down }, o);
  const { out, routerLogits, probs, experts, weights, order, offsets } = r;
  return { out, routerLogits, probs, experts, weights, order, offsets };
}

/** Gradients of sum(dout * out) with respect to the block's input and weights. */
export function moeBlockBackward(
  dout: Float32Array,
  x: Float32Array,
  router: Float32Array,
  gateUp: Float32Array,
  down: Float32Array,
  o: MoeBlockOptions,
): MoeBlockGradients {
  const r = runOp<MoeBlockGradients>('moe_block.backward', 'cpu', { dout, x, router, gateUp, down }, o);
  return { dx: r.dx, dRouter: r.dRouter, dGateUp: r.dGateUp, dDown: r.dDown };
}

/**
 * transformers' load_balancing_loss_func per sequence over `layers` routers' logits
 * ([layers, tokens, experts]), and the gradient of the losses' sum with respect to the logits; the routing
 * and the gradient on `o.backend` (the CPU's by default), as a model on that device runs them.
 */
export function moeAuxLoss(
  logits: Float32Array,
  cuSeqlens: Int32Array,
  o: { tokens: number; experts: number; topK: number; layers: number; backend?: OpBackend },
): { loss: number[]; dLogits: Float32Array } {
  return native<MoeAddon>().moeAuxLoss(logits, cuSeqlens, o);
}

/**
 * Wall seconds the MoE ops (in a model's forward and backward too) spent routing since the last call,
 * which restarts the count: softmax and top-k with their backward, the sort by expert, the gathers by
 * expert and the combination per token. Not the GEMMs nor SwiGLU. For the benchmark's routing share.
 */
export function moeRoutingSeconds(): number {
  return native<MoeAddon>().moeRoutingSeconds();
}
