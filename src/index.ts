// The public TypeScript API of medix: the engine (model, losses, optimizer, system controls) and
// Hugging Face checkpoint loading. Everything numeric runs in the native addon.
export { Model, packSequences } from './engine/model.js';
export type {
  Qwen3Config,
  ModelOptions,
  ParamInfo,
  PackedBatch,
  ForwardOptions,
  ForwardResult,
  ActivationPlan,
  OptimizerStepOptions,
  StepResult,
  OptimizerState,
} from './engine/model.js';
export { AdamW } from './engine/optimizer.js';
export type { AdamWOptions } from './engine/optimizer.js';
export { policyLoss, sftLoss, logprobForward, logprobBackward } from './engine/losses.js';
export type {
  LossAgg,
  PolicyLossKind,
  KlEstimator,
  AggOptions,
  PolicyLossOptions,
  PolicyLossInputs,
  PolicyLossMetrics,
  PolicyLossResult,
  SftLossResult,
  LogprobOptions,
} from './engine/losses.js';
export { setThreads, threads, gemmKernels, setGemmKernel, gemmKernel, buildInfo } from './engine/system.js';
export type { GemmKernelName, BuildInfo } from './engine/system.js';
export { loadModel, readHfConfig, CheckpointError } from './model/load.js';
export { ConfigError } from './model/hf-config.js';
export { SafetensorsFile, SafetensorsError } from './model/safetensors.js';
