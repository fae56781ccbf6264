// Reading a training run directory: metrics.jsonl (one JSON object per step), samples.jsonl
// (logged generations) and config.yaml (the resolved configuration). A run killed mid-write can
// leave a torn last line; that one line is ignored, while a corrupt line anywhere else is an error
// naming the file and line, since it means the file was damaged rather than cut short.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type MetricsRow = Record<string, unknown> & { step: number };

export interface SampleRow {
  step: number;
  prompt?: string;
  response?: string;
  ground_truth?: string;
  reward?: number | Record<string, unknown>;
  [key: string]: unknown;
}

export interface RunFiles {
  dir: string;
  metrics: MetricsRow[];
  samples: SampleRow[];
  /** The resolved configuration as saved (YAML text), or null if the run has none. */
  configText: string | null;
  /** summary.json as the trainer wrote it at the end of the run, or null (a run still going, or killed). */
  summary: Record<string, unknown> | null;
}

export class RunFileError extends Error {}

export function readJsonl<T>(file: string, check: (row: unknown, where: string) => T): T[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const rows: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      const isTornTail = lines.slice(i + 1).every((l) => l.trim() === '');
      if (isTornTail) return;
      throw new RunFileError(`${where}: not valid JSON`);
    }
    rows.push(check(value, where));
  });
  return rows;
}

function withStep(row: unknown, where: string): MetricsRow & SampleRow {
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    throw new RunFileError(`${where}: expected a JSON object`);
  const step = (row as { step?: unknown }).step;
  if (typeof step !== 'number' || !Number.isFinite(step))
    throw new RunFileError(`${where}: field 'step' must be a number`);
  return row as MetricsRow & SampleRow;
}

/** The files a training run writes at the top of its directory. */
export const RUN_FILES = {
  config: 'config.yaml',
  metrics: 'metrics.jsonl',
  samples: 'samples.jsonl',
  summary: 'summary.json',
  report: 'report.html',
} as const;

export function readRun(dir: string): RunFiles {
  if (!existsSync(dir)) throw new RunFileError(`${dir}: no such run directory`);
  // A folder without any of a run's files is not a run: its report would be empty, written among other files.
  if (![RUN_FILES.metrics, RUN_FILES.config, RUN_FILES.summary].some((f) => existsSync(join(dir, f))))
    throw new RunFileError(`${dir}: not a run directory (no metrics.jsonl, config.yaml or summary.json)`);
  const metrics = readJsonl(join(dir, RUN_FILES.metrics), withStep);
  const samples = readJsonl(join(dir, RUN_FILES.samples), withStep);
  const configPath = join(dir, RUN_FILES.config);
  const configText = existsSync(configPath) ? readFileSync(configPath, 'utf8') : null;
  return { dir, metrics, samples, configText, summary: readSummary(join(dir, RUN_FILES.summary)) };
}

function readSummary(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new RunFileError(`${file}: not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RunFileError(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}
