// `medix eval` end to end against scripted candidate and judge servers: the three phases over the
// fixture set give the scores worked out by hand below, images travel as image_url data: URLs,
// and a run killed mid-phase resumes without duplicate or lost samples.
import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptedVerdict, startChatServer, textOf, type ChatBody } from './chat-servers.js';

const run = promisify(execFile);
const medix = join(import.meta.dirname, '../../src/cli/medix.ts');
const fixtures = join(import.meta.dirname, '../fixtures/eval');
const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', medix, ...args], { timeout: 120_000 });

/** The fixture candidate's answers, by a phrase of each question. */
const ANSWERS: [string, string][] = [
  ['heel', '<think>the heel bone is the calcaneus</think>B'], // option letter, right
  ['diaphragm', '<think>C3, C4, C5</think>The phrenic nerve.'], // judged 1
  ['aorta', '<think>left side</think>C'], // option letter, wrong (D)
  ['rotator cuff', 'Teres major [votes 0,1,1]'], // vote 0,1,1 -> 1
  ['microcytic', 'Iron deficiency'], // 1
  ['polyuria', 'Repeat fasting glucose [malformed-once]'], // malformed, retried, 1
  ['heparin', 'Protamine sulfate [malformed-always]'], // judge error: excluded
  ['hemorrhage', 'yes'], // 1
  ['Which lung', 'left lung'], // 0 (reference: right lung)
  ['modality', 'It is an MRI'], // 1
  ['stain', 'red'], // 1
  ['green', 'no'], // 0
  ['lungs are clear', 'No acute process [rubric 4,5,3]'], // 0.8
  ['consolidation', 'Pneumonia [rubric 2,2,2]'], // 0.4
];
const EXPECTED = {
  mmlu_anatomy: 3 / 4,
  medqa: 2 / 2,
  rad_vqa: 2 / 3,
  path_vqa: 1 / 2,
  mimic_cxr_report_summarization: (0.8 + 0.4) / 2,
};

function candidateAnswer(body: ChatBody): string {
  const text = body.messages.map(textOf).join('\n');
  const hit = ANSWERS.find(([phrase]) => text.includes(phrase));
  if (!hit) throw new Error(`no scripted answer for ${text}`);
  return hit[1];
}

function lines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('three phases over the fixture set: scores, table, page, what was sent', async (t) => {
  const candidate = await startChatServer(candidateAnswer);
  const judge = await startChatServer(scriptedVerdict);
  t.teardown(async () => {
    await candidate.close();
    await judge.close();
  });
  const out = mkdtempSync(join(tmpdir(), 'medix-eval-cli-'));
  const { stdout } = await cli([
    'eval',
    '--tasks',
    ...Object.keys(EXPECTED),
    '--data-dir',
    fixtures,
    '--output-dir',
    out,
    '--model',
    'cand',
    '--model-url',
    candidate.url,
    '--judge-url',
    judge.url,
    '--judge-model',
    'judge-m',
    '--concurrency',
    '3',
  ]);
  const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as {
    tasks: Record<string, number>;
    counts: object;
    overall: number | null;
  };
  t.same(
    Object.keys(scores).sort(),
    ['counts', 'overall', 'tasks'],
    'scores.json holds exactly tasks, counts and overall',
  );
  t.same(Object.keys(scores.tasks).sort(), Object.keys(EXPECTED).sort());
  for (const [task, want] of Object.entries(EXPECTED))
    t.ok(Math.abs(scores.tasks[task] - want) < 1e-12, `${task}: ${scores.tasks[task]} = ${want}`);
  t.same(scores.counts, {
    mmlu_anatomy: { scored: 4, failed: 0, total: 4 },
    medqa: { scored: 2, failed: 1, total: 3 },
    rad_vqa: { scored: 3, failed: 0, total: 3 },
    path_vqa: { scored: 2, failed: 0, total: 2 },
    mimic_cxr_report_summarization: { scored: 2, failed: 0, total: 2 },
  });
  t.equal(scores.overall, null, 'no overall while a sample of a selected task failed');

  t.match(
    stdout,
    /mmlu_anatomy\s+0\/1\s+4\s+4\s+0\s+0\s+75\.00%/,
    'table row: samples, scored, failed, pending, score',
  );
  t.match(stdout, /medqa\s+0\/1\s+3\s+2\s+1\s+0\s+100\.00%/, 'the judge error is excluded and counted');
  t.match(stdout, /mimic_cxr_report_summarization\s+0-5\s+2\s+2\s+0\s+0\s+60\.00%/);
  t.match(stdout, /overall \(mean of 5 tasks\)\s+-/);
  t.match(stdout, /overall is not given: .*medqa \(2 of 3 scored, 1 failed\)/);
  t.ok(existsSync(join(out, 'scores.html')));

  t.equal(candidate.requests.length, 14, 'one candidate request per sample');
  t.ok(
    candidate.requests.every((r) => r.temperature === 0 && r.max_tokens === 2048 && r.model === 'cand'),
    'greedy, 2048 tokens, the named model',
  );
  const imageRequests = candidate.requests.filter((r) => Array.isArray(r.messages[0].content));
  t.equal(imageRequests.length, 5, 'the five image questions carry content parts');
  for (const r of imageRequests) {
    const parts = r.messages[0].content as { type: string; image_url?: { url: string } }[];
    t.same(
      parts.map((p) => p.type),
      ['image_url', 'text'],
    );
    t.match(parts[0].image_url!.url, /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
  }
  const textOnly = candidate.requests.find((r) => textOf(r.messages[0]).includes('heel'))!;
  t.equal(
    textOf(textOnly.messages[0]),
    'Which bone forms the heel?\n\nChoices:\nA. Talus\nB. Calcaneus\nC. Navicular\nD. Cuboid',
  );

  const judgments = lines(join(out, 'judgments.jsonl'));
  t.equal(judgments.length, 14, 'every generated sample judged once (one of them an error)');
  const letters = judgments.filter((j) => j.key === 'mmlu_anatomy/1' || j.key === 'mmlu_anatomy/3');
  t.same(
    letters.map((j) => [j.key, j.score, (j.rounds as unknown[]).length]).sort(),
    [
      ['mmlu_anatomy/1', 1, 3],
      ['mmlu_anatomy/3', 0, 3],
    ],
    'bare option letters are judged too (order: as they finished)',
  );
  t.ok(judge.requests.every((r) => r.temperature === 0 && r.model === 'judge-m'));
  t.ok(
    judge.requests.every(
      (r) =>
        r.max_tokens === 512 &&
        (r as { chat_template_kwargs?: { enable_thinking?: boolean } }).chat_template_kwargs?.enable_thinking === false,
    ),
    'the judge: 512 tokens, thinking off',
  );
  t.notOk(
    judge.requests.some((r) => textOf(r.messages[1]).includes('<think>')),
    'the judge never sees the reasoning',
  );
  const err = judgments.find((j) => j.key === 'medqa/3')!;
  t.equal(err.status, 'error');
  t.equal(err.score, undefined, 'a judge error has no score');

  const { stdout: again } = await cli([
    'eval',
    '--tasks',
    ...Object.keys(EXPECTED),
    '--output-dir',
    out,
    '--phase',
    'score',
  ]);
  t.match(again, /overall/, 'the score phase runs alone from the output directory');
  // A generate phase into this output folder as candidate `model`.
  const generateAs = (model: string) =>
    cli([
      'eval',
      '--tasks',
      'mmlu_anatomy',
      '--data-dir',
      fixtures,
      '--output-dir',
      out,
      '--phase',
      'generate',
      '--model',
      model,
      '--model-url',
      candidate.url,
    ]);
  await t.rejects(
    generateAs('other'),
    /holds results of candidate 'cand', not 'other'/,
    'another model cannot add its answers to these results',
  );
  const manifest = join(out, 'eval-run.json');
  const kept = readFileSync(manifest, 'utf8');
  writeFileSync(manifest, '{oops');
  await t.rejects(
    generateAs('cand'),
    /eval-run\.json: not readable .*repair or remove it/,
    'a damaged manifest is named',
  );
  writeFileSync(manifest, kept);
});

/** Waits until `file` has at least `n` lines, then kills the process. */
async function killAfter(args: string[], file: string, n: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', medix, ...args], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  for (;;) {
    await new Promise((r) => setTimeout(r, 40));
    if (
      existsSync(file) &&
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l).length >= n
    )
      break;
    if (child.exitCode !== null) throw new Error('the run finished before it could be killed: make it slower');
  }
  child.kill('SIGKILL');
  await exited;
}

t.test('a run killed mid-phase resumes: no duplicate ids, nothing lost, a torn line tolerated', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'medix-eval-data-'));
  const N = 24;
  const rows = Array.from({ length: N }, (_, i) =>
    JSON.stringify({ question: `Question ${i}?`, choices: ['alpha', 'beta', 'gamma'], answer: i % 3 }),
  );
  writeFileSync(join(data, 'mmlu_anatomy.jsonl'), `${rows.join('\n')}\n`);
  // The candidate answers the option text (so the judge is asked); right for even questions.
  const candidate = await startChatServer(
    (b) =>
      Number(/Question (\d+)/.exec(textOf(b.messages[0]))![1]) % 2 === 0
        ? ['alpha', 'beta', 'gamma'][Number(/Question (\d+)/.exec(textOf(b.messages[0]))![1]) % 3]
        : 'delta',
    120,
  );
  const judge = await startChatServer(scriptedVerdict, 60);
  t.teardown(async () => {
    await candidate.close();
    await judge.close();
  });
  const out = mkdtempSync(join(tmpdir(), 'medix-eval-resume-'));
  const common = [
    'eval',
    '--tasks',
    'mmlu_anatomy',
    '--data-dir',
    data,
    '--output-dir',
    out,
    '--model',
    'cand',
    '--model-url',
    candidate.url,
    '--judge-url',
    judge.url, // no --judge-model: the reference's judge is named
    '--concurrency',
    '2',
    '--judge-concurrency',
    '2',
  ];
  const gens = join(out, 'generations.jsonl');
  const judged = join(out, 'judgments.jsonl');

  await killAfter([...common, '--phase', 'generate'], gens, 6);
  const before = lines(gens).length;
  t.ok(before >= 6 && before < N, `killed after ${before} of ${N} generations`);
  appendFileSync(gens, '{"key": "mmlu_anatomy/99", "ta'); // a line cut by the kill
  await cli([...common, '--phase', 'generate']);
  const g = lines(gens);
  t.equal(g.length, N, 'the torn line is gone and every sample appears once');
  t.equal(new Set(g.map((r) => r.key)).size, N, 'no duplicate ids');
  t.ok(g.every((r) => r.status === 'ok'));
  t.ok(
    candidate.requests.length <= N + 2,
    `${candidate.requests.length} candidate requests: finished samples were not asked again (at most the 2 in flight at the kill)`,
  );

  await killAfter([...common, '--phase', 'evaluate'], judged, 4);
  const judgedBefore = lines(judged).length;
  t.ok(judgedBefore >= 4 && judgedBefore < N, `killed after ${judgedBefore} of ${N} judgments`);
  const { stdout } = await cli([...common, '--phase', 'evaluate,score']);
  const j = lines(judged);
  t.equal(j.length, N);
  t.equal(new Set(j.map((r) => r.key)).size, N, 'no duplicate ids');
  t.ok(
    judge.requests.length <= 3 * (N + 2),
    `${judge.requests.length} judge requests (3 rounds per sample, at most 2 samples redone)`,
  );
  t.ok(
    judge.requests.every((r) => r.model === 'Qwen/Qwen3-14B'),
    "without --judge-model the judge is asked for the reference evaluation's model",
  );
  const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as { tasks: Record<string, number> };
  t.equal(scores.tasks.mmlu_anatomy, 0.5, 'even questions right: 12 of 24');
  t.match(stdout, /mmlu_anatomy\s+0\/1\s+24\s+24\s+0\s+0\s+50\.00%/);
});
