// The sgemm every CPU op uses: both kernels (the portable one on each register kernel this CPU can run)
// against a float64 reference over all transpose combinations, edge sizes, padded leading dimensions,
// alpha/beta; bit-reproducibility of the portable kernel across runs, thread counts and register
// kernels; the MEDIX_GEMM override; errors on bad input.
import t, { type Test } from 'tap';

import {
  buildInfo,
  cpuInfo,
  gemm,
  gemmAsync,
  gemmKernel,
  gemmKernels,
  gemmMicroKernel,
  gemmMicroKernels,
  setGemmKernel,
  setGemmMicroKernel,
  setThreads,
  threads,
  type GemmKernelName,
} from '../../src/engine/system.js';
import { randn, rng } from '../helpers/numeric.js';
import { withAddonEnv } from '../helpers/addon-child.js';
import { skipIfMissing } from '../helpers/system-skip.js';

const initialKernel = gemmKernel();
const initialThreads = threads();
const initialMicro = gemmMicroKernel();
t.teardown(() => {
  setGemmKernel(initialKernel);
  setGemmMicroKernel(initialMicro);
  setThreads(initialThreads);
});

const U = 2 ** -24; // unit roundoff of float32

interface Case {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  /** Extra stride beyond the stored row length of A, B and C. */
  pad: number;
}

interface Operands {
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  lda: number;
  ldb: number;
  ldc: number;
}

const SENTINEL = 12345.5; // fills the padding of C, which gemm must not touch

function makeOperands(c: Case, seed: number): Operands {
  const r = rng(seed);
  const [aRows, aCols] = c.transA ? [c.K, c.M] : [c.M, c.K];
  const [bRows, bCols] = c.transB ? [c.N, c.K] : [c.K, c.N];
  const lda = aCols + c.pad;
  const ldb = bCols + c.pad;
  const ldc = c.N + c.pad;
  const C = new Float32Array(c.M * ldc).fill(SENTINEL);
  for (let i = 0; i < c.M; i++) for (let j = 0; j < c.N; j++) C[i * ldc + j] = c.beta === 0 ? NaN : r() * 2 - 1; // beta = 0 must ignore C
  return { A: randn(aRows * lda, r), B: randn(bRows * ldb, r), C, lda, ldb, ldc };
}

/**
 * Float64 reference. Returns the exact result (inputs are float32, so products and sums of them are
 * computed essentially exactly in float64) and, per element, the scale |alpha|*sum|a*b| + |beta*c| that
 * float32 rounding errors are proportional to.
 */
function reference(c: Case, o: Operands): { value: Float64Array; scale: Float64Array } {
  const value = new Float64Array(c.M * c.N);
  const scale = new Float64Array(c.M * c.N);
  const a = (i: number, k: number) => (c.transA ? o.A[k * o.lda + i] : o.A[i * o.lda + k]);
  const b = (k: number, j: number) => (c.transB ? o.B[j * o.ldb + k] : o.B[k * o.ldb + j]);
  for (let i = 0; i < c.M; i++)
    for (let j = 0; j < c.N; j++) {
      let sum = 0;
      let abs = 0;
      for (let k = 0; k < c.K; k++) {
        const p = a(i, k) * b(k, j);
        sum += p;
        abs += Math.abs(p);
      }
      const old = c.beta === 0 ? 0 : c.beta * o.C[i * o.ldc + j];
      value[i * c.N + j] = c.alpha * sum + old;
      scale[i * c.N + j] = Math.abs(c.alpha) * abs + Math.abs(old);
    }
  return { value, scale };
}

/**
 * Checks C against the reference. Tolerance: any order of float32 fused multiply-adds over K terms,
 * cut into slices whose partial results are added up, rounds at most K times in the chain, once per
 * slice (<= K), once for alpha and once for beta, each time by at most U relative to the running
 * magnitude, so |error| <= (2K + 2) * U * scale. We allow (2K + 4) * U * scale. A missing, repeated or
 * misplaced term changes an element by about scale / K, far above this for every K used here.
 * Also checks that the padding of C (columns past N) is untouched.
 */
function check(t: Test, c: Case, before: Operands, C: Float32Array, what: string): void {
  const ref = reference(c, before);
  const tol = (2 * c.K + 4) * U;
  let worst = 0;
  let where = '';
  let padOk = true;
  for (let i = 0; i < c.M; i++) {
    for (let j = 0; j < c.N; j++) {
      const err = Math.abs(C[i * before.ldc + j] - ref.value[i * c.N + j]);
      const ratio = err / (tol * ref.scale[i * c.N + j] + 1e-30);
      if (!(ratio <= worst)) {
        worst = Number.isNaN(ratio) ? Infinity : ratio;
        where = `C[${i}][${j}] = ${C[i * before.ldc + j]}, expected ${ref.value[i * c.N + j]}`;
      }
    }
    for (let j = c.N; j < before.ldc; j++) if (C[i * before.ldc + j] !== SENTINEL) padOk = false;
  }
  t.ok(
    worst <= 1,
    `${what}: within (2K+4)*eps*scale (worst ${worst.toFixed(3)} of tolerance${where ? `; ${where}` : ''})`,
  );
  t.ok(padOk, `${what}: padding of C past column N untouched`);
}

function describe(c: Case): string {
  return `${c.transA ? 'At' : 'A'}*${c.transB ? 'Bt' : 'B'} M=${c.M} N=${c.N} K=${c.K} alpha=${c.alpha} beta=${c.beta} pad=${c.pad}`;
}

function runCase(t: Test, c: Case, seed: number): void {
  const o = makeOperands(c, seed);
  const C = o.C.slice();
  gemm({ ...c, A: o.A, B: o.B, C, lda: o.lda, ldb: o.ldb, ldc: o.ldc });
  check(t, c, o, C, describe(c));
}

// Odd sizes hit every edge of the 6x16 (AVX2) and 14x32 (AVX-512) register tiles, [28, 64, 9] is made
// of whole 14x32 tiles; 250 rows and K = 600 cross a row block of the AVX2 kernel's size (240 rows at
// most) and the K slice (512); N = 4100 crosses the column panel (2048 at most) twice.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 3, 65],
  [65, 130, 17],
  [130, 17, 257],
  [7, 257, 130],
  [250, 40, 600],
  [2, 4100, 20],
  [28, 64, 9],
  [15, 33, 513],
];

const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

function kernelSuite(kernel: GemmKernelName, micro?: string) {
  return async (t: Test) => {
    setGemmKernel(kernel);
    t.equal(gemmKernel(), kernel);
    if (micro) setGemmMicroKernel(micro);
    let seed = 1;
    for (const [M, N, K] of SHAPES)
      for (const [transA, transB] of TRANSPOSES) {
        runCase(t, { transA, transB, M, N, K, alpha: 1, beta: 0, pad: 0 }, seed++);
        runCase(t, { transA, transB, M, N, K, alpha: -1.25, beta: 0.5, pad: 3 }, seed++);
      }

    // K = 0 and alpha = 0: C = beta * C, and A, B are not read (NaN there must not leak in).
    for (const [K, alpha] of [
      [0, 1],
      [4, 0],
    ]) {
      const A = new Float32Array(3 * K).fill(NaN);
      const B = new Float32Array(K * 2).fill(NaN);
      const C = new Float32Array([1, -2, 3, -4, 5, -6]);
      gemm({ M: 3, N: 2, K, alpha, beta: -2, A, B, C });
      t.same(Array.from(C), [-2, 4, -6, 8, -10, 12], `K=${K} alpha=${alpha}: C = beta*C`);
      C.fill(NaN);
      gemm({ M: 3, N: 2, K, alpha, beta: 0, A, B, C });
      t.same(Array.from(C), [0, 0, 0, 0, 0, 0], `K=${K} alpha=${alpha} beta=0: C = 0 even if it held NaN`);
    }

    // Empty products leave C alone.
    const C = new Float32Array([7, 8]);
    gemm({ M: 0, N: 2, K: 3, A: new Float32Array(0), B: new Float32Array(6), C: new Float32Array(0) });
    gemm({ M: 1, N: 0, K: 3, A: new Float32Array(3), B: new Float32Array(0), C: new Float32Array(0) });
    gemm({ M: 1, N: 2, K: 3, A: new Float32Array(3), B: new Float32Array(6), C, alpha: 0, beta: 1 });
    t.same(Array.from(C), [7, 8], 'M=0, N=0 and alpha=0,beta=1 leave C as it was');

    // The promise form gives the same bits as the synchronous one.
    const c: Case = { transA: true, transB: false, M: 70, N: 90, K: 300, alpha: 1, beta: 0, pad: 1 };
    const o = makeOperands(c, 99);
    const sync = o.C.slice();
    const viaPromise = o.C.slice();
    gemm({ ...c, ...o, C: sync });
    await gemmAsync({ ...c, ...o, C: viaPromise });
    sameBits(t, bits(viaPromise), bits(sync), 'gemmAsync matches gemm');
  };
}

function bits(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Asserts two results are bit-for-bit identical (a byte comparison; tap's deep equality is slow on big arrays). */
function sameBits(t: Test, actual: Buffer, expected: Buffer, msg: string): void {
  t.ok(actual.equals(expected), msg);
}

for (const micro of gemmMicroKernels())
  t.test(
    `portable kernel on the ${micro} register kernel matches the float64 reference`,
    kernelSuite('portable', micro),
  );

t.test('every register kernel this CPU has is offered, the widest by default', async (t) => {
  const features = cpuInfo().features;
  t.equal(gemmMicroKernels()[0], process.arch === 'x64' ? 'avx2' : 'generic', "the build's own kernel comes first");
  const gccX64 = process.arch === 'x64' && buildInfo().compiler.startsWith('gcc');
  if (gccX64) t.equal(gemmMicroKernels().includes('avx512'), /AVX512F/.test(features), `CPU features: ${features}`);
  t.equal(initialMicro, gemmMicroKernels().at(-1), 'the default is the widest');
  t.throws(
    () => setGemmMicroKernel('avx1024'),
    /setGemmMicroKernel: 'avx1024' is not a register kernel this CPU can run \(available: avx2/,
  );
  t.throws(() => setGemmMicroKernel(3 as never), /setGemmMicroKernel: name must be a string/);
});

t.test(
  'OpenBLAS kernel matches the float64 reference',
  skipIfMissing(
    gemmKernels().includes('openblas')
      ? null
      : 'OpenBLAS was not built in (cblas.h or libopenblas missing at build time, or MEDIX_NO_OPENBLAS=1)',
    process.env.MEDIX_NO_OPENBLAS === '1',
  ),
  kernelSuite('openblas'),
);

t.test('buildInfo describes the build', async (t) => {
  const info = buildInfo();
  t.equal(info.openblas, gemmKernels().includes('openblas'), 'openblas flag agrees with the kernel list');
  if (info.openblas) t.match(info.openblasInfo, /OpenBLAS .* core=\S+/, 'OpenBLAS reports its version and core');
  else t.equal(info.openblasInfo, '');
  t.ok(info.compiler.length > 0 && info.simd.length > 0, `compiler "${info.compiler}", simd "${info.simd}"`);
});

t.test('portable kernel gives the same bits across runs, threads, register kernels and tile positions', async (t) => {
  setGemmKernel('portable');
  const micros = gemmMicroKernels();
  for (const [transA, transB] of TRANSPOSES) {
    const c: Case = { transA, transB, M: 301, N: 283, K: 600, alpha: 0.75, beta: 0.5, pad: 0 };
    const o = makeOperands(c, 7);
    const run = (n: number, micro = micros[0]) => {
      setGemmMicroKernel(micro);
      setThreads(n);
      const C = o.C.slice();
      gemm({ ...c, ...o, C });
      return bits(C);
    };
    const two = run(2);
    sameBits(t, run(2), two, `${describe(c)}: same bits on a second run`);
    sameBits(t, run(1), two, `${describe(c)}: same bits with 1 thread as with 2`);
    sameBits(t, run(3), two, `${describe(c)}: same bits with 3 threads`);
    for (const micro of micros.slice(1)) {
      sameBits(t, run(2, micro), two, `${describe(c)}: same bits on the ${micro} register kernel as on ${micros[0]}`);
      sameBits(t, run(1, micro), two, `${describe(c)}: same bits on ${micro} with 1 thread`);
    }

    // Rows 1..M-1 computed on their own sit at other positions in the register tiles (and are split
    // between threads differently), yet must come out identical. Row 1 of op(A) starts one stored row
    // into A, or one column into A when it is transposed.
    const C = o.C.slice(c.N);
    const A = o.A.subarray(transA ? 1 : o.lda);
    gemm({ ...c, M: c.M - 1, A, B: o.B, C, lda: o.lda, ldb: o.ldb, ldc: o.ldc });
    sameBits(t, bits(C), two.subarray(c.N * 4), `${describe(c)}: rows computed alone match the full product`);
  }
  setThreads(initialThreads);
});

t.test('MEDIX_GEMM picks the kernel at startup', async (t) => {
  const withEnv = (value: string, code: string) => withAddonEnv({ MEDIX_GEMM: value }, code);
  const kernelWith = (value: string) => withEnv(value, 'console.log(a.gemmKernel())');
  t.equal(kernelWith('portable'), 'portable');
  t.equal(kernelWith(''), gemmKernels().includes('openblas') ? 'openblas' : 'portable', 'empty: default kernel');
  t.match(kernelWith('mkl'), /MEDIX_GEMM must be 'portable' or 'openblas', got 'mkl'/);
  t.equal(
    withEnv('mkl', "a.setGemmKernel('portable'); console.log(a.gemmKernel())"),
    'portable',
    'setGemmKernel overrides a bad MEDIX_GEMM',
  );
  if (gemmKernels().includes('openblas')) t.equal(kernelWith('openblas'), 'openblas');
  else t.match(kernelWith('openblas'), /MEDIX_GEMM=openblas, but this build of medix has no OpenBLAS/);
});

t.test('bad input throws clear errors', async (t) => {
  const ok = () => ({ M: 2, N: 3, K: 4, A: new Float32Array(8), B: new Float32Array(12), C: new Float32Array(6) });
  const bad = (patch: Record<string, unknown>) => ({ ...ok(), ...patch }) as never;
  t.throws(() => gemm(bad({ A: new Float64Array(8) })), /gemm: A must be a Float32Array/);
  t.throws(() => gemm(bad({ C: [0, 0, 0, 0, 0, 0] })), /gemm: C must be a Float32Array \(got a plain Array\)/);
  t.throws(
    () => gemm(bad({ A: new Float32Array(7) })),
    /gemm: A must have length >= 8 \(2 rows x 4 columns, lda = 4\), got 7/,
  );
  t.throws(
    () => gemm(bad({ transB: true, ldb: 5 })),
    /gemm: B must have length >= 14 \(3 rows x 4 columns, ldb = 5\), got 12/,
    'B checked against its stored (transposed) shape',
  );
  t.throws(() => gemm(bad({ transA: true, B: new Float32Array(11) })), /gemm: B must have length >= 12/);
  t.throws(() => gemm(bad({ lda: 3 })), /gemm: lda = 3 must be >= max\(1, 4\)/);
  t.throws(
    () => gemm(bad({ ldc: 5, C: new Float32Array(7) })),
    /gemm: C must have length >= 8 \(2 rows x 3 columns, ldc = 5\), got 7/,
  );
  t.throws(() => gemm(bad({ M: -1 })), /gemm: option 'M' must be an integer in \[0, /);
  t.throws(() => gemm(bad({ K: 1.5 })), /gemm: option 'K' must be an integer/);
  t.throws(() => gemm(bad({ N: undefined })), /gemm: option 'N' must be a number/);
  t.throws(() => gemm(bad({ alpha: NaN })), /gemm: option 'alpha' must be finite/);
  t.throws(() => gemm(bad({ transA: 1 })), /gemm: option 'transA' must be a boolean/);
  const shared = new Float32Array(20);
  t.throws(
    () => gemm(bad({ A: shared.subarray(0, 8), C: shared.subarray(6, 12) })),
    /gemm: C must not share memory with A/,
  );
  t.throws(() => gemm(null as never), /gemm: options must be an object/);
  t.throws(
    () => gemmAsync(bad({ B: new Float32Array(3) })),
    /gemmAsync: B must have length >= 12/,
    'gemmAsync checks before starting',
  );

  t.throws(() => setGemmKernel('mkl' as never), /setGemmKernel: kernel must be 'portable' or 'openblas', got 'mkl'/);
  if (!gemmKernels().includes('openblas'))
    t.throws(() => setGemmKernel('openblas'), /setGemmKernel: kernel 'openblas' is not available/);
  t.throws(() => setThreads(-1), /setThreads: n must be an integer in \[0, 1024\], got -1/);
  t.throws(() => setThreads(2.5), /setThreads: n must be an integer/);
  t.equal(threads(), initialThreads, 'failed calls changed nothing');
});
