// Phase 3, score: per-task accuracy (0/1 tasks) or mean/5 (0-5 tasks) over the judged samples,
// and the overall unweighted mean over tasks, as the method reports them. Samples whose generation
// or judgment failed are excluded from the score and counted (scores.json's `counts`, the table), so
// a partial or error-ridden run is visible rather than silently scored low; `overall` is null unless
// every selected task is fully scored, so a partial mean is never compared with a published one.
import type { GenerationRecord, JudgmentRecord } from './records.js';
import type { ResultsFile } from './results-store.js';
import type { TaskSpec } from './tasks.js';

/** A task's samples: judged with a score, failed (generation or judge error), in the benchmark. */
export interface TaskCounts {
  scored: number;
  failed: number;
  total: number;
}

/**
 * scores.json, exactly: {"tasks": {name: score in [0, 1] or null}, "counts": {name: TaskCounts},
 * "overall": mean over tasks, or null unless every task has scored === total}.
 */
export interface EvalScores {
  tasks: Record<string, number | null>;
  counts: Record<string, TaskCounts>;
  overall: number | null;
}

export interface TaskScoreRow {
  task: string;
  scoring: TaskSpec['scoring'];
  samples: number;
  /** The benchmark's sample count (from the generate phase), at least the samples generated. */
  total: number;
  scored: number;
  generationErrors: number;
  judgeErrors: number;
  /** Generated but not judged yet. */
  unjudged: number;
  /** null when no sample of the task has a score. */
  score: number | null;
}

export class ScoreError extends Error {}

export function computeScores(
  generations: ResultsFile<GenerationRecord>,
  judgments: ResultsFile<JudgmentRecord>,
  taskOrder?: readonly string[],
  totals: Readonly<Record<string, number>> = {},
): { rows: TaskScoreRow[]; scores: EvalScores } {
  const rows = new Map<string, TaskScoreRow & { sum: number }>();
  const empty = (task: string, scoring: TaskSpec['scoring']) => ({
    ...{ task, scoring, samples: 0, total: 0, scored: 0 },
    ...{ generationErrors: 0, judgeErrors: 0, unjudged: 0, score: null, sum: 0 },
  });
  const row = (task: string, scoring: TaskSpec['scoring']) => {
    let r = rows.get(task);
    if (!r) {
      r = empty(task, scoring);
      rows.set(task, r);
    }
    return r;
  };
  for (const t of taskOrder ?? []) rows.set(t, empty(t, 'binary'));
  for (const g of generations.records.values()) {
    if (taskOrder && !taskOrder.includes(g.task)) continue;
    const r = row(g.task, g.scoring);
    r.scoring = g.scoring;
    r.samples++;
    const j = judgments.records.get(g.key);
    if (g.status === 'error') r.generationErrors++;
    else if (!j) r.unjudged++;
    else if (j.status === 'error' || j.score === undefined) r.judgeErrors++;
    else {
      r.scored++;
      r.sum += j.score;
    }
  }
  const out: TaskScoreRow[] = [];
  const tasks: Record<string, number | null> = {};
  const counts: Record<string, TaskCounts> = {};
  for (const { sum, ...r } of rows.values()) {
    r.score = r.scored > 0 ? sum / r.scored : null;
    r.total = Math.max(totals[r.task] ?? 0, r.samples);
    tasks[r.task] = r.score;
    counts[r.task] = { scored: r.scored, failed: r.generationErrors + r.judgeErrors, total: r.total };
    out.push(r);
  }
  if (out.every((r) => r.score === null))
    throw new ScoreError('no task has a judged sample yet: run the generate and evaluate phases first');
  const complete = out.every((r) => r.total > 0 && r.scored === r.total);
  const overall = complete ? out.reduce((a, r) => a + r.score!, 0) / out.length : null;
  return { rows: out, scores: { tasks, counts, overall } };
}

/** Why `overall` is null: the tasks not fully scored, with their counts. */
export function incompleteTasks(scores: EvalScores): string[] {
  return Object.entries(scores.counts)
    .filter(([, c]) => c.total === 0 || c.scored < c.total)
    .map(([t, c]) => `${t} (${c.scored} of ${c.total} scored, ${c.failed} failed)`);
}

function pct(v: number | null): string {
  return v === null ? '-' : `${(v * 100).toFixed(2)}%`;
}

/** A plain-text table of rows (first column left-aligned, the rest right-aligned). */
export function textTable(header: string[], body: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function formatScoreTable(rows: TaskScoreRow[], scores: EvalScores): string {
  const body = rows.map((r) => [
    r.task,
    r.scoring === 'binary' ? '0/1' : '0-5',
    String(r.total),
    String(r.scored),
    String(r.generationErrors + r.judgeErrors),
    String(r.total - r.scored - r.generationErrors - r.judgeErrors),
    pct(r.score),
  ]);
  body.push([`overall (mean of ${rows.length} tasks)`, '', '', '', '', '', pct(scores.overall)]);
  const table = textTable(['task', 'judge', 'samples', 'scored', 'failed', 'pending', 'score'], body);
  const incomplete = incompleteTasks(scores);
  return incomplete.length > 0
    ? `${table}\n\noverall is not given: not every sample of every task is scored (${incomplete.join('; ')}). ` +
        'Failed and missing samples are retried by rerunning the generate and evaluate phases.'
    : table;
}
