// A run's append-only logs: metrics.jsonl (one JSON object per step) and samples.jsonl (logged
// generations). Each record is one write of one complete line, so a crash leaves at most a torn
// last line, which the readers (src/report/run-files.ts) ignore. On resume, records beyond the
// checkpoint's step are dropped so the logs continue exactly where the restored state is.
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonl, RUN_FILES, type MetricsRow, type SampleRow } from '../report/run-files.js';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import type { MetricsBackends } from './loggers/index.js';

export class RunLog {
  readonly metricsFile: string;
  readonly samplesFile: string;

  /** backends: trainer.logger's TensorBoard / MLflow / W&B, each row also goes to them. */
  constructor(
    readonly dir: string,
    private readonly backends: MetricsBackends | null = null,
  ) {
    this.metricsFile = join(dir, RUN_FILES.metrics);
    this.samplesFile = join(dir, RUN_FILES.samples);
  }

  /** Non-finite numbers are written as null (JSON has no NaN) so one bad value never loses a line. */
  metrics(row: MetricsRow): void {
    appendFileSync(
      this.metricsFile,
      `${JSON.stringify(row, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`,
    );
    this.backends?.log(row);
  }

  samples(rows: SampleRow[]): void {
    if (rows.length) appendFileSync(this.samplesFile, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  }

  /** Keeps the records of steps <= step (used when resuming from a checkpoint at that step). */
  truncateAfter(step: number): void {
    for (const file of [this.metricsFile, this.samplesFile]) {
      if (!existsSync(file)) continue;
      const keep = readJsonl(file, (row) => row as { step: number }).filter((r) => r.step <= step);
      atomicWriteFileSync(file, keep.map((r) => `${JSON.stringify(r)}\n`).join(''));
    }
  }

  /** The metrics logged so far (for tests and the report). */
  readMetrics(): MetricsRow[] {
    return existsSync(this.metricsFile) ? readJsonl(this.metricsFile, (row) => row as MetricsRow) : [];
  }
}
