// Side-by-side comparison of result directories (e.g. a checkpoint before and after RL) from their
// scores.json files.
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { SCORES_FILE } from './records.js';
import { textTable, ScoreError, type EvalScores } from './scores.js';

const unit = z.number().min(0).max(1);
const count = z.number().int().min(0);
const counts = z.object({ scored: count, failed: count, total: count }).strict();
const ScoresSchema = z
  .object({
    tasks: z.record(z.string(), unit.nullable()),
    counts: z.record(z.string(), counts),
    overall: unit.nullable(),
  })
  .strict();

export function readScores(dir: string): EvalScores {
  const file = join(dir, SCORES_FILE);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ScoreError(
      `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (run the score phase first)' : `not valid JSON (${(e as Error).message})`}`,
    );
  }
  const parsed = ScoresSchema.safeParse(doc);
  if (!parsed.success)
    throw new ScoreError(
      `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

export interface Comparison {
  labels: string[];
  /** The tasks, the same in every set. */
  tasks: string[];
  sets: EvalScores[];
}

/** Labels default to the directories' names, made unique by their paths when names repeat. */
export function compareDirs(dirs: string[], labels?: string[]): Comparison {
  if (dirs.length < 2) throw new ScoreError('compare needs two or more result directories');
  if (labels && labels.length !== dirs.length)
    throw new ScoreError(`${labels.length} labels for ${dirs.length} directories`);
  const names = dirs.map((d) => basename(resolve(d)));
  const unique = new Set(names).size === names.length;
  const sets = dirs.map(readScores);
  const tasks = Object.keys(sets[0].tasks);
  // Scores over different tasks (or an overall over different tasks) are not comparable.
  sets.forEach((s, i) => {
    const mine = Object.keys(s.tasks);
    const missing = tasks.filter((t) => !mine.includes(t));
    const extra = mine.filter((t) => !tasks.includes(t));
    if (missing.length || extra.length)
      throw new ScoreError(
        `${dirs[i]} was scored over other tasks than ${dirs[0]}` +
          (missing.length ? ` (missing ${missing.join(', ')})` : '') +
          (extra.length ? ` (extra ${extra.join(', ')})` : '') +
          ': score both over the same --tasks',
      );
  });
  return { labels: labels ?? (unique ? names : dirs), tasks, sets };
}

function pct(v: number | null | undefined): string {
  return v === undefined || v === null ? '-' : `${(v * 100).toFixed(2)}%`;
}

function delta(a: number | null | undefined, b: number | null | undefined): string {
  if (a === undefined || b === undefined || a === null || b === null) return '-';
  const d = (b - a) * 100;
  return `${d >= 0 ? '+' : ''}${d.toFixed(2)}`;
}

/** Tasks by sets, with the change from the first set to the last in percentage points. */
export function formatComparison(c: Comparison): string {
  const first = c.sets[0];
  const last = c.sets[c.sets.length - 1];
  const body = c.tasks.map((t) => [t, ...c.sets.map((s) => pct(s.tasks[t])), delta(first.tasks[t], last.tasks[t])]);
  body.push(['overall', ...c.sets.map((s) => pct(s.overall)), delta(first.overall, last.overall)]);
  return textTable(['task', ...c.labels, `change (pts)`], body);
}
