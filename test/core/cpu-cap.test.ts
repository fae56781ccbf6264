// MEDIX_CPU=avx2 runs the process as an AVX2+FMA machine would: every run-time kernel choice (the
// portable gemm's register kernel, the bf16 conversion paths, the FMA probe, the feature list the
// bench prints) stops seeing AVX-512. Each check runs in a child process, since the flags are read once.
import t from 'tap';

import { bf16Paths } from '../../src/engine/bf16.js';
import { cpuInfo, gemmMicroKernels } from '../../src/engine/system.js';
import { withAddonEnv } from '../helpers/addon-child.js';

/** What `code` prints in a fresh process with MEDIX_CPU set to `value` (the flags are read once). */
const withCap = (value: string, code: string) => withAddonEnv({ MEDIX_CPU: value }, code);

const hasAvx512 = gemmMicroKernels().includes('avx512');

t.test('MEDIX_CPU=avx2 hides AVX-512 from every kernel choice', async (t) => {
  if (!hasAvx512) t.comment('this CPU has no AVX-512: the cap must leave its choices as they are');
  const features = withCap('avx2', 'console.log(a.cpuInfo().features)');
  t.notMatch(features, /AVX512F|AVX512-BF16/, `features: ${features}`);
  t.match(features, /AVX2 FMA/);
  if (hasAvx512) t.match(features, /MEDIX_CPU=avx2/, 'the bench output names the cap');
  t.same(JSON.parse(withCap('avx2', 'console.log(JSON.stringify(a.gemmMicroKernels()))')), ['avx2']);
  t.equal(withCap('avx2', 'console.log(a.gemmMicroKernel())'), 'avx2');
  const paths: string[] = JSON.parse(withCap('avx2', 'console.log(JSON.stringify(a.bf16Paths()))'));
  t.notOk(paths.includes('avx512bf16'), `bf16 paths: ${paths.join(', ')}`);
  t.same(
    paths,
    bf16Paths().filter((p) => p !== 'avx512bf16'),
    'the other paths stay',
  );
  t.equal(withCap('avx2', 'console.log(a.fmaPeak(1, 1).isa)'), 'AVX2+FMA', 'the FMA probe runs 256-bit vectors');
});

t.test('MEDIX_CPU=native or unset keeps what the CPU has', async (t) => {
  t.equal(withCap('native', 'console.log(a.cpuInfo().features)'), cpuInfo().features);
  t.equal(withCap('', 'console.log(a.cpuInfo().features)'), cpuInfo().features);
});

t.test('a bad MEDIX_CPU is a clear error at first use, not a crash', async (t) => {
  t.match(
    withCap('avx1024', 'console.log(a.cpuInfo().features)'),
    /MEDIX_CPU must be 'avx2' or 'native', got 'avx1024'/,
  );
});
