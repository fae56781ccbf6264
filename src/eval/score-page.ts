// The score pages: one self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched)
// with the bar chart and the table, for a single run (scores.html) or a comparison.
import { escapeXml } from '../report/svg-chart.js';
import { barChart } from './bar-chart.js';
import type { Comparison } from './compare.js';
import { formatComparison } from './compare.js';
import type { EvalScores, TaskScoreRow } from './scores.js';
import { formatScoreTable } from './scores.js';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}
.chart .title{font-size:13px;font-weight:600}.chart .tick{font-size:10px;fill:#444}.chart .label{font-size:12px}
.chart .legend{font-size:12px}.chart .grid{stroke:#eee}.chart .axis{stroke:#888}
pre{background:#f6f6f6;padding:8px;overflow:auto}
`;

function page(title: string, chart: string, table: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
${chart}
<pre>${escapeXml(table)}</pre>
</body></html>
`;
}

export function renderScorePage(title: string, rows: TaskScoreRow[], scores: EvalScores): string {
  const categories = [...rows.map((r) => r.task), 'overall'];
  const values = [...rows.map((r) => r.score), scores.overall];
  return page(
    title,
    barChart(categories, [{ name: 'score', values }], { title: 'LLM-as-judge score per task' }),
    formatScoreTable(rows, scores),
  );
}

export function renderComparisonPage(title: string, c: Comparison): string {
  const categories = [...c.tasks, 'overall'];
  const series = c.sets.map((s, i) => ({
    name: c.labels[i],
    values: [...c.tasks.map((t) => s.tasks[t] ?? null), s.overall],
  }));
  return page(title, barChart(categories, series, { title: 'LLM-as-judge score per task' }), formatComparison(c));
}
