// The ONNX embedding path against a small real encoder built here (no downloads): WordPiece ids
// from the model's tokenizer.json, CLS and masked-mean pooling, normalisation, padding and batching
// that do not change a text's vector, cosine against a direct computation, clear load errors.
import t, { type Test } from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxEmbedder, cosine, poolHidden, type EmbedderOptions } from '../../src/reward/embedding.js';
import { directHidden, writeTinyEncoder } from '../helpers/tiny-encoder.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-embed-'));
const enc = writeTinyEncoder(dir);
const base: EmbedderOptions = {
  model: enc.modelFile,
  tokenizer: enc.tokenizerFile,
  pooling: 'cls',
  normalize: false,
  batchSize: 32,
  maxLength: 64,
};

const close = (t: Test, a: Float32Array, b: Float32Array, what: string) => {
  const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
  t.ok(a.length === b.length && worst < 1e-5, `${what} (max difference ${worst.toExponential(2)})`);
};

const norm = (v: Float32Array) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const mean = (rows: Float32Array[]) => rows[0].map((_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length);

// [CLS]=2 lobar=4 pneumonia=5 [SEP]=3 (WordPiece takes the whole word, not pneu=6 ##monia=7), ... written from the
// vocabulary by hand.
const texts: [string, number[]][] = [
  ['Lobar pneumonia', [2, 4, 5, 3]],
  ['no fracture', [2, 14, 11, 3]],
  ['right lower lobe pleural effusion, glioma', [2, 8, 9, 10, 17, 16, 18, 15, 3]],
  ['pneumonia xyz', [2, 5, 1, 3]],
];

t.test("tokenizes with the model's own tokenizer.json", async (t) => {
  const e = await OnnxEmbedder.load(base);
  t.teardown(() => e.close());
  for (const [text, ids] of texts) t.same(e.tokenize(text), ids, text);
  const short = await OnnxEmbedder.load({ ...base, maxLength: 4 });
  t.teardown(() => short.close());
  t.same(
    short.tokenize('right lower lobe pleural effusion'),
    [2, 8, 9, 3],
    'cut to maxLength, keeping the final [SEP]',
  );
});

t.test(
  'CLS and mean pooling, with and without normalisation, match a direct computation in one padded batch',
  async (t) => {
    for (const pooling of ['cls', 'mean'] as const)
      for (const normalize of [false, true]) {
        const e = await OnnxEmbedder.load({ ...base, pooling, normalize, batchSize: 3 });
        const got = await e.embed(texts.map(([s]) => s));
        texts.forEach(([s, ids], i) => {
          const h = directHidden(enc, ids);
          const pooled = pooling === 'cls' ? h[0] : mean(h);
          close(t, got[i], normalize ? norm(pooled) : pooled, `${pooling}${normalize ? ' normalised' : ''}: ${s}`);
        });
        await e.close();
      }
  },
);

t.test('a text embeds the same alone, in a padded batch, and across batch boundaries', async (t) => {
  const e = await OnnxEmbedder.load({ ...base, pooling: 'mean', batchSize: 3 });
  t.teardown(() => e.close());
  const all = await e.embed([...texts.map(([s]) => s), 'glioma']);
  t.equal(all.length, 5, 'two runs of at most 3 texts, one vector per text in order');
  for (const [i, [s]] of texts.entries()) close(t, all[i], (await e.embed([s]))[0], `alone vs batched: ${s}`);
  t.same(await e.embed([]), []);
});

t.test('cosine against the direct formula', async (t) => {
  const e = await OnnxEmbedder.load({ ...base, pooling: 'mean', normalize: true });
  t.teardown(() => e.close());
  const [a, b] = await e.embed([texts[0][0], texts[2][0]]);
  const [x, y] = [mean(directHidden(enc, texts[0][1])), mean(directHidden(enc, texts[2][1]))];
  let dot = 0;
  for (let i = 0; i < x.length; i++) dot += x[i] * y[i];
  const direct = dot / (Math.hypot(...x) * Math.hypot(...y));
  t.ok(Math.abs(cosine(a, b) - direct) < 1e-5, `cosine ${cosine(a, b)} vs ${direct}`);
  t.ok(Math.abs(cosine(a, a) - 1) < 1e-6, 'a vector with itself');
  t.equal(cosine(new Float32Array(3), a.subarray(0, 3)), 0, 'zero vector');
});

t.test('masked mean ignores padding positions', async (t) => {
  // two rows of two tokens, hidden 2; row 1 has one real token, its padding holds garbage
  const hidden = Float32Array.from([1, 2, 3, 4, 5, 6, 100, 100]);
  const [r0, r1] = poolHidden(
    hidden,
    [2, 2, 2],
    [
      [1, 1],
      [1, 0],
    ],
    'mean',
  );
  t.same(Array.from(r0), [2, 3]);
  t.same(Array.from(r1), [5, 6]);
  t.same(
    poolHidden(
      hidden,
      [2, 2, 2],
      [
        [1, 1],
        [1, 0],
      ],
      'cls',
    ).map((v) => Array.from(v)),
    [
      [1, 2],
      [5, 6],
    ],
  );
});

t.test('load errors name the file', async (t) => {
  await t.rejects(
    OnnxEmbedder.load({ ...base, tokenizer: join(dir, 'absent.json') }),
    /embedding tokenizer .*absent\.json: cannot read/,
  );
  writeFileSync(join(dir, 'bad.json'), '{ nope');
  await t.rejects(OnnxEmbedder.load({ ...base, tokenizer: join(dir, 'bad.json') }), /bad\.json: not valid JSON/);
  writeFileSync(join(dir, 'bad.onnx'), 'not a model');
  await t.rejects(
    OnnxEmbedder.load({ ...base, model: join(dir, 'bad.onnx') }),
    /embedding model .*bad\.onnx: onnxruntime cannot load it/,
  );
  await t.rejects(
    OnnxEmbedder.load({ ...base, output: 'pooled' }),
    /no output 'pooled' \(outputs: last_hidden_state\)/,
  );
});
