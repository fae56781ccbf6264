// Moments stored as parts of tensors (checkpoints of fully sharded runs, checkpoint-full-shard.ts):
// entry "<key>@<from>" of a safetensors file holds floats [from, from + its length) of the moment
// tensor <key>. A reader finds the parts over all the files and copies any range of a tensor,
// wherever its pieces were written.
import { join } from 'node:path';
import { SafetensorsFile } from '../model/safetensors.js';

export const partKey = (key: string, from: number) => `${key}@${from}`;
const PART = /^(.*)@(\d+)$/;

interface Part {
  file: SafetensorsFile;
  entry: string;
  from: number;
  count: number;
}

export class MomentParts {
  private readonly parts = new Map<string, Part[]>();

  private constructor(
    private readonly dir: string,
    private readonly files: SafetensorsFile[],
  ) {
    for (const file of files)
      for (const [entry, info] of file.tensors) {
        const m = PART.exec(entry);
        if (!m) continue;
        const list = this.parts.get(m[1]) ?? [];
        list.push({ file, entry, from: Number(m[2]), count: info.shape.reduce((a, b) => a * b, 1) });
        this.parts.set(m[1], list);
      }
  }

  /** The parts in `files` (paths relative to `dir`). */
  static open(dir: string, files: readonly string[]): MomentParts {
    const opened: SafetensorsFile[] = [];
    try {
      for (const f of files) opened.push(SafetensorsFile.open(join(dir, f)));
    } catch (e) {
      for (const f of opened) f.close();
      throw e;
    }
    return new MomentParts(dir, opened);
  }

  /** Copies floats [from, from + count) of moment `key` to dst[at...]; throws naming what no part covers. */
  read(key: string, from: number, count: number, dst: Float32Array, at: number): void {
    let covered = 0;
    for (const p of this.parts.get(key) ?? []) {
      const lo = Math.max(from, p.from), hi = Math.min(from + count, p.from + p.count);
      if (lo >= hi) continue;
      dst.set(p.file.readFloat32(p.entry).subarray(lo - p.from, hi - p.from), at + lo - from);
      covered += hi - lo;
    }
    if (covered !== count) throw new Error(`${this.dir}: the moment parts cover ${covered} of floats [${from}, ${from + count}) of ${key}`);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
