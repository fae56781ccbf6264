// The op table's backend conformance program (native/tests/op_conformance.cc): built with g++ by
// scripts/build-op-conformance.sh and run; every registered op, forward and backward, on every backend
// it has against the CPU reference, the CPU backward against finite differences, and every bf16 entry
// against its family's f32 entry at tiny and Qwen3-like shapes. Also: the addon
// registers the same ops the program covers, runOp runs a pass and answers supports(), and a backend
// without an op refuses it by name. The same build makes the device-memory guard
// (native/tests/device_memory_guard.cc), run here after the program: the model's device paths on a
// backend whose memory the host cannot read outside an op.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

import { opSupports, opTable, runOp } from '../../src/engine/ops.js';
import { buildInfo } from '../../src/engine/system.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

t.test('the conformance program passes for every registered op', async (t) => {
  const r = spawnSync('bash', ['scripts/build-op-conformance.sh', '--run'], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 0, `op_conformance exit status (stderr: ${r.stderr.slice(-2000)})`);
  const lines = r.stdout.trim().split('\n');
  const summary = lines.at(-1) ?? '';
  // cuda-guard: CUDA's Backend contract over the CPU ops (native/tests/guard_backend.h), always present.
  t.match(summary, /^op conformance: \d+ ops, \d+ cases, \d+ checks on cpu, cuda-guard.*: 0 failed$/, summary);
  const failed = lines.filter((l) => l.startsWith('FAIL'));
  t.same(failed, [], 'no op failed');
  for (const op of opTable()) {
    // f32 entries print their family; the others family/dtype, checked against the f32 reference.
    const name = op.dtype === 'f32' ? op.family : `${op.family}/${op.dtype}`;
    const tiny = lines.filter((l) => l.startsWith(`ok   ${name} [tiny`));
    t.ok(tiny.length > 0, `${name} is covered at a tiny shape`);
    if (op.dtype !== 'f32') {
      t.ok(
        lines.some((l) => l.startsWith(`ok   ${name} [qwen3`)),
        `${name} is covered at a Qwen3-like shape`,
      );
      t.ok(
        tiny.every((l) => l.includes('forward vs f32 reference')),
        `${name}'s forward is checked against the f32 reference`,
      );
    }
    if (opSupports('cuda-guard', op.family, op.dtype))
      t.ok(
        tiny.every(
          (l) => l.includes('forward ok on cpu, cuda-guard') && (!op.backward || l.endsWith('on cpu, cuda-guard')),
        ),
        `${name} runs forward${op.backward ? ' and backward' : ''} through the device path on the guard`,
      );
    if (op.backward)
      t.ok(
        tiny.some((l) => l.includes(op.dtype === 'f32' ? 'finite differences' : 'backward vs f32 reference')),
        `${name}'s backward is checked against ${op.dtype === 'f32' ? 'finite differences' : 'the f32 reference'}`,
      );
  }
  t.ok(
    opTable().some((op) => op.dtype === 'bf16'),
    'the table has bf16 entries',
  );
});

t.test('the device-memory guard: no host access to backend memory, every output equal to the CPU', async (t) => {
  // Built by the first test's script (one build: two would race over the same objects).
  const r = spawnSync(path.join(root, 'build/op-conformance/device_memory_guard'), { cwd: root, encoding: 'utf8' });
  t.equal(
    r.status,
    0,
    `device_memory_guard exit status ${r.status} signal ${r.signal} (stderr: ${r.stderr.slice(-2000)})`,
  );
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.at(-1), 'contract violations: 0, failures: 0');
  const cases = lines.filter((l) => / outputs, \d+ differ; backend ops \d+, live allocations after \d+$/.test(l));
  t.same(
    cases.map((l) => l.split(':')[0]),
    [
      'dense',
      'dense tied recompute',
      'moe',
      'moe recompute',
      'dense bf16',
      'vl',
      'vl recompute bf16',
      'moe tied bf16 recompute',
      'dense data parallel',
      'moe bf16 data parallel',
    ],
    'dense, MoE and Qwen3-VL models (images in training and prefill), with and without recompute, in f32 and ' +
      'with a bf16 compute copy and KV cache; data parallel with the buffers on a device communicator and ' +
      'the gradient norm on a host one',
  );
  t.ok(
    cases.every((l) => / 0 differ;.* live allocations after 0$/.test(l)),
    'each output equals the CPU backend, and nothing stays allocated',
  );
  // Full sharding over three forked ranks: each rank's outputs on the guard (its layouts reserved there, its
  // collectives given backend memory) equal its outputs on the CPU backend, and in f32 the one-process steps
  // on all ranks' batches.
  const shardCases = ['dense', 'vl', 'moe recompute', 'moe tied recompute bf16', 'vl bf16'];
  for (const name of shardCases)
    for (const rank of [0, 1, 2]) {
      const at = `full shard ${name} rank ${rank}: `;
      t.match(
        lines.find((l) => l.startsWith(at) && l.includes(' outputs, ')) ?? 'missing',
        / 0 differ; backend ops \d+, gathered after release 0 bytes$/,
        `${at}the guard's outputs equal the CPU's, and nothing stays gathered`,
      );
      if (!name.endsWith('bf16')) {
        const line = lines.find((l) => l.startsWith(`${at}against one process`)) ?? 'missing';
        const worst = Number(line.match(/worst (\S+) of tolerance$/)?.[1] ?? Number.NaN);
        t.ok(worst <= 1, `${at}the one-process steps, within tolerance (${line})`);
      }
    }
  for (const rank of [0, 1, 2]) t.ok(lines.includes(`full shard rank ${rank}: contract violations 0`), `rank ${rank}`);
});

t.test('runOp runs a pass by name; supports() and unsupported ops answer by name', async (t) => {
  const x = Float32Array.from([3, 4]);
  const r = runOp<{ out: Float32Array; rstd: Float32Array }>(
    'rmsnorm.forward',
    'cpu',
    { x, w: Float32Array.from([1, 2]) },
    {
      rows: 1,
      dim: 2,
      eps: 1e-12,
    },
  );
  const rstd = 1 / Math.sqrt((9 + 16) / 2);
  t.ok(Math.abs(r.rstd[0] - rstd) < 1e-6, 'rstd is 1/sqrt(mean(x^2))');
  t.ok(Math.abs(r.out[1] - 4 * rstd * 2) < 1e-5, 'out = w * x * rstd');
  t.equal(runOp('sum_squares.forward', 'cpu', { g: x }, {}).value, 25, 'scalar results come back as value');
  t.ok(opSupports('cpu', 'moe_block'), 'the CPU backend runs the MoE block');
  // CUDA's answers come from what this build's kernels registered: all of the ops but the unfused head's.
  const cuda = buildInfo().cuda;
  t.notOk(opSupports('cuda', 'logprob_naive'), 'no backend but the CPU runs the unfused head');
  t.notOk(opSupports('cuda-guard', 'logprob_naive'), 'nor the guard, which stands for CUDA');
  t.ok(opSupports('cpu', 'linear', 'bf16'), 'linear has a bf16 entry on the CPU');
  t.equal(opSupports('cuda', 'linear', 'bf16'), cuda, 'and on the CUDA backend, where the build has it');
  t.ok(opSupports('cpu', 'moe_experts', 'bf16'), 'the MoE experts have a bf16 entry on the CPU');
  t.equal(opSupports('cuda', 'moe_experts', 'bf16'), cuda, 'and on the CUDA backend, where the build has it');
  t.notOk(opSupports('cpu', 'rmsnorm', 'bf16'), 'rmsnorm has no bf16 entry');
  t.throws(() => runOp('rmsnorm.sideways', 'cpu', {}, {}), /must be '<family>.forward' or '<family>.backward'/);
  t.throws(
    () => runOp('nosuchop.forward', 'cpu', {}, {}),
    /no op 'nosuchop' is registered \(registered: [^)]*\bembedding\b/,
  );
  t.throws(() => runOp('add.backward', 'cpu', {}, {}), /op 'add' has no backward pass/);
  t.throws(() => runOp('add.forward', 'cpu', { a: x, c: x }, {}), /addForward: inputs has no argument 'c'/);
  t.throws(() => runOp('add.forward', 'tpu' as 'cpu', { a: x, b: x }, {}), /unknown backend 'tpu'/);
});
