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
  OptimizerShard,
} from './engine/model.js';
export { world, World } from './engine/world.js';
export type { WorldBackend } from './engine/world.js';
export { AdamW } from './engine/optimizer.js';
export type { AdamWOptions } from './engine/optimizer.js';
export { logprobForward, logprobBackward } from './engine/logprob.js';
export type { LogprobOptions } from './engine/logprob.js';
export { policyLoss } from './rl/policy-loss.js';
export type {
  PolicyLossKind,
  PolicyLossOptions,
  PolicyLossInputs,
  PolicyLossMetrics,
  PolicyLossResult,
} from './rl/policy-loss.js';
export { sftLoss } from './rl/sft-loss.js';
export type { SftLossResult } from './rl/sft-loss.js';
export { klValues } from './rl/kl-estimator.js';
export type { KlEstimator } from './rl/kl-estimator.js';
export type { LossAgg, AggOptions } from './rl/aggregation.js';
export {
  setThreads,
  threads,
  gemmKernels,
  setGemmKernel,
  gemmKernel,
  gemmMicroKernels,
  gemmMicroKernel,
  setGemmMicroKernel,
  buildInfo,
  readBandwidth,
  loadCudaLibrary,
} from './engine/system.js';
export type { GemmKernelName, BuildInfo, CudaLibraryName } from './engine/system.js';
export { loadModel, readHfConfig, CheckpointError } from './model/load.js';
export type { LoadOptions } from './model/load.js';
export type { HfModelInfo } from './model/hf-config.js';
export { ConfigError } from './model/hf-config.js';
export { SafetensorsFile, SafetensorsError } from './model/safetensors.js';
// Qwen3-VL inputs: image preprocessing (in-thread or on a worker pool) and multimodal rope positions.
export { processImage, patchify, readImageProcessorConfig } from './model/vision/image-processor.js';
export type { ImageProcessorConfig, ProcessedImage } from './model/vision/image-processor.js';
export { ImagePool } from './model/vision/image-pool.js';
export { multimodalPositions, packedMultimodalPositions } from './model/vision/rope-index.js';
export type { VisionTowerConfig } from './engine/vision.js';
// LLM-as-judge evaluation (`medix eval`): phases, tasks, scoring; usable from a trainer's validation.
export { runEval, PHASES, EvalRunError } from './eval/run-eval.js';
export type { Phase, EvalRunOptions, EvalRunResult } from './eval/run-eval.js';
export { loadTasks, parseTasks, selectTasks, DEFAULT_TASKS_FILE, TaskFileError } from './eval/tasks.js';
export type { TaskSpec } from './eval/tasks.js';
export { readBenchmark, EvalDataError } from './eval/benchmark-data.js';
export type { BenchmarkItem } from './eval/benchmark-data.js';
export { computeScores, formatScoreTable, ScoreError } from './eval/scores.js';
export type { EvalScores, TaskScoreRow } from './eval/scores.js';
export { compareDirs, formatComparison, readScores } from './eval/compare.js';
export { judgeSample } from './eval/judge-sample.js';
export { parseVerdict, combineRounds } from './eval/verdict.js';
export { stripReasoning } from './eval/answer.js';
export { EngineChatModel } from './eval/engine-model.js';
export type { ChatModel, ChatRequest, ChatReply } from './eval/chat.js';
export {
  loadTokenizer,
  defaultTokenizerDir,
  HfTokenizer,
  IncrementalDetokenizer,
  TokenizerError,
  encodeChatPrompt,
} from './tokenizer/index.js';
export type { DetokenizerOptions, EncodedChat } from './tokenizer/index.js';
export type { TextTokenizer, ChatMessage, ChatContentPart, ChatTemplateOptions } from './tokenizer/types.js';
export { Qwen3GenerationEngine, createGenerationEngine, GenerationRequestError } from './generate/engine.js';
export type { EngineOptions, EngineStats } from './generate/engine.js';
export { sampleLogits, samplingDistribution } from './generate/native-generator.js';
export type { NativeSamplerParams } from './generate/native-generator.js';
export type {
  GenerationEngine,
  GenerationRequest,
  GenerationResult,
  GeneratedSample,
  SamplingParams,
  TokenEvent,
  FinishReason,
} from './generate/types.js';
export { startServer } from './serve/server.js';
export type { ServerOptions, RunningServer } from './serve/server.js';
export { CompositeReward, JudgeOutageError } from './reward/composite.js';
export type {
  RewardResult,
  RewardStats,
  CompositeRewardOptions,
  CustomRewardFn,
  GroupResponse,
} from './reward/composite.js';
export type { RewardFunctionInput, RewardFunctionScore } from './reward/reward-function.js';
export { parseRewardConfig, RewardConfigError } from './reward/config.js';
export type { RewardConfig } from './reward/config.js';
export { OnnxEmbedder, EmbeddingModelError, cosine } from './reward/embedding.js';
export type { EmbedderOptions, Pooling } from './reward/embedding.js';
export { ChatClient, ChatEndpointError } from './judge/chat-client.js';
export type { ChatClientOptions, ChatCall, ChatAnswer, Availability } from './judge/chat-client.js';
export { JsonlCache, cacheKey } from './judge/cache.js';
export { saveModel } from './model/save.js';
export type { SaveOptions } from './model/save.js';
export { Trainer, UnfilledBatchError } from './train/trainer.js';
export { saveCheckpoint, loadCheckpoint, latestValidCheckpoint } from './train/checkpoint.js';
export type { LoadCheckpointOptions } from './train/checkpoint.js';
export { saveCheckpointAcross } from './train/checkpoint-sharded.js';
export { mergeCheckpoint } from './train/merge.js';
// trainer.logger's metrics backends (TensorBoard event files, MLflow REST, W&B JS SDK).
export { startMetricsBackends, MetricsBackends, LOGGERS } from './train/loggers/index.js';
export type { MetricsBackend, LoggerName } from './train/loggers/index.js';
export { TensorBoardBackend } from './train/loggers/tensorboard.js';
// RL algorithm functions (advantages, DAPO filtering and overlong shaping, KL in reward, LR schedule, batch splitting).
export * from './rl/index.js';
// The EasyR1-shaped training config: schema, YAML loading, typed dotted overrides.
export {
  trainingConfigSchema,
  loadTrainingConfig,
  parseTrainingConfig,
  resolveConfigPaths,
  trainingConfigToYaml,
  klPlacement,
  applyOverride,
  applyOverrides,
  TrainingConfigError,
} from './config/index.js';
export type {
  TrainingConfig,
  DataConfig,
  AlgorithmConfig,
  ActorConfig,
  RolloutConfig,
  RefConfig,
  SftConfig,
  TrainerConfig,
} from './config/index.js';
// Training data: JSONL / Parquet / Arrow loading (files, shard and save_to_disk directories, the hub cache) with the bad-row policy, checked images (Qwen-VL resize),
// prompt templates with the length filter, and the seeded resumable sample order.
export {
  loadRlDataset,
  loadDatasetFromConfig,
  promptFormatterFor,
  PromptFormatter,
  PromptError,
  DataError,
  ImageFault,
  decodeImage,
  smartResize,
  imageTokenCount,
  confinedImagePath,
  readRecords,
  DataOrder,
  epochOrder,
  resolveDataFiles,
  hubCacheDir,
} from './data/index.js';
export type {
  RlSample,
  RlDataset,
  DatasetStats,
  LoadDatasetOptions,
  ImageSource,
  ImageSize,
  DecodedImage,
  ResizeBounds,
  EncodedPrompt,
  DataPosition,
} from './data/index.js';
