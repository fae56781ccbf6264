// Benchmark declarations and data: the shipped task file covers the method's 17 benchmarks under the
// reference's names and column layouts, the multiple-choice layout and references follow the reference, JSONL and Parquet (Hugging Face Image
// structs) are read, images become data: URLs, and bad rows are named by file, row and field.
import t from 'tap';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadTasks, parseTasks, selectTasks, type TaskSpec } from '../../src/eval/tasks.js';
import { readBenchmark } from '../../src/eval/benchmark-data.js';
import { imageDataUrls } from '../../src/eval/images.js';

const fixtures = join(import.meta.dirname, '../fixtures/eval');
const shipped = loadTasks();
const task = (name: string) => shipped.find((x) => x.name === name)!;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'medix-eval-data-'));
}

function _spec(over: Partial<TaskSpec> & Pick<TaskSpec, 'name'>): TaskSpec {
  return parseTasks(
    JSON.stringify({ tasks: [{ group: 'llm', scoring: 'binary', answer: { column: 'answer' }, ...over }] }),
    'inline.yaml',
  )[0];
}

t.test('the shipped task file: 17 benchmarks, 11 text and 6 image+text, report tasks on the 0-5 rubric', async (t) => {
  t.equal(shipped.length, 17);
  t.equal(shipped.filter((x) => x.group === 'llm').length, 11);
  t.equal(shipped.filter((x) => x.group === 'vlm').length, 6);
  t.same(
    shipped.filter((x) => x.scoring === 'rubric').map((x) => x.name),
    ['mimic_cxr_report_summarization', 'mimic_cxr_report_generation'],
  );
  t.ok(
    shipped.filter((x) => x.group === 'vlm').every((x) => x.image),
    'every image+text task reads an image column',
  );
  t.same(task('slake_vqa').where, { q_lang: 'en' }, 'SLAKE: English questions only');
  t.equal(selectTasks(shipped, ['all']).length, 17);
  t.same(
    selectTasks(shipped, ['vlm', 'mmlu_anatomy']).map((x) => x.name),
    ['mmlu_anatomy', 'slake_vqa', 'rad_vqa', 'path_vqa', 'pmc_vqa', 'pmc_vqa_hard', 'mimic_cxr_report_generation'],
  );
  t.same(
    selectTasks(shipped, ['medqa_usmle', 'slake', 'vqa_rad', 'pathvqa', 'mimic_cxr_summarization']).map((x) => x.name),
    ['medqa', 'mimic_cxr_report_summarization', 'slake_vqa', 'rad_vqa', 'path_vqa'],
    "medix's old names are aliases",
  );
  t.equal(task('pmc_vqa_hard').choices, undefined, 'PMC-VQA hard is open-ended');
  t.throws(
    () => selectTasks(shipped, ['mmlu_anatom']),
    /unknown task 'mmlu_anatom'; known: all, llm, vlm, mmlu_clinical_knowledge/,
  );
});

t.test('task file errors name the entry and the field', async (t) => {
  t.throws(
    () =>
      parseTasks('tasks:\n  - { name: a, group: llm, scoring: binary, answer: { column: x, as: index } }\n', 'f.yaml'),
    /f\.yaml: tasks\[0\] \(a\)\.answer\.as: 'index' needs choices/,
  );
  t.throws(
    () => parseTasks('tasks:\n  - { name: a, group: text, scoring: binary, answer: { column: x } }\n', 'f.yaml'),
    /tasks\[0\] \(a\)\.group/,
  );
  t.throws(
    () =>
      parseTasks(
        'tasks:\n  - { name: a, group: llm, scoring: binary, answer: { column: x }, colour: red }\n',
        'f.yaml',
      ),
    /tasks\[0\] \(a\).*colour/,
  );
  t.throws(() => parseTasks('tasks: [', 'f.yaml'), /f\.yaml: not valid YAML/);
  const dup = '{ name: a, group: llm, scoring: binary, answer: { column: x } }';
  t.throws(() => parseTasks(`tasks: [${dup}, ${dup}]`, 'f.yaml'), /task name 'a' is declared twice/);
  t.throws(
    () => loadTasks('/nonexistent/tasks.yaml'),
    /\/nonexistent\/tasks\.yaml: cannot read the task file \(ENOENT\)/,
  );
});

t.test(
  'multiple choice: question, a blank line, "Choices:", lettered options; the reference is the option text',
  async (t) => {
    const mmlu = await readBenchmark(task('mmlu_anatomy'), fixtures);
    t.equal(mmlu.length, 4);
    t.equal(mmlu[0].prompt, 'Which bone forms the heel?\n\nChoices:\nA. Talus\nB. Calcaneus\nC. Navicular\nD. Cuboid');
    t.same([mmlu[0].reference, mmlu[0].answerIndex, mmlu[0].key], ['Calcaneus', 1, 'mmlu_anatomy/1']);
    const medqa = await readBenchmark(task('medqa'), fixtures);
    t.same(
      medqa.map((x) => x.reference),
      ['Iron deficiency', 'Repeat fasting glucose', 'Protamine sulfate'],
      'MedQA: sent1, ending0-3, label',
    );
    t.match(
      medqa[2].prompt,
      /\n\nChoices:\nA\. Vitamin K\nB\. Idarucizumab\nC\. Protamine sulfate\nD\. Andexanet alfa$/,
    );
    const open = await readBenchmark(task('mimic_cxr_report_summarization'), fixtures);
    t.equal(open[1].reference, 'Right lower lobe pneumonia with small effusion.', 'the summary is the target');
    t.match(
      open[1].prompt,
      /^Summarize .*\n\nReport:\nFINDINGS: Right lower lobe consolidation\. Small right pleural effusion\.\nIMPRESSION: Right/,
      'the full report is the input',
    );
    t.equal(open[1].choices, undefined);
  },
);

t.test('option columns, fixed options, nested prompt fields, own labels and the where filter', async (t) => {
  const dir = tmp();
  writeFileSync(
    join(dir, 'medmcqa.jsonl'),
    `${[
      { id: 'm1', question: 'Q1', opa: 'w', opb: 'x', opc: 'y', opd: 'z', cop: 2 },
      { id: 'm2', question: 'Q2', opa: 'w', opb: 'x', opc: 'y', opd: 'z', cop: 0 },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n')}\n`,
  );
  const med = await readBenchmark(task('medmcqa'), dir);
  t.same(
    med.map((x) => [x.key, x.reference]),
    [
      ['medmcqa/m1', 'y'],
      ['medmcqa/m2', 'w'],
    ],
  );
  const pubRow = {
    QUESTION: 'Does X help?',
    CONTEXTS: ['Background.', 'Results.'],
    final_decision: 'maybe',
    LONG_ANSWER: 'X helped some patients.',
  };
  writeFileSync(join(dir, 'pubmedqa.jsonl'), `${JSON.stringify(pubRow)}\n`);
  const [pub] = await readBenchmark(task('pubmedqa'), dir);
  t.equal(
    pub.prompt,
    'Contexts:\nBackground.\n\nQuestion:\nDoes X help?\n\nChoices:\nA. yes\nB. no\nC. maybe',
    'the first context paragraph only',
  );
  t.same(
    [pub.id, pub.reference, pub.answerIndex],
    ['1', 'maybe\nX helped some patients.', undefined],
    'decision and long answer',
  );
  writeFileSync(
    join(dir, 'pmc_vqa.jsonl'),
    `${JSON.stringify({ question: 'Which organ?', choices: ['A:Liver', 'B:Spleen', 'C: Kidney', 'D:Lung'], answer: 'Kidney', image: null })}\n`,
  );
  const [pmc] = await readBenchmark(task('pmc_vqa'), dir);
  t.equal(
    pmc.prompt,
    'Which organ?\n\nChoices:\nA. Liver\nB. Spleen\nC. Kidney\nD. Lung',
    'labels the data already carries are not doubled',
  );
  t.equal(pmc.reference, 'Kidney');
  writeFileSync(
    join(dir, 'pmc_vqa_hard.jsonl'),
    `${JSON.stringify({ question: 'Which organ?', answer: 'Kidney', image: null })}\n`,
  );
  const [hard] = await readBenchmark(task('pmc_vqa_hard'), dir);
  t.same(
    [hard.prompt, hard.reference, hard.choices],
    ['Which organ?', 'Kidney', undefined],
    'PMC-VQA hard: open-ended',
  );
  writeFileSync(
    join(dir, 'slake_vqa.jsonl'),
    `${[
      { qid: 1, img_name: 'a.png', question: 'Where?', answer: 'Lung', q_lang: 'en' },
      { qid: 2, img_name: 'a.png', question: '哪里?', answer: '肺', q_lang: 'zh' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n')}\n`,
  );
  const slake = await readBenchmark(task('slake_vqa'), dir);
  t.same(
    slake.map((x) => x.id),
    ['1'],
    'SLAKE keeps English rows only',
  );
  t.equal(slake[0].imageBaseDir, join(dir, 'imgs'), "SLAKE's images are under imgs/");
  writeFileSync(
    join(dir, 'usmle_sa.jsonl'),
    `${JSON.stringify({ question: 'Q', options: { A: 'Aspirin', B: 'Heparin' }, answer: 'Heparin' })}\n`,
  );
  t.same(
    (await readBenchmark(task('usmle_sa'), dir)).map((x) => [x.reference, x.answerIndex]),
    [['Heparin', 1]],
    'USMLE: the `answer` text',
  );
});

t.test('a file with other columns is refused naming the task, the file and the missing column', async (t) => {
  const dir = tmp();
  // MedQA as some exports lay it out (question/options/answer_idx), not as the reference reads it.
  writeFileSync(
    join(dir, 'medqa.jsonl'),
    `${JSON.stringify({ question: 'Q', options: { A: 'a', B: 'b' }, answer_idx: 'A' })}\n`,
  );
  await t.rejects(
    readBenchmark(task('medqa'), dir),
    /^task medqa: .*medqa\.jsonl has no column 'sent1' .*reads sent1, ending0, ending1, ending2, ending3, label/,
  );
  writeFileSync(
    join(dir, 'mimic_cxr_report_summarization.jsonl'),
    `${JSON.stringify({ findings: 'f', impression: 'i' })}\n`,
  );
  await t.rejects(
    readBenchmark(task('mimic_cxr_report_summarization'), dir),
    /task mimic_cxr_report_summarization: .* has no column 'report'/,
  );
});

t.test('bad rows are named by file, row and field', async (t) => {
  const dir = tmp();
  const write = (rows: string[]) => writeFileSync(join(dir, 'mmlu_anatomy.jsonl'), `${rows.join('\n')}\n`);
  const good = JSON.stringify({ question: 'Q', choices: ['a', 'b'], answer: 0 });
  const file = join(dir, 'mmlu_anatomy.jsonl');
  const cases: [string, RegExp][] = [
    [
      '{"question": "Q", "choices": ["a", "b"], "answer": 5}',
      /:2: field 'answer' \(5\) does not name one of the 2 options as index/,
    ],
    // Row 1 has every column: row 2 is at fault, not the file.
    ['{"question": "Q", "answer": 0}', /^task mmlu_anatomy: .*mmlu_anatomy\.jsonl:2: this row has no 'choices' \(/],
    [
      '{"choices": ["a", "b"], "answer": 0}',
      /^task mmlu_anatomy: .*mmlu_anatomy\.jsonl:2: this row has no 'question' \(/,
    ],
    ['{"question": "Q", "choices": "a, b", "answer": 0}', /:2: field 'choices' must be a list or a dict of options/],
    ['{"question": {"x": 1}, "choices": ["a", "b"], "answer": 0}', /:2: field 'question' must be text/],
    ['{oops', /:2: not valid JSON/],
    ['[1, 2]', /:2: expected a JSON object/],
  ];
  for (const [row, re] of cases) {
    write([good, row]);
    await t.rejects(readBenchmark(task('mmlu_anatomy'), dir), re, row);
    await t.rejects(readBenchmark(task('mmlu_anatomy'), dir), {
      message: new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')),
    });
  }
  await t.rejects(
    readBenchmark(task('rad_vqa'), dir),
    /task rad_vqa: no data file \(looked for .*rad_vqa\.jsonl and .*rad_vqa\.parquet and .*vqa_rad\.jsonl and .*vqa_rad\.parquet\)/,
  );
  writeFileSync(
    join(dir, 'medmcqa.jsonl'),
    [1, 1]
      .map(() => JSON.stringify({ id: 'same', question: 'Q', opa: 'a', opb: 'b', opc: 'c', opd: 'd', cop: 0 }))
      .join('\n'),
  );
  await t.rejects(
    readBenchmark(task('medmcqa'), dir),
    /medmcqa\.jsonl:2: sample id 'same' already used at .*medmcqa\.jsonl:1/,
  );
  writeFileSync(
    join(dir, 'usmle_sa.jsonl'),
    JSON.stringify({ question: 'Q', options: { A: 'a', B: 'b' }, answer: 'perhaps' }),
  );
  await t.rejects(
    readBenchmark(task('usmle_sa'), dir),
    /field 'answer' \("perhaps"\) does not name one of the 2 options as text/,
  );
  // Bytes that are not UTF-8 are a bad row, not silently U+FFFD; a JSON array is not JSON Lines.
  writeFileSync(
    file,
    Buffer.concat([Buffer.from(`${good}\n{"question": "Q`), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]),
  );
  await t.rejects(readBenchmark(task('mmlu_anatomy'), dir), /mmlu_anatomy\.jsonl:2: not valid UTF-8/);
  writeFileSync(file, `[\n  ${good},\n  ${good}\n]\n`);
  await t.rejects(readBenchmark(task('mmlu_anatomy'), dir), /mmlu_anatomy\.jsonl: a JSON array, not JSON Lines/);
});

t.test('Parquet with Hugging Face Image structs {bytes, path}', async (t) => {
  // pathvqa.parquet: written by test/fixtures/eval/make-parquet.ts (row 1: a red PNG's bytes, row 2: a path).
  const items = await readBenchmark(task('path_vqa'), fixtures);
  t.same(
    items.map((x) => [x.id, x.prompt, x.reference]),
    [
      ['1', 'What colour is the stain?', 'red'],
      ['2', 'Is this tissue green?', 'yes'],
    ],
  );
  const pixel = async (url: string) => [
    ...(
      await sharp(Buffer.from(url.split(',')[1], 'base64'))
        .raw()
        .toBuffer()
    ).subarray(0, 3),
  ];
  const [redUrl] = await imageDataUrls(items[0].image, items[0].imageBaseDir, 'row 1');
  t.match(redUrl, /^data:image\/png;base64,/);
  t.same(await pixel(redUrl), [255, 0, 0], 'bytes win over the path');
  const [pathUrl] = await imageDataUrls(items[1].image, items[1].imageBaseDir, 'row 2');
  t.equal(
    pathUrl,
    `data:image/png;base64,${readFileSync(join(fixtures, 'images/xr2.png')).toString('base64')}`,
    'the path is read relative to the data file',
  );
  const dir = tmp();
  writeFileSync(join(dir, 'pathvqa.parquet'), 'PAR1 not really');
  await t.rejects(
    readBenchmark(task('path_vqa'), dir),
    /pathvqa\.parquet: not a readable Parquet file/,
    "read under its alias's name",
  );
});

t.test('images: paths, lists, data: URLs, conversion, and refusals', async (t) => {
  const dir = tmp();
  const urls = await imageDataUrls(['images/ct1.png', { path: 'images/xr2.png' }], fixtures, 'x');
  t.equal(urls.length, 2, 'a list gives one image per entry');
  t.equal(urls[0], `data:image/png;base64,${readFileSync(join(fixtures, 'images/ct1.png')).toString('base64')}`);
  t.same(await imageDataUrls(urls[0], dir, 'x'), [urls[0]], 'a data: URL passes through');
  const tiff = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } })
    .tiff()
    .toBuffer();
  const [converted] = await imageDataUrls(tiff, dir, 'x');
  t.match(converted, /^data:image\/png;base64,/, 'TIFF is re-encoded as PNG');
  t.same(await imageDataUrls(null, dir, 'x'), []);
  await t.rejects(
    imageDataUrls('../../etc/passwd', dir, 'f.jsonl:3: image'),
    /f\.jsonl:3: image: image path '\.\.\/\.\.\/etc\/passwd' leaves the dataset directory/,
  );
  await t.rejects(
    imageDataUrls('missing.png', dir, 'f.jsonl:3: image'),
    /f\.jsonl:3: image: cannot read image 'missing\.png' \(ENOENT\)/,
  );
  await t.rejects(
    imageDataUrls(Buffer.from('not an image'), dir, 'f.jsonl:4: image'),
    /f\.jsonl:4: image: not a readable image/,
  );
  await t.rejects(
    imageDataUrls(['images/ct1.png', Buffer.from('not an image')], fixtures, 'r'),
    /r\[1\]: not a readable image/,
    'a list names the entry',
  );
  await t.rejects(imageDataUrls({ path: null }, dir, 'r'), /r: image entry has neither bytes nor a path/);
  await t.rejects(imageDataUrls(42, dir, 'r'), /r: image entry must be a path, bytes or \{bytes, path\}, got number/);
});

t.test('images: a symlink out of the data directory is refused, as in training', async (t) => {
  const outside = tmp();
  writeFileSync(join(outside, 'secret.png'), readFileSync(join(fixtures, 'images/ct1.png')));
  const dir = tmp();
  mkdirSync(join(dir, 'images'));
  symlinkSync(join(outside, 'secret.png'), join(dir, 'images', 'leak.png'));
  symlinkSync(outside, join(dir, 'elsewhere'));
  await t.rejects(
    imageDataUrls('images/leak.png', dir, 'f.jsonl:2: image'),
    /f\.jsonl:2: image: image path 'images\/leak\.png' is a link to .*secret\.png, outside the dataset directory/,
  );
  await t.rejects(
    imageDataUrls({ path: 'elsewhere/secret.png' }, dir, 'f.jsonl:3: image'),
    /f\.jsonl:3: image: image path 'elsewhere\/secret\.png' is a link to .*, outside the dataset directory/,
    'a linked folder too',
  );
  writeFileSync(join(dir, 'images', 'real.png'), readFileSync(join(fixtures, 'images/ct1.png')));
  symlinkSync('real.png', join(dir, 'images', 'alias.png'));
  t.same(
    await imageDataUrls('images/alias.png', dir, 'x'),
    await imageDataUrls('images/real.png', dir, 'x'),
    'a link that stays inside is read',
  );
});
