// `medix report`: reading run logs (torn last lines tolerated, damage reported with file:line),
// charts that hold every logged point, escaping of logged text, and a real render in headless
// Chromium that shows the curves.
import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { lineChart, niceTicks, PALETTE } from '../../src/report/svg-chart.js';
import { readRun, RunFileError } from '../../src/report/run-files.js';
import { renderReport, metricNames } from '../../src/report/html.js';
import { findChromium, screenshot } from '../helpers/chromium.js';
import { skipIfMissing } from '../helpers/system-skip.js';

function makeRun(steps: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'medix-report-'));
  const lines = [];
  for (let s = 1; s <= steps; s++)
    lines.push(
      JSON.stringify({
        step: s,
        'reward/overall': 1 - 1 / (1 + s),
        'actor/grad_norm': 2 / s,
        'timing/step_s': 0.5,
        note: 'x',
      }),
    );
  writeFileSync(join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(dir, 'samples.jsonl'),
    `${JSON.stringify({ step: 2, prompt: 'What is shown?', response: '<thinking>hmm</thinking><answer><script>alert(1)</script></answer>', ground_truth: '<X_RAY> pneumonia', reward: { overall: 0.1 } })}\n`,
  );
  writeFileSync(join(dir, 'config.yaml'), 'algorithm:\n  adv_estimator: grpo\n');
  return dir;
}

t.test('tick values are round and cover the range', async (t) => {
  for (const [lo, hi] of [
    [0, 1],
    [0.013, 0.027],
    [-3, 250],
    [1e-5, 3e-5],
    [100, 100.5],
  ]) {
    const ticks = niceTicks(lo, hi);
    t.ok(ticks.length >= 2 && ticks.length <= 11, `${ticks.length} ticks for [${lo}, ${hi}]`);
    t.ok(
      ticks.every((v) => v >= lo - 1e-12 && v <= hi + 1e-12),
      'inside the range',
    );
    const step = ticks[1] - ticks[0];
    const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    t.ok(
      [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6),
      `step ${step} is 1, 2 or 5 x 10^k`,
    );
    t.ok(
      ticks[0] - lo < step + 1e-12 && hi - ticks.at(-1)! < step + 1e-12,
      'no tick step left uncovered at either end',
    );
  }
});

t.test('run files: torn last line tolerated, damage reported with file and line', async (t) => {
  const dir = makeRun(3);
  writeFileSync(
    join(dir, 'metrics.jsonl'),
    `${readFileSync(join(dir, 'metrics.jsonl'), 'utf8')}{"step": 4, "reward/ov`,
  );
  t.equal(readRun(dir).metrics.length, 3, 'a torn last line (killed mid-write) is dropped');
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step": 1}\n{oops\n{"step": 3}\n');
  t.throws(() => readRun(dir), new RunFileError(`${join(dir, 'metrics.jsonl')}:2: not valid JSON`));
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step": 1}\n{"loss": 3}\n');
  t.throws(() => readRun(dir), /metrics\.jsonl:2: field 'step' must be a number/);
  t.throws(() => readRun(join(dir, 'nope')), /no such run directory/);
  const model = mkdtempSync(join(tmpdir(), 'medix-not-a-run-'));
  writeFileSync(join(model, 'config.json'), '{}');
  t.throws(() => readRun(model), /not a run directory \(no metrics\.jsonl, config\.yaml or summary\.json\)/);
});

t.test('every numeric metric gets a chart holding each logged point; text is escaped', async (t) => {
  const run = readRun(makeRun(7));
  t.same(metricNames(run.metrics), ['reward/overall', 'actor/grad_norm', 'timing/step_s'], 'strings are not plotted');
  const html = renderReport(run);
  for (const name of metricNames(run.metrics)) {
    const path = new RegExp(`<path d="([^"]*)"[^>]*data-series="${name}"`).exec(html);
    t.ok(path, `chart for ${name}`);
    t.equal(path![1].match(/[ML]/g)!.length, 7, `${name}: one vertex per step`);
  }
  for (const group of ['reward', 'actor', 'timing']) t.match(html, `<h2>${group}</h2>`);
  t.notMatch(html, '<script>alert(1)</script>', 'logged text cannot inject markup');
  t.match(html, '&lt;script&gt;alert(1)&lt;/script&gt;');
  t.match(html, 'adv_estimator: grpo', 'the configuration is shown');
  t.notMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained: no scripts, nothing fetched');
});

/**
 * A run as the trainer logs it: validation before training (step 0) and every 5 steps only, two SFT
 * epochs (logged at step 0 with sft/epoch), a finished summary, and a sample whose judge was down.
 */
function makeTrainedRun(): string {
  const dir = makeRun(10);
  const rows = [
    { step: 0, 'val/overall': 0.2, 'val/format': 0.5 },
    { step: 0, 'sft/epoch': 1, 'sft/loss': 3.1, 'sft/grad_norm': 4 },
    { step: 0, 'sft/epoch': 2, 'sft/loss': 2.2, 'sft/grad_norm': 3 },
  ];
  for (let s = 1; s <= 10; s++) {
    const row: Record<string, number> = {
      step: s,
      'reward/overall': 0.1 * s,
      'reward/format': 0.05 * s,
      'reward/modality': 1,
      'perf/tokens_per_s': 100 * s,
      'timing/step': 2,
    };
    if (s % 5 === 0)
      Object.assign(row, {
        'val/overall': 0.3 + 0.01 * s,
        'val/format': 0.6,
        'val/accuracy_llm/CT_SCAN': 0.5,
        'val/accuracy_llm/X_RAY': 0.05 * s,
      });
    rows.push(row as never);
  }
  writeFileSync(join(dir, 'metrics.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  writeFileSync(
    join(dir, 'summary.json'),
    JSON.stringify({
      steps: 10,
      heldout_reward_before_train: 0.2,
      heldout_reward_after_sft: 0.25,
      heldout_reward_after_rl: 0.4,
      heldout_accuracy_by_modality_after_sft: { X_RAY: 0.25, CT_SCAN: 0.5 },
      heldout_accuracy_by_modality_after_rl: { X_RAY: 0.5, CT_SCAN: 0.75 },
    }),
  );
  const reward = {
    overall: 0.6,
    format: 1,
    accuracy_llm: null,
    accuracy_embed: 0.5,
    modality: 1,
    custom: { brevity: 0.25 },
    reasons: { accuracy_llm: 'unavailable: judge timed out after 60 s', accuracy_embed: 'trigram fallback' },
    unavailable: ['accuracy_llm'],
  };
  writeFileSync(
    join(dir, 'samples.jsonl'),
    `${JSON.stringify({ step: 10, prompt: 'Which bone?', response: '<answer>calcaneus</answer>', ground_truth: '<X_RAY> calcaneus', reward })}\n`,
  );
  writeFileSync(
    join(dir, 'config.yaml'),
    'algorithm:\n  adv_estimator: grpo\nworker:\n  rollout:\n    n: 5\n  actor:\n    optim:\n      lr: 0.000001\n',
  );
  return dir;
}

t.test('sparse series get markers; SFT against epochs; components together, modalities together', async (t) => {
  const html = renderReport(readRun(makeTrainedRun()));
  const markers = (name: string) =>
    new RegExp(`class="markers" data-series="${name}">((?:<circle[^>]*/>)*)</g>`).exec(html)?.[1].match(/<circle/g)
      ?.length ?? 0;
  t.equal(markers('val/overall'), 3, 'validation at steps 0, 5, 10: three markers');
  const valPath = /<path d="([^"]*)"[^>]*data-series="val\/overall"/.exec(html)![1];
  t.equal(
    valPath.match(/L/g)?.length,
    2,
    'one line through the three validation points, not broken by the steps between',
  );
  const sftChart = /<svg[^>]*aria-label="sft\/loss">.*?<\/svg>/.exec(html)![0];
  t.match(sftChart, '>epoch</text>', 'SFT loss is drawn against epochs');
  t.equal(
    (/<path d="([^"]*)"/.exec(sftChart)![1].match(/[ML]/g) ?? []).length,
    2,
    'one vertex per SFT epoch, not a vertical line',
  );
  const rewardChart = /<svg[^>]*aria-label="reward and its components[^"]*">.*?<\/svg>/.exec(html)![0];
  for (const c of ['reward/overall', 'reward/format', 'reward/modality'])
    t.match(rewardChart, `data-series="${c}"`, `${c} in the components chart`);
  const modalityChart = /<svg[^>]*aria-label="held-out accuracy per modality">.*?<\/svg>/.exec(html)![0];
  for (const c of ['val/accuracy_llm/CT_SCAN', 'val/accuracy_llm/X_RAY'])
    t.match(modalityChart, `data-series="${c}"`, `${c} in the per-modality chart`);
  t.notMatch(html, 'aria-label="val/accuracy_llm/X_RAY"', 'not a chart of its own besides');
});

t.test('more modalities than colours: one chart per 8, every modality drawn once', async (t) => {
  const dir = makeRun(2);
  const tags = Array.from({ length: 12 }, (_, i) => `M${String(i).padStart(2, '0')}`);
  const row = Object.fromEntries(tags.map((m, i) => [`val/accuracy_llm/${m}`, i / 12]));
  writeFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 1, ...row })}\n`);
  const html = renderReport(readRun(dir));
  const charts = [...html.matchAll(/<svg[^>]*aria-label="held-out accuracy per modality[^"]*">.*?<\/svg>/g)].map(
    (m) => m[0],
  );
  t.equal(charts.length, 2, '12 modalities: 2 charts');
  t.same(
    charts.map((c) => [...c.matchAll(/class="markers" data-series="([^"]*)"/g)].length),
    [8, 4],
  );
  for (const m of tags) t.match(html, `data-series="val/accuracy_llm/${m}"`, `${m} drawn`);
});

t.test('summary at the top: held-out rewards, accuracy per modality, steps, time, speed, key settings', async (t) => {
  const html = renderReport(readRun(makeTrainedRun()));
  const top = html.slice(0, html.indexOf('<h2>'));
  const fact = (k: string) => new RegExp(`<th>${k}</th><td>([^<]*)</td>`).exec(top)?.[1];
  t.equal(fact('held-out reward before training'), '0.2000');
  t.equal(fact('held-out reward after SFT'), '0.2500');
  t.equal(fact('held-out reward after RL'), '0.4000');
  t.equal(fact('RL steps'), '10');
  t.equal(fact('time in RL steps'), '20.0 s', 'sum of timing/step');
  t.equal(fact('tokens/s \\(mean over steps\\)'), '550.0');
  t.equal(fact('algorithm.adv_estimator'), 'grpo');
  t.equal(fact('worker.rollout.n'), '5');
  t.equal(fact('worker.actor.optim.lr'), '0.000001');
  t.equal(fact('held-out accuracy, CT_SCAN \\(after SFT, after RL\\)'), '0.500, 0.750');
  t.equal(fact('held-out accuracy, X_RAY \\(after SFT, after RL\\)'), '0.250, 0.500');
});

t.test('sample table: each reward component, and why one was unavailable', async (t) => {
  const html = renderReport(readRun(makeTrainedRun()));
  const table = html.slice(html.indexOf('<table class="samples">'));
  const head = [...table.slice(0, table.indexOf('</thead>')).matchAll(/<th>([^<]*)<\/th>/g)].map((m) => m[1]);
  t.same(head, [
    'step',
    'prompt',
    'response',
    'ground truth',
    'overall',
    'format',
    'accuracy_llm',
    'accuracy_embed',
    'modality',
    'brevity',
    'notes',
  ]);
  const cells = [...table.slice(table.indexOf('<tbody>')).matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((m) => m[1]);
  t.equal(
    cells[head.indexOf('accuracy_llm')],
    'unavailable: judge timed out after 60 s',
    'the unavailable component shows its reason',
  );
  t.equal(cells[head.indexOf('accuracy_embed')], '0.5');
  t.equal(cells[head.indexOf('brevity')], '0.25', 'custom components get a column');
  t.match(cells[head.indexOf('notes')], 'accuracy_embed: trigram fallback', "a scored component's reason is a note");
});

/** Non-background pixels inside each chart's plot frame, every chart of the page rendered by Chromium. */
async function marksPerChart(
  browserPath: string,
  html: string,
  dir: string,
): Promise<{ title: string; marks: number }[]> {
  const charts = [...html.matchAll(/<svg[^>]*aria-label="([^"]*)".*?<\/svg>/gs)].map((m) => ({
    title: m[1],
    svg: m[0],
  }));
  let top = 0;
  const placed = charts.map((c) => {
    const [_w, h] = ['width', 'height'].map((a) => Number(new RegExp(`${a}="(\\d+)"`).exec(c.svg)![1]));
    const f = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" class="frame"/
      .exec(c.svg)!
      .slice(1)
      .map(Number);
    const at = { ...c, top, frame: { x: f[0], y: top + f[1], w: f[2], h: f[3] } };
    top += h;
    return at;
  });
  // Each chart of the report alone on a page, stacked at known offsets, so its frame is located exactly.
  const page = join(dir, 'charts.html');
  const style = /<style>.*?<\/style>/s.exec(html)![0];
  writeFileSync(
    page,
    `<!doctype html><html><head>${style}</head><body style="margin:0;background:#fff">${placed.map((c) => `<div style="position:absolute;left:0;top:${c.top}px">${c.svg}</div>`).join('')}</body></html>`,
  );
  const png = join(dir, 'charts.png');
  screenshot(browserPath, page, png, 600, top);
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return placed.map((c) => {
    let marks = 0;
    // Inside the frame by 3 px: the frame's stroke and the light grid lines (#eee) are not marks.
    for (let y = Math.ceil(c.frame.y) + 3; y < c.frame.y + c.frame.h - 3 && y < info.height; y++)
      for (let x = Math.ceil(c.frame.x) + 3; x < c.frame.x + c.frame.w - 3; x++) {
        const i = (y * info.width + x) * 3;
        if (Math.min(data[i], data[i + 1], data[i + 2]) < 200) marks++;
      }
    return { title: c.title, marks };
  });
}

const browser = findChromium();
const noBrowser = 'Chromium is not installed (apt-get install chromium); the render check needs it';
t.test(
  'medix report renders in headless Chromium and shows the curves',
  skipIfMissing(browser ? null : noBrowser),
  async (t) => {
    const dir = makeRun(12);
    execFileSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '../../src/cli/medix.ts'), 'report', dir],
      { stdio: 'pipe' },
    );
    const html = join(dir, 'report.html');
    t.ok(existsSync(html), 'report.html written');
    const png = join(dir, 'report.png');
    screenshot(browser!, html, png, 1400, 900);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(PALETTE[0].slice(i, i + 2), 16));
    let curvePixels = 0;
    for (let i = 0; i < data.length; i += 3)
      if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) curvePixels++;
    t.ok(curvePixels > 300, `curve-coloured pixels on screen: ${curvePixels} of ${info.width * info.height}`);
  },
);

t.test(
  'every chart of a trained run shows visible marks in Chromium, sparse ones included',
  { skip: browser ? false : noBrowser },
  async (t) => {
    const dir = makeTrainedRun();
    const charts = await marksPerChart(browser!, renderReport(readRun(dir)), dir);
    t.ok(charts.length >= 5, `${charts.length} charts`);
    for (const c of charts) t.ok(c.marks > 20, `${c.title}: ${c.marks} marked pixels in the plot area`);
    // A series logged once is a single point: without a marker it would be an empty frame.
    writeFileSync(
      join(dir, 'metrics.jsonl'),
      `${JSON.stringify({ step: 0, 'sft/epoch': 1, 'sft/loss': 2 })}\n${JSON.stringify({ step: 3, 'val/overall': 0.5 })}\n`,
    );
    const single = await marksPerChart(browser!, renderReport(readRun(dir)), dir);
    t.same(
      single.map((c) => c.title),
      ['held-out reward and its components', 'sft/loss'],
    );
    for (const c of single) t.ok(c.marks > 20, `${c.title}, one point: ${c.marks} marked pixels`);
  },
);

// advantages/max of a real run: 1.4999964912362949 and ...53, one ulp apart. Stepping a running value by a
// step below that resolution never ended, and writing report.html ran out of memory.
t.test('a range a few ulps wide: a few ticks, and a chart of a metric that moves only by rounding', async (t) => {
  const [lo, hi] = [1.4999964912362949, 1.4999964912362953];
  const ticks = niceTicks(lo, hi);
  t.ok(ticks.length >= 1 && ticks.length <= 7, `${ticks.length} ticks`);
  const svg = lineChart(
    [
      {
        name: 'advantages/max',
        points: [
          [1, hi],
          [2, lo],
          [3, hi],
        ],
      },
    ],
    { title: 'advantages/max', xLabel: 'step' },
  );
  const labels = [...svg.matchAll(/class="tick">([^<]*)</g)].map((m) => m[1]);
  t.ok(labels.length >= 4 && labels.length < 20, `${labels.length} tick labels: ${labels.join(' ')}`);
  t.match(svg, /data-series="advantages\/max"/, 'the series is drawn');
});

t.test('tick labels: whole steps only on a step axis, and distinct for a metric that barely moves', async (t) => {
  const svg = lineChart(
    [
      {
        name: 'loss',
        points: [
          [1, 11.93012],
          [2, 11.93018],
        ],
      },
    ],
    { title: 'loss', xLabel: 'step' },
  );
  const labels = [...svg.matchAll(/class="tick">([^<]*)</g)].map((m) => m[1]);
  const xTicks = labels.slice(-3, -1);
  t.same(xTicks, ['1', '2'], 'steps 1 and 2, no 1.2');
  const yTicks = labels.slice(0, -3);
  t.ok(yTicks.length >= 2, `${yTicks.length} y ticks`);
  t.equal(new Set(yTicks).size, yTicks.length, `y labels differ: ${yTicks.join(' ')}`);
});
