// `medix eval`: the LLM-as-judge evaluation over the medical benchmarks (generate, evaluate, score;
// together or one at a time, resumable), and `medix eval-compare` for result directories side by side.
import type { Command } from 'commander';
import type { Device } from '../config/schema.js';
import { requireDevice } from '../engine/device.js';
import { setComputeDtype } from '../engine/bf16.js';
import type { ComputeDtype } from '../engine/compute-dtype.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import { compareDirs, formatComparison } from '../eval/compare.js';
import { EndpointChatModel } from '../eval/endpoint-model.js';
import { EngineChatModel } from '../eval/engine-model.js';
import { createGenerationEngine } from '../generate/engine.js';
import { loadModel } from '../model/load.js';
import { DEFAULT_IMAGE_THREADS, ImagePool } from '../model/vision/image-pool.js';
import { modelImageProcessor } from '../model/vision/model-images.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { DEFAULTS, PHASES, runEval, type Phase } from '../eval/run-eval.js';
import { renderComparisonPage } from '../eval/score-page.js';
import { loadTasks, selectTasks, DEFAULT_TASKS_FILE } from '../eval/tasks.js';
import { SCORES_FILE, SCORES_PAGE } from '../eval/records.js';
import type { ChatModel } from '../eval/chat.js';
import { computeDtypeOption, deviceOption, nonNegativeNumber, positiveInt } from './options.js';

interface EvalOptions {
  device: Device;
  computeDtype: ComputeDtype;
  tasks: string[];
  tasksFile: string;
  phase: string;
  dataDir?: string;
  outputDir: string;
  model?: string;
  modelUrl?: string;
  systemPromptFile?: string;
  temperature: number;
  maxTokens: number;
  concurrency: number;
  judgeUrl?: string;
  judgeModel?: string;
  judgeRounds: number;
  judgeAttempts: number;
  judgeMaxTokens: number;
  judgeConcurrency: number;
}

function parsePhases(s: string): Phase[] {
  const phases = s.split(',').map((p) => p.trim());
  for (const p of phases)
    if (!(PHASES as readonly string[]).includes(p))
      throw new Error(`unknown phase '${p}' (phases: ${PHASES.join(', ')})`);
  return phases as Phase[];
}

/** An endpoint with --model-url; otherwise --model is a model directory run in-process. */
async function candidate(o: EvalOptions): Promise<ChatModel | undefined> {
  if (!o.model) return undefined;
  const key = process.env.MEDIX_MODEL_API_KEY ?? process.env.OPENAI_API_KEY;
  if (o.modelUrl) return new EndpointChatModel(o.model, o.modelUrl, key);
  if (!existsSync(join(o.model, 'config.json')))
    throw new Error(
      `--model ${o.model}: not a model directory (no config.json); to use a served model, also pass --model-url`,
    );
  const [model, tokenizer] = await Promise.all([loadModel(o.model, { device: o.device }), loadTokenizer(o.model)]);
  setComputeDtype(model, o.computeDtype);
  // A vision model preprocesses the benchmarks' images on a pool, beside generation.
  const processor = model.config.vision ? modelImageProcessor(o.model, model) : undefined;
  const images = processor && { pool: new ImagePool(processor, DEFAULT_IMAGE_THREADS), merge: processor.mergeSize };
  return new EngineChatModel(o.model, createGenerationEngine(model, { tokenizer }), tokenizer, images);
}

/** The reference evaluation's judge, served at --judge-url when --judge-model names no other. */
const REFERENCE_JUDGE = 'Qwen/Qwen3-14B';

function judge(o: EvalOptions): ChatModel | undefined {
  if (!o.judgeUrl && !o.judgeModel) return undefined;
  if (!o.judgeUrl) throw new Error('--judge-model needs --judge-url (the endpoint that serves it)');
  const model = o.judgeModel ?? REFERENCE_JUDGE;
  return new EndpointChatModel(model, o.judgeUrl, process.env.MEDIX_JUDGE_API_KEY ?? process.env.OPENAI_API_KEY);
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('LLM-as-judge evaluation on the medical benchmarks: generate, evaluate, score (resumable)')
    .requiredOption('--output-dir <dir>', 'results: generations.jsonl, judgments.jsonl, scores.json, scores.html')
    .option('--tasks <names...>', 'all | llm | vlm | task names', ['all'])
    .option('--tasks-file <file>', 'task declarations (YAML)', DEFAULT_TASKS_FILE)
    .option('--phase <list>', `phases to run, comma-separated (${PHASES.join(',')})`, PHASES.join(','))
    .option('--data-dir <dir>', 'local benchmark files: DIR/<task>.jsonl or DIR/<task>.parquet')
    .option('--model <name>', 'candidate: a model directory run in-process, or the served model name with --model-url')
    .option(
      '--model-url <url>',
      "candidate's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (key: MEDIX_MODEL_API_KEY or OPENAI_API_KEY)",
    )
    .option('--system-prompt-file <file>', 'system prompt for the candidate')
    .option('--temperature <t>', 'candidate sampling temperature', nonNegativeNumber, DEFAULTS.temperature)
    .option('--max-tokens <n>', 'candidate max new tokens', positiveInt, DEFAULTS.maxTokens)
    .option('--concurrency <n>', 'candidate requests in flight', positiveInt, DEFAULTS.concurrency)
    .option('--judge-url <url>', "judge's OpenAI-compatible base URL (key: MEDIX_JUDGE_API_KEY or OPENAI_API_KEY)")
    .option('--judge-model <name>', `judge model name (default with --judge-url: ${REFERENCE_JUDGE}, the reference's)`)
    .option('--judge-rounds <n>', 'verdicts per sample, in one conversation', positiveInt, DEFAULTS.rounds)
    .option(
      '--judge-attempts <n>',
      'replies tried per round before a sample is recorded as a judge error',
      positiveInt,
      DEFAULTS.attemptsPerRound,
    )
    .option('--judge-max-tokens <n>', 'judge max tokens per reply', positiveInt, DEFAULTS.judgeMaxTokens)
    .option('--judge-concurrency <n>', 'samples judged at once', positiveInt, DEFAULTS.concurrency)
    .addOption(deviceOption())
    .addOption(computeDtypeOption())
    .action(async (o: EvalOptions) => {
      requireDevice(o.device, '--device');
      const tasks = selectTasks(loadTasks(o.tasksFile), o.tasks);
      const phases = parsePhases(o.phase);
      const model = phases.includes('generate') ? await candidate(o) : undefined;
      const result = await runEval({
        outputDir: o.outputDir,
        phases,
        tasks,
        dataDir: o.dataDir,
        candidate: model,
        judge: phases.includes('evaluate') ? judge(o) : undefined,
        generation: {
          temperature: o.temperature,
          maxTokens: o.maxTokens,
          concurrency: o.concurrency,
          systemPrompt: o.systemPromptFile ? readFileSync(o.systemPromptFile, 'utf8') : undefined,
        },
        judging: {
          rounds: o.judgeRounds,
          attemptsPerRound: o.judgeAttempts,
          maxTokens: o.judgeMaxTokens,
          concurrency: o.judgeConcurrency,
        },
        log: (line) => console.error(line),
      }).finally(() => (model instanceof EngineChatModel ? model.close() : undefined));
      if (result.score) {
        console.log(result.score.table);
        console.log(`\nwrote ${join(o.outputDir, SCORES_FILE)} and ${join(o.outputDir, SCORES_PAGE)}`);
      }
    });

  program
    .command('eval-compare')
    .description('compare the scores of two or more `medix eval` output directories')
    .argument('<dirs...>', 'result directories (each with scores.json)')
    .option('--labels <list>', 'comma-separated column names (default: the directory names)')
    .option('--out <file>', 'also write an HTML page with the grouped bar chart')
    .action((dirs: string[], o: { labels?: string; out?: string }) => {
      const c = compareDirs(dirs, o.labels?.split(','));
      console.log(formatComparison(c));
      if (o.out) {
        atomicWriteFileSync(o.out, renderComparisonPage('medix eval: comparison', c));
        console.log(`\nwrote ${o.out}`);
      }
    });
}
