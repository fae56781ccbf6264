// Phase 3, score: per-task accuracy (0/1 tasks) or mean/5 (0-5 tasks) over the judged samples,
// and the overall unweighted mean over tasks, as the method reports them. Samples whose generation
// or judgment failed are excluded from the score and counted in the table, so a partial or
// error-ridden run is visible rather than silently scored low.
import type { GenerationRecord, JudgmentRecord } from './records.js';
import type { ResultsFile } from './results-store.js';
import type { TaskSpec } from './tasks.js';

/** scores.json, exactly: {"tasks": {name: score in [0, 1]}, "overall": mean}. */
export interface EvalScores {
  tasks: Record<string, number>;
  overall: number;
}

export interface TaskScoreRow {
  task: string;
  scoring: TaskSpec['scoring'];
  samples: number;
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
): { rows: TaskScoreRow[]; scores: EvalScores } {
  const rows = new Map<string, TaskScoreRow & { sum: number }>();
  const row = (task: string, scoring: TaskSpec['scoring']) => {
    let r = rows.get(task);
    if (!r) rows.set(task, (r = { task, scoring, samples: 0, scored: 0, generationErrors: 0, judgeErrors: 0, unjudged: 0, score: null, sum: 0 }));
    return r;
  };
  for (const t of taskOrder ?? []) rows.set(t, { task: t, scoring: 'binary', samples: 0, scored: 0, generationErrors: 0, judgeErrors: 0, unjudged: 0, score: null, sum: 0 });
  for (const g of generations.records.values()) {
    if (taskOrder && !taskOrder.includes(g.task)) continue;
    const r = row(g.task, g.scoring);
    r.scoring = g.scoring;
    r.samples++;
    const j = judgments.records.get(g.key);
    if (g.status === 'error') r.generationErrors++;
    else if (!j) r.unjudged++;
    else if (j.status === 'error' || j.score === undefined) r.judgeErrors++;
    else (r.scored++, (r.sum += j.score));
  }
  const out: TaskScoreRow[] = [];
  const tasks: Record<string, number> = {};
  for (const { sum, ...r } of rows.values()) {
    r.score = r.scored > 0 ? sum / r.scored : null;
    if (r.score !== null) tasks[r.task] = r.score;
    out.push(r);
  }
  const values = Object.values(tasks);
  if (values.length === 0) throw new ScoreError('no task has a judged sample yet: run the generate and evaluate phases first');
  return { rows: out, scores: { tasks, overall: values.reduce((a, b) => a + b, 0) / values.length } };
}

function pct(v: number | null): string {
  return v === null ? '-' : `${(v * 100).toFixed(2)}%`;
}

/** A plain-text table of rows (first column left-aligned, the rest right-aligned). */
export function textTable(header: string[], body: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function formatScoreTable(rows: TaskScoreRow[], scores: EvalScores): string {
  const body = rows.map((r) => [
    r.task,
    r.scoring === 'binary' ? '0/1' : '0-5',
    String(r.samples),
    String(r.scored),
    String(r.generationErrors + r.judgeErrors),
    String(r.unjudged),
    pct(r.score),
  ]);
  body.push([`overall (mean of ${Object.keys(scores.tasks).length} tasks)`, '', '', '', '', '', pct(scores.overall)]);
  const table = textTable(['task', 'judge', 'samples', 'scored', 'errors', 'unjudged', 'score'], body);
  const excluded = rows.reduce((a, r) => a + r.generationErrors + r.judgeErrors + r.unjudged, 0);
  return excluded > 0
    ? `${table}\n\n${excluded} sample(s) excluded from the scores (errors or not judged yet): rerun the generate/evaluate phases to retry them`
    : table;
}
