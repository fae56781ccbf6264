// Scoring and reporting: excluded samples counted, failed samples retried by a rerun, the score
// table, scores.json, comparison of result directories, and the score page rendered in headless
// Chromium with its bars.
import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runEval } from '../../src/eval/run-eval.js';
import { loadTasks, selectTasks } from '../../src/eval/tasks.js';
import { compareDirs, formatComparison, readScores } from '../../src/eval/compare.js';
import { renderComparisonPage } from '../../src/eval/score-page.js';
import { EndpointChatModel } from '../../src/eval/endpoint-model.js';
import { PALETTE } from '../../src/report/svg-chart.js';
import { findChromium, screenshot } from '../helpers/chromium.js';
import { scriptedVerdict, startChatServer, textOf, type ChatBody } from './chat-servers.js';
import { skipIfMissing } from '../helpers/system-skip.js';

const fixtures = join(import.meta.dirname, '../fixtures/eval');
const tasks = selectTasks(loadTasks(), ['mmlu_anatomy', 'medqa']);
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** Answers every question with its right option's text, except the heparin one (an HTTP 500 while `down`). */
function candidate(state: { down: boolean }) {
  return (b: ChatBody) => {
    const text = textOf(b.messages[0]);
    if (text.includes('heparin') && state.down) return { status: 500 };
    const right: Record<string, string> = {
      heel: 'Calcaneus',
      diaphragm: 'Phrenic',
      aorta: 'Left ventricle',
      rotator: 'Teres major',
      microcytic: 'Iron deficiency',
      polyuria: 'C-peptide',
      heparin: 'Protamine sulfate',
    };
    return Object.entries(right).find(([k]) => text.includes(k))![1];
  };
}

t.test('failed samples are excluded and counted, then retried by a rerun', async (t) => {
  const state = { down: true };
  const cand = await startChatServer(candidate(state));
  const judgeState = { down: true };
  const judge = await startChatServer((b) =>
    judgeState.down && textOf(b.messages[1]).includes('Phrenic') ? { status: 503 } : scriptedVerdict(b),
  );
  t.teardown(async () => {
    await cand.close();
    await judge.close();
  });
  const out = tmp('medix-eval-retry-');
  const options = {
    outputDir: out,
    phases: ['generate', 'evaluate', 'score'] as const,
    tasks,
    dataDir: fixtures,
    candidate: new EndpointChatModel('cand', cand.url),
    judge: new EndpointChatModel('judge', judge.url),
  };
  const first = await runEval(options);
  t.same([first.generate!.ok, first.generate!.errors], [6, 1], 'one generation failed');
  t.same([first.evaluate!.ok, first.evaluate!.errors, first.evaluate!.notGenerated], [5, 1, 1], 'one judgment failed');
  const rows = Object.fromEntries(first.score!.rows.map((r) => [r.task, r]));
  t.same([rows.mmlu_anatomy.scored, rows.mmlu_anatomy.judgeErrors, rows.mmlu_anatomy.score], [3, 1, 1]);
  t.same(
    [rows.medqa.scored, rows.medqa.generationErrors, rows.medqa.score],
    [2, 1, 0.5],
    'polyuria answered wrong: 1 of 2',
  );
  t.match(
    first.score!.table,
    /overall is not given: .*mmlu_anatomy \(3 of 4 scored, 1 failed\); medqa \(2 of 3 scored, 1 failed\)/,
  );
  t.match(first.score!.table, /^overall \(mean of 2 tasks\)\s+-$/m);
  t.same(
    readScores(out),
    {
      tasks: { mmlu_anatomy: 1, medqa: 0.5 },
      counts: { mmlu_anatomy: { scored: 3, failed: 1, total: 4 }, medqa: { scored: 2, failed: 1, total: 3 } },
      overall: null,
    },
    'overall is null while a task has failed samples',
  );

  state.down = false;
  judgeState.down = false;
  const candRequests = cand.requests.length;
  const second = await runEval(options);
  t.same([second.generate!.ok, second.generate!.skipped], [1, 6], 'only the failed generation is redone');
  t.equal(cand.requests.length, candRequests + 1);
  t.same(
    [second.evaluate!.ok, second.evaluate!.skipped],
    [2, 5],
    'the failed judgment and the new generation are judged',
  );
  t.same(readScores(out), {
    tasks: { mmlu_anatomy: 1, medqa: 2 / 3 },
    counts: { mmlu_anatomy: { scored: 4, failed: 0, total: 4 }, medqa: { scored: 3, failed: 0, total: 3 } },
    overall: (1 + 2 / 3) / 2,
  });
  t.notMatch(second.score!.table, /not given/);
  const keys = readFileSync(join(out, 'generations.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { key: string; status: string });
  t.same(
    keys.filter((k) => k.key === 'medqa/3').map((k) => k.status),
    ['error', 'ok'],
    'append-only: the error stays, the later record wins',
  );
});

t.test('a sample never generated counts against the total: overall stays null', async (t) => {
  const cand = await startChatServer(candidate({ down: false }));
  const judge = await startChatServer(scriptedVerdict);
  t.teardown(async () => {
    await cand.close();
    await judge.close();
  });
  const out = tmp('medix-eval-missing-');
  const models = {
    candidate: new EndpointChatModel('cand', cand.url),
    judge: new EndpointChatModel('judge', judge.url),
  };
  await runEval({ outputDir: out, phases: ['generate', 'evaluate'], tasks, dataDir: fixtures, ...models });
  // Drop one generated sample, as if the run had been killed before it was answered.
  const gens = join(out, 'generations.jsonl');
  writeFileSync(
    gens,
    readFileSync(gens, 'utf8')
      .split('\n')
      .filter((l) => !l.includes('"medqa/2"'))
      .join('\n'),
  );
  const judged = join(out, 'judgments.jsonl');
  writeFileSync(
    judged,
    readFileSync(judged, 'utf8')
      .split('\n')
      .filter((l) => !l.includes('"medqa/2"'))
      .join('\n'),
  );
  await runEval({ outputDir: out, phases: ['score'], tasks });
  t.same(
    readScores(out).counts.medqa,
    { scored: 2, failed: 0, total: 3 },
    'the total is the benchmark size from the generate phase',
  );
  t.equal(readScores(out).overall, null);
});

t.test('comparison of result directories', async (t) => {
  const root = tmp('medix-eval-compare-');
  const write = (name: string, scores: object) => {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'scores.json'), JSON.stringify(scores));
    return join(root, name);
  };
  const n = (scored: number, total = scored) => ({ scored, failed: total - scored, total });
  const before = write('before', { tasks: { a: 0.5, b: 0.25 }, counts: { a: n(4), b: n(4) }, overall: 0.375 });
  const after = write('after', { tasks: { a: 0.75, b: 1 }, counts: { a: n(4), b: n(4) }, overall: 0.875 });
  const partial = write('partial', { tasks: { a: 1, b: 0.5 }, counts: { a: n(4), b: n(2, 4) }, overall: null });
  const c = compareDirs([before, after, partial]);
  t.same(c.labels, ['before', 'after', 'partial']);
  t.same(c.tasks, ['a', 'b']);
  t.match(formatComparison(compareDirs([before, after])), /^a\s+50\.00%\s+75\.00%\s+\+25\.00$/m);
  t.match(formatComparison(compareDirs([before, after])), /^overall\s+37\.50%\s+87\.50%\s+\+50\.00$/m);
  t.match(formatComparison(c), /^overall\s+37\.50%\s+87\.50%\s+-\s+-$/m, 'a set without an overall shows none');
  const other = write('other', { tasks: { a: 0.75, c: 1 }, counts: { a: n(4), c: n(4) }, overall: 0.875 });
  t.throws(
    () => compareDirs([before, other]),
    /other was scored over other tasks than .*before \(missing b\) \(extra c\)/,
  );
  const bad = write('bad', { tasks: { a: 1.5 }, counts: { a: n(1) }, overall: 0.5 });
  t.throws(() => compareDirs([before, bad]), /bad\/scores\.json: tasks\.a: .*(<=1|1)/);
  t.throws(
    () => compareDirs([before, join(root, 'none')]),
    /none\/scores\.json: not found \(run the score phase first\)/,
  );
  t.throws(() => compareDirs([before]), /two or more/);
  const html = renderComparisonPage('cmp', c);
  t.equal((html.match(/<rect [^>]*data-series="before"/g) ?? []).length, 3, 'before: bars for a, b and overall');
  t.equal(
    (html.match(/<rect [^>]*data-series="partial"/g) ?? []).length,
    2,
    'partial: bars for a and b, none for overall',
  );
  t.notMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained');
});

const browser = findChromium();
t.test(
  'the score page renders in headless Chromium with one bar per task',
  skipIfMissing(browser ? null : 'Chromium is not installed (apt-get install chromium); the render check needs it'),
  async (t) => {
    const out = tmp('medix-eval-page-');
    writeFileSync(join(out, 'generations.jsonl'), '');
    const gens: string[] = [];
    const judg: string[] = [];
    // Three tasks with known scores 1/4, 2/4, 4/4: overall 7/12.
    [
      ['t1', 1],
      ['t2', 2],
      ['t3', 4],
    ].forEach(([task, right]) => {
      for (let i = 0; i < 4; i++) {
        const key = `${task}/${i}`;
        gens.push(
          JSON.stringify({
            key,
            task,
            id: String(i),
            status: 'ok',
            scoring: 'binary',
            prompt: 'q',
            reference: 'r',
            images: 0,
            output: 'x',
            seconds: 0,
          }),
        );
        judg.push(
          JSON.stringify({
            key,
            task,
            id: String(i),
            status: 'ok',
            scoring: 'binary',
            score: i < (right as number) ? 1 : 0,
            method: 'judge',
            prediction: 'x',
            rounds: [],
          }),
        );
      }
    });
    writeFileSync(join(out, 'generations.jsonl'), `${gens.join('\n')}\n`);
    writeFileSync(join(out, 'judgments.jsonl'), `${judg.join('\n')}\n`);
    const r = await runEval({ outputDir: out, phases: ['score'], tasks: [] as never[] });
    t.same(readScores(out), {
      tasks: { t1: 0.25, t2: 0.5, t3: 1 },
      counts: {
        t1: { scored: 4, failed: 0, total: 4 },
        t2: { scored: 4, failed: 0, total: 4 },
        t3: { scored: 4, failed: 0, total: 4 },
      },
      overall: 7 / 12,
    });
    t.ok(r.score);
    const html = readFileSync(join(out, 'scores.html'), 'utf8');
    const widths = [...html.matchAll(/<rect [^>]*width="([\d.]+)"[^>]*data-category="([^"]+)"/g)].map(
      (m) => [m[2], Number(m[1])] as const,
    );
    t.same(
      widths.map((w) => w[0]),
      ['t1', 't2', 't3', 'overall'],
    );
    t.ok(
      Math.abs(widths[1][1] / widths[0][1] - 2) < 0.01 && Math.abs(widths[2][1] / widths[0][1] - 4) < 0.01,
      'bar lengths proportional to the scores',
    );
    const png = join(out, 'scores.png');
    screenshot(browser!, join(out, 'scores.html'), png, 900, 600);
    const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const [cr, cg, cb] = [1, 3, 5].map((i) => Number.parseInt(PALETTE[0].slice(i, i + 2), 16));
    let bar = 0;
    for (let i = 0; i < data.length; i += 3)
      if (Math.abs(data[i] - cr) < 30 && Math.abs(data[i + 1] - cg) < 30 && Math.abs(data[i + 2] - cb) < 30) bar++;
    // Bars: 12 px high, (0.25 + 0.5 + 1 + 0.583) x 474 px long: about 13,000 pixels.
    t.ok(bar > 8000 && bar < 20000, `bar-coloured pixels on screen: ${bar}`);
  },
);

t.test("every phase's inputs are checked before anything runs", async (t) => {
  const cand = await startChatServer(() => 'B');
  t.teardown(() => cand.close());
  const out = tmp('medix-eval-inputs-');
  const base = { outputDir: out, tasks, dataDir: fixtures, candidate: new EndpointChatModel('cand', cand.url) };
  await t.rejects(runEval({ ...base, phases: ['generate', 'evaluate'] }), /the evaluate phase needs a judge/);
  await t.rejects(
    runEval({ ...base, phases: ['generate'], dataDir: undefined }),
    /the generate phase needs --data-dir/,
  );
  await t.rejects(runEval({ ...base, phases: ['generate'], candidate: undefined }), /needs a candidate model/);
  t.equal(cand.requests.length, 0, 'nothing was generated');
});
