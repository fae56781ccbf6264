// Preloaded into a child process (NODE_OPTIONS=--import this-file, see crash-env.ts; plain JS, so
// it loads before any TypeScript does) to kill it at an exact point of its file-system work: every
// call that changes a file or directory under MEDIX_CRASH_DIR (open for writing, write, fsync,
// close, rename, remove, mkdir, append, copy) counts as one point, in the order the process makes
// them. With MEDIX_CRASH_AT=K the process SIGKILLs itself just before point K: the K-1 before it
// happened, K and everything after did not, as a kill -9 between two system calls would. With
// MEDIX_CRASH_COUNT_FILE the process writes how many points it passed to that file when it exits
// (to choose K for a later run). Under mpirun, MEDIX_CRASH_RANK=R limits all this to rank R (Open
// MPI's OMPI_COMM_WORLD_RANK, or PMI_RANK). Node's named ESM exports of built-ins are bound to the
// CommonJS module's properties only after syncBuiltinESMExports, which is why patching `fs` here
// reaches `import { writeSync } from 'node:fs'`.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve, sep } from 'node:path';

const dir = process.env.MEDIX_CRASH_DIR ? resolve(process.env.MEDIX_CRASH_DIR) + sep : null;
const crashAt = Number(process.env.MEDIX_CRASH_AT ?? 0);
const countFile = process.env.MEDIX_CRASH_COUNT_FILE;
const rank = process.env.OMPI_COMM_WORLD_RANK ?? process.env.PMI_RANK;
const onlyRank = process.env.MEDIX_CRASH_RANK;
if (dir && (onlyRank === undefined || onlyRank === rank)) install(dir);

function install(dir) {
  let points = 0;
  const watchedFds = new Set();
  const inDir = (p) =>
    (typeof p === 'string' || p instanceof URL || Buffer.isBuffer(p)) &&
    resolve(String(p instanceof URL ? p.pathname : p)).startsWith(dir);
  const point = () => {
    points++;
    if (points === crashAt) process.kill(process.pid, 'SIGKILL');
  };
  // Wraps fs[name]: a call for which counts(args) holds is one point; after(result, args) sees its result.
  const wrap = (name, counts, after) => {
    const original = fs[name];
    fs[name] = (...args) => {
      if (counts(args)) point();
      const result = original(...args);
      after?.(result, args);
      return result;
    };
  };
  const writes = (flags) => flags !== undefined && flags !== 'r' && flags !== fs.constants.O_RDONLY;
  wrap(
    'openSync',
    (a) => inDir(a[0]) && writes(a[1]),
    (fd, a) => {
      if (inDir(a[0]) && writes(a[1])) watchedFds.add(fd);
    },
  );
  for (const name of ['writeSync', 'fsyncSync']) wrap(name, (a) => watchedFds.has(a[0]));
  wrap('closeSync', (a) => watchedFds.delete(a[0]));
  for (const name of ['renameSync', 'copyFileSync']) wrap(name, (a) => inDir(a[0]) || inDir(a[1]));
  for (const name of ['rmSync', 'mkdirSync', 'appendFileSync', 'writeFileSync', 'unlinkSync', 'cpSync'])
    wrap(name, (a) => inDir(a[0]));
  syncBuiltinESMExports();
  if (countFile) process.on('exit', () => fs.writeFileSync(countFile, String(points)));
}
