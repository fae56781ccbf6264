// The environment for a child process (or every rank of an mpirun) that preloads
// test/helpers/crash-at-write.mjs: killed just before its `at`-th change to a file under `dir`
// (0: never), counting those changes into `countFile` when given, only on `rank` when given.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface CrashAtWrite {
  dir: string;
  at: number;
  countFile?: string;
  rank?: number;
}

export function crashAtWriteEnv(o: CrashAtWrite): Record<string, string> {
  const helper = pathToFileURL(join(import.meta.dirname, 'crash-at-write.mjs')).href;
  return {
    // Replaces tap's NODE_OPTIONS: its coverage instrumentation would double each child's time.
    NODE_OPTIONS: `--import ${helper}`,
    MEDIX_CRASH_DIR: o.dir,
    MEDIX_CRASH_AT: String(o.at),
    MEDIX_CRASH_COUNT_FILE: o.countFile ?? '',
    ...(o.rank === undefined ? {} : { MEDIX_CRASH_RANK: String(o.rank) }),
  };
}
