// `medix report`: reading run logs (torn last lines tolerated, damage reported with file:line),
// charts that hold every logged point, escaping of logged text, and a real render in headless
// Chromium that shows the curves.
import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { niceTicks, PALETTE } from '../../src/report/svg-chart.js';
import { readRun, RunFileError } from '../../src/report/run-files.js';
import { renderReport, metricNames } from '../../src/report/html.js';
import { findChromium, screenshot } from '../helpers/chromium.js';
import { skipIfMissing } from '../helpers/system-skip.js';

function makeRun(steps: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'medix-report-'));
  const lines = [];
  for (let s = 1; s <= steps; s++)
    lines.push(JSON.stringify({ step: s, 'reward/overall': 1 - 1 / (1 + s), 'actor/grad_norm': 2 / s, 'timing/step_s': 0.5, note: 'x' }));
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  writeFileSync(
    join(dir, 'samples.jsonl'),
    JSON.stringify({ step: 2, prompt: 'What is shown?', response: '<thinking>hmm</thinking><answer><script>alert(1)</script></answer>', ground_truth: '<X_RAY> pneumonia', reward: { overall: 0.1 } }) + '\n',
  );
  writeFileSync(join(dir, 'config.yaml'), 'algorithm:\n  adv_estimator: grpo\n');
  return dir;
}

t.test('tick values are round and cover the range', async (t) => {
  for (const [lo, hi] of [[0, 1], [0.013, 0.027], [-3, 250], [1e-5, 3e-5], [100, 100.5]]) {
    const ticks = niceTicks(lo, hi);
    t.ok(ticks.length >= 2 && ticks.length <= 11, `${ticks.length} ticks for [${lo}, ${hi}]`);
    t.ok(ticks.every((v) => v >= lo - 1e-12 && v <= hi + 1e-12), 'inside the range');
    const step = ticks[1] - ticks[0];
    const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    t.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6), `step ${step} is 1, 2 or 5 x 10^k`);
    t.ok(ticks[0] - lo < step + 1e-12 && hi - ticks.at(-1)! < step + 1e-12, 'no tick step left uncovered at either end');
  }
});

t.test('run files: torn last line tolerated, damage reported with file and line', async (t) => {
  const dir = makeRun(3);
  writeFileSync(join(dir, 'metrics.jsonl'), readFileSync(join(dir, 'metrics.jsonl'), 'utf8') + '{"step": 4, "reward/ov');
  t.equal(readRun(dir).metrics.length, 3, 'a torn last line (killed mid-write) is dropped');
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step": 1}\n{oops\n{"step": 3}\n');
  t.throws(() => readRun(dir), new RunFileError(`${join(dir, 'metrics.jsonl')}:2: not valid JSON`));
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step": 1}\n{"loss": 3}\n');
  t.throws(() => readRun(dir), /metrics\.jsonl:2: field 'step' must be a number/);
  t.throws(() => readRun(join(dir, 'nope')), /no such run directory/);
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

const browser = findChromium();
const noBrowser = 'Chromium is not installed (apt-get install chromium); the render check needs it';
t.test('medix report renders in headless Chromium and shows the curves', skipIfMissing(browser ? null : noBrowser), async (t) => {
  const dir = makeRun(12);
  execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../src/cli/medix.ts'), 'report', dir], { stdio: 'pipe' });
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
});
