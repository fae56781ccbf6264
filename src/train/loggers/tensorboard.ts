// trainer.logger: tensorboard. Event files under RUN_DIR/tensorboard/, one scalar per metrics.jsonl
// key with the same tag, at the row's step. Each row is one appended write of whole records, so a
// crash leaves at most a torn last record, which TensorBoard's reader stops at.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileVersionEvent, scalarsEvent } from './event-proto.js';
import { tfRecord } from './tfrecord.js';
import { scalarsOf, type MetricsBackend, type MetricsRow } from './types.js';

export class TensorBoardBackend implements MetricsBackend {
  readonly name = 'tensorboard';
  readonly file: string;

  constructor(
    runDir: string,
    private readonly now: () => number = Date.now,
  ) {
    const dir = join(runDir, 'tensorboard');
    mkdirSync(dir, { recursive: true });
    const t = now() / 1000;
    // TensorBoard finds event files by this name pattern; a resumed run starts a new file beside the old.
    this.file = join(dir, `events.out.tfevents.${Math.floor(t)}.${hostname()}.${process.pid}.medix`);
    writeFileSync(this.file, tfRecord(fileVersionEvent(t)));
  }

  log(row: MetricsRow): void {
    const scalars = scalarsOf(row);
    if (scalars.length) appendFileSync(this.file, tfRecord(scalarsEvent(this.now() / 1000, row.step, scalars)));
  }

  close(): void {}
}
