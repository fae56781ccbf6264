// Horizontal bar chart as inline SVG for the score pages: one row per task, one bar per result set
// (a single run, or several side by side when comparing). Scores are fractions drawn on 0-100 %.
// Hand-drawn for the same reason as the training report's line charts: the page must render
// offline as one file.
import { escapeXml, niceTicks, PALETTE } from '../report/svg-chart.js';

export interface BarSeries {
  name: string;
  /** One value in [0, 1] per category; null draws no bar (the task has no score in this set). */
  values: (number | null)[];
}

const LABEL_W = 230;
const RIGHT = 56;
const TOP = 30;
const BAR_H = 14;
const GAP = 8;

export function barChart(categories: string[], series: BarSeries[], o: { title: string; width?: number }): string {
  const W = o.width ?? 760;
  const legendH = series.length > 1 ? 18 * series.length : 0;
  const rowH = series.length * BAR_H + GAP;
  const plotH = categories.length * rowH;
  const H = TOP + legendH + plotH + 28;
  const plotW = W - LABEL_W - RIGHT;
  const top = TOP + legendH;
  const sx = (v: number) => LABEL_W + Math.max(0, Math.min(1, v)) * plotW;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">`,
    `<text x="${W / 2}" y="18" text-anchor="middle" class="title">${escapeXml(o.title)}</text>`,
  ];
  series.forEach((s, i) => {
    const y = TOP + 18 * i;
    parts.push(`<rect x="${LABEL_W}" y="${y}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    parts.push(`<text x="${LABEL_W + 18}" y="${y + 10}" class="legend">${escapeXml(s.name)}</text>`);
  });
  for (const t of niceTicks(0, 1)) {
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + plotH}" class="grid"/>`);
    parts.push(
      `<text x="${x}" y="${top + plotH + 14}" text-anchor="middle" class="tick">${Math.round(t * 100)}%</text>`,
    );
  }
  categories.forEach((c, ci) => {
    const y0 = top + ci * rowH;
    parts.push(
      `<text x="${LABEL_W - 6}" y="${y0 + (series.length * BAR_H) / 2}" text-anchor="end" dominant-baseline="middle" class="label">${escapeXml(c)}</text>`,
    );
    series.forEach((s, si) => {
      const v = s.values[ci];
      const y = y0 + si * BAR_H;
      const attrs = `data-category="${escapeXml(c)}" data-series="${escapeXml(s.name)}"`;
      if (v === null || !Number.isFinite(v)) {
        parts.push(`<text x="${LABEL_W + 4}" y="${y + BAR_H - 3}" class="tick" ${attrs}>n/a</text>`);
        return;
      }
      const w = (sx(v) - LABEL_W).toFixed(1);
      parts.push(
        `<rect x="${LABEL_W}" y="${y + 1}" width="${w}" height="${BAR_H - 2}" fill="${PALETTE[si % PALETTE.length]}" ${attrs}/>`,
      );
      parts.push(
        `<text x="${(sx(v) + 4).toFixed(1)}" y="${y + BAR_H - 3}" class="tick">${(v * 100).toFixed(1)}%</text>`,
      );
    });
  });
  parts.push(`<line x1="${LABEL_W}" x2="${LABEL_W}" y1="${top}" y2="${top + plotH}" class="axis"/>`);
  parts.push('</svg>');
  return parts.join('');
}
