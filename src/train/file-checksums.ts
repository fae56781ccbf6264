// SHA-256 of every file under a directory, recorded when the directory is written and compared when
// it is read back, so a damaged or truncated file (disk fault, partial copy, a hand edit) is caught
// before training continues on it. Used by checkpoints and by the run's reference model.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { join, relative } from 'node:path';

/** SHA-256 of each file, by path relative to the directory. */
export type FileChecksums = Record<string, string>;

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null))
      hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Files under `dir` (recursively), relative and sorted, leaving out `except` (the file that records the checksums). */
function listFiles(dir: string, except: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((f) => f !== except)
    .sort();
}

/** Every file's checksum; those in `known` (computed by the processes that wrote them) are taken as given. */
export function checksumFiles(dir: string, except: string, known: FileChecksums = {}): FileChecksums {
  return Object.fromEntries(listFiles(dir, except).map((f) => [f, known[f] ?? sha256File(join(dir, f))]));
}

/**
 * What is wrong with `dir` against the recorded checksums (naming the file, as `describe` puts it),
 * or null when every file matches.
 */
export function checksumFault(
  dir: string,
  recorded: FileChecksums,
  except: string,
  describe: (file: string) => string = (f) => f,
): string | null {
  const present = listFiles(dir, except);
  const expected = Object.keys(recorded).sort();
  if (present.join('\n') !== expected.join('\n')) {
    const missing = expected.filter((f) => !present.includes(f));
    const extra = present.filter((f) => !expected.includes(f));
    const named = [...missing.map((f) => `${describe(f)} missing`), ...extra.map((f) => `${f} not recorded`)]
      .slice(0, 3)
      .join(', ');
    return `${dir}: files differ from those recorded (have ${present.length}, recorded ${expected.length}: ${named})`;
  }
  for (const f of expected)
    if (sha256File(join(dir, f)) !== recorded[f]) return `${join(dir, describe(f))}: checksum mismatch (file damaged)`;
  return null;
}
