// The command line as a whole: --version, every command's --help lists every option with its
// default, bad flag values are errors naming the flag, and `medix info` describes the build.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Help } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { medix } from './run-medix.js';

const root = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const flat = (s: string) => s.replace(/\s+/g, ' ');

t.test('medix --version prints the package version', async (t) => {
  for (const flag of ['--version']) {
    const r = medix(flag);
    t.equal(r.status, 0);
    t.equal(r.stdout.trim(), pkg.version);
  }
});

t.test("every command's help lists each of its options, with the default where there is one", async (t) => {
  const program = buildProgram();
  const names = program.commands.map((c) => c.name());
  t.same(
    names.sort(),
    [
      'create-model',
      'eval',
      'eval-compare',
      'generate',
      'info',
      'merge',
      'report',
      'reward',
      'selftest',
      'serve',
      'train',
    ].sort(),
    'the commands',
  );
  const help = new Help();
  for (const command of program.commands) {
    const text = flat(command.helpInformation());
    for (const option of command.options) {
      t.ok(text.includes(option.flags), `${command.name()}: ${option.flags} is listed`);
      // A --no-x flag's implicit default (true) is the --x flag's; every other default is shown.
      if (option.defaultValue !== undefined && !option.negate) {
        t.match(help.optionDescription(option), /\(.*default: /, `${command.name()} ${option.long}: shows its default`);
        t.ok(
          text.includes(flat(help.optionDescription(option))),
          `${command.name()} ${option.long}: the default is in the help`,
        );
      }
    }
    for (const sub of command.commands) t.fail(`unexpected nested command ${sub.name()}`);
  }
  const r = medix('report', '--help');
  t.equal(r.status, 0);
  t.match(flat(r.stdout), '--max-samples <n> sample generations shown (default: 20)', 'what --help prints');
});

t.test('bad flag values are errors that name the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['report', 'run', '--max-samples', 'many'], /option '--max-samples <n>' argument 'many' is invalid/],
    [
      ['merge', 'a', 'b', '--max-shard-gb', '-1'],
      /option '--max-shard-gb <gb>' argument '-1' is invalid. expected a number > 0/,
    ],
    [
      ['merge', 'a', 'b', '--dtype', 'fp16'],
      /option '--dtype <dtype>' argument 'fp16' is invalid. Allowed choices are bf16, f32/,
    ],
    [['generate', '--model', 'm', '--prompt', 'p', '--top-p', '2'], /option '--top-p <p>' argument '2' is invalid/],
    [['info', '--jsn'], /unknown option '--jsn'[\s\S]*Did you mean --json\?/],
  ];
  for (const [args, message] of cases) {
    const r = medix(...args);
    t.not(r.status, 0, `medix ${args.join(' ')} fails`);
    t.match(r.stderr, message);
  }
});

t.test('medix info describes the build: kernels, BLAS, MPI, CUDA, libraries', async (t) => {
  const r = medix('info', '--json');
  t.equal(r.status, 0);
  const info = JSON.parse(r.stdout) as Record<string, unknown> & { libraries: Record<string, string> };
  t.equal(info.medix, pkg.version);
  t.ok((info.gemmKernels as string[]).includes('portable'), 'the GEMM kernels');
  for (const key of [
    'openblas',
    'openblasInfo',
    'mpi',
    'mpiInfo',
    'cuda',
    'cudaInfo',
    'compiler',
    'simd',
    'threads',
    'world',
  ])
    t.ok(key in info, key);
  for (const name of ['apache-arrow', 'onnxruntime-node', 'sharp']) {
    const installed = (
      JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
    ).version;
    t.equal(info.libraries[name], installed, `${name} ${installed}`);
  }
  const text = medix('info').stdout;
  t.match(text, /^cuda {8}/m);
  t.match(text, /^library {6}apache-arrow \d/m);
});
