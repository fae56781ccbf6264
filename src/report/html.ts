// The training report: one self-contained HTML page (inline CSS and SVG, no scripts, no network). From
// the top: what the run achieved (summary.ts), the reward and its components in one chart, the
// held-out (validation) reward, the held-out accuracy per modality, the SFT warm-up against its own
// axis (epochs, all logged at step 0), a chart per other metric grouped by prefix ("actor/…",
// "timing/…"), the latest samples with each reward component and why one was unavailable, and the
// run's configuration.
import { escapeXml, lineChart, PALETTE, type Series } from './svg-chart.js';
import type { MetricsRow, RunFiles, SampleRow } from './run-files.js';
import { summariseRun, summaryHtml } from './summary.js';
import { MODALITY_ACCURACY, REWARD_COMPONENTS } from '../reward/components.js';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
.grid-charts{display:flex;flex-wrap:wrap;gap:12px}
.chart .title{font-size:12px;font-weight:600}.chart .tick{font-size:10px;fill:#555}
.chart .legend{font-size:10px}.chart .frame{fill:none;stroke:#bbb}.chart .grid{stroke:#eee}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
td pre{white-space:pre-wrap;margin:0;max-height:16em;overflow:auto}
.summary{display:flex;gap:24px;align-items:flex-start}.summary table{width:auto}
.summary th{font-weight:600;background:#f6f6f6;white-space:nowrap}.summary td{max-width:520px;overflow-wrap:anywhere}
td.na{color:#a33}
pre.config{background:#f6f6f6;padding:8px;overflow:auto}
`;

/** Numeric metrics present in any row, in first-seen order; 'step' is the x axis. */
export function metricNames(rows: Record<string, unknown>[]): string[] {
  const names = new Set<string>();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (k !== 'step' && typeof v === 'number') names.add(k);
  return [...names];
}

function groupOf(name: string): string {
  const i = name.indexOf('/');
  return i < 0 ? 'other' : name.slice(0, i);
}

/**
 * The rows that logged `name`, as points against `x`. A row without the key is not a point (a
 * metric logged every few steps is one line through its points); a logged null, which is how a
 * non-finite value is written, is a gap.
 */
function seriesOf(rows: MetricsRow[], name: string, x: (r: MetricsRow) => unknown = (r) => r.step): Series {
  const logged = rows.filter((r) => name in r && typeof x(r) === 'number');
  return { name, points: logged.map((r) => [x(r) as number, typeof r[name] === 'number' ? (r[name] as number) : NaN]) };
}

function chartSection(heading: string, charts: string[]): string {
  return charts.length ? `<h2>${escapeXml(heading)}</h2>\n<div class="grid-charts">\n${charts.join('\n')}\n</div>` : '';
}

/**
 * The components together, then the held-out ones, the held-out accuracy per modality, then the other
 * reward/* metrics (counts) one per chart.
 */
function rewardCharts(rl: MetricsRow[], names: Set<string>, others: string[]): string {
  const together = (prefix: string, title: string) => {
    const series = REWARD_COMPONENTS.filter((c) => names.has(`${prefix}/${c}`)).map((c) =>
      seriesOf(rl, `${prefix}/${c}`),
    );
    return series.length ? [lineChart(series, { title, xLabel: 'step', width: 560, height: 280 })] : [];
  };
  // At most one colour per line: PALETTE.length modalities a chart.
  const modalities = [...names].filter((n) => n.startsWith(MODALITY_ACCURACY)).map((n) => seriesOf(rl, n));
  const modalityCharts = Array.from({ length: Math.ceil(modalities.length / PALETTE.length) }, (_, i) =>
    lineChart(modalities.slice(i * PALETTE.length, (i + 1) * PALETTE.length), {
      title: `held-out accuracy per modality${modalities.length > PALETTE.length ? ` (${i + 1})` : ''}`,
      xLabel: 'step',
      width: 560,
      height: 280,
    }),
  );
  const single = others.map((n) => lineChart([seriesOf(rl, n)], { title: n, xLabel: 'step' }));
  return chartSection('reward', [
    ...together('reward', 'reward and its components (training batch)'),
    ...together('val', 'held-out reward and its components'),
    ...modalityCharts,
    ...single,
  ]);
}

function sftCharts(sft: MetricsRow[]): string {
  const names = metricNames(sft).filter((n) => n !== 'sft/epoch');
  return chartSection(
    'SFT warm-up',
    names.map((n) => lineChart([seriesOf(sft, n, (r) => r['sft/epoch'])], { title: n, xLabel: 'epoch' })),
  );
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const text = typeof v === 'string' ? v : JSON.stringify(v, null, 1);
  return `<pre>${escapeXml(text)}</pre>`;
}

interface SampleReward {
  reasons?: Record<string, unknown>;
  unavailable?: unknown[];
  custom?: Record<string, unknown>;
  [component: string]: unknown;
}

function rewardOf(s: SampleRow): SampleReward {
  return typeof s.reward === 'object' && s.reward !== null ? (s.reward as SampleReward) : { overall: s.reward };
}

/** One component's cell: its score, or why it has none. */
function componentCell(r: SampleReward, name: string, value: unknown): string {
  if (typeof value === 'number') return `<td>${Number(value.toFixed(4))}</td>`;
  const unavailable = Array.isArray(r.unavailable) && r.unavailable.includes(name);
  const reason = r.reasons?.[name];
  if (!unavailable && reason === undefined) return '<td></td>';
  return `<td class="na">${escapeXml(typeof reason === 'string' ? reason : 'unavailable')}</td>`;
}

function samplesTable(samples: SampleRow[], limit: number): string {
  const rows = samples.slice(-limit);
  if (rows.length === 0) return '<p>No sample generations were logged.</p>';
  const customNames = [...new Set(rows.flatMap((s) => Object.keys(rewardOf(s).custom ?? {})))];
  const head = ['step', 'prompt', 'response', 'ground truth', ...REWARD_COMPONENTS, ...customNames, 'notes'];
  const body = rows.map((s) => {
    const r = rewardOf(s);
    const components = REWARD_COMPONENTS.map((c) => componentCell(r, c, r[c]));
    const custom = customNames.map((c) => componentCell(r, c, r.custom?.[c]));
    // Reasons of scored components (an invalid answer, judge hacking, a fallback) go to the notes.
    const notes = Object.entries(r.reasons ?? {}).filter(
      ([k]) => !(Array.isArray(r.unavailable) && r.unavailable.includes(k)),
    );
    const noteText = notes.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n');
    return `<tr><td>${s.step}</td><td>${cell(s.prompt)}</td><td>${cell(s.response)}</td><td>${cell(s.ground_truth)}</td>${components.join('')}${custom.join('')}<td>${cell(noteText || undefined)}</td></tr>`;
  });
  return `<table class="samples"><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
}

export function renderReport(run: RunFiles, options: { title?: string; maxSamples?: number } = {}): string {
  const title = options.title ?? `medix run ${run.dir}`;
  const sft = run.metrics.filter((r) => typeof r['sft/epoch'] === 'number');
  const rl = run.metrics.filter((r) => typeof r['sft/epoch'] !== 'number');
  const names = new Set(metricNames(rl));
  const combined = new Set(['reward', 'val'].flatMap((p) => REWARD_COMPONENTS.map((c) => `${p}/${c}`)));
  const groups = new Map<string, string[]>();
  for (const name of names) {
    if (combined.has(name) || name.startsWith(MODALITY_ACCURACY)) continue;
    const g = groupOf(name);
    groups.set(g, [...(groups.get(g) ?? []), name]);
  }
  const otherReward = groups.get('reward') ?? [];
  groups.delete('reward');
  const sections = [...groups].map(([group, list]) =>
    chartSection(
      group,
      list.map((n) => lineChart([seriesOf(rl, n)], { title: n, xLabel: 'step' })),
    ),
  );
  const last = rl.at(-1);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
${summaryHtml(summariseRun(run))}
<p>${rl.length} logged rows${last ? `, last step ${last.step}` : ''}; ${sft.length} SFT epochs; ${run.samples.length} logged samples.</p>
${names.size || sft.length ? '' : '<p>No metrics were logged.</p>'}
${rewardCharts(rl, names, otherReward)}
${sftCharts(sft)}
${sections.join('\n')}
<h2>samples</h2>
${samplesTable(run.samples, options.maxSamples ?? 20)}
<h2>configuration</h2>
${run.configText === null ? '<p>No config.yaml in the run directory.</p>' : `<pre class="config">${escapeXml(run.configText)}</pre>`}
</body></html>
`;
}
