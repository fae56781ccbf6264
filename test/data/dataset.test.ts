// Loading RL data: JSONL and Parquet rows under configurable column names; every kind of bad row
// (bad JSON, not an object, missing field, wrong type, non-UTF-8, unreadable image, image paths
// leaving the dataset directory by ../, absolute path or symlink) reported with file and row, then
// skipped and counted or, with on_bad_row 'stop', stopping the load.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { DataError, decodeImage, loadRlDataset, type LoadDatasetOptions } from '../../src/data/index.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'data');
const resize = { factor: 32, minPixels: 32 * 32, maxPixels: 512 * 512 };
const columns = { promptKey: 'problem', answerKey: 'solution', imageKey: 'images' };

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'medix-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const png = (w: number, h: number) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: 9, g: 99, b: 199 } } })
    .png()
    .toBuffer();

/** A JSONL file from lines given as values (JSON-encoded) or raw strings/bytes (written as they are). */
function jsonl(dir: string, name: string, lines: (object | string | Uint8Array)[]): string {
  const parts = lines.map((l) =>
    l instanceof Uint8Array ? Buffer.from(l) : Buffer.from(typeof l === 'string' ? l : JSON.stringify(l)),
  );
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat(parts.flatMap((p) => [p, Buffer.from('\n')])));
  return file;
}

function options(over: Partial<LoadDatasetOptions> = {}): LoadDatasetOptions & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...columns, onBadRow: 'skip', resize, warn: (m) => warnings.push(m), warnings, ...over };
}

t.test('JSONL: good rows kept in file order, every bad row skipped with its line named and counted', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  mkdirSync(join(data, 'img'), { recursive: true });
  writeFileSync(join(data, 'img', 'a.png'), await png(50, 40));
  writeFileSync(join(dir, 'outside.png'), await png(50, 40));
  symlinkSync(join(dir, 'outside.png'), join(data, 'img', 'link.png'));
  writeFileSync(join(data, 'img', 'broken.png'), 'not an image');
  const file = jsonl(data, 'train.jsonl', [
    /* 1 */ { problem: 'Q1', solution: '<X_RAY> A1', images: 'img/a.png' }, // one path, not a list
    /* 2 */ '{"problem": "Q2", "solution": ',
    /* 3 */ '[1, 2]',
    /* 4 */ { problem: 'Q4' },
    /* 5 */ { problem: 'Q5', solution: ['a list'] },
    /* 6 */ new Uint8Array([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // {"p":"<bad UTF-8>"}
    /* 7 */ { problem: 'Q7', solution: '<CT_SCAN> A7', images: ['img/broken.png'] },
    /* 8 */ { problem: 'Q8', solution: '<CT_SCAN> A8', images: ['../outside.png'] },
    /* 9 */ { problem: 'Q9', solution: '<CT_SCAN> A9', images: [join(dir, 'outside.png')] },
    /* 10 */ { problem: 'Q10', solution: '<CT_SCAN> A10', images: ['img/link.png'] },
    /* 11 */ { problem: 'Q11', solution: '<CT_SCAN> A11', images: ['img/missing.png'] },
    /* 12 */ '',
    /* 13 */ {
      problem: 'Q13',
      solution: 42,
      images: [{ path: 'img/a.png' }, { bytes: (await png(20, 20)).toString('base64') }],
    },
    /* 14 */ {
      problem: 'Q14',
      solution: '<OTHER> A14',
      images: ['img/a.png', `data:image/png;base64,${(await png(30, 10)).toString('base64')}`],
    },
    /* 15 */ { problem: '  ', solution: '<OTHER> A15' },
  ]);
  const o = options();
  const { samples, stats } = await loadRlDataset(file, o);
  t.same(
    samples.map((s) => [s.question, s.answer, s.images.length, s.id]),
    [
      ['Q1', '<X_RAY> A1', 1, `${file}:1`],
      ['Q13', '42', 2, `${file}:13`],
      ['Q14', '<OTHER> A14', 2, `${file}:14`],
    ],
  );
  t.same(samples[0].imageSizes, [{ width: 50, height: 40 }], 'the stored size, read when the data loads');
  t.same(
    samples[1].imageSizes,
    [
      { width: 50, height: 40 },
      { width: 20, height: 20 },
    ],
    'a path struct and base64 bytes',
  );
  t.same(
    samples[2].imageSizes,
    [
      { width: 50, height: 40 },
      { width: 30, height: 10 },
    ],
    'a path and a data: URL',
  );
  t.same(stats, { rows: 14, kept: 3, badRows: 11, overlongPrompts: 0 }, 'the blank line is not a row');
  const why: Record<number, RegExp> = {
    2: /not valid JSON/,
    3: /expected a JSON object/,
    4: /missing field 'solution'/,
    5: /field 'solution' must be text, got a list/,
    6: /not valid UTF-8/,
    7: /field 'images': image 1: not a readable image/,
    8: /leaves the dataset directory/,
    9: /leaves the dataset directory/,
    10: /is a link to .*outside\.png, outside the dataset directory/,
    11: /cannot read image 'img\/missing\.png' \(ENOENT\)/,
    15: /field 'problem' is empty/,
  };
  const skips = o.warnings.filter((m) => m.startsWith('medix data: skipping'));
  t.equal(skips.length, Object.keys(why).length);
  for (const [line, re] of Object.entries(why)) {
    const w = skips.find((m) => m.includes(`${file}:${line}:`));
    t.match(w, re, `line ${line} reported with its reason`);
  }
  // Row 13's answer (42) has no <MODALITY> prefix: kept, and said once, since its accuracy reward will be 0.
  t.same(
    o.warnings.filter((m) => !skips.includes(m)),
    [
      `medix data: 1 of 3 rows have an answer without a <MODALITY> prefix (first: ${file}:13, field 'solution'); the reward scores their accuracy 0, as the reference does ("<X_RAY> answer" is expected)`,
    ],
  );
});

t.test("on_bad_row 'stop': the first bad row stops the load, naming file and line", async (t) => {
  const dir = tempDir(t);
  const file = jsonl(dir, 'train.jsonl', [
    { problem: 'Q1', solution: 'A1' },
    { problem: 'Q2', solution: 'A2' },
    { problem: 'Q3', solution: null },
    '{oops',
  ]);
  const err = await loadRlDataset(file, options({ onBadRow: 'stop' })).catch((e: unknown) => e);
  t.ok(err instanceof DataError);
  t.match((err as DataError).message, `${file}:3: missing field 'solution'`);
  t.same([(err as DataError).file, (err as DataError).row], [file, 3]);
});

t.test('configurable column names; a file with no usable row is an error naming the counts', async (t) => {
  const dir = tempDir(t);
  const file = jsonl(dir, 'qa.jsonl', [{ question: 'Q', answer: 'A', pics: null }]);
  const { samples } = await loadRlDataset(
    file,
    options({ promptKey: 'question', answerKey: 'answer', imageKey: 'pics' }),
  );
  t.same(
    samples.map((s) => [s.question, s.answer, s.images]),
    [['Q', 'A', []]],
  );
  await t.rejects(
    loadRlDataset(file, options()),
    /qa\.jsonl: no usable rows \(1 read, 1 bad, 0 longer than max_prompt_length\)/,
  );
  await t.rejects(loadRlDataset(join(dir, 'absent.jsonl'), options()), /absent\.jsonl: cannot read \(ENOENT\)/);
  await t.rejects(loadRlDataset(join(dir, 'data.csv'), options()), /data\.csv: unknown data format/);
  writeFileSync(join(dir, 'bad.parquet'), 'PAR1 this is not parquet');
  await t.rejects(loadRlDataset(join(dir, 'bad.parquet'), options()), /bad\.parquet: not a readable Parquet file/);
});

t.test('image_dir: relative paths resolve there and may not leave it', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'imgs'));
  writeFileSync(join(dir, 'imgs', 'x.png'), await png(10, 10));
  const file = jsonl(dir, 'train.jsonl', [
    { problem: 'Q', solution: 'A', images: ['x.png'] },
    { problem: 'Q', solution: 'A', images: ['../train.jsonl'] },
  ]);
  const o = options({ imageDir: join(dir, 'imgs') });
  const { samples, stats } = await loadRlDataset(file, o);
  t.equal(samples.length, 1);
  t.equal(stats.badRows, 1);
  t.match(o.warnings[0], /:2: .*leaves the dataset directory/);
  await t.rejects(
    loadRlDataset(file, options({ imageDir: join(dir, 'imgz') })),
    /data\.image_dir .*imgz: not a directory/,
    'a mistyped image_dir is named once, not as every row',
  );
  writeFileSync(
    join(dir, 'array.json'),
    `[\n  {"problem": "Q", "solution": "<X_RAY> A"},\n  {"problem": "Q", "solution": "<X_RAY> B"}\n]\n`,
  );
  await t.rejects(
    loadRlDataset(join(dir, 'array.json'), options()),
    /array\.json: a JSON array, not JSON Lines/,
    'a JSON array file is said to be one, not as a bad row per line',
  );
  const empty = jsonl(dir, 'empty-path.jsonl', [{ problem: 'Q', solution: 'A', images: [''] }]);
  const e = options();
  await t.rejects(loadRlDataset(empty, e), /no usable rows/);
  t.match(e.warnings[0], /empty-path\.jsonl:1: .*empty image path/, 'an empty path is said to be empty');
});

t.test(
  'Parquet in the Hugging Face layout (fixture from make-parquet.ts): bytes and path images, bad rows by row number',
  async (t) => {
    const file = join(fixtures, 'train.parquet');
    const o = options();
    const { samples, stats } = await loadRlDataset(file, o);
    t.same(
      samples.map((s) => [s.where.row, s.question, s.answer, s.imageSizes]),
      [
        [1, 'Which lobe shows consolidation?', '<X_RAY> Right lower lobe', [{ width: 64, height: 48 }]],
        [2, 'What does the radiograph show?', '<X_RAY> Pneumothorax', [{ width: 40, height: 30 }]],
        [3, 'Which vitamin deficiency causes scurvy?', '<OTHER> Vitamin C', []],
        [8, 'Which organ is imaged?', '<ULTRASOUND> Liver', []],
      ],
    );
    t.same(stats, { rows: 8, kept: 4, badRows: 4, overlongPrompts: 0 });
    t.match(o.warnings, [
      `${file}: row 4: field 'problem' is not valid UTF-8`,
      `${file}: row 5: missing field 'solution'`,
      /row 6: field 'images': image 1: not a readable image/,
      /row 7: field 'images': \[0\] image path '\.\.\/secret\.png' leaves the dataset directory/,
    ]);
    const err = await loadRlDataset(file, options({ onBadRow: 'stop' })).catch((e: unknown) => e as DataError);
    t.match(err, {
      file,
      row: 4,
      message: `${file}: row 4: field 'problem' is not valid UTF-8 (data.on_bad_row is 'stop')`,
    });
    const groups = (await parquetMetadataAsync(await asyncBufferFromFile(file))).row_groups.map((g) =>
      Number(g.num_rows),
    );
    t.same(groups, [3, 3, 2], 'row numbers above continue across row groups, which are read one at a time');
  },
);

t.test(
  'Parquet image bytes are not kept: a sample refers to its row, and decoding reads the bytes again',
  async (t) => {
    const file = join(fixtures, 'train.parquet');
    const { samples } = await loadRlDataset(file, options());
    t.same(samples[0].images, [{ parquet: { file, row: 1, column: 'images', index: 0, baseDir: fixtures } }]);
    t.same(samples[1].images, [{ path: join(fixtures, 'images', 'chest.png') }], 'a path stays a path');
    // The fixture's inline image is 64 x 48 of (100, 0, 0); 48 rounds to 64 on the 32 grid (1.5 -> 2).
    const d = await decodeImage(samples[0].images[0], resize);
    t.same(
      [d.width, d.height, d.original, [...d.pixels.subarray(0, 3)]],
      [64, 64, { width: 64, height: 48 }, [100, 0, 0]],
    );
    const moved = { parquet: { file, row: 3, column: 'images', index: 0, baseDir: fixtures } };
    await t.rejects(decodeImage(moved, resize), /row 3 no longer has image 1/);
  },
);

t.test('several files load in order, each with its own image directory', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  writeFileSync(join(dir, 'b', 'x.png'), await png(8, 8));
  const a = jsonl(join(dir, 'a'), 'a.jsonl', [{ problem: 'QA', solution: 'A' }]);
  const b = jsonl(join(dir, 'b'), 'b.jsonl', [{ problem: 'QB', solution: 'B', images: ['x.png'] }]);
  const { samples, stats } = await loadRlDataset([a, b], options());
  t.same(
    samples.map((s) => s.id),
    [`${a}:1`, `${b}:1`],
  );
  t.equal(stats.rows, 2);
  await t.rejects(loadRlDataset([], options()), /no data files given/);
});
