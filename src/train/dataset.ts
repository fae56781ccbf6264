// Training data: JSONL rows with a question, a reference answer ("<TAG> answer") and an image list,
// under configurable column names. Bad rows are reported with file and line and skipped (counted)
// or stop the run, by policy. Order is a seeded shuffle per epoch, and the position (epoch, index)
// is part of the checkpoint so a resumed run sees exactly the prompts it would have seen.
import { readFileSync } from 'node:fs';
import { prng } from '../util/prng.js';

export interface DataRow {
  /** "file:line", for messages and sample logs. */
  id: string;
  question: string;
  groundTruth: string;
  images: unknown[];
}

export interface DatasetOptions {
  promptKey: string;
  answerKey: string;
  imageKey: string;
  onBadRow: 'skip' | 'stop';
  warn?: (message: string) => void;
}

export class DataError extends Error {
  override name = 'DataError';
}

export interface DataPosition {
  epoch: number;
  index: number;
}

export function readJsonlDataset(file: string, o: DatasetOptions): { rows: DataRow[]; badRows: number } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(file));
  } catch (e) {
    throw new DataError(`${file}: cannot read as UTF-8 (${(e as Error).message})`);
  }
  const rows: DataRow[] = [];
  let bad = 0;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    const fail = (why: string) => {
      if (o.onBadRow === 'stop') throw new DataError(`${where}: ${why}`);
      bad++;
      o.warn?.(`medix data: skipping ${where}: ${why}`);
    };
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      return fail('not valid JSON');
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return fail('not a JSON object');
    const q = rec[o.promptKey];
    const a = rec[o.answerKey];
    const imgs = rec[o.imageKey] ?? [];
    if (typeof q !== 'string' || q.trim() === '') return fail(`field '${o.promptKey}' must be a non-empty string`);
    if (typeof a !== 'string' || a.trim() === '') return fail(`field '${o.answerKey}' must be a non-empty string`);
    if (!Array.isArray(imgs)) return fail(`field '${o.imageKey}' must be a list`);
    rows.push({ id: where, question: q, groundTruth: a, images: imgs });
  });
  if (rows.length === 0) throw new DataError(`${file}: no usable rows`);
  return { rows, badRows: bad };
}

export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rand = prng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Epochs of seeded shuffles, read in batches; position() / the constructor restore the exact place. */
export class PromptSampler {
  private order: DataRow[];

  constructor(
    private readonly rows: readonly DataRow[],
    private readonly seed: number,
    private readonly shuffle: boolean,
    private pos: DataPosition = { epoch: 0, index: 0 },
  ) {
    this.order = this.orderOf(pos.epoch);
  }

  private orderOf(epoch: number): DataRow[] {
    return this.shuffle ? shuffled(this.rows, this.seed * 1000003 + epoch) : [...this.rows];
  }

  position(): DataPosition {
    return { ...this.pos };
  }

  /** The next `n` rows, crossing into the next epoch when one ends. */
  next(n: number): DataRow[] {
    const out: DataRow[] = [];
    while (out.length < n) {
      if (this.pos.index >= this.order.length) {
        this.pos = { epoch: this.pos.epoch + 1, index: 0 };
        this.order = this.orderOf(this.pos.epoch);
      }
      out.push(this.order[this.pos.index++]);
    }
    return out;
  }
}
