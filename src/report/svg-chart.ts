// Line charts as inline SVG strings. The report must be one self-contained HTML file that renders
// offline (clusters and CI have no internet), so no charting library loaded from a CDN; the charts
// are simple enough that drawing the SVG by hand is shorter than bundling a library.

export interface Series {
  name: string;
  /** [x, y] points; non-finite y values break the line (a gap). */
  points: [number, number][];
}

/**
 * Up to this many finite points, each point also gets a marker: a series logged at only a few
 * steps (validation every N steps, a single value) would otherwise be dots too small to see, or
 * nothing at all when its points are separated by gaps.
 */
export const MARKER_LIMIT = 60;

export interface ChartOptions {
  title: string;
  xLabel?: string;
  width?: number;
  height?: number;
}

/** Colour-blind-safe palette (Okabe–Ito); series beyond it reuse colours in order. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

const MARGIN = { left: 56, right: 12, top: 28, bottom: 36 };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** About five round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  // Counted in whole steps, not by adding `step` to a running value: for a range a few ulps wide the step
  // is below the values' resolution and `v += step` never moves (an endless loop that ran out of memory).
  const first = Math.ceil(lo / step);
  const n = Math.floor(hi / step + 1e-9) - first;
  const ticks = new Set<number>();
  for (let i = 0; i <= n; i++) ticks.add(Number(((first + i) * step).toPrecision(12)));
  return ticks.size > 0 ? [...ticks] : [lo];
}

function formatTick(v: number, digits = 4): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(digits - 3) : String(Number(v.toPrecision(digits)));
}

/** Tick labels with as many digits as it takes to tell them apart (a metric that barely moves). */
function tickLabels(ticks: number[]): string[] {
  for (let digits = 4; digits < 12; digits++) {
    const labels = ticks.map((v) => formatTick(v, digits));
    if (new Set(labels).size === labels.length) return labels;
  }
  return ticks.map((v) => String(v));
}

function extent(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values.filter(Number.isFinite)) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === Infinity) return [0, 1];
  // A metric that moves only by rounding noise (e.g. 1.4999964912362949 vs ...53) is drawn flat.
  if (hi - lo <= Math.abs(hi) * 1e-12) return [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  return [lo, hi];
}

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 420;
  const H = o.height ?? 240;
  const pw = W - MARGIN.left - MARGIN.right;
  const ph = H - MARGIN.top - MARGIN.bottom;
  const [x0, x1] = extent(series.flatMap((s) => s.points.map((p) => p[0])));
  const [y0, y1] = extent(series.flatMap((s) => s.points.map((p) => p[1])));
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => MARGIN.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">`,
    `<text x="${W / 2}" y="16" text-anchor="middle" class="title">${escapeXml(o.title)}</text>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" class="frame"/>`,
  ];
  const yTicks = niceTicks(y0, y1);
  const yLabels = tickLabels(yTicks);
  yTicks.forEach((t, i) => {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${MARGIN.left - 4}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${yLabels[i]}</text>`,
    );
  });
  // Steps and epochs are whole numbers: no tick at step 1.2.
  const wholeX = series.every((s) => s.points.every(([x]) => Number.isInteger(x)));
  for (const t of niceTicks(x0, x1).filter((v) => !wholeX || Number.isInteger(v))) {
    parts.push(
      `<text x="${sx(t).toFixed(1)}" y="${MARGIN.top + ph + 14}" text-anchor="middle" class="tick">${formatTick(t)}</text>`,
    );
  }
  if (o.xLabel)
    parts.push(
      `<text x="${MARGIN.left + pw / 2}" y="${H - 4}" text-anchor="middle" class="tick">${escapeXml(o.xLabel)}</text>`,
    );
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y) || !Number.isFinite(x)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = true;
    }
    parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2" data-series="${escapeXml(s.name)}"/>`);
    const finite = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (finite.length <= MARKER_LIMIT) {
      const dots = finite
        .map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5"/>`)
        .join('');
      parts.push(`<g fill="${colour}" class="markers" data-series="${escapeXml(s.name)}">${dots}</g>`);
    }
    if (series.length > 1)
      parts.push(
        `<text x="${MARGIN.left + 6}" y="${MARGIN.top + 12 + 12 * i}" fill="${colour}" class="legend">${escapeXml(s.name)}</text>`,
      );
  });
  parts.push('</svg>');
  return parts.join('');
}
