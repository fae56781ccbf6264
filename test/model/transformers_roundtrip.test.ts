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

t.test('transformers loaded what medix wrote, and medix still computes the same logits', async (t) => {
  const check = JSON.parse(readFileSync(join(hf, 'medix_written.transformers.json'), 'utf8'));
  t.equal(check.transformers_class, 'Qwen3ForCausalLM');
  t.ok(check.max_abs_diff < TOL, `transformers vs medix: ${check.max_abs_diff.toExponential(2)}`);
  const rec = JSON.parse(readFileSync(join(hf, 'medix_written.logits.json'), 'utf8'));
  const model = await loadModel(join(hf, 'medix_written'));
  const { logits } = await model.forward(packSequences([rec.tokens]), { logits: true });
  let max = 0;
  for (let i = 0; i < rec.logits.length; i++) max = Math.max(max, Math.abs(logits![i] - rec.logits[i]));
  t.ok(max < 1e-5, `medix today vs the logits transformers was compared with: ${max.toExponential(2)}`);
});
