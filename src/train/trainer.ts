// The RL trainer: optional SFT warm-up, then steps of rollout (continuous-batching generation,
// rewards scored as each prompt's samples finish), DAPO filtering, old and reference log-probs, KL
// in the reward, advantages, PPO epochs with micro-batch accumulation and AdamW, logging,
// validation and checkpoints that resume exactly.
//
// Under an MPI launcher every process runs this same loop as one rank of a data-parallel world
// (src/engine/world.ts): each rank generates and scores its share of the prompts (every size-th
// group, so a group's samples stay together) and computes its share of the log-probs; the results
// are exchanged, so every rank holds the whole batch and takes the same decisions (filtering,
// advantages, KL control, metrics). In the update each rank back-propagates its share of every
// mini-batch and the model's optimizer step combines the gradients (Model.setDataParallel), so the
// weights stay identical everywhere. A sample's seed depends on its place in the batch, never on
// the rank, so a run's result does not depend on the number of processes beyond float rounding.
// Only the root (rank 0) writes logs, progress and the report; checkpoints are written by all.
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { requireDevice } from '../engine/device.js';
import { setComputeDtype } from '../engine/bf16.js';
import { Model, type Qwen3Config } from '../engine/model.js';
import { AdamW } from '../engine/optimizer.js';
import { setThreads } from '../engine/system.js';
import { world, type World } from '../engine/world.js';
import { createGenerationEngine, type Qwen3GenerationEngine } from '../generate/engine.js';
import type { GeneratedSample } from '../generate/types.js';
import { klValues } from '../rl/kl-estimator.js';
import { loadModel, readHfConfig } from '../model/load.js';
import { assertTrainingFits } from '../model/memory-check.js';
import { renderReport } from '../report/html.js';
import { readRun, RUN_FILES } from '../report/run-files.js';
import { CompositeReward, type RewardResult } from '../reward/composite.js';
import { loadTokenizer, defaultTokenizerDir } from '../tokenizer/index.js';
import type { HfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import {
  applyKlPenalty,
  computeAdvantages,
  createKlController,
  fillFilteredBatch,
  groupIndices,
  learningRateAt,
  scoresToTokenRewards,
  shapeOverlongRewards,
  type FilledBatch,
  type KlController,
  type KlControllerState,
  type LrScheduleOptions,
} from '../rl/index.js';
import { loadCheckpoint } from './checkpoint.js';
import { saveCheckpointAcross } from './checkpoint-sharded.js';
import { saveFullShardCheckpoint } from './checkpoint-full-shard.js';
import { fullShard, fullShardMemory, isFullShard, withWholeWeights } from '../engine/full-shard.js';
import { klPlacement, trainingConfigToYaml, type TrainingConfig } from '../config/index.js';
import {
  DataError,
  DataOrder,
  loadDatasetFromConfig,
  promptFormatterFor,
  type DataPosition,
  type RlSample,
} from '../data/index.js';
import type { Experience } from './experience.js';
import { Progress } from './progress.js';
import { ReferencePolicy } from './reference.js';
import { resumePoint, type ResumePoint } from './resume.js';
import { sftTarget, type SftTarget } from './sft-target.js';
import { StageClock } from './stage-clock.js';
import { accuracyByModality, validationMetrics } from './validation-metrics.js';
import { REWARD_COMPONENTS } from '../reward/components.js';
import { RunLog } from './run-log.js';
import { startMetricsBackends } from './loggers/index.js';
import { computeLogprobs, policyUpdate, sftUpdate } from './update.js';
import { advantageOptions, onlineFilterKeep, policyLossOptions } from './rl-options.js';
import { ropeIndexOptionsOf } from './experience.js';
import { checkImageTokens, RowImages, withoutImageToken } from './row-images.js';
import { ImagePool } from '../model/vision/image-pool.js';
import { readImageProcessorConfig, type ProcessedImage } from '../model/vision/image-processor.js';

export interface TrainRunOptions {
  /** Continue from the run directory's newest valid checkpoint (trainer.load_checkpoint_path, when set, names one instead). */
  resume?: boolean;
  /** Where relative paths in the config are resolved (the config file's folder). */
  baseDir?: string;
  log?: (message: string) => void;
}

/** What Trainer.prepare found: the run's inputs before its model is loaded (see there). */
export interface TrainingPlan {
  w: World;
  log: (m: string) => void;
  /** A config path resolved against the config file's folder. */
  path: (p: string) => string;
  runDir: string;
  tokenizer: HfTokenizer;
  tokenizerDir: string;
  reward: CompositeReward;
  prompts: Prompts;
  loadSplit: (split: 'train' | 'val' | 'sft') => Promise<RlSample[]>;
  train: RlSample[];
  /** The held-out rows validation uses (data.val_batch_size applied). */
  val: RlSample[];
  images: RowImages | null;
  /** The checkpoint a resume starts from, or null for a fresh start. */
  from: ResumePoint | null;
}

export interface TrainSummary {
  run_dir: string;
  steps: number;
  /** trainer.val_before_train: the held-out reward of the model before any training (null when not measured). */
  heldout_reward_before_train: number | null;
  heldout_reward_after_sft: number | null;
  heldout_reward_after_rl: number | null;
  /** The held-out mean of accuracy_llm (the judge's verdict; without a judge, the exact answer) after SFT and after RL. */
  heldout_accuracy_after_sft: number | null;
  heldout_accuracy_after_rl: number | null;
  /**
   * The same per modality of the held-out rows (validationMetrics; null: no sample had an accuracy). {}
   * without val_files, with one modality, without SFT (after_sft) or resumed from an older checkpoint.
   */
  heldout_accuracy_by_modality_after_sft: Record<string, number | null>;
  heldout_accuracy_by_modality_after_rl: Record<string, number | null>;
  report: string;
  /** Failures per metrics backend of trainer.logger (none: {}); a failing backend never stops training. */
  logger_failures: Record<string, number>;
}

interface State {
  step: number;
  data: DataPosition;
  optimizerSteps: number;
  sftDone: boolean;
  /** Absent until trainer.val_before_train has had its turn (null: not measured), so a resumed run never repeats it. */
  heldoutBeforeTrain?: number | null;
  heldoutAfterSft: number | null;
  /** Absent in checkpoints of runs from before it was recorded. */
  heldoutAccuracyAfterSft?: number | null;
  /** Absent in checkpoints of runs from before it was recorded. */
  heldoutAccuracyByModalityAfterSft?: Record<string, number | null>;
  /** The KL-in-reward controller after the last step (its coefficient moves when adaptive). */
  klController?: KlControllerState;
  [key: string]: unknown;
}

/** A request seed that depends only on the run seed and where the request sits, never on timing. */
function requestSeed(...parts: number[]): number {
  let h = 2166136261;
  for (const p of parts) h = Math.imul(h ^ (p >>> 0), 16777619) >>> 0;
  return h % 2 ** 31;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

type ModelInit = NonNullable<TrainingConfig['worker']['actor']['model']['init']>;

/** worker.actor.model.init's keys (Hugging Face's names) and the engine's. */
const INIT_KEYS = {
  vocab_size: 'vocabSize',
  hidden_size: 'hiddenSize',
  intermediate_size: 'intermediateSize',
  num_hidden_layers: 'numLayers',
  num_attention_heads: 'numHeads',
  num_key_value_heads: 'numKvHeads',
  head_dim: 'headDim',
  rope_theta: 'ropeTheta',
  rms_norm_eps: 'rmsEps',
  tie_word_embeddings: 'tieEmbeddings',
} as const satisfies Partial<Record<keyof ModelInit, keyof Qwen3Config>>;

function modelConfigFromInit(init: ModelInit, vocab: number): Qwen3Config {
  const c = Object.fromEntries(Object.entries(INIT_KEYS).map(([key, k]) => [k, init[key as keyof ModelInit]]));
  return { ...c, vocabSize: init.vocab_size ?? vocab } as Qwen3Config;
}

/**
 * A resumed run continues the model its checkpoint holds: worker.actor.model.init of another shape is a
 * mistake (it would be ignored), refused naming the keys that differ.
 */
function assertInitMatches(init: ModelInit, have: Qwen3Config, vocab: number, checkpoint: string): void {
  const want = modelConfigFromInit(init, vocab);
  const differ = Object.entries(INIT_KEYS).filter(([, k]) => want[k] !== undefined && want[k] !== have[k]);
  if (differ.length === 0) return;
  const asked = differ.map(([key, k]) => `${key} ${want[k]}`).join(', ');
  const held = differ.map(([key, k]) => `${key} ${have[k]}`).join(', ');
  throw new Error(
    `worker.actor.model.init asks for ${asked}, but the checkpoint ${checkpoint} holds a model with ${held}: a resumed run continues the model it saved; to train another shape, start a new run (a new trainer.save_checkpoint_path, without --resume or trainer.load_checkpoint_path)`,
  );
}

/** Model inputs of a data row: the chat prompt's token ids, and the SFT target. */
interface Prompts {
  promptIds(row: RlSample): number[];
  sft: SftTarget;
}

interface Rollout {
  row: RlSample;
  group: number;
  promptIds: number[];
  /** The prompt's images, preprocessed once for the step (not exchanged between ranks: each takes them from its own RowImages). */
  images: ProcessedImage[];
  sample: GeneratedSample;
  reward: RewardResult;
}

/** Online filtering could not fill a batch in algorithm.max_try_make_batch rounds (on_unfilled_batch: error). */
export class UnfilledBatchError extends Error {
  override name = 'UnfilledBatchError';
}

/** One round of rollouts, every rank's, with this rank's timings (seconds from the round's start). */
interface RolloutRound {
  rollouts: Rollout[];
  /** Until the last response was generated. */
  genSeconds: number;
  /** From then until the last reward. */
  rewardTailSeconds: number;
  /** Qwen3-VL: until every image of the round was preprocessed (on the image pool's thread). */
  imageSeconds: number;
  /**
   * Qwen3-VL: until the first generation started, or every image was preprocessed if that came first.
   * Preprocessing overlaps generation when this is below imageSeconds: generation starts with the first
   * row's images and later rows' are preprocessed meanwhile.
   */
  imageWaitSeconds: number;
}

/** A step's rollouts: every one (`all`), those of the groups kept for training, and the filling's record. */
interface StepBatch {
  all: Rollout[];
  kept: Rollout[];
  filled: FilledBatch<Rollout[]>;
  /** Qwen3-VL: RolloutRound's image timings, summed over the rounds. */
  imageSeconds: number;
  imageWaitSeconds: number;
}

/** A row whose images cannot be preprocessed: its index in the rows asked about, and why (naming the image). */
interface RowImageFault {
  i: number;
  why: string;
}

export class Trainer {
  private constructor(
    private readonly cfg: TrainingConfig,
    private readonly runDir: string,
    private model: Model,
    private readonly tokenizer: HfTokenizer,
    private readonly tokenizerDir: string,
    private readonly modelConfigJson: Record<string, unknown> | undefined,
    private readonly reward: CompositeReward,
    private readonly prompts: Prompts,
    private readonly train: RlSample[],
    private readonly val: RlSample[],
    /** The SFT warm-up's rows: those of sft.train_files, or the training rows. */
    private readonly sftRows: RlSample[],
    private state: State,
    private readonly log: (m: string) => void,
    /** The run directory of the checkpoint this run forked from, whose reference model it takes over. */
    private readonly referenceSource: string | null,
    private readonly world: World,
    /** Qwen3-VL: the rows' preprocessed images (null for a model without a vision tower). */
    private readonly images: RowImages | null,
  ) {}

  /**
   * Rows (training and validation) found to have images that cannot be preprocessed, left out under
   * data.on_bad_row: skip (badRows) until the run stops: a resumed run finds them again.
   */
  private readonly badImageRows = new Set<RlSample>();

  /**
   * This rank's faults among `rows`' images (index and cause), preprocessing every row not already known
   * bad, this rank's share first (its generation waits on those). Never rejects for an image fault.
   */
  private async imageFaults(rows: readonly RlSample[]): Promise<RowImageFault[]> {
    const images = this.images;
    if (!images) return [];
    const indices = rows.map((_, i) => i);
    const mine = new Set(this.world.share(indices));
    const order = [...indices.filter((i) => mine.has(i)), ...indices.filter((i) => !mine.has(i))];
    const faults = await Promise.all(
      order.map(async (i) => ({ i, why: this.badImageRows.has(rows[i]) ? null : await images.fault(rows[i]) })),
    );
    return faults.filter((f): f is RowImageFault => f.why !== null).sort((a, b) => a.i - b.i);
  }

  /**
   * The rows among `rows` whose images cannot be preprocessed (`faults`, this rank's imageFaults): bad
   * rows under data.on_bad_row, as the loader's are (it reads only each image's header, so a file cut
   * short shows here). The ranks pool what they found (a file may fail on one node only), so all decide
   * alike and at the same point: 'stop' stops the run naming the row, the image and the cause; 'skip'
   * says so once per row and leaves the row out from then on. A collective when there are several ranks.
   */
  private async badRows(rows: readonly RlSample[], faults: RowImageFault[]): Promise<Set<RlSample>> {
    if (!this.images) return new Set();
    const found = (await this.world.allgatherJson(faults)).flat();
    for (const { i, why } of found.sort((a, b) => a.i - b.i)) {
      const row = rows[i];
      if (this.badImageRows.has(row)) continue; // drawn twice in one round, or found by two ranks
      if (this.cfg.data.on_bad_row === 'stop')
        throw new DataError(`${why} (data.on_bad_row is 'stop')`, row.where.file, row.where.row);
      this.badImageRows.add(row);
      this.log(`medix train: ${why}: the row is skipped from now on (data.on_bad_row is 'skip')`);
    }
    if (this.train.every((row) => this.badImageRows.has(row)))
      throw new DataError('data.train_files: every row has an image that cannot be decoded (see the messages above)');
    return new Set(rows.filter((row) => this.badImageRows.has(row)));
  }

  /** Stops the reward workers (saving the judge cache) and the image pool, at the end of a run or when it stops. */
  private async closeWorkers(): Promise<void> {
    await this.reward.close();
    await this.images?.close();
  }

  /** A row's prompt as the model takes it, with the row's preprocessed images (their tokens checked against the prompt). */
  private async modelInputs(row: RlSample): Promise<{ promptIds: number[]; images: ProcessedImage[] }> {
    const vision = ropeIndexOptionsOf(this.model.config);
    const ids = this.prompts.promptIds(row);
    if (!this.images || !vision) return { promptIds: ids, images: [] };
    const images = await this.images.of(row);
    checkImageTokens(ids, images, vision, row.id);
    return { promptIds: ids, images };
  }

  /**
   * Everything a run checks, reads and builds before its model is loaded, writing nothing: the config's
   * model fits this machine, the tokenizer, the reward (its embedding model loaded, its custom functions
   * imported), the data splits, the image processor and where a resume would start. `medix train --check`
   * stops here; create() goes on from it.
   */
  static async prepare(cfg: TrainingConfig, o: TrainRunOptions = {}): Promise<TrainingPlan> {
    const w = world();
    const log = w.isRoot ? (o.log ?? ((m: string) => console.error(m))) : () => {};
    const base = o.baseDir ?? process.cwd();
    const path = (p: string) => resolve(base, p);
    if (cfg.trainer.threads > 0) setThreads(cfg.trainer.threads);
    else if (w.localSize > 1) setThreads(Math.max(1, Math.floor(availableParallelism() / w.localSize))); // ranks on one machine share its cores
    requireDevice(cfg.worker.actor.device, 'worker.actor.device');
    requireDevice(cfg.worker.rollout.device, 'worker.rollout.device');
    const runDir = path(cfg.trainer.save_checkpoint_path);
    const m = cfg.worker.actor.model;
    // A model the engine cannot run, or this machine cannot train (e.g. the 30B-A3B recipe's on a
    // small host), is refused before anything is loaded or written.
    if (m.model_path)
      assertTrainingFits(
        readHfConfig(path(m.model_path)).config,
        `worker.actor.model.model_path ${m.model_path}`,
        totalmem(),
        {
          device: cfg.worker.actor.device,
          ranks: w.size,
          localRanks: w.localSize,
          fullShard: cfg.worker.actor.fsdp.enable_full_shard,
        },
      );
    const tokenizerDir = m.tokenizer_path
      ? path(m.tokenizer_path)
      : m.model_path
        ? path(m.model_path)
        : defaultTokenizerDir();
    const tokenizer = await loadTokenizer(tokenizerDir);
    const reward = await CompositeReward.create(cfg.worker.reward, { baseDir: base, warn: log });
    const formatter = promptFormatterFor(cfg.data, tokenizer);
    const prompts: Prompts = {
      promptIds: (r) => formatter.encode(r.question, r.imageSizes).ids,
      sft: sftTarget(tokenizer, cfg.sft.response_template),
    };

    // A model without a vision tower cannot answer image rows faithfully: they are skipped and counted.
    const hasVision = m.model_path !== undefined && readHfConfig(path(m.model_path)).config.vision !== undefined;
    // sft.train_files is read as data.train_files is, with data's keys and limits.
    const loadSplit = async (split: 'train' | 'val' | 'sft') => {
      const [data, key] =
        split === 'sft'
          ? [{ ...cfg.data, train_files: cfg.sft.train_files! }, 'sft.train_files']
          : [cfg.data, `data.${split}_files`];
      const { samples, stats } = await loadDatasetFromConfig(data, split === 'val' ? 'val' : 'train', tokenizer, {
        warn: log,
      });
      const used = hasVision ? samples : samples.filter((r) => r.images.length === 0);
      const skipped = { bad: stats.badRows, overlong: stats.overlongPrompts, images: samples.length - used.length };
      if (skipped.bad || skipped.images || skipped.overlong)
        log(
          `medix train: ${split}: ${used.length} rows used; skipped ${skipped.bad} bad, ${skipped.overlong} over max_prompt_length, ${skipped.images} with images (the model has no vision tower)`,
        );
      if (used.length === 0) throw new Error(`${key}: no usable rows for this model`);
      return used;
    };
    const train = await loadSplit('train');
    // The whole validation split, as the reference validates, unless data.val_batch_size caps it.
    const valRows = cfg.data.val_files ? await loadSplit('val') : [];
    const val = cfg.data.val_batch_size > 0 ? valRows.slice(0, cfg.data.val_batch_size) : valRows;
    // Qwen3-VL: the model's image processor, within the data's pixel bounds (as EasyR1 passes them).
    const images = hasVision
      ? new RowImages(
          new ImagePool(
            {
              ...readImageProcessorConfig(join(path(m.model_path!), 'preprocessor_config.json')),
              minPixels: cfg.data.min_pixels,
              maxPixels: cfg.data.max_pixels,
            },
            1,
          ),
        )
      : null;

    const from = await w.fromRoot(() =>
      resumePoint(runDir, {
        loadCheckpointPath: cfg.trainer.load_checkpoint_path && path(cfg.trainer.load_checkpoint_path),
        resume: o.resume,
        warn: log,
      }),
    );
    return {
      w,
      log,
      path,
      runDir,
      tokenizer,
      tokenizerDir,
      reward,
      prompts,
      loadSplit,
      train,
      val,
      images,
      from,
    };
  }

  static async create(cfg: TrainingConfig, o: TrainRunOptions = {}): Promise<Trainer> {
    const { w, log, path, runDir, tokenizer, tokenizerDir, reward, prompts, loadSplit, train, val, images, from } =
      await Trainer.prepare(cfg, o);
    const m = cfg.worker.actor.model;
    mkdirSync(runDir, { recursive: true });
    const modelConfigJson = m.model_path
      ? (JSON.parse(readFileSync(join(path(m.model_path), 'config.json'), 'utf8')) as Record<string, unknown>)
      : undefined;

    let model: Model;
    let state: State = {
      step: 0,
      data: { epoch: 0, index: 0, seed: cfg.data.seed },
      optimizerSteps: 0,
      sftDone: cfg.sft.epochs === 0,
      heldoutAfterSft: null,
    };
    // Full sharding: weights, gradients and moments 1/N per rank; otherwise the moments alone (ZeRO-1).
    const fsdp = cfg.worker.actor.fsdp.enable_full_shard;
    if (from) {
      // The root has just verified it; the other ranks read what it verified.
      const ck = await loadCheckpoint(from.dir, {
        dataParallel: !fsdp,
        fullShard: fsdp,
        verify: w.isRoot,
        device: cfg.worker.actor.device,
      });
      model = ck.model;
      if (m.init) assertInitMatches(m.init, model.config, tokenizer.vocabSize, from.dir);
      // Every checkpoint comes after the validation before training (older ones lack the key).
      state = { heldoutBeforeTrain: null, ...(ck.trainer as State) };
      // A fork's logs start after its checkpoint: earlier steps are in the run it came from.
      if (w.isRoot) new RunLog(runDir).truncateAfter(from.fromOtherRun ? -1 : state.step);
      log(`medix train: resumed from ${from.dir} (step ${state.step})`);
    } else {
      // A fresh start: logs left by an attempt killed before its first checkpoint are discarded.
      if (w.isRoot) new RunLog(runDir).truncateAfter(-1);
      model = m.model_path
        ? await loadModel(path(m.model_path), { device: cfg.worker.actor.device })
        : Model.create(modelConfigFromInit(m.init!, tokenizer.vocabSize), {
            seed: m.init!.seed,
            device: cfg.worker.actor.device,
          });
      if (fsdp) fullShard(model);
      else model.setDataParallel();
    }
    // A run resumed after its warm-up does not read sft.train_files again (it may have moved since).
    const sftRows = !state.sftDone && cfg.sft.train_files ? await loadSplit('sft') : train;
    // Written once the model and the data are known to take it (a refused resume keeps the run's config.yaml).
    if (w.isRoot) atomicWriteFileSync(join(runDir, RUN_FILES.config), trainingConfigToYaml(cfg));
    model.setRecompute(m.enable_gradient_checkpointing);
    setComputeDtype(model, m.dtype);
    model.setVisionFrozen(m.freeze_vision_tower);
    return new Trainer(
      cfg,
      runDir,
      model,
      tokenizer,
      tokenizerDir,
      modelConfigJson,
      reward,
      prompts,
      train,
      val,
      sftRows,
      state,
      log,
      from?.fromOtherRun ? from.sourceRunDir : null,
      w,
      images,
    );
  }

  get totalSteps(): number {
    const perEpoch = Math.ceil(this.train.length / this.cfg.data.rollout_batch_size);
    return this.cfg.trainer.max_steps ?? this.cfg.trainer.total_epochs * perEpoch;
  }

  private engine(): Qwen3GenerationEngine {
    return createGenerationEngine(this.model, { tokenizer: this.tokenizer, maxBatchSize: 64 });
  }

  /**
   * The seed of a generation request: worker.rollout.seed (default trainer.seed) and where the
   * request sits, e.g. (step, index of the prompt among those the step drew), never on timing, on
   * how the prompts were split into rounds, or on which rank generates it.
   */
  private rolloutSeed(...where: number[]): number {
    return requestSeed(this.cfg.worker.rollout.seed ?? this.cfg.trainer.seed, ...where);
  }

  /**
   * Generates for `rows` (request seed `seedOf(i)` for rows[i]) and scores every sample as soon as
   * its prompt's samples are done; each rank does its share of the rows and receives the others',
   * so every rank returns all the rollouts in row order. The timings are this rank's.
   */
  private async rollout(
    rows: RlSample[],
    sampling: { n: number; temperature: number; topP: number; topK: number },
    seedOf: (i: number) => number,
  ): Promise<RolloutRound> {
    // Fully sharded, every rank gathers the whole weights once for the step's generation (collective).
    return withWholeWeights(this.model, () => this.rolloutWhole(rows, sampling, seedOf));
  }

  private async rolloutWhole(
    rows: RlSample[],
    sampling: { n: number; temperature: number; topP: number; topK: number },
    seedOf: (i: number) => number,
  ): Promise<RolloutRound> {
    const engine = this.engine();
    const t0 = performance.now();
    let genDone = t0;
    // Every row's images, preprocessed in the background while generation starts; a row whose images
    // fail here gets no rollouts, and the ranks decide on the bad rows together after generation.
    const faults = this.imageFaults(rows);
    faults.catch(() => {}); // awaited below: this only keeps a rejection before then from going unhandled
    // Settles either way (a rejection of `faults` is handled where it is awaited, below).
    const imagesDone = faults.then(
      () => performance.now(),
      () => performance.now(),
    );
    let firstGeneration = Number.POSITIVE_INFINITY;
    try {
      const perRow = this.world.share(rows.map((row, i) => ({ row, i }))).map(async ({ row, i }) => {
        if (this.badImageRows.has(row) || (await this.images?.fault(row))) return [];
        const { promptIds, images } = await this.modelInputs(row);
        const imageToken = this.model.config.vision ? this.model.config.imageTokenId : undefined;
        firstGeneration = Math.min(firstGeneration, performance.now());
        const result = await engine.generate({
          promptIds,
          images,
          params: {
            n: sampling.n,
            temperature: sampling.temperature,
            topP: sampling.topP,
            topK: sampling.topK,
            maxNewTokens: this.cfg.data.max_response_length,
            seed: seedOf(i),
            stopTokenIds: imageToken === undefined ? undefined : [imageToken],
          },
        });
        if (imageToken !== undefined) result.samples = result.samples.map((s) => withoutImageToken(s, imageToken));
        genDone = Math.max(genDone, performance.now());
        const rewards = await this.reward.scoreGroup(
          result.samples.map((s) => ({ response: s.text, responseLength: s.tokenIds.length })),
          row.answer,
        );
        return result.samples.map((sample, k) => ({ row, group: i, promptIds, images, sample, reward: rewards[k] }));
      });
      const generated = (await Promise.all(perRow)).flat();
      const bad = await this.badRows(rows, await faults);
      const mine = generated.filter((x) => !bad.has(x.row)); // a row another rank could not preprocess
      const end = performance.now();
      const imagesEnd = await imagesDone;
      return {
        rollouts: await this.exchangeRollouts(rows, mine),
        genSeconds: (genDone - t0) / 1000,
        rewardTailSeconds: (end - genDone) / 1000,
        imageSeconds: (imagesEnd - t0) / 1000,
        imageWaitSeconds: (Math.min(firstGeneration, imagesEnd) - t0) / 1000,
      };
    } finally {
      await engine.close();
    }
  }

  /** Every rank's rollouts of `rows`, in row (group) order and, within a group, sample order. */
  private async exchangeRollouts(rows: RlSample[], mine: Rollout[]): Promise<Rollout[]> {
    if (this.world.size === 1) return mine;
    const all = await this.world.allgatherJson(
      mine.map(({ group, promptIds, sample, reward }) => ({ group, promptIds, sample, reward })),
    );
    // Each group comes whole from one rank, so a stable sort by group restores the order.
    const sorted = all.flat().sort((a, b) => a.group - b.group);
    return Promise.all(
      sorted.map(async (x) => ({
        ...x,
        row: rows[x.group],
        images: this.images ? await this.images.of(rows[x.group]) : [],
      })),
    );
  }

  /**
   * Mean overall reward and components on the held-out rows with the validation sampling settings, and
   * the accuracy per modality (validationMetrics).
   */
  async validate(): Promise<Record<string, number>> {
    if (this.val.length === 0) return {};
    const v = this.cfg.worker.rollout.val_override_config;
    const { rollouts } = await this.rollout(
      this.val,
      { n: v.n, temperature: v.temperature, topP: v.top_p, topK: -1 },
      (i) => this.rolloutSeed(-1, i),
    );
    const out = validationMetrics(rollouts.map((r) => ({ answer: r.row.answer, reward: r.reward })));
    out['val/rows'] = this.val.length;
    this.images?.forget();
    return out;
  }

  private async checkpoint(): Promise<void> {
    const save = isFullShard(this.model) ? saveFullShardCheckpoint : saveCheckpointAcross;
    await save(this.world, this.runDir, this.model, this.state, {
      keep: this.cfg.trainer.save_limit,
      modelConfig: this.modelConfigJson,
      tokenizerDir: this.tokenizerDir,
    });
  }

  /**
   * trainer.val_before_train: the held-out reward of the model as given, before SFT and RL, logged
   * as step 0. It is part of the state from then on, so a resumed run keeps it and never repeats it.
   * runLog: the root's logs (null on the other ranks), as in sftWarmup.
   */
  private async validateBeforeTraining(runLog: RunLog | null): Promise<void> {
    const val = this.cfg.trainer.val_before_train ? await this.validate() : {};
    this.state.heldoutBeforeTrain = val['val/overall'] ?? null;
    if (this.state.heldoutBeforeTrain === null) return;
    runLog?.metrics({ step: 0, ...val });
    this.log(`medix train: held-out reward before training: ${this.state.heldoutBeforeTrain.toFixed(4)}`);
  }

  private async sftWarmup(runLog: RunLog | null): Promise<void> {
    const s = this.cfg.sft;
    // Image rows' pixels are kept for the whole warm-up (every epoch uses them), then let go.
    const bad = await this.badRows(this.sftRows, await this.imageFaults(this.sftRows));
    const exps: Experience[] = await Promise.all(
      this.sftRows
        .filter((row) => !bad.has(row))
        .map(async (row) => ({ ...(await this.modelInputs(row)), responseIds: this.prompts.sft(row.answer) })),
    );
    const file = s.train_files ?? this.cfg.data.train_files;
    // badRows refuses a training set without a usable row; the warm-up's own rows need the same.
    if (exps.length === 0)
      throw new DataError(`sft.train_files ${file}: every row has an image that cannot be decoded`);
    this.log(`medix train: SFT warm-up: ${s.epochs} epochs over ${exps.length} rows of ${file}`);
    const opt = new AdamW(this.model, {
      lr: s.lr,
      weightDecay: this.cfg.worker.actor.optim.weight_decay,
      maxGradNorm: this.cfg.worker.actor.max_grad_norm,
    });
    // One optimizer step per mini-batch of batch_size rows (sftUpdate); the schedule spans all epochs.
    const stepsPerEpoch = Math.ceil(exps.length / s.batch_size);
    const schedule: LrScheduleOptions = {
      lr: s.lr,
      totalSteps: s.epochs * stepsPerEpoch,
      type: s.lr_scheduler_type,
      minLrRatio: s.min_lr_ratio,
    };
    for (let epoch = 0; epoch < s.epochs; epoch++) {
      const t0 = performance.now();
      const order = exps
        .map((e, i) => ({ e, k: requestSeed(this.cfg.trainer.seed, 7, epoch, i) }))
        .sort((a, b) => a.k - b.k)
        .map((x) => x.e);
      const m = await sftUpdate(this.model, opt, order, {
        miniBatch: s.batch_size,
        microBatch: s.batch_size,
        epochs: 1,
        temperature: 1,
        lr: (i) => learningRateAt(epoch * stepsPerEpoch + i, schedule),
        world: this.world,
      });
      this.log(
        `medix train: SFT epoch ${epoch + 1}/${s.epochs}: loss ${m.loss.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
      runLog?.metrics({
        step: 0,
        'sft/epoch': epoch + 1,
        'sft/loss': m.loss,
        'sft/grad_norm': m.grad_norm,
        'sft/lr': m.lr, // of the epoch's last step
      });
    }
    this.images?.forget();
    // RL starts with fresh AdamW moments: the warm-up's moments describe another objective.
    this.model.resetOptimizerState();
    this.state.sftDone = true;
    const val = await this.validate();
    this.state.heldoutAfterSft = val['val/overall'] ?? null;
    this.state.heldoutAccuracyAfterSft = val['val/accuracy_llm'] ?? null;
    this.state.heldoutAccuracyByModalityAfterSft = accuracyByModality(val);
    if (this.state.heldoutAfterSft !== null)
      this.log(`medix train: held-out reward after SFT: ${this.state.heldoutAfterSft.toFixed(4)}`);
    await this.checkpoint();
  }

  /**
   * Per-token advantages of the kept rollouts with the configured estimator (src/rl): the reward
   * after DAPO's overlong shaping when enabled, on the last response token, minus the KL penalty on
   * every token when KL is in the reward. ReMax's baseline is the reward of one greedy response per
   * prompt (a plain reward: veRL does not charge the greedy response KL either).
   */
  private async advantages(
    rollouts: Rollout[],
    exps: readonly Experience[],
    klCtl: KlController | null,
    metrics: Record<string, number>,
  ): Promise<Float32Array[]> {
    const a = this.cfg.algorithm;
    const lengths = rollouts.map((r) => r.sample.tokenIds.length);
    let scores = rollouts.map((r) => r.reward.overall as number);
    if (a.overlong_buffer.enable) {
      const shaped = shapeOverlongRewards(scores, lengths, {
        maxResponseLength: this.cfg.data.max_response_length,
        bufferLength: a.overlong_buffer.len,
        penaltyFactor: a.overlong_buffer.penalty_factor,
      });
      scores = shaped.scores;
      Object.assign(metrics, shaped.metrics);
    }
    let greedyBaselines: number[] | undefined;
    if (a.adv_estimator === 'remax') {
      const groups = [...new Map(rollouts.map((r) => [r.group, r.row])).entries()];
      const greedy = await this.rollout(
        groups.map(([, row]) => row),
        { n: 1, temperature: 0, topP: 1, topK: -1 },
        (i) => this.rolloutSeed(this.state.step, -2, i),
      );
      const baseline = new Map(groups.map(([g], i) => [g, greedy.rollouts[i].reward.overall ?? 0]));
      greedyBaselines = rollouts.map((r) => baseline.get(r.group)!);
    }
    // Token rewards as veRL lays them out: the score on the last token, −β·KL_t on every token.
    // The outcome estimators (grpo, grpo_passk, rloo, remax) compare one number per response, and
    // computeAdvantages gives them the sum of its token rewards, score − β·Σ_t KL_t: the response's
    // undiscounted return, which is what veRL's outcome estimators take too. A sum (not a mean)
    // charges a response for every token it drifts on, so a long drifting response pays more than
    // a short one. REINFORCE++ keeps the token rewards apart: each token's return carries the KL of
    // that token and the ones after it.
    let tokenRewards = scoresToTokenRewards(scores, lengths);
    if (klCtl) tokenRewards = this.penaliseKl(tokenRewards, exps, klCtl, metrics);
    const out = computeAdvantages(
      a.adv_estimator,
      { groups: rollouts.map((r) => r.group), tokenRewards, greedyBaselines },
      advantageOptions(a),
    );
    Object.assign(metrics, out.metrics);
    return out.advantages;
  }

  /**
   * KL in the reward: the token rewards minus coef × the per-token KL of the behaviour policy (the
   * rollouts' log-probs) from the reference, then the controller's update from the batch's KL.
   */
  private penaliseKl(
    tokenRewards: Float32Array[],
    exps: readonly Experience[],
    klCtl: KlController,
    metrics: Record<string, number>,
  ): Float32Array[] {
    // Empty responses have no log-probs and no tokens to charge.
    const tokenKl = exps.map((e) =>
      e.oldLogp && e.refLogp ? klValues(e.oldLogp, e.refLogp, this.cfg.algorithm.kl_penalty) : new Float32Array(0),
    );
    const penalised = applyKlPenalty(tokenRewards, tokenKl, klCtl.coef);
    Object.assign(metrics, penalised.metrics);
    // n_steps counts responses, as veRL's controller is updated with the batch size.
    klCtl.update(penalised.meanKl, exps.length);
    this.state.klController = klCtl.state();
    return penalised.tokenRewards;
  }

  /**
   * Online filtering ran out of rounds (algorithm.max_try_make_batch) before it kept
   * rollout_batch_size prompt groups: stop with an error, as the reference does, or (on_unfilled_batch:
   * train_on_kept) say so and let the step train on what was kept.
   */
  private unfilledBatch(batch: FilledBatch<Rollout[]>, target: number): void {
    const a = this.cfg.algorithm;
    const what =
      `medix train: step ${this.state.step + 1}: online filtering kept ${batch.kept} of ${batch.sampledGroups} prompt groups ` +
      `(data.rollout_batch_size needs ${target}) after ${batch.rounds} sampling round${batch.rounds === 1 ? '' : 's'}, the most algorithm.max_try_make_batch allows`;
    const advice =
      `raise algorithm.max_try_make_batch (0: no limit) or widen algorithm.filter_low/filter_high (now ${a.filter_low}/${a.filter_high}): ` +
      'groups whose responses all score alike are dropped, so the data may be too easy or too hard for the model';
    if (a.on_unfilled_batch === 'error')
      throw new UnfilledBatchError(
        `${what}; stopping (algorithm.on_unfilled_batch: error, as the reference). To go on, ${advice}; or set algorithm.on_unfilled_batch: train_on_kept to train such steps on what was kept`,
      );
    this.log(
      `${what}; this step trains on what was kept (algorithm.on_unfilled_batch: train_on_kept). If this repeats, ${advice}`,
    );
  }

  /**
   * One RL step as named stages, each timed as timing/stage/<name>: rollout and reward (interleaved,
   * in rounds while online filtering refills the batch), old_logprob, ref_logprob, advantages and
   * update. Returns the step's metrics row (stepMetrics).
   */
  private async step(
    sampler: DataOrder,
    reference: ReferencePolicy | null,
    klCtl: KlController | null,
  ): Promise<Record<string, number>> {
    const clock = new StageClock();
    const batch = await this.rolloutStage(sampler, clock);
    const rolloutsDone = clock.elapsed();
    const exps: Experience[] = batch.kept.map((x) => ({
      promptIds: x.promptIds,
      images: x.images,
      responseIds: x.sample.tokenIds,
    }));
    const usable = exps.filter((e) => e.responseIds.length > 0);
    // Log-probs come before the advantages: KL in the reward needs both.
    await this.logprobStages(usable, reference, clock);
    const rewardMetrics: Record<string, number> = {};
    const adv = await clock.time('advantages', () => this.advantages(batch.kept, exps, klCtl, rewardMetrics));
    exps.forEach((e, i) => (e.advantages = adv[i]));
    const actorMetrics = usable.length > 0 ? await clock.time('update', () => this.updateStage(usable)) : {};
    this.images?.forget();
    return this.stepMetrics(batch, usable, { ...actorMetrics, ...rewardMetrics }, clock, rolloutsDone);
  }

  /**
   * The step's rollouts and rewards: rounds of rollout_batch_size prompts, or with online filtering of
   * mini_rollout_batch_size prompts until rollout_batch_size groups are kept (EasyR1), within
   * max_try_make_batch rounds. Every rank runs the rounds on the same exchanged rollouts, so all
   * take the same decisions.
   */
  private async rolloutStage(sampler: DataOrder, clock: StageClock): Promise<StepBatch> {
    const cfg = this.cfg;
    const r = cfg.worker.rollout;
    const a = cfg.algorithm;
    const all: Rollout[] = [];
    let groupBase = 0;
    let imageSeconds = 0;
    let imageWaitSeconds = 0;
    // The schema allows mini_rollout_batch_size only with filtering: without it, one round of the whole batch.
    const roundPrompts = cfg.data.mini_rollout_batch_size ?? cfg.data.rollout_batch_size;
    const target = cfg.data.rollout_batch_size;
    const keepGroup = onlineFilterKeep(a);
    const filled = await fillFilteredBatch<Rollout[]>({
      target,
      maxRounds: a.online_filtering ? a.max_try_make_batch : 1,
      keep: (group) => keepGroup(group.map((x) => x.reward)),
      sampleRound: async () => {
        const rows = sampler.next(roundPrompts).map((i) => this.train[i]);
        const first = groupBase;
        const got = await this.rollout(
          rows,
          { n: r.n, temperature: r.temperature, topP: r.top_p, topK: r.top_k },
          (i) => this.rolloutSeed(this.state.step, first + i),
        );
        clock.add('rollout', got.genSeconds);
        clock.add('reward', got.rewardTailSeconds);
        imageSeconds += got.imageSeconds;
        imageWaitSeconds += got.imageWaitSeconds;
        for (const x of got.rollouts) x.group += groupBase;
        groupBase += rows.length;
        all.push(...got.rollouts);
        // A response whose reward is unavailable takes no part in filtering or training (reward/dropped counts it).
        const usable = got.rollouts.filter((x) => x.reward.overall !== null);
        return [...groupIndices(usable.map((x) => x.group)).values()].map((idx) => idx.map((i) => usable[i]));
      },
    });
    if (a.online_filtering && filled.exhausted) this.unfilledBatch(filled, target);
    this.pendingSamples = all.slice(0, 2);
    return { all, kept: filled.groups.flat(), filled, imageSeconds, imageWaitSeconds };
  }

  /** The old policy's log-probs of the usable experiences, and the reference's when there is one. */
  private async logprobStages(
    usable: Experience[],
    reference: ReferencePolicy | null,
    clock: StageClock,
  ): Promise<void> {
    if (usable.length === 0) return;
    const actor = this.cfg.worker.actor;
    const temperature = this.cfg.worker.rollout.temperature;
    const old = await clock.time('old_logprob', () =>
      computeLogprobs(this.model, usable, actor.micro_batch_size_per_device_for_experience, temperature, this.world),
    );
    usable.forEach((e, i) => (e.oldLogp = old[i]));
    if (reference) {
      const ref = await clock.time('ref_logprob', () => reference.logprobs(usable, temperature));
      usable.forEach((e, i) => (e.refLogp = ref[i]));
    }
  }

  /** The policy update over the usable experiences (ppo_epochs of mini-batches); its metrics as actor/<name>. */
  private async updateStage(usable: Experience[]): Promise<Record<string, number>> {
    const cfg = this.cfg;
    const actor = cfg.worker.actor;
    const r = cfg.worker.rollout;
    const o = actor.optim;
    const schedule = {
      lr: o.lr,
      warmupSteps: o.lr_warmup_steps,
      warmupRatio: o.lr_warmup_ratio,
      totalSteps:
        this.totalSteps * Math.ceil((cfg.data.rollout_batch_size * r.n) / actor.global_batch_size) * actor.ppo_epochs,
      type: o.lr_scheduler_type,
      minLrRatio: o.min_lr_ratio,
    };
    const base = this.state.optimizerSteps;
    const opt = new AdamW(this.model, {
      lr: o.lr,
      betas: o.betas,
      weightDecay: o.weight_decay,
      maxGradNorm: actor.max_grad_norm,
    });
    const m = await policyUpdate(
      this.model,
      opt,
      usable,
      {
        miniBatch: actor.global_batch_size,
        microBatch: actor.micro_batch_size_per_device_for_update,
        epochs: actor.ppo_epochs,
        temperature: r.temperature,
        lr: (i) => learningRateAt(base + i, schedule),
        world: this.world,
      },
      policyLossOptions(cfg),
    );
    this.state.optimizerSteps += m.optimizer_steps;
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [`actor/${k}`, v]));
  }

  /**
   * The step's metrics row: reward components over every rollout, response lengths and filtering over
   * the kept ones, the update's and the advantages' metrics (`computed`), memory when fully sharded,
   * throughput, and the time of the step, of what followed the rollouts (timing/update, from `rolloutsDone`
   * seconds into the step) and of each stage.
   */
  private stepMetrics(
    batch: StepBatch,
    usable: Experience[],
    computed: Record<string, number>,
    clock: StageClock,
    rolloutsDone: number,
  ): Record<string, number> {
    const { all, kept, filled } = batch;
    const filtering = this.cfg.algorithm.online_filtering;
    const stepSeconds = clock.elapsed();
    const lengths = kept.map((x) => x.sample.tokenIds.length);
    const trainedTokens = usable.reduce((s, e) => s + e.promptIds.length + e.responseIds.length, 0);
    const components = REWARD_COMPONENTS.map((k) => [
      `reward/${k}`,
      mean(all.map((x) => x.reward[k]).filter((v): v is number => v !== null)),
    ]);
    return {
      ...Object.fromEntries(components),
      'reward/unavailable': all.filter((x) => x.reward.unavailable.length > 0).length,
      'reward/dropped': all.filter((x) => x.reward.overall === null).length,
      'response_length/mean': mean(lengths),
      'response_length/max': lengths.length ? Math.max(...lengths) : 0,
      'response_length/clip_ratio': mean(kept.map((x) => (x.sample.finishReason === 'length' ? 1 : 0))),
      'filter/kept_samples': kept.length,
      'filter/tries': filled.rounds,
      'filter/exhausted': filtering && filled.exhausted ? 1 : 0,
      ...(this.images
        ? {
            'data/bad_image_rows': this.badImageRows.size,
            'timing/images': batch.imageSeconds,
            'timing/image_wait': batch.imageWaitSeconds,
          }
        : {}),
      ...computed,
      ...this.fullShardMetrics(),
      'perf/tokens_per_s': trainedTokens / stepSeconds,
      'timing/update': stepSeconds - rolloutsDone,
      'timing/step': stepSeconds,
      ...clock.metrics(),
    };
  }

  /**
   * Fully sharded: this rank's resident state as the engine reports it, its shards (weights,
   * gradients, moments), the most gathered at once (measured only while probed, else 0), and the
   * same state of the whole model in one process.
   */
  private fullShardMetrics(): Record<string, number> {
    if (!isFullShard(this.model)) return {};
    const m = fullShardMemory(this.model);
    return {
      'fsdp/slice_bytes': m.sliceBytes,
      'fsdp/peak_gathered_bytes': m.peakGatheredBytes,
      'fsdp/largest_unit_bytes': m.largestUnitBytes,
      'fsdp/whole_state_bytes': m.wholeStateBytes,
    };
  }

  /** The first samples of the last step, logged to samples.jsonl. */
  private pendingSamples: Rollout[] = [];

  async run(): Promise<TrainSummary> {
    const t = this.cfg.trainer;
    const backends = this.world.isRoot
      ? await startMetricsBackends({
          loggers: t.logger,
          runDir: this.runDir,
          project: t.project_name,
          runName: t.experiment_name ?? basename(resolve(this.runDir)),
          config: { ...this.cfg },
          warn: this.log,
        })
      : null;
    const runLog = this.world.isRoot ? new RunLog(this.runDir, backends) : null;
    let progress: Progress | null = null;
    try {
      if (this.state.heldoutBeforeTrain === undefined) await this.validateBeforeTraining(runLog);
      if (!this.state.sftDone) await this.sftWarmup(runLog);
      const kl = klPlacement(this.cfg.algorithm);
      const reference =
        kl === 'off'
          ? null
          : await ReferencePolicy.open(this.runDir, this.model, {
              worker: this.cfg.worker,
              modelConfig: this.modelConfigJson,
              inheritFrom: this.referenceSource,
              log: this.log,
              world: this.world,
              fullShard: isFullShard(this.model),
            });
      const klCtl = kl === 'reward' ? createKlController(this.cfg.algorithm, this.state.klController) : null;
      const sampler = new DataOrder(
        this.train.length,
        { seed: this.cfg.data.seed, shuffle: this.cfg.data.shuffle },
        this.state.data,
      );
      const total = this.totalSteps;
      progress = this.world.isRoot ? new Progress(total, this.state.step) : null;
      while (this.state.step < total) {
        const row = await this.step(sampler, reference, klCtl);
        this.state.step++;
        this.state.data = sampler.position();
        if (t.val_freq > 0 && this.state.step % t.val_freq === 0) Object.assign(row, await this.validate());
        runLog?.metrics({ step: this.state.step, ...row });
        if (t.log_samples_every > 0 && this.state.step % t.log_samples_every === 0)
          runLog?.samples(
            this.pendingSamples.map((x) => ({
              step: this.state.step,
              prompt: x.row.question,
              response: x.sample.text,
              ground_truth: x.row.answer,
              reward: x.reward as unknown as Record<string, unknown>,
            })),
          );
        progress?.update({
          step: this.state.step,
          timing: {
            rollout: row['timing/stage/rollout'],
            reward: row['timing/stage/reward'],
            update: row['timing/update'],
          },
          reward: row['reward/overall'],
        });
        if ((t.save_freq > 0 && this.state.step % t.save_freq === 0) || this.state.step === total)
          await this.checkpoint();
      }
    } catch (e) {
      // A run that stops (a bad image under data.on_bad_row: stop, a batch filtering cannot fill) still stops
      // the reward workers and saves the judge cache.
      await this.closeWorkers();
      throw e;
    } finally {
      progress?.stop();
    }
    const val = await this.validate();
    const after = val['val/overall'] ?? null;
    await this.closeWorkers();
    await backends?.close(); // waits for the backends' pending rows
    const report = join(this.runDir, RUN_FILES.report);
    const summary: TrainSummary = {
      run_dir: this.runDir,
      steps: this.state.step,
      heldout_reward_before_train: this.state.heldoutBeforeTrain ?? null,
      heldout_reward_after_sft: this.state.heldoutAfterSft,
      heldout_reward_after_rl: after,
      heldout_accuracy_after_sft: this.state.heldoutAccuracyAfterSft ?? null,
      heldout_accuracy_after_rl: val['val/accuracy_llm'] ?? null,
      heldout_accuracy_by_modality_after_sft: this.state.heldoutAccuracyByModalityAfterSft ?? {},
      heldout_accuracy_by_modality_after_rl: accuracyByModality(val),
      report,
      logger_failures: backends?.failures ?? {},
    };
    if (this.world.isRoot) {
      // summary.json first: the report's summary section reads it.
      atomicWriteFileSync(join(this.runDir, RUN_FILES.summary), `${JSON.stringify(summary, null, 2)}\n`);
      atomicWriteFileSync(report, renderReport(readRun(this.runDir)));
    }
    return summary;
  }

  /** The model being trained (tests). */
  get policy(): Model {
    return this.model;
  }
}

export function configDir(file: string): string {
  return dirname(resolve(file));
}
