// Benchmark declarations and data: the shipped task file covers the method's 17 benchmarks, the
// multiple-choice layout and reference follow the method, JSONL and Parquet (Hugging Face Image
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

function spec(over: Partial<TaskSpec> & Pick<TaskSpec, 'name'>): TaskSpec {
  return parseTasks(JSON.stringify({ tasks: [{ group: 'llm', scoring: 'binary', answer: { column: 'answer' }, ...over }] }), 'inline.yaml')[0];
}

t.test('the shipped task file: 17 benchmarks, 11 text and 6 image+text, report tasks on the 0-5 rubric', async (t) => {
  t.equal(shipped.length, 17);
  t.equal(shipped.filter((x) => x.group === 'llm').length, 11);
  t.equal(shipped.filter((x) => x.group === 'vlm').length, 6);
  t.same(shipped.filter((x) => x.scoring === 'rubric').map((x) => x.name), ['mimic_cxr_summarization', 'mimic_cxr_report_generation']);
  t.ok(shipped.filter((x) => x.group === 'vlm').every((x) => x.image), 'every image+text task reads an image column');
  t.same(task('slake').where, { q_lang: 'en' }, 'SLAKE: English questions only');
  t.equal(selectTasks(shipped, ['all']).length, 17);
  t.same(selectTasks(shipped, ['vlm', 'mmlu_anatomy']).map((x) => x.name), ['mmlu_anatomy', 'slake', 'vqa_rad', 'pathvqa', 'pmc_vqa', 'pmc_vqa_hard', 'mimic_cxr_report_generation']);
  t.throws(() => selectTasks(shipped, ['mmlu_anatom']), /unknown task 'mmlu_anatom'; known: all, llm, vlm, mmlu_clinical_knowledge/);
});

t.test('task file errors name the entry and the field', async (t) => {
  t.throws(() => parseTasks('tasks:\n  - { name: a, group: llm, scoring: binary, answer: { column: x, as: index } }\n', 'f.yaml'), /f\.yaml: tasks\[0\] \(a\)\.answer\.as: 'index' needs choices/);
  t.throws(() => parseTasks('tasks:\n  - { name: a, group: text, scoring: binary, answer: { column: x } }\n', 'f.yaml'), /tasks\[0\] \(a\)\.group/);
  t.throws(() => parseTasks('tasks:\n  - { name: a, group: llm, scoring: binary, answer: { column: x }, colour: red }\n', 'f.yaml'), /tasks\[0\] \(a\).*colour/);
  t.throws(() => parseTasks('tasks: [', 'f.yaml'), /f\.yaml: not valid YAML/);
  const dup = '{ name: a, group: llm, scoring: binary, answer: { column: x } }';
  t.throws(() => parseTasks(`tasks: [${dup}, ${dup}]`, 'f.yaml'), /task 'a' is declared twice/);
  t.throws(() => loadTasks('/nonexistent/tasks.yaml'), /\/nonexistent\/tasks\.yaml: cannot read the task file \(ENOENT\)/);
});

t.test('multiple choice: question, "Choices:", lettered options; the reference is the option text', async (t) => {
  const mmlu = await readBenchmark(task('mmlu_anatomy'), fixtures);
  t.equal(mmlu.length, 4);
  t.equal(mmlu[0].prompt, 'Which bone forms the heel?\nChoices:\nA. Talus\nB. Calcaneus\nC. Navicular\nD. Cuboid');
  t.same([mmlu[0].reference, mmlu[0].answerIndex, mmlu[0].key], ['Calcaneus', 1, 'mmlu_anatomy/1']);
  const medqa = await readBenchmark(task('medqa_usmle'), fixtures);
  t.same(medqa.map((x) => x.reference), ['Iron deficiency', 'Repeat fasting glucose', 'Protamine sulfate'], 'dict options and letter answers');
  t.match(medqa[2].prompt, /\nChoices:\nA\. Vitamin K\nB\. Idarucizumab\nC\. Protamine sulfate\nD\. Andexanet alfa$/);
  const open = await readBenchmark(task('mimic_cxr_summarization'), fixtures);
  t.equal(open[1].reference, 'Right lower lobe pneumonia with small effusion.');
  t.match(open[1].prompt, /^Summarize .*\nFindings: Right lower lobe consolidation/);
  t.equal(open[1].choices, undefined);
});

t.test('option columns, fixed options, nested prompt fields, own labels and the where filter', async (t) => {
  const dir = tmp();
  writeFileSync(
    join(dir, 'medmcqa.jsonl'),
    [
      { id: 'm1', question: 'Q1', opa: 'w', opb: 'x', opc: 'y', opd: 'z', cop: 2 },
      { id: 'm2', question: 'Q2', opa: 'w', opb: 'x', opc: 'y', opd: 'z', cop: 0 },
    ].map((r) => JSON.stringify(r)).join('\n') + '\n',
  );
  const med = await readBenchmark(task('medmcqa'), dir);
  t.same(med.map((x) => [x.key, x.reference]), [['medmcqa/m1', 'y'], ['medmcqa/m2', 'w']]);
  writeFileSync(join(dir, 'pubmedqa.jsonl'), JSON.stringify({ pubid: 7, question: 'Does X help?', context: { contexts: ['Background.', 'Results.'] }, final_decision: 'Maybe' }) + '\n');
  const [pub] = await readBenchmark(task('pubmedqa'), dir);
  t.equal(pub.prompt, 'Context: Background.\nResults.\nQuestion: Does X help?\nChoices:\nA. yes\nB. no\nC. maybe');
  t.same([pub.id, pub.reference], ['7', 'maybe']);
  writeFileSync(join(dir, 'pmc_vqa.jsonl'), JSON.stringify({ Question: 'Which organ?', 'Choice A': 'A:Liver', 'Choice B': 'B:Spleen', 'Choice C': 'C: Kidney', 'Choice D': 'D:Lung', Answer: 'C', image: null }) + '\n');
  const [pmc] = await readBenchmark(task('pmc_vqa'), dir);
  t.equal(pmc.prompt, 'Which organ?\nChoices:\nA. Liver\nB. Spleen\nC. Kidney\nD. Lung', 'labels the data already carries are not doubled');
  t.equal(pmc.reference, 'Kidney');
  writeFileSync(
    join(dir, 'slake.jsonl'),
    [
      { qid: 1, img_path: 'a.png', question: 'Where?', answer: 'Lung', q_lang: 'en' },
      { qid: 2, img_path: 'a.png', question: '哪里?', answer: '肺', q_lang: 'zh' },
    ].map((r) => JSON.stringify(r)).join('\n') + '\n',
  );
  t.same((await readBenchmark(task('slake'), dir)).map((x) => x.id), ['1'], 'SLAKE keeps English rows only');
});

t.test('bad rows are named by file, row and field', async (t) => {
  const dir = tmp();
  const write = (rows: string[]) => writeFileSync(join(dir, 'mmlu_anatomy.jsonl'), rows.join('\n') + '\n');
  const good = JSON.stringify({ question: 'Q', choices: ['a', 'b'], answer: 0 });
  const file = join(dir, 'mmlu_anatomy.jsonl');
  const cases: [string, RegExp][] = [
    ['{"question": "Q", "choices": ["a", "b"], "answer": 5}', /:2: field 'answer' \(5\) does not name one of the 2 options as index/],
    ['{"question": "Q", "answer": 0}', /:2: missing field 'choices'/],
    ['{"choices": ["a", "b"], "answer": 0}', /:2: missing field 'question'/],
    ['{"question": "Q", "choices": "a, b", "answer": 0}', /:2: field 'choices' must be a list or a dict of options/],
    ['{"question": {"x": 1}, "choices": ["a", "b"], "answer": 0}', /:2: field 'question' must be text/],
    ['{oops', /:2: not valid JSON/],
    ['[1, 2]', /:2: expected a JSON object/],
  ];
  for (const [row, re] of cases) {
    write([good, row]);
    await t.rejects(readBenchmark(task('mmlu_anatomy'), dir), re, row);
    await t.rejects(readBenchmark(task('mmlu_anatomy'), dir), { message: new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`) });
  }
  await t.rejects(readBenchmark(task('vqa_rad'), dir), /task vqa_rad: no data file \(looked for .*vqa_rad\.jsonl and .*vqa_rad\.parquet\)/);
  writeFileSync(join(dir, 'medmcqa.jsonl'), [1, 1].map(() => JSON.stringify({ id: 'same', question: 'Q', opa: 'a', opb: 'b', opc: 'c', opd: 'd', cop: 0 })).join('\n'));
  await t.rejects(readBenchmark(task('medmcqa'), dir), /medmcqa\.jsonl:2: sample id 'same' already used at .*medmcqa\.jsonl:1/);
  writeFileSync(join(dir, 'pubmedqa.jsonl'), JSON.stringify({ pubid: 1, question: 'Q', context: { contexts: ['c'] }, final_decision: 'perhaps' }));
  await t.rejects(readBenchmark(task('pubmedqa'), dir), /field 'final_decision' \("perhaps"\) does not name one of the 3 options as text/);
});

t.test('Parquet with Hugging Face Image structs {bytes, path}', async (t) => {
  // pathvqa.parquet: written by test/fixtures/eval/make-parquet.ts (row 1: a red PNG's bytes, row 2: a path).
  const items = await readBenchmark(task('pathvqa'), fixtures);
  t.same(items.map((x) => [x.id, x.prompt, x.reference]), [['1', 'What colour is the stain?', 'red'], ['2', 'Is this tissue green?', 'yes']]);
  const pixel = async (url: string) => [...(await sharp(Buffer.from(url.split(',')[1], 'base64')).raw().toBuffer()).subarray(0, 3)];
  const [redUrl] = await imageDataUrls(items[0].image, items[0].imageBaseDir, 'row 1');
  t.match(redUrl, /^data:image\/png;base64,/);
  t.same(await pixel(redUrl), [255, 0, 0], 'bytes win over the path');
  const [pathUrl] = await imageDataUrls(items[1].image, items[1].imageBaseDir, 'row 2');
  t.equal(pathUrl, `data:image/png;base64,${readFileSync(join(fixtures, 'images/xr2.png')).toString('base64')}`, 'the path is read relative to the data file');
  const dir = tmp();
  writeFileSync(join(dir, 'pathvqa.parquet'), 'PAR1 not really');
  await t.rejects(readBenchmark(task('pathvqa'), dir), /pathvqa\.parquet: not a readable Parquet file/);
});

t.test('images: paths, lists, data: URLs, conversion, and refusals', async (t) => {
  const dir = tmp();
  const urls = await imageDataUrls(['images/ct1.png', { path: 'images/xr2.png' }], fixtures, 'x');
  t.equal(urls.length, 2, 'a list gives one image per entry');
  t.equal(urls[0], `data:image/png;base64,${readFileSync(join(fixtures, 'images/ct1.png')).toString('base64')}`);
  t.same(await imageDataUrls(urls[0], dir, 'x'), [urls[0]], 'a data: URL passes through');
  const tiff = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } }).tiff().toBuffer();
  const [converted] = await imageDataUrls(tiff, dir, 'x');
  t.match(converted, /^data:image\/png;base64,/, 'TIFF is re-encoded as PNG');
  t.same(await imageDataUrls(null, dir, 'x'), []);
  await t.rejects(imageDataUrls('../../etc/passwd', dir, 'f.jsonl:3: image'), /f\.jsonl:3: image: image path '\.\.\/\.\.\/etc\/passwd' leaves the dataset directory/);
  await t.rejects(imageDataUrls('missing.png', dir, 'f.jsonl:3: image'), /f\.jsonl:3: image: cannot read image 'missing\.png' \(ENOENT\)/);
  await t.rejects(imageDataUrls(Buffer.from('not an image'), dir, 'f.jsonl:4: image'), /f\.jsonl:4: image: not a readable image/);
  await t.rejects(imageDataUrls(['images/ct1.png', Buffer.from('not an image')], fixtures, 'r'), /r\[1\]: not a readable image/, 'a list names the entry');
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
  await t.rejects(imageDataUrls('images/leak.png', dir, 'f.jsonl:2: image'), /f\.jsonl:2: image: image path 'images\/leak\.png' is a link to .*secret\.png, outside the dataset directory/);
  await t.rejects(imageDataUrls({ path: 'elsewhere/secret.png' }, dir, 'f.jsonl:3: image'), /f\.jsonl:3: image: image path 'elsewhere\/secret\.png' is a link to .*, outside the dataset directory/, 'a linked folder too');
  writeFileSync(join(dir, 'images', 'real.png'), readFileSync(join(fixtures, 'images/ct1.png')));
  symlinkSync('real.png', join(dir, 'images', 'alias.png'));
  t.same(await imageDataUrls('images/alias.png', dir, 'x'), await imageDataUrls('images/real.png', dir, 'x'), 'a link that stays inside is read');
});
