// The evaluation run: the three phases (generate, evaluate, score) over an output directory, run
// together or one at a time. Used by `medix eval` and usable from code (e.g. a trainer's
// validation). The directory records which candidate and judge produced its results, so that a
// rerun with another model cannot mix its answers into them.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import { readBenchmark, type BenchmarkItem } from './benchmark-data.js';
import type { ChatModel } from './chat.js';
import { runEvaluate } from './evaluate-phase.js';
import { runGenerate, type PhaseSummary } from './generate-phase.js';
import type { JudgeOptions } from './judge-sample.js';
import {
  GENERATIONS_FILE,
  JUDGMENTS_FILE,
  SCORES_FILE,
  SCORES_PAGE,
  type GenerationRecord,
  type JudgmentRecord,
} from './records.js';
import { ResultsFile, type ResultRecord } from './results-store.js';
import { renderScorePage } from './score-page.js';
import { computeScores, formatScoreTable, type EvalScores, type TaskScoreRow } from './scores.js';
import type { TaskSpec } from './tasks.js';

export const PHASES = ['generate', 'evaluate', 'score'] as const;
export type Phase = (typeof PHASES)[number];

export interface EvalRunOptions {
  outputDir: string;
  phases: readonly Phase[];
  /** The tasks to run; for the score phase alone, [] scores every task found in the results. */
  tasks: readonly TaskSpec[];
  /** Needed by generate: where DIR/<task>.jsonl|parquet live. */
  dataDir?: string;
  /** Needed by generate. */
  candidate?: ChatModel;
  /** Needed by evaluate. */
  judge?: ChatModel;
  generation?: { temperature?: number; maxTokens?: number; concurrency?: number; systemPrompt?: string };
  judging?: Partial<JudgeOptions> & { concurrency?: number };
  /** Progress and summaries (default: nothing). */
  log?: (line: string) => void;
}

export interface EvalRunResult {
  generate?: PhaseSummary;
  evaluate?: PhaseSummary & { notGenerated: number };
  score?: { rows: TaskScoreRow[]; scores: EvalScores; table: string };
}

export class EvalRunError extends Error {}

/** The reference's settings: greedy generation up to 2048 tokens; three judge rounds of 512 tokens. */
export const DEFAULTS = {
  temperature: 0,
  maxTokens: 2048,
  concurrency: 8,
  rounds: 3,
  attemptsPerRound: 3,
  judgeMaxTokens: 512,
};

interface Manifest {
  candidate?: string;
  judge?: string;
  /** Samples per task in its benchmark file, as the last generate phase read it. */
  totals?: Record<string, number>;
}

const MANIFEST = 'eval-run.json';

function readManifest(dir: string): Manifest {
  const file = join(dir, MANIFEST);
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(
      `${file}: not readable (${(e as Error).message}); it records which candidate and judge this output folder holds: repair or remove it`,
    );
  }
}

function recordTotals(dir: string, items: readonly BenchmarkItem[]): void {
  const manifest = readManifest(dir);
  const totals = { ...manifest.totals };
  for (const t of new Set(items.map((it) => it.task))) totals[t] = items.filter((it) => it.task === t).length;
  atomicWriteFileSync(join(dir, MANIFEST), `${JSON.stringify({ ...manifest, totals }, null, 2)}\n`);
}

function claim(dir: string, role: 'candidate' | 'judge', name: string, hasResults: boolean): void {
  const file = join(dir, MANIFEST);
  const manifest = readManifest(dir);
  const previous = manifest[role];
  if (previous !== undefined && previous !== name && hasResults)
    throw new EvalRunError(`${dir} holds results of ${role} '${previous}', not '${name}': use another --output-dir`);
  if (previous !== name) atomicWriteFileSync(file, `${JSON.stringify({ ...manifest, [role]: name }, null, 2)}\n`);
}

/** Prints "phase: done/total ..." at most every two seconds and once at the end. */
function progress(phase: string, total: number, log: (line: string) => void) {
  let done = 0;
  let errors = 0;
  let last = 0;
  const t0 = performance.now();
  const print = () => {
    const s = (performance.now() - t0) / 1000;
    log(
      `${phase}: ${done}/${total}${errors ? `, ${errors} error(s)` : ''}, ${s > 0 ? (done / s).toFixed(2) : '0'} samples/s`,
    );
  };
  return {
    record(r: ResultRecord) {
      done++;
      if (r.status === 'error') errors++;
      if (performance.now() - last > 2000 || done === total) {
        last = performance.now();
        print();
      }
    },
  };
}

async function loadItems(tasks: readonly TaskSpec[], dataDir: string): Promise<BenchmarkItem[]> {
  const items: BenchmarkItem[] = [];
  for (const t of tasks) items.push(...(await readBenchmark(t, dataDir)));
  return items;
}

/** Every phase's inputs are checked before any runs, so a long generate is not followed by a refusal. */
function checkInputs(o: EvalRunOptions): void {
  if (o.phases.includes('generate') && !o.candidate)
    throw new EvalRunError('the generate phase needs a candidate model (--model, with --model-url for an endpoint)');
  if (o.phases.includes('generate') && !o.dataDir) throw new EvalRunError('the generate phase needs --data-dir');
  if (o.phases.includes('evaluate') && !o.judge)
    throw new EvalRunError('the evaluate phase needs a judge (--judge-url and --judge-model)');
}

export async function runEval(o: EvalRunOptions): Promise<EvalRunResult> {
  checkInputs(o);
  const log = o.log ?? (() => {});
  mkdirSync(o.outputDir, { recursive: true });
  const generations = new ResultsFile<GenerationRecord>(join(o.outputDir, GENERATIONS_FILE));
  const judgments = new ResultsFile<JudgmentRecord>(join(o.outputDir, JUDGMENTS_FILE));
  for (const f of [generations, judgments])
    if (f.tornLines) log(`${f.path}: dropped a torn last line (the previous run was cut off)`);
  const taskNames = o.tasks.map((t) => t.name);
  const result: EvalRunResult = {};

  if (o.phases.includes('generate')) {
    const items = await loadItems(o.tasks, o.dataDir!);
    claim(o.outputDir, 'candidate', o.candidate!.name, generations.records.size > 0);
    recordTotals(o.outputDir, items);
    const g = { ...DEFAULTS, ...o.generation };
    const p = progress('generate', items.filter((it) => !generations.done(it.key)).length, log);
    result.generate = await runGenerate(items, o.candidate!, generations, { ...g, onRecord: (r) => p.record(r) });
    log(
      `generate: ${result.generate.ok} answered, ${result.generate.errors} failed, ${result.generate.skipped} already done`,
    );
  }

  if (o.phases.includes('evaluate')) {
    claim(o.outputDir, 'judge', o.judge!.name, judgments.records.size > 0);
    const j = {
      concurrency: DEFAULTS.concurrency,
      rounds: DEFAULTS.rounds,
      attemptsPerRound: DEFAULTS.attemptsPerRound,
      maxTokens: DEFAULTS.judgeMaxTokens,
      ...o.judging,
    };
    const tasks = new Set(taskNames);
    const pending = [...generations.records.values()].filter(
      (g) => tasks.has(g.task) && g.status === 'ok' && !judgments.done(g.key),
    ).length;
    const p = progress('evaluate', pending, log);
    result.evaluate = await runEvaluate(generations, judgments, o.judge!, {
      ...j,
      tasks,
      onRecord: (r) => p.record(r),
    });
    log(
      `evaluate: ${result.evaluate.ok} judged, ${result.evaluate.errors} failed, ${result.evaluate.skipped} already done`,
    );
  }

  if (o.phases.includes('score')) {
    const totals = readManifest(o.outputDir).totals;
    const { rows, scores } = computeScores(generations, judgments, taskNames.length ? taskNames : undefined, totals);
    const table = formatScoreTable(rows, scores);
    atomicWriteFileSync(join(o.outputDir, SCORES_FILE), `${JSON.stringify(scores, null, 2)}\n`);
    atomicWriteFileSync(join(o.outputDir, SCORES_PAGE), renderScorePage(`medix eval: ${o.outputDir}`, rows, scores));
    result.score = { rows, scores, table };
  }
  return result;
}
