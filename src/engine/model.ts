// Typed face of the native Qwen3 decoder (native/model/qwen3.h, native/bindings/model.cc).
import type { Device } from '../config/schema.js';
import { native } from './native.js';
import type { VisionTowerConfig } from './vision.js';

/** Architecture of a Qwen3 dense decoder (also the text model of Qwen3-VL). */
export interface Qwen3Config {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  ropeTheta: number;
  rmsEps: number;
  tieEmbeddings: boolean;
  /** Multi-section rope (Qwen3-VL): three section sizes summing to headDim/2. */
  mropeSection?: number[];
  /** Qwen3-VL interleaves the sections across frequencies; Qwen2-VL keeps them contiguous. */
  mropeInterleaved?: boolean;
  /** Parameter name prefix: "model." (Qwen3, default) or "model.language_model." (Qwen3-VL). */
  prefix?: string;
  /** Qwen3-VL: the vision tower (parameters "model.visual.*"); its outputs replace imageTokenId tokens. */
  vision?: VisionTowerConfig;
  imageTokenId?: number;
  /**
   * Mixture of experts (Qwen3-MoE, Qwen3-VL-MoE); absent or 0: dense. Layer l is sparse when it is
   * not in mlpOnlyLayers and (l + 1) % decoderSparseStep == 0; its MLP is mlp.gate.weight [E, H]
   * (the router) and the fused mlp.experts.gate_up_proj [E, 2I, H] and mlp.experts.down_proj [E, H, I].
   */
  numExperts?: number;
  numExpertsPerTok?: number;
  moeIntermediateSize?: number;
  decoderSparseStep?: number;
  mlpOnlyLayers?: number[];
  /** Renormalise the top-k routing weights to sum 1 (default true). */
  normTopkProb?: boolean;
  /** Weight of the load-balancing loss in the training objective (Hugging Face's router_aux_loss_coef). */
  routerAuxLossCoef?: number;
}

/** Whether layer `l` of `c` has a sparse (mixture-of-experts) MLP, as Hugging Face decides. */
export function isSparseLayer(c: Qwen3Config, l: number): boolean {
  if (!c.numExperts) return false;
  return (l + 1) % (c.decoderSparseStep ?? 1) === 0 && !(c.mlpOnlyLayers ?? []).includes(l);
}

/** The mixture-of-experts figures of the last forward. */
export interface RoutingStats {
  /** The load-balancing loss of each sequence (transformers' load_balancing_loss_func, unscaled). */
  auxLoss: Float64Array;
  /** Tokens routed to each expert, [sparse layers, experts] (each token counts once per pick). */
  expertLoad: Float64Array;
  /** Router logits [sparse layers, T, experts] when the forward asked for logits. */
  routerLogits?: Float32Array;
}

export interface ModelOptions {
  /** Seed of the random initialisation (default 0). Same seed, same weights, bit for bit. */
  seed?: number;
  /** Standard deviation of the normal initialisation of matrices (default 0.02); norms start at 1. */
  initStd?: number;
  /** Gradient checkpointing: keep only each layer's input and recompute the rest in backward. */
  recompute?: boolean;
  /**
   * Where the weights live and the ops run (default cpu). cuda: the CUDA backend, text models
   * only so far, one process per GPU (local rank r uses device r mod the device count).
   */
  device?: Device;
}

export interface ParamInfo {
  /** Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  shape: number[];
  numel: number;
}

/**
 * Sequences packed back to back: sequence s holds tokens [cuSeqlens[s], cuSeqlens[s+1]).
 * targets[t] is the token whose log-prob is wanted at position t (-1: none).
 */
export interface PackedBatch {
  tokens: Int32Array;
  cuSeqlens: Int32Array;
  targets: Int32Array;
  /** Rotary positions, [P, T] (P = 3 for multi-section rope). Default: 0, 1, 2... in each sequence. */
  positions?: Int32Array;
  /**
   * Qwen3-VL images, in the order of their image tokens: (t, h, w) patch grid triples, and the
   * [patches, patchInputs] pixel rows in merge-block order (src/model/vision/image-processor.ts).
   * Each image fills t*h*w/merge^2 consecutive image tokens.
   */
  imageGrids?: Int32Array;
  pixels?: Float32Array;
}

export interface ForwardOptions {
  /** Logits are divided by this before the softmax (sampling temperature). Default 1. */
  temperature?: number;
  /**
   * Also return the entropy of each token's distribution: 0, with no gradient, at rows whose target is -1
   * (the vocabulary head runs only on rows with a target).
   */
  entropy?: boolean;
  /** Keep activations for backward(). */
  training?: boolean;
  /** Also return the full [T, vocab] logits (tests and debugging; costs T*vocab floats). */
  logits?: boolean;
}

export interface ForwardResult {
  logp: Float32Array;
  entropy?: Float32Array;
  logits?: Float32Array;
}

export interface ActivationPlan {
  tokens: number;
  recompute: boolean;
  perLayerBytes: number;
  streamBytes: number;
  scratchBytes: number;
  /** Qwen3-VL: the vision tower's activations for the batch's image patches (its blocks recompute too). */
  visionBytes: number;
  totalBytes: number;
}

export interface OptimizerStepOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this (0 or absent: no clipping). */
  maxGradNorm?: number;
  /** One flag per parameter (params() order): whether weight decay applies. Default all. */
  decay?: boolean[];
}

export interface StepResult {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** True when a gradient was NaN/Inf: nothing was updated. */
  skipped: boolean;
  /** Number of optimizer steps taken so far. */
  step: number;
}

/** AdamW's state in the flat parameter order (params()), for checkpoints that resume exactly. */
export interface OptimizerState {
  /** Optimizer steps taken (bias correction depends on it). */
  step: number;
  /**
   * First and second moments of the parameters this process owns (optimizerShard(): all of them
   * in a single process, numParameters floats), in parameter order; zeros before the first step.
   */
  m: Float32Array;
  v: Float32Array;
}

/** The parameters whose optimizer state (and checkpoint files) this rank owns in data parallel. */
export interface OptimizerShard {
  rank: number;
  /** Ranks the parameters are split between (1 until setDataParallel). */
  size: number;
  /** The owned parameters, consecutive in parameters() order (none when one tensor outweighs a rank's share). */
  parameters: readonly ParamInfo[];
  /** Their floats in all. */
  numel: number;
}

interface NativeModel {
  params(): ParamInfo[];
  getParam(name: string): Float32Array;
  setParam(name: string, data: Float32Array): void;
  getGrad(name: string): Float32Array;
  forward(batch: PackedBatch, options: ForwardOptions): Promise<ForwardResult>;
  backward(grads: { dlogp: Float32Array; dentropy?: Float32Array }): Promise<void>;
  zeroGrad(): void;
  optimizerStep(options: OptimizerStepOptions): Promise<StepResult>;
  getOptimizerState(): OptimizerState;
  setOptimizerState(state: OptimizerState): void;
  setDataParallel(): void;
  optimizerShard(): { rank: number; size: number; firstParam: number; endParam: number; numel: number };
  setRecompute(on: boolean): void;
  setVisionFrozen(frozen: boolean): void;
  activationPlan(tokens: number, training?: boolean, imagePatches?: number): ActivationPlan;
  numParams(): number;
  routing(): RoutingStats;
  setAuxLossWeight(weight: number): void;
}

interface ModelAddon {
  Qwen3Model: new (config: Qwen3Config, options?: ModelOptions) => NativeModel;
}

// The native object behind each Model, for the other native-backed parts of medix (the generator
// binds to it). Kept here rather than as a public member so that Model's API stays the user's.
const nativeHandles = new WeakMap<Model, NativeModel>();

/** The addon object of `model`, to pass to another native constructor. Internal: not exported by the package. */
export function nativeModelHandle(model: Model): unknown {
  const handle = nativeHandles.get(model);
  if (!handle) throw new TypeError('nativeModelHandle: not a Model made by Model.create or loadModel');
  return handle;
}

/**
 * A Qwen3 decoder on the engine. Weights stay in native memory; get/set copy named tensors.
 * forward/backward/optimizerStep run off the JS thread; one of them at a time per model.
 */
export class Model {
  readonly config: Readonly<Qwen3Config>;
  private readonly handle: NativeModel;
  private readonly paramList: ParamInfo[];
  private frozenVision = false;

  private constructor(
    config: Qwen3Config,
    handle: NativeModel,
    /** Where the weights live and the ops run. */
    readonly device: Device,
  ) {
    this.config = Object.freeze({ ...config });
    this.handle = handle;
    this.paramList = handle.params();
    nativeHandles.set(this, handle);
  }

  /** A randomly initialised model (Hugging Face's init: normal(0, initStd) matrices, unit norms). */
  static create(config: Qwen3Config, options: ModelOptions = {}): Model {
    const { Qwen3Model } = native<ModelAddon>();
    return new Model(config, new Qwen3Model(config, options), options.device ?? 'cpu');
  }

  /** Every parameter tensor, in the engine's flat order. */
  parameters(): readonly ParamInfo[] {
    return this.paramList;
  }

  get numParameters(): number {
    return this.handle.numParams();
  }

  getParameter(name: string): Float32Array {
    return this.handle.getParam(name);
  }

  /** Copies data (exactly numel finite values) into the named parameter. */
  setParameter(name: string, data: Float32Array): void {
    this.handle.setParam(name, data);
  }

  /** The accumulated gradient of a parameter (zeros before any backward). */
  getGradient(name: string): Float32Array {
    return this.handle.getGrad(name);
  }

  /** Per-token log-probs of batch.targets (0 where the target is -1). */
  async forward(batch: PackedBatch, options: ForwardOptions = {}): Promise<ForwardResult> {
    // async: bad input is always a rejected promise, never a synchronous throw.
    return this.handle.forward(batch, options);
  }

  /**
   * Accumulates into the gradients d/dθ of sum_t dlogp[t]*logp[t] (+ dentropy[t]*entropy[t]) for the
   * last training forward.
   */
  async backward(grads: { dlogp: Float32Array; dentropy?: Float32Array }): Promise<void> {
    return this.handle.backward(grads);
  }

  zeroGrad(): void {
    this.handle.zeroGrad();
  }

  /** A copy of the AdamW moments and step count. */
  getOptimizerState(): OptimizerState {
    return this.handle.getOptimizerState();
  }

  /** Restores AdamW state saved by getOptimizerState (lengths must equal optimizerShard().numel). */
  setOptimizerState(state: OptimizerState): void {
    this.handle.setOptimizerState(state);
  }

  /** Fresh AdamW moments and step count (e.g. when the objective changes). */
  resetOptimizerState(): void {
    const n = this.handle.optimizerShard().numel;
    this.handle.setOptimizerState({ step: 0, m: new Float32Array(n), v: new Float32Array(n) });
  }

  /**
   * Data parallel across the ranks of this process's world (src/engine/world.ts), with the
   * optimizer sharded: each rank keeps every weight and accumulates the gradients of its own
   * samples (normalised by the whole batch's counts, so the ranks' gradients add up to the batch's);
   * every optimizerStep sums each parameter's gradient onto the rank that owns it, which clips with
   * the global norm, updates it with the moments only it keeps, and sends the new values to all
   * ranks. The weights stay identical on every rank; each keeps 1/size of the optimizer state.
   * Every rank must then take each optimizer step together. Call before the first step and before
   * setOptimizerState. In a world of one process nothing changes.
   */
  setDataParallel(): void {
    this.handle.setDataParallel();
  }

  /** The parameters whose optimizer state this process owns (all of them until setDataParallel). */
  optimizerShard(): OptimizerShard {
    const s = this.handle.optimizerShard();
    return { rank: s.rank, size: s.size, parameters: this.paramList.slice(s.firstParam, s.endParam), numel: s.numel };
  }

  /**
   * Qwen3-VL (worker.actor.model.freeze_vision_tower): backward stops at the tower's outputs, so its
   * gradients stay zero; AdamW also exempts its tensors from weight decay, so an update leaves them as they are.
   */
  setVisionFrozen(frozen: boolean): void {
    this.handle.setVisionFrozen(frozen);
    this.frozenVision = frozen;
  }

  /** Whether setVisionFrozen(true) is in force. */
  get visionFrozen(): boolean {
    return this.frozenVision;
  }

  setRecompute(on: boolean): void {
    this.handle.setRecompute(on);
  }

  /** Activation memory the model plans for a batch of `tokens` tokens with `imagePatches` image patches (Qwen3-VL). */
  activationPlan(tokens: number, training = true, imagePatches = 0): ActivationPlan {
    return this.handle.activationPlan(tokens, training, imagePatches);
  }

  /** Routing figures of the last forward (empty arrays for a dense model). */
  routing(): RoutingStats {
    return this.handle.routing();
  }

  /**
   * backward() adds weight * d(sum over the batch's sequences of the load-balancing loss)/dθ
   * (0 by default; a trainer sets routerAuxLossCoef times its objective's normalisation).
   */
  setAuxLossWeight(weight: number): void {
    this.handle.setAuxLossWeight(weight);
  }

  /** Low-level optimizer step; prefer the AdamW class, which keeps the settings. */
  async optimizerStep(options: OptimizerStepOptions): Promise<StepResult> {
    return this.handle.optimizerStep(options);
  }
}

/**
 * Packs token sequences back to back for forward(): targets are the next token of the same
 * sequence (-1 at each sequence's last token).
 */
export function packSequences(seqs: ArrayLike<number>[]): PackedBatch {
  const T = seqs.reduce((n, s) => n + s.length, 0);
  const tokens = new Int32Array(T);
  const targets = new Int32Array(T).fill(-1);
  const cuSeqlens = new Int32Array(seqs.length + 1);
  let at = 0;
  seqs.forEach((s, i) => {
    for (let j = 0; j < s.length; j++) {
      tokens[at + j] = s[j];
      if (j + 1 < s.length) targets[at + j] = s[j + 1];
    }
    at += s.length;
    cuSeqlens[i + 1] = at;
  });
  return { tokens, cuSeqlens, targets };
}
