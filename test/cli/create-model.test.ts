// `medix create-model`: the directory it writes is a model every medix tool loads, with the real
// Qwen3 tokenizer; the seed alone decides the weights' bytes; nothing in the way is overwritten
// unless asked.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { defaultTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { medix } from './run-medix.js';

const root = mkdtempSync(join(tmpdir(), 'medix-create-model-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));

function create(out: string, ...flags: string[]) {
  const r = medix('create-model', '--preset', 'tiny', '--out', out, ...flags);
  if (r.status !== 0) throw new Error(`create-model failed: ${r.stderr}`);
  return r;
}

t.test('tiny: loadModel and loadTokenizer accept it, in the preset shape with the Qwen3 tokenizer', async (t) => {
  const dir = join(root, 'tiny');
  const r = create(dir, '--seed', '3');
  t.match(r.stdout, /wrote .*tiny/);
  const packaged = await loadTokenizer();
  const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
  t.match(model.config, { ...MODEL_PRESETS.tiny, vocabSize: packaged.vocabSize });
  t.equal(tokenizer.vocabSize, packaged.vocabSize);
  t.same(tokenizer.eosTokenIds, packaged.eosTokenIds, 'ends at <|im_end|> and <|endoftext|>, as Qwen3');
  t.same(tokenizer.encode('Which bone forms the heel?'), packaged.encode('Which bone forms the heel?'));
  t.ok(
    tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]).includes('<|im_start|>assistant'),
    'the chat template came along',
  );
  t.ok(readFileSync(join(dir, 'tokenizer.json')).equals(readFileSync(join(defaultTokenizerDir(), 'tokenizer.json'))));
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.match(config, {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    hidden_size: 64,
    num_hidden_layers: 2,
    tie_word_embeddings: true,
  });
});

t.test('the same seed writes the same bytes, another seed other weights', async (t) => {
  const [a, b, c] = ['a', 'b', 'c'].map((n) => join(root, `seed-${n}`));
  create(a, '--seed', '7');
  create(b, '--seed', '7');
  create(c, '--seed', '8');
  t.ok(weights(a).equals(weights(b)), 'seed 7 twice: identical model.safetensors');
  t.same(readdirSync(a).sort(), readdirSync(b).sort());
  for (const f of readdirSync(a)) t.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} identical`);
  t.notOk(weights(a).equals(weights(c)), 'seed 8: other weights');
  t.equal(weights(a).length, weights(c).length, 'in the same layout');
});

t.test(
  'an existing directory: used when empty, replaced only with --force and only when it holds a model',
  async (t) => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    create(empty);
    t.ok(weights(empty).length > 0, 'an empty directory is filled');

    const refused = medix('create-model', '--preset', 'tiny', '--out', empty, '--seed', '1');
    t.equal(refused.status, 1);
    t.match(refused.stderr, /exists and is not empty \(pass --force/);
    const before = weights(empty);
    create(empty, '--seed', '1', '--force');
    t.notOk(weights(empty).equals(before), '--force replaced the model');
    t.same(
      readdirSync(empty).filter((f) => f.startsWith('.')),
      [],
      'no temporary files left behind',
    );

    const other = join(root, 'not-a-model');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'keep me');
    const kept = medix('create-model', '--preset', 'tiny', '--out', other, '--force');
    t.equal(kept.status, 1);
    t.match(kept.stderr, /not a model directory \(no config\.json\)/);
    t.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'keep me');
  },
);

t.test('bad flags are named', async (t) => {
  const out = join(root, 'never');
  const cases: [string[], RegExp][] = [
    [['--preset', 'huge', '--out', out], /argument 'huge' is invalid.*Allowed choices are tiny, small/s],
    [['--out', out], /required option '--preset <name>' not specified/],
    [['--preset', 'tiny'], /required option '--out <dir>' not specified/],
    [
      ['--preset', 'tiny', '--out', out, '--seed', '-1'],
      /--seed <n>' argument '-1' is invalid\. expected a non-negative integer/,
    ],
    [['--preset', 'tiny', '--out', out, '--seed', '1.5'], /--seed <n>' argument '1\.5' is invalid/],
  ];
  for (const [args, message] of cases) {
    const r = medix('create-model', ...args);
    t.equal(r.status, 1, args.join(' '));
    t.match(r.stderr, message);
  }
  t.same(
    readdirSync(root).filter((f) => f.includes('never')),
    [],
    'nothing written',
  );
});
