// NVIDIA libraries are opened at run time (never linked), searched in MEDIX_CUDA_LIBS, LD_LIBRARY_PATH,
// CUDA_HOME/lib64 and the loader path; and buildInfo() says whether the CUDA kernels were built in.
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInfo, loadCudaLibrary } from '../../src/engine/system.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-cuda-libs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// loadCudaLibrary reads the environment of this process (Node's process.env writes through to it).
function withEnv<T>(env: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (e: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(e))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  };
  set(env);
  try {
    return fn();
  } finally {
    set(saved);
  }
}

// The error a load gives under `env`, or null when the library opened.
function loadError(name: 'cuBLASLt' | 'NCCL' | 'cuDNN', env: Record<string, string | undefined>): Error | null {
  return withEnv(env, () => {
    try {
      loadCudaLibrary(name);
      return null;
    } catch (e) {
      return e as Error;
    }
  });
}

const missing = loadError('cuBLASLt', {
  MEDIX_CUDA_LIBS: `${dir}/a:${dir}/b`,
  LD_LIBRARY_PATH: `${dir}/c`,
  CUDA_HOME: `${dir}/cuda`,
});
const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/lib64/libm.so.6', '/usr/lib/libm.so.6'].find(existsSync);
const bad = join(dir, 'bad');
mkdirSync(bad, { recursive: true });
writeFileSync(join(bad, 'libcudnn.so.9'), 'not a shared object');
const badError = loadError('cuDNN', { MEDIX_CUDA_LIBS: bad });

t.test('buildInfo says whether the CUDA kernels are in the addon, and why not', async (t) => {
  const b = buildInfo();
  t.type(b.cuda, 'boolean');
  t.match(b.cudaInfo, b.cuda ? /^nvcc [\d.]+, static runtime, sm_80 sm_90a$/ : /not built into this addon/);
});

t.test(
  'a missing library names itself, the sonames tried and every folder looked in',
  { skip: missing ? false : 'cuBLASLt is on the default loader path here: nothing is missing' },
  async (t) => {
    const err = missing!;
    const parts = [
      'cuBLASLt not found',
      'libcublasLt.so.13',
      'libcublasLt.so',
      `MEDIX_CUDA_LIBS (${dir}/a, ${dir}/b)`,
      `LD_LIBRARY_PATH (${dir}/c)`,
      `CUDA_HOME/lib64 (${dir}/cuda/lib64)`,
      'default loader path',
      'Set MEDIX_CUDA_LIBS',
    ];
    for (const part of parts) t.ok(err.message.includes(part), `names ${part}: ${err.message}`);
  },
);

// Any real shared object under the right soname opens (the loader checks the format, not the name).
t.test(
  'MEDIX_CUDA_LIBS is searched before LD_LIBRARY_PATH, and the file opened is returned',
  { skip: libm ? false : 'no libm.so.6 at a known path to stand in for NCCL' },
  async (t) => {
    const real = libm!;
    for (const sub of ['first', 'second']) {
      rmSync(join(dir, sub), { recursive: true, force: true });
      mkdirSync(join(dir, sub));
      copyFileSync(real, join(dir, sub, 'libnccl.so.2'));
    }
    const path = withEnv({ MEDIX_CUDA_LIBS: join(dir, 'first'), LD_LIBRARY_PATH: join(dir, 'second') }, () =>
      loadCudaLibrary('NCCL'),
    );
    t.equal(path, join(dir, 'first', 'libnccl.so.2'));
    t.equal(
      withEnv({ MEDIX_CUDA_LIBS: undefined }, () => loadCudaLibrary('NCCL')),
      path,
      'opened once per process',
    );
  },
);

t.test(
  'a file that exists but does not open is named with the loader reason',
  { skip: badError ? false : 'cuDNN is installed on the loader path here' },
  async (t) => {
    const err = badError!;
    t.match(err.message, /cuDNN not found/);
    t.ok(err.message.includes(`found but could not open: ${join(bad, 'libcudnn.so.9')}: `), err.message);
  },
);

t.test('an unknown library name is an error naming the choices', async (t) => {
  t.throws(
    () => loadCudaLibrary('cuFFT' as never),
    /loadCudaLibrary: library must be 'cuBLASLt', 'NCCL' or 'cuDNN', got 'cuFFT'/,
  );
});
