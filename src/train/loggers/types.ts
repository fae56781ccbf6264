// What every metrics backend (TensorBoard, MLflow, Weights & Biases) offers the run log: one call per
// metrics row and one at the end. Calls may be asynchronous; the fan-out (backends.ts) keeps each
// backend's calls in order and never lets one stop training.

/** trainer.logger's values, EasyR1's names. */
export const LOGGERS = ['console', 'file', 'tensorboard', 'wandb', 'mlflow'] as const;
export type LoggerName = (typeof LOGGERS)[number];

export type MetricsRow = Record<string, unknown> & { step: number };

export interface MetricsBackend {
  readonly name: string;
  log(row: MetricsRow): void | Promise<void>;
  close(): void | Promise<void>;
}

/** The numeric entries of a row except step, in row order: what every backend records as scalars. */
export function scalarsOf(row: MetricsRow): [string, number][] {
  return Object.entries(row).filter(
    (e): e is [string, number] => e[0] !== 'step' && typeof e[1] === 'number' && Number.isFinite(e[1]),
  );
}
