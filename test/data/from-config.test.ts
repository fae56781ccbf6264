// The data section of a training config drives the loader: files relative to the config, columns,
// format_prompt_path, the overlong filter switch, image bounds and the bad-row policy.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadTrainingConfig } from '../../src/config/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { DataError, loadDatasetFromConfig, resizeBounds } from '../../src/data/index.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-data-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'data', 'img'), { recursive: true });
writeFileSync(
  join(dir, 'data', 'img', 'a.png'),
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
    .png()
    .toBuffer(),
);
const rows = [
  { q: 'Which vitamin deficiency causes scurvy?', a: '<OTHER> Vitamin C' },
  { q: `Describe the film. ${'Every finding in detail. '.repeat(30)}`, a: '<X_RAY> Normal' },
  { q: 'An image row', a: '<X_RAY> none', pics: ['img/a.png'] },
];
writeFileSync(join(dir, 'data', 'train.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
writeFileSync(join(dir, 'format.jinja'), 'Q: {{ content }}');
const tok = await loadTokenizer();

function config(extra: string, overrides: string[] = []) {
  const file = join(dir, 'c.yaml');
  writeFileSync(
    file,
    `data:\n  train_files: data/train.jsonl\n  prompt_key: q\n  answer_key: a\n  image_key: pics\n  format_prompt_path: format.jinja\n  max_prompt_length: 40\n${extra}worker:\n  actor:\n    model:\n      model_path: /models/x\n`,
  );
  return loadTrainingConfig(file, overrides);
}

t.test('columns, format_prompt_path and the overlong filter come from the config', async (t) => {
  const warnings: string[] = [];
  const { samples, stats } = await loadDatasetFromConfig(config('').data, 'train', tok, {
    warn: (m) => warnings.push(m),
  });
  t.same(
    samples.map((s) => s.question),
    [rows[0].q],
  );
  t.same(
    stats,
    { rows: 3, kept: 1, badRows: 1, overlongPrompts: 1 },
    'the long question is filtered; the image row is bad for a text-only template',
  );
  const expected = tok.encode(
    tok.applyChatTemplate([{ role: 'user', content: `Q: ${rows[0].q}` }], { enableThinking: false }),
    { addSpecialTokens: false },
  ).length;
  t.equal(samples[0].promptLength, expected, 'format_prompt_path was applied before the chat template');

  const unfiltered = await loadDatasetFromConfig(config('', ['data.filter_overlong_prompts=false']).data, 'train', tok);
  t.same(
    [unfiltered.stats.kept, unfiltered.stats.overlongPrompts],
    [2, 0],
    'filter_overlong_prompts: false keeps long prompts',
  );
});

t.test("on_bad_row 'stop' and unset or unreadable files are named", async (t) => {
  await t.rejects(loadDatasetFromConfig(config('', ['data.on_bad_row=stop']).data, 'train', tok), {
    name: 'DataError',
    message: /train\.jsonl:3: .*no image support/,
  });
  await t.rejects(loadDatasetFromConfig(config('').data, 'val', tok), /data\.val_files is not set/);
  const missing = config('', ['data.format_prompt_path=absent.jinja']).data;
  const err = await loadDatasetFromConfig(missing, 'train', tok).catch((e: unknown) => e);
  t.ok(err instanceof DataError);
  t.match((err as Error).message, /data\.format_prompt_path: cannot read .*absent\.jinja \(ENOENT\)/);
});

t.test('image bounds from min_pixels / max_pixels at the Qwen3-VL grid', async (t) => {
  t.same(resizeBounds(config('', ['data.min_pixels=1024', 'data.max_pixels=4096']).data), {
    factor: 32,
    minPixels: 1024,
    maxPixels: 4096,
  });
});
