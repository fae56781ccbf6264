// Keeps the GPU model benchmark (bench/gpu/model-bench.ts) working where there is no GPU: its medix side
// runs here on the CPU at the quick shapes, its records against a baseline line shaped as
// scripts/device/hf_model_bench.py prints it follow their definitions (speedups are time ratios, the
// bandwidth ratio falls as the measured bandwidth rises), a baseline of other shapes is refused by field,
// and `bench --device cuda` says why it cannot run on a machine without a GPU.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

import {
  type HfModelResult,
  measureMedix,
  modelBenchRecords,
  QUICK_SHAPE,
  readHfResult,
  SHAPE_FIELDS,
} from '../../bench/gpu/model-bench.js';
import { qwen3HfConfig } from '../../src/model/hf-config-write.js';
import { cudaDevices } from '../../src/engine/system.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const run = promisify(execFile);
const c = QUICK_SHAPE.config;

/** A baseline line as hf_model_bench.py prints it, for the quick shapes. */
function baseline(stepMs: number, rates: Map<number, number>, copyGbPerS: number): HfModelResult {
  return {
    bench: 'hf_model',
    device: 'NVIDIA Test GPU',
    torch: '2.9.0',
    transformers: '4.57.0',
    config: Object.fromEntries(SHAPE_FIELDS.map((f) => [f, qwen3HfConfig(c, 'f32')[f] as number])),
    peak: { bf16_gemm_tflops: 900, copy_gb_per_s: copyGbPerS },
    train: { seqs: QUICK_SHAPE.seqs, seq_len: QUICK_SHAPE.seqLen, step_ms: stepMs, peak_bytes: 1 },
    decode: {
      prompt: QUICK_SHAPE.prompt,
      new: QUICK_SHAPE.newTokens,
      compile: 'auto',
      results: [...rates].map(([batch, tokens_per_s]) => ({ batch, tokens_per_s })),
    },
  };
}

t.test('medix side on the CPU, and its records with and without a baseline', async (t) => {
  const medix = await measureMedix('cpu', QUICK_SHAPE, () => {});
  t.ok(medix.train.stepMs > 0 && Number.isFinite(medix.train.stepMs), `train step ${medix.train.stepMs} ms`);
  t.same(
    medix.decode.map((d) => d.batch),
    QUICK_SHAPE.batches,
    'decode ran at every batch size',
  );
  t.ok(
    medix.decode.every((d) => d.tokensPerS > 0 && Number.isFinite(d.tokensPerS)),
    'decode rates are positive',
  );

  const alone = modelBenchRecords(medix, QUICK_SHAPE, undefined);
  const names = (rs: typeof alone) => rs.map((r) => `${r.name}/${r.metric}`);
  t.same(
    names(alone).sort(),
    [
      'gpu_train_step/step_ms',
      'gpu_train_step/tokens_per_s',
      'gpu_decode/tokens_per_s_b1',
      'gpu_decode/tokens_per_s_b4',
    ].sort(),
    'without a baseline: medix figures only',
  );

  const rates = new Map(medix.decode.map((d) => [d.batch, d.tokensPerS / 4]));
  const withHf = modelBenchRecords(medix, QUICK_SHAPE, baseline(2 * medix.train.stepMs, rates, 1000));
  const get = (metric: string) => withHf.find((r) => r.metric === metric)?.value ?? NaN;
  t.ok(Math.abs(get('hf_speedup') - 2) < 1e-12, `hf_speedup = transformers ms / medix ms = ${get('hf_speedup')}`);
  t.ok(Math.abs(get('mfu') / get('hf_mfu') - 2) < 1e-9, 'MFU of each side is inverse to its step time');
  t.ok(Math.abs(get('hf_speedup_b1') - 4) < 1e-12 && Math.abs(get('hf_speedup_b4') - 4) < 1e-12, 'decode speedups');
  t.equal(withHf.find((r) => r.name === 'gpu' && r.metric === 'name')?.note, 'NVIDIA Test GPU', 'gpu/name note');
  const faster = modelBenchRecords(medix, QUICK_SHAPE, baseline(1, rates, 2000));
  const ratio = (rs: typeof withHf) => rs.find((r) => r.metric === 'bandwidth_ratio_b1')?.value ?? NaN;
  t.ok(ratio(withHf) > 0, `bandwidth_ratio_b1 = ${ratio(withHf)}`);
  t.ok(Math.abs(ratio(withHf) / ratio(faster) - 2) < 1e-12, 'twice the copy bandwidth halves the ratio');

  const failed = baseline(1, rates, 1000);
  failed.train = { error: 'OutOfMemoryError: CUDA out of memory' };
  t.notOk(
    names(modelBenchRecords(medix, QUICK_SHAPE, failed)).includes('gpu_train_step/hf_speedup'),
    'a baseline part that failed gives no ratio',
  );
});

t.test('readHfResult takes the last line and refuses other shapes by field', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medix-hf-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hf.json');
  const good = baseline(10, new Map([[1, 5]]), 1000);
  fs.writeFileSync(file, `progress line\n${JSON.stringify(good)}\n\n`);
  t.same(readHfResult(file, QUICK_SHAPE), good, 'the last non-empty line');
  fs.writeFileSync(file, JSON.stringify({ ...good, train: { ...good.train, seq_len: 4096 } }));
  t.throws(() => readHfResult(file, QUICK_SHAPE), /hf\.json: train\.seq_len is 4096, this benchmark runs 48/);
  fs.writeFileSync(file, JSON.stringify({ ...good, config: { ...good.config, hidden_size: 2048 } }));
  t.throws(() => readHfResult(file, QUICK_SHAPE), /config\.hidden_size is 2048/);
  fs.writeFileSync(file, 'Traceback (most recent call last):\n');
  t.throws(() => readHfResult(file, QUICK_SHAPE), /hf\.json: the last line is not JSON/);
});

t.test('bench --device cuda: refused with a reason where it cannot run', async (t) => {
  const fail = async (args: string[]) => {
    try {
      await run(tsx, ['bench/run.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    } catch (err) {
      const e = err as { code?: unknown; stderr?: string };
      return { code: e.code, stderr: e.stderr ?? '' };
    }
    return { code: 0, stderr: '' };
  };
  for (const [args, message] of [
    [['--device', 'cuda', '--only', 'gemm'], /--only names CPU benchmarks/],
    [['--hf', 'x.json'], /--hf is the GPU model benchmark's baseline/],
    [['--device', 'tpu'], /--device must be cpu or cuda, not 'tpu'/],
  ] as const) {
    const r = await fail([...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit code 2`);
    t.match(r.stderr, message, `${args.join(' ')}: says why`);
  }
  if (cudaDevices().count > 0) {
    t.comment('a CUDA device is present: the no-GPU refusal is not checked here');
    return;
  }
  const r = await fail(['--device', 'cuda', '--quick']);
  t.equal(r.code, 2, 'no GPU: exit code 2');
  t.match(r.stderr, /bench --device: device cuda: /, 'says why device cuda cannot run');
});
