// Writes that never leave a half-written file under the final name: data goes to a temporary file
// in the same directory, is flushed to disk, and is renamed over the target (rename is atomic on
// POSIX file systems). Used for checkpoints, caches and results that a crash must not corrupt.
import { closeSync, fsyncSync, openSync, renameSync, writeSync, rmSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function atomicWriteFileSync(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  // Keeps the system error's code (callers may test it), names the target rather than the temporary file.
  const named = (e: unknown) =>
    Object.assign(
      new Error(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e }),
      { code: (e as NodeJS.ErrnoException).code },
    );
  let fd: number;
  try {
    fd = openSync(tmp, 'w'); // e.g. the folder does not exist: the error names the target, not the temporary file
  } catch (e) {
    throw named(e);
  }
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true }); // e.g. the target is a directory: no stray temporary file is left
    throw named(e);
  }
  fsyncDir(dirname(path));
}

/** Makes a rename durable: the directory entry itself is flushed. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
