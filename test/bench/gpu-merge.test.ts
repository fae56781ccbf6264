// The GPU log-prob benchmark's Python side (scripts/device/*.py, run on the GPU machine, which has no
// Node): the PyTorch script compiles, and the merge script turns a medix and a PyTorch output into the
// bench records the issue names, with the ratios computed from the inputs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');
const python = spawnSync('python3', ['--version']).status === 0 ? 'python3' : null;
const needsPython = { skip: python ? false : 'python3 is not installed' };
const dir = mkdtempSync(join(tmpdir(), 'medix-gpu-merge-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function py(...args: string[]) {
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
  const r = spawnSync(python!, args, { cwd: root, encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Rec {
  name: string;
  metric: string;
  value: number;
  unit: string;
  note?: string;
}

t.test('the PyTorch and transformers benchmark scripts compile', needsPython, async (t) => {
  for (const script of ['scripts/device/torch_logprob_bench.py', 'scripts/device/hf_model_bench.py']) {
    const r = py('-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', script);
    t.equal(r.code, 0, `${script}: ${r.err}`);
  }
});

t.test('hf_model_bench.py without PyTorch or a GPU says which is missing', needsPython, async (t) => {
  const r = py('scripts/device/hf_model_bench.py', '--only', 'train');
  t.ok(r.code === 2 || r.code === 3, `exit code ${r.code} (2: no CUDA device, 3: no PyTorch/transformers)`);
  t.match(r.err, /hf_model_bench: (PyTorch and transformers are needed|NO CUDA DEVICE)/);
  t.equal(r.out, '', 'no JSON line when nothing ran');
});

t.test('merge: ratios per shape, gpu name and commit, re-runs replace', needsPython, async (t) => {
  const medix = join(dir, 'medix.json'),
    torch = join(dir, 'torch.json');
  const medixOut = {
    bench: 'gpu_logprob',
    device: 'NVIDIA H200',
    vocab: 151936,
    results: [
      { T: 4096, hidden: 2048, mode: 'forward', ms: 4, peak_bytes: 1000 },
      { T: 4096, hidden: 2048, mode: 'forward_backward', ms: 10, peak_bytes: 4000 },
      { T: 16384, hidden: 2048, mode: 'forward', ms: 8, peak_bytes: 500 },
    ],
  };
  writeFileSync(medix, `progress line\n${JSON.stringify(medixOut)}\n`);
  writeFileSync(
    torch,
    `${JSON.stringify({
      bench: 'torch_logprob',
      device: 'NVIDIA H200',
      torch: '2.11',
      results: [
        { T: 4096, hidden: 2048, mode: 'forward', ms: 10, peak_bytes: 9000 },
        { T: 4096, hidden: 2048, mode: 'forward_backward', ms: 15, peak_bytes: 32000 },
      ],
    })}\n`,
  );
  const out = join(dir, 'results');
  const merge = (commit: string) =>
    py('scripts/device/merge_gpu_bench.py', medix, torch, '--commit', commit, '--out-dir', out, '--date', '2026-12-04');
  const r = merge('abc123');
  t.equal(r.code, 0, r.err);
  const file = join(out, 'h200-2026-12-04.json');
  t.equal(r.out.trim(), file, 'prints the file it wrote');
  t.match(r.err, /no PyTorch result for T=16384 hidden=2048 forward/, 'a shape torch lacks is named, not invented');
  const recs = JSON.parse(readFileSync(file, 'utf8')) as Rec[];
  const find = (name: string, metric: string) => recs.filter((x) => x.name === name && x.metric === metric);
  t.equal(find('gpu', 'name')[0].note, 'NVIDIA H200');
  t.equal(find('gpu', 'commit')[0].note, 'abc123');
  t.same(
    find('gpu_fused_logprob', 'torch_time_ratio').map((x) => x.value),
    [10 / 4, 15 / 10],
  );
  t.same(
    find('gpu_fused_logprob', 'torch_memory_ratio').map((x) => x.value),
    [9, 8],
  );
  t.match(
    find('gpu_fused_logprob', 'torch_time_ratio')[1].note,
    /^T=4096 hidden=2048 vocab=151936 forward_backward, bf16; medix 10\.000 ms/,
  );

  // A second run (new commit, new times) replaces the same measurements instead of adding copies.
  const r2 = merge('def456');
  t.equal(r2.code, 0, r2.err);
  const again = JSON.parse(readFileSync(file, 'utf8')) as Rec[];
  t.equal(again.length, recs.length);
  t.equal(again.find((x) => x.metric === 'commit')!.note, 'def456');
});

t.test('merge: an empty benchmark output is an error naming the file', needsPython, async (t) => {
  const empty = join(dir, 'empty.json');
  writeFileSync(empty, '');
  const r = py('scripts/device/merge_gpu_bench.py', empty, empty, '--commit', 'x', '--out-dir', dir);
  t.not(r.code, 0);
  t.match(r.err, new RegExp(`merge_gpu_bench: ${empty} is empty`));
});

t.test('merge --records: records of the model benchmark join the file of the day', needsPython, async (t) => {
  const out = join(dir, 'records-out');
  const file = join(dir, 'model-records.json');
  const model: Rec[] = [
    { name: 'gpu', metric: 'name', value: 0, unit: '', note: 'NVIDIA H100 80GB HBM3' },
    { name: 'gpu_train_step', metric: 'hf_speedup', value: 1.5, unit: 'x', note: 'shape; times' },
    { name: 'gpu_decode', metric: 'hf_speedup_b32', value: 6, unit: 'x', note: 'shape; rates' },
  ];
  writeFileSync(file, JSON.stringify(model));
  const r = py('scripts/device/merge_gpu_bench.py', '--records', file, '--commit', 'c0ffee', '--out-dir', out);
  t.equal(r.code, 0, r.err);
  t.match(r.out.trim(), /h100-80gb-hbm3-\d{4}-\d{2}-\d{2}\.json$/, 'named by the gpu/name record');
  const recs = JSON.parse(readFileSync(r.out.trim(), 'utf8')) as Rec[];
  t.same(
    recs.map((x) => `${x.name}/${x.metric}`),
    ['gpu/name', 'gpu_train_step/hf_speedup', 'gpu_decode/hf_speedup_b32', 'gpu/commit'],
  );
  t.equal(recs.find((x) => x.metric === 'commit')!.note, 'c0ffee');

  writeFileSync(file, JSON.stringify(model.slice(1)));
  const bad = py('scripts/device/merge_gpu_bench.py', '--records', file, '--commit', 'x', '--out-dir', out);
  t.not(bad.code, 0);
  t.match(bad.err, /has no gpu\/name record/, 'records without the GPU name are refused');
  const none = py('scripts/device/merge_gpu_bench.py', '--commit', 'x', '--out-dir', out);
  t.not(none.code, 0);
  t.match(none.err, /give MEDIX_JSON and TORCH_JSON, --records FILE, or both/);
});
