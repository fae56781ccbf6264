// CUDA at build time, for binding.gyp. With no argument prints 1 when nvcc and CUDA's static runtime
// are found (scripts/cuda-toolchain.sh: $NVCC, $CUDA_HOME, PATH), else 0; --link prints the static
// runtime and the system libraries it needs; --info prints what buildInfo().cudaInfo reports.
// MEDIX_NO_CUDA=1 forces the CPU-only build. No GPU is needed to build.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

function toolchain() {
  try {
    const out = execFileSync('bash', [path.join(__dirname, 'cuda-toolchain.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [nvcc, cudart] = out.trim().split('\n');
    return { nvcc, cudart };
  } catch {
    return null;
  }
}

const t = toolchain();
const arg = process.argv[2];
if (arg === '--link') {
  console.log(t ? `${t.cudart} -ldl -lrt -lpthread` : '');
} else if (arg === '--info') {
  const release = t ? /release ([\d.]+)/.exec(execFileSync(t.nvcc, ['--version'], { encoding: 'utf8' })) : null;
  console.log(t ? `nvcc ${release ? release[1] : '(unknown release)'}, static runtime, sm_80 sm_90a` : '');
} else {
  console.log(t ? 1 : 0);
}
