// A persistent cache of judge answers: an append-only JSONL file of {"key", "value"} lines, read
// once when opened, appended to without blocking the caller. Append-only because a crash can then
// lose at most the line being written; a torn last line is skipped (and counted) on the next open,
// and the first append after it starts on a fresh line, so one torn write never spoils the next.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';

/** A cache key from its parts (e.g. judge model, prompt version, prediction, reference). */
export function cacheKey(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export class JsonlCache<V> {
  private readonly map = new Map<string, V>();
  /** Lines of the file that could not be read (torn writes, foreign content). */
  readonly unreadableLines: number = 0;
  private needsNewline = false;
  private writes: Promise<void> = Promise.resolve();
  private writeError: Error | null = null;

  /**
   * @param file where entries persist; undefined keeps them in memory only.
   * @param isValue accepts the values this cache stores; lines with other values are unreadable.
   */
  constructor(
    readonly file: string | undefined,
    private readonly isValue: (v: unknown) => v is V,
  ) {
    if (!file || !existsSync(file)) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`cache file ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    this.needsNewline = text.length > 0 && !text.endsWith('\n');
    let unreadable = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r = JSON.parse(line) as { key?: unknown; value?: unknown };
        if (typeof r.key === 'string' && isValue(r.value)) this.map.set(r.key, r.value);
        else unreadable++;
      } catch {
        unreadable++;
      }
    }
    this.unreadableLines = unreadable;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  /** Stores in memory at once; the file append is queued (in order) and awaited by flush(). */
  set(key: string, value: V): void {
    if (!this.isValue(value)) throw new TypeError(`cache: refusing to store a value of the wrong shape for key ${key}`);
    this.map.set(key, value);
    if (!this.file) return;
    const line = `${(this.needsNewline ? '\n' : '') + JSON.stringify({ key, value })}\n`;
    this.needsNewline = false;
    const file = this.file;
    this.writes = this.writes.then(() =>
      appendFile(file, line).catch((e: Error) => {
        this.writeError ??= new Error(`cache ${file}: cannot append (${e.message})`);
      }),
    );
  }

  /** Waits for queued appends; rejects with the first write error (entries stay usable in memory). */
  async flush(): Promise<void> {
    await this.writes;
    if (this.writeError) throw this.writeError;
  }
}
