// MPI at build time, for binding.gyp. With no argument prints 1 when an MPI C compiler wrapper
// (mpicc of Open MPI or MPICH) can describe its flags, else 0; with --compile or --link prints the
// flags it reports (empty when there is no MPI). MEDIX_NO_MPI=1 forces the single-process build
// (used by CI to prove the fallback builds and passes).
const { execFileSync } = require('node:child_process');

// The wrapper's flags: Open MPI answers --showme:compile/--showme:link; MPICH answers
// -compile_info/-link_info with the compiler's name first, which is dropped.
function wrapperFlags(kind) {
  const attempts = kind === 'compile' ? [['--showme:compile'], ['-compile_info']] : [['--showme:link'], ['-link_info']];
  for (const args of attempts) {
    try {
      const words = execFileSync('mpicc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split(/\s+/);
      return args[0].startsWith('--') ? words : words.slice(1);
    } catch {
      // try the other convention
    }
  }
  return null;
}

function flags() {
  if (process.env.MEDIX_NO_MPI === '1') return null;
  const compile = wrapperFlags('compile');
  const link = wrapperFlags('link');
  if (!compile || !link?.some((w) => /^-lmpi/.test(w))) return null;
  // An rpath for each library folder, so the addon finds libmpi however the loader is configured.
  const rpath = link.filter((w) => w.startsWith('-L')).map((w) => `-Wl,-rpath,${w.slice(2)}`);
  return {
    compile: compile.filter((w) => w.startsWith('-I') || w.startsWith('-D')),
    link: [...link, ...rpath, '-ldl'],
  };
}

const f = flags();
const arg = process.argv[2];
if (arg === '--compile') console.log(f ? f.compile.join(' ') : '');
else if (arg === '--link') console.log(f ? f.link.join(' ') : '');
else console.log(f ? 1 : 0);
