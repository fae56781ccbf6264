// Checkpoint compatibility with Hugging Face transformers in both directions, from fixtures made
// on a machine with transformers 5.17 (scripts/fixtures/check_transformers_roundtrip.py):
// - transformers wrote a sharded bf16 Qwen3; medix loads it and matches transformers' logits;
// - medix wrote a sharded bf16 Qwen3 (medix_written/); transformers loaded it unchanged and its
//   logits matched medix's, and medix still computes the logits the check was made against.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packSequences } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';

const hf = join(import.meta.dirname, '../fixtures/hf');
// bf16 weights are exact in float32, so the only difference from transformers' float64 forward is
// float32 rounding in a 2-layer, 32-wide model: logits of size ~10 agree to ~1e-5; 1e-4 leaves margin.
const TOL = 1e-4;

t.test('medix loads a sharded bf16 checkpoint written by transformers', async (t) => {
  const dir = join(hf, 'qwen3_tiny_bf16_sharded');
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  t.ok(new Set(Object.values(index.weight_map)).size >= 2, 'sharded');
  const model = await loadModel(dir);
  const ref = SafetensorsFile.open(join(dir, 'reference.safetensors'));
  const tokens = ref.readInt32('tokens');
  const want = ref.readFloat64('logits');
  ref.close();
  const { logits } = await model.forward(packSequences([Array.from(tokens)]), { logits: true });
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(logits![i] - want[i]));
  t.ok(max < TOL, `max |logit difference| ${max.toExponential(2)} < ${TOL}`);
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`${a.length} logits against ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

// medix_written.transformers.json holds the logits transformers itself computed from medix_written/
// for the tokens of medix_written.logits.json: medix's logits are compared with those numbers.
t.test('transformers loaded what medix wrote, and its logits are the ones medix computes', async (t) => {
  const check = JSON.parse(readFileSync(join(hf, 'medix_written.transformers.json'), 'utf8'));
  t.equal(check.transformers_class, 'Qwen3ForCausalLM');
  const { tokens, vocab } = JSON.parse(readFileSync(join(hf, 'medix_written.logits.json'), 'utf8'));
  t.equal(check.logits.length, tokens.length * vocab, 'transformers gave one row of logits per token');
  const model = await loadModel(join(hf, 'medix_written'));
  const { logits } = await model.forward(packSequences([tokens]), { logits: true });
  const diff = maxAbsDiff(logits!, check.logits);
  t.ok(diff < TOL, `medix vs transformers' own logits: max |difference| ${diff.toExponential(2)} < ${TOL}`);

  // The comparison can fail: the same model with one weight nudged by 1% of its scale no longer matches.
  const name = 'model.layers.1.mlp.down_proj.weight';
  const w = Float32Array.from(model.getParameter(name));
  w[0] += 0.01 * Math.max(...w.map(Math.abs));
  model.setParameter(name, w);
  const perturbed = (await model.forward(packSequences([tokens]), { logits: true })).logits!;
  const off = maxAbsDiff(perturbed, check.logits);
  t.ok(off > TOL, `a perturbed ${name} is caught: ${off.toExponential(2)} > ${TOL}`);
});
