// Prints 1 when OpenBLAS (cblas.h and libopenblas) can be used at build time, else 0.
// MEDIX_NO_OPENBLAS=1 forces the portable build (used by CI to prove the fallback builds).
const { execSync } = require('node:child_process');
const fs = require('node:fs');
if (process.env.MEDIX_NO_OPENBLAS === '1') {
  console.log(0);
  process.exit(0);
}
const headers = [
  '/usr/include/x86_64-linux-gnu/cblas.h',
  '/usr/include/aarch64-linux-gnu/cblas.h',
  '/usr/include/cblas.h',
  '/usr/include/openblas/cblas.h',
];
let ok = headers.some((h) => fs.existsSync(h));
if (ok) {
  try {
    ok = /libopenblas\.so/.test(execSync('ldconfig -p', { encoding: 'utf8' }));
  } catch {
    ok = false;
  }
}
console.log(ok ? 1 : 0);
