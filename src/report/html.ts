// The training report: one self-contained HTML page (inline CSS and SVG, no scripts, no network)
// with a chart per logged metric, grouped by the metric's prefix ("reward/…", "actor/…"), the
// latest sample generations and the run's configuration.
import { escapeXml, lineChart, type Series } from './svg-chart.js';
import type { RunFiles, SampleRow } from './run-files.js';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
.grid-charts{display:flex;flex-wrap:wrap;gap:12px}
.chart .title{font-size:12px;font-weight:600}.chart .tick{font-size:10px;fill:#555}
.chart .legend{font-size:10px}.chart .frame{fill:none;stroke:#bbb}.chart .grid{stroke:#eee}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
td pre{white-space:pre-wrap;margin:0;max-height:16em;overflow:auto}
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

function seriesOf(run: RunFiles, name: string): Series {
  return {
    name,
    points: run.metrics.map((r) => [r.step, typeof r[name] === 'number' ? (r[name] as number) : NaN]),
  };
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const text = typeof v === 'string' ? v : JSON.stringify(v, null, 1);
  return `<pre>${escapeXml(text)}</pre>`;
}

function samplesTable(samples: SampleRow[], limit: number): string {
  const rows = samples.slice(-limit);
  if (rows.length === 0) return '<p>No sample generations were logged.</p>';
  const body = rows
    .map((s) => `<tr><td>${s.step}</td><td>${cell(s.prompt)}</td><td>${cell(s.response)}</td><td>${cell(s.ground_truth)}</td><td>${cell(s.reward)}</td></tr>`)
    .join('\n');
  return `<table class="samples"><thead><tr><th>step</th><th>prompt</th><th>response</th><th>ground truth</th><th>reward</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function renderReport(run: RunFiles, options: { title?: string; maxSamples?: number } = {}): string {
  const title = options.title ?? `medix run ${run.dir}`;
  const groups = new Map<string, string[]>();
  for (const name of metricNames(run.metrics)) {
    const g = groupOf(name);
    groups.set(g, [...(groups.get(g) ?? []), name]);
  }
  const sections = [...groups].map(([group, names]) => {
    const charts = names.map((n) => lineChart([seriesOf(run, n)], { title: n, xLabel: 'step' })).join('\n');
    return `<h2>${escapeXml(group)}</h2>\n<div class="grid-charts">\n${charts}\n</div>`;
  });
  const last = run.metrics.at(-1);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
<p>${run.metrics.length} logged steps${last ? `, last step ${last.step}` : ''}; ${run.samples.length} logged samples.</p>
${sections.length ? sections.join('\n') : '<p>No metrics were logged.</p>'}
<h2>samples</h2>
${samplesTable(run.samples, options.maxSamples ?? 20)}
<h2>configuration</h2>
${run.configText === null ? '<p>No config.yaml in the run directory.</p>' : `<pre class="config">${escapeXml(run.configText)}</pre>`}
</body></html>
`;
}
