// `medix generate --compute-dtype bf16`: create-model writes bf16 safetensors, so the f32 master
// weights hold bf16 values and the bf16 compute copy is exact; with a prompt under 128 tokens every
// product runs on the few-row kernel, whose bf16 path gives the f32 path's bits. So greedy decoding
// must give the same tokens in both dtypes. A bad dtype is refused naming the flag.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomModelDir } from '../../src/model/random-model-dir.js';
import { medix } from './run-medix.js';

const root = mkdtempSync(join(tmpdir(), 'medix-generate-bf16-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'tiny');
await writeRandomModelDir(dir, { preset: 'tiny', seed: 4 });

function tokens(dtype: string): number[] {
  const args = ['--prompt', 'Which bone forms the heel?', '--temperature', '0', '--max-tokens', '16', '--json'];
  const r = medix('generate', '--model', dir, ...args, '--compute-dtype', dtype);
  if (r.status !== 0) throw new Error(`generate --compute-dtype ${dtype} failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim()) as { token_ids: number[] }).token_ids;
}

t.test('greedy decoding in bf16 gives the f32 tokens on bf16-valued weights', async (t) => {
  const f32 = tokens('f32');
  t.equal(f32.length, 16, 'sixteen tokens');
  t.same(tokens('bf16'), f32, 'bf16 compute: the same tokens');
});

t.test('a bad --compute-dtype is refused naming the flag', async (t) => {
  const r = medix('generate', '--model', dir, '--prompt', 'x', '--compute-dtype', 'f16');
  t.not(r.status, 0, 'fails');
  t.match(r.stderr, /--compute-dtype/);
});
