// The package entry point: what the README documents is exported, and the addon describes itself
// consistently (so users can tell which GEMM kernel and vector ISA they are running).
import t from 'tap';
import * as medix from '../src/index.js';

t.test('the public API is exported from the package entry', async (t) => {
  for (const name of [
    'Model',
    'packSequences',
    'AdamW',
    'loadModel',
    'policyLoss',
    'sftLoss',
    'setThreads',
    'buildInfo',
  ])
    t.type((medix as Record<string, unknown>)[name], 'function', name);
});

t.test('build info agrees with the available GEMM kernels', async (t) => {
  const info = medix.buildInfo();
  t.ok(medix.gemmKernels().includes('portable'), 'the portable kernel is always built in');
  t.equal(medix.gemmKernels().includes('openblas'), info.openblas);
  t.equal(info.openblasInfo === '', !info.openblas, 'OpenBLAS describes itself exactly when present');
  t.match(info.compiler, /\S/);
});
