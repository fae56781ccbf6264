// Append-only JSONL results keyed by sample: each phase appends one line per finished sample, so a
// killed run loses at most the line being written. Reopening drops a torn last line (truncating it,
// so the next append starts on a fresh line); the last record of a key wins, so a retried sample's
// new record supersedes its old error.
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync } from 'node:fs';
import { readJsonl, RunFileError } from '../report/run-files.js';

export interface ResultRecord {
  key: string;
  task: string;
  status: 'ok' | 'error';
  error?: string;
}

function checkRecord(row: unknown, where: string): ResultRecord {
  const r = row as Partial<ResultRecord> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.key !== 'string' ||
    typeof r.task !== 'string' ||
    (r.status !== 'ok' && r.status !== 'error')
  )
    throw new RunFileError(`${where}: expected a result record with key, task and status 'ok' | 'error'`);
  return r as ResultRecord;
}

export class ResultsFile<T extends ResultRecord> {
  /** The latest record of every key, in the order keys first appeared. */
  readonly records = new Map<string, T>();
  /** Lines dropped because the file ended in the middle of one (a kill mid-write). */
  readonly tornLines: number;

  constructor(readonly path: string) {
    this.tornLines = existsSync(path) ? this.dropTornTail() : 0;
    for (const r of readJsonl(path, checkRecord)) this.records.set(r.key, r as T);
  }

  private dropTornTail(): number {
    const bytes = readFileSync(this.path);
    const end = bytes.lastIndexOf(0x0a) + 1;
    if (end === bytes.length) return 0;
    truncateSync(this.path, end);
    return 1;
  }

  done(key: string): boolean {
    return this.records.get(key)?.status === 'ok';
  }

  /** One write of one whole line, so concurrent async callers never interleave within a line. */
  append(record: T): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
    this.records.set(record.key, record);
  }

  /** Flushes the file to disk at the end of a phase. */
  sync(): void {
    if (!existsSync(this.path)) return;
    const fd = openSync(this.path, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
