/**
 * The demo's charts as SVG strings: per-class uncertainty bars, training
 * curves, the regression band and the entropy / mutual information scatter.
 * (The reliability diagram is the library's reliabilityDiagramSvg.) Every
 * chart carries its numbers in data-* attributes, which the headless test reads.
 *
 * Only numbers and fixed strings go into the markup, except labels passed
 * through `escape`.
 */

const COLORS = { mean: '#444', epistemic: '#d62728', aleatoric: '#1f77b4', grid: '#e6e6e6', axis: '#666' };
export const SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

// HTML escaping and tick placement are the library report's (src/uncertainty/report.ts).
import { escapeHtml as escape, niceTicks as ticks } from '../src/uncertainty/report.js';

export { escape, ticks };

/** Coordinates rounded to 0.1 px keep the markup short. */
const px = (v: number) => (Math.round(v * 10) / 10).toString();

/** A short number for labels: 0.0123 -> "0.012", 1.2e-5 -> "1.2e-5". */
export function short(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(1);
  return v.toFixed(digits);
}

interface Plot {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

function plot(width: number, height: number, x: [number, number], y: [number, number], margin = { left: 48, right: 12, top: 26, bottom: 36 }): Plot {
  const left = margin.left;
  const right = width - margin.right;
  const top = margin.top;
  const bottom = height - margin.bottom;
  return {
    width, height, left, right, top, bottom,
    x: (v) => left + ((v - x[0]) / (x[1] - x[0] || 1)) * (right - left),
    y: (v) => bottom - ((v - y[0]) / (y[1] - y[0] || 1)) * (bottom - top),
  };
}

function axes(p: Plot, xt: number[], yt: number[], labels: { x: string; y: string; title?: string }, format: (v: number) => string = String): string {
  const s: string[] = [];
  for (const t of yt) {
    s.push(`<line x1="${px(p.left)}" x2="${px(p.right)}" y1="${px(p.y(t))}" y2="${px(p.y(t))}" stroke="${COLORS.grid}"/>`);
    s.push(`<text x="${px(p.left - 5)}" y="${px(p.y(t) + 4)}" text-anchor="end">${escape(format(t))}</text>`);
  }
  for (const t of xt) {
    s.push(`<line x1="${px(p.x(t))}" x2="${px(p.x(t))}" y1="${px(p.bottom)}" y2="${px(p.bottom + 4)}" stroke="${COLORS.axis}"/>`);
    s.push(`<text x="${px(p.x(t))}" y="${px(p.bottom + 15)}" text-anchor="middle">${escape(String(t))}</text>`);
  }
  s.push(`<path d="M${px(p.left)},${px(p.top)}V${px(p.bottom)}H${px(p.right)}" fill="none" stroke="${COLORS.axis}"/>`);
  s.push(`<text x="${px((p.left + p.right) / 2)}" y="${px(p.height - 4)}" text-anchor="middle" class="label">${escape(labels.x)}</text>`);
  s.push(`<text transform="translate(12 ${px((p.top + p.bottom) / 2)}) rotate(-90)" text-anchor="middle" class="label">${escape(labels.y)}</text>`);
  if (labels.title) s.push(`<text x="${px(p.left)}" y="16" class="title">${escape(labels.title)}</text>`);
  return s.join('');
}

function svg(p: { width: number; height: number }, kind: string, body: string, attributes = ''): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${kind}"${attributes} viewBox="0 0 ${p.width} ${p.height}" width="${p.width}" height="${p.height}">${body}</svg>`;
}

function legend(x: number, y: number, items: { name: string; color: string; opacity?: number }[]): string {
  let at = x;
  return items.map((it) => {
    const s = `<rect x="${px(at)}" y="${px(y - 9)}" width="10" height="10" fill="${it.color}" fill-opacity="${it.opacity ?? 1}"/><text x="${px(at + 14)}" y="${px(y)}">${escape(it.name)}</text>`;
    at += 14 + it.name.length * 6 + 14;
    return s;
  }).join('');
}

// ----------------------------------------------------------- per-class bars

export interface ClassUncertainty {
  mean: ArrayLike<number>;
  epistemic: ArrayLike<number>;
  aleatoric: ArrayLike<number>;
}

/**
 * One row per class: the predictive probability p̄ (scale 0..1), and the
 * epistemic and aleatoric variances, each column on its own scale (its
 * largest value), as the seed plots them: the epistemic part is often 10 to
 * 100 times smaller than the aleatoric one. Per class, epistemic + aleatoric =
 * p̄ (1 - p̄), the variance of the class indicator under p̄.
 */
export function classBarsSvg(u: ClassUncertainty, classNames: readonly string[], options: { width?: number; title?: string } = {}): string {
  const C = u.mean.length;
  const width = options.width ?? 520;
  const rowH = 22;
  const top = 40;
  const labelW = classNames.some((n) => n.length > 2) ? 78 : 26;
  const gap = 10;
  const colW = (width - labelW - 3 * gap) / 3;
  const height = top + C * rowH + 6;
  const columns = [
    { key: 'mean', title: 'predictive p̄', values: u.mean, color: COLORS.mean, scale: 1 },
    { key: 'epistemic', title: 'epistemic var', values: u.epistemic, color: COLORS.epistemic, scale: 0 },
    { key: 'aleatoric', title: 'aleatoric var', values: u.aleatoric, color: COLORS.aleatoric, scale: 0 },
  ];
  for (const c of columns.slice(1)) c.scale = Math.max(1e-12, ...Array.from(c.values));
  let best = 0;
  for (let c = 1; c < C; c++) if (u.mean[c] > u.mean[best]) best = c;
  const s: string[] = [];
  if (options.title) s.push(`<text x="0" y="13" class="title">${escape(options.title)}</text>`);
  columns.forEach((col, k) => {
    const x0 = labelW + gap + k * (colW + gap);
    s.push(`<text x="${px(x0)}" y="${px(top - 8)}" class="label">${escape(col.title)}${k > 0 ? ` (max ${short(col.scale)})` : ''}</text>`);
    for (let c = 0; c < C; c++) {
      const v = col.values[c];
      const y = top + c * rowH;
      const w = Math.max(0, (v / col.scale) * (colW - 44));
      s.push(`<rect x="${px(x0)}" y="${px(y + 3)}" width="${px(colW - 44)}" height="${rowH - 6}" fill="#f3f3f3"/>`);
      s.push(`<rect class="${col.key}" data-class="${c}" data-value="${v}" x="${px(x0)}" y="${px(y + 3)}" width="${px(w)}" height="${rowH - 6}" fill="${col.color}" fill-opacity="${k === 0 && c !== best ? 0.55 : 1}"/>`);
      s.push(`<text x="${px(x0 + colW - 40)}" y="${px(y + rowH / 2 + 4)}" class="value">${short(v)}</text>`);
    }
  });
  for (let c = 0; c < C; c++) {
    s.push(`<text x="${labelW}" y="${px(top + c * rowH + rowH / 2 + 4)}" text-anchor="end" class="${c === best ? 'best' : ''}">${escape(classNames[c] ?? String(c))}</text>`);
  }
  return svg({ width, height }, 'class-bars', s.join(''), ` data-best="${best}"`);
}

// ------------------------------------------------------------ line charts

export interface Series {
  name: string;
  points: [number, number][];
  color?: string;
  /** Draw markers at the points (sparse series such as held-out accuracy). */
  markers?: boolean;
}

export function lineChartSvg(series: Series[], o: { title: string; xLabel: string; yLabel: string; y?: [number, number]; width?: number; height?: number; kind?: string }): string {
  const width = o.width ?? 400;
  const height = o.height ?? 220;
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const ys = all.map((p) => p[1]).filter(Number.isFinite);
  const yDomain: [number, number] = o.y ?? [Math.min(0, ...ys), Math.max(1e-6, ...ys) * 1.05];
  const p = plot(width, height, [0, xMax], yDomain, { left: 48, right: 12, top: 38, bottom: 36 });
  const s: string[] = [axes(p, ticks(0, xMax, 5), ticks(yDomain[0], yDomain[1], 4), { x: o.xLabel, y: o.yLabel, title: o.title })];
  series.forEach((ser, k) => {
    const color = ser.color ?? SERIES_COLORS[k % SERIES_COLORS.length];
    const pts = ser.points.filter((q) => Number.isFinite(q[1]));
    if (pts.length > 0) s.push(`<polyline points="${pts.map((q) => `${px(p.x(q[0]))},${px(p.y(Math.min(Math.max(q[1], yDomain[0]), yDomain[1])))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    if (ser.markers) for (const q of pts) s.push(`<circle cx="${px(p.x(q[0]))}" cy="${px(p.y(q[1]))}" r="2.5" fill="${color}"/>`);
    const last = pts.at(-1);
    s.push(`<g class="series" data-name="${escape(ser.name)}" data-count="${pts.length}" data-last="${last ? last[1] : ''}"/>`);
  });
  s.push(legend(p.left, 32, series.map((ser, k) => ({ name: ser.name, color: ser.color ?? SERIES_COLORS[k % SERIES_COLORS.length] }))));
  return svg(p, o.kind ?? 'lines', s.join(''));
}

// -------------------------------------------------------------- regression

export interface RegressionView {
  xs: ArrayLike<number>;
  mean: ArrayLike<number>;
  epistemicVar: ArrayLike<number>;
  aleatoricVar: ArrayLike<number>;
  trainX: ArrayLike<number>;
  trainY: ArrayLike<number>;
  /** The noise-free function, drawn dashed. */
  truth?: (x: number) => number;
  xDomain: [number, number];
  yDomain: [number, number];
  title: string;
}

/**
 * The predictive mean with two ±2σ bands: the total predictive std
 * sqrt(epistemic + aleatoric) (light) and the aleatoric part alone (darker),
 * so the gap between them is the model's own uncertainty. Fixed axes keep the
 * picture still while training redraws it.
 */
export function regressionSvg(v: RegressionView, o: { width?: number; height?: number } = {}): string {
  const width = o.width ?? 640;
  const height = o.height ?? 360;
  const p = plot(width, height, v.xDomain, v.yDomain, { left: 40, right: 12, top: 38, bottom: 36 });
  const clampY = (y: number) => p.y(Math.min(Math.max(y, v.yDomain[0]), v.yDomain[1]));
  const n = v.xs.length;
  const band = (variance: (i: number) => number) => {
    const upper: string[] = [];
    const lower: string[] = [];
    for (let i = 0; i < n; i++) {
      const sd = Math.sqrt(Math.max(variance(i), 0));
      upper.push(`${px(p.x(v.xs[i]))},${px(clampY(v.mean[i] + 2 * sd))}`);
      lower.push(`${px(p.x(v.xs[i]))},${px(clampY(v.mean[i] - 2 * sd))}`);
    }
    return [...upper, ...lower.reverse()].join(' ');
  };
  const s: string[] = [axes(p, ticks(v.xDomain[0], v.xDomain[1], 7), ticks(v.yDomain[0], v.yDomain[1], 4), { x: 'x', y: 'y', title: v.title })];
  s.push(`<polygon class="band total" points="${band((i) => v.epistemicVar[i] + v.aleatoricVar[i])}" fill="${COLORS.epistemic}" fill-opacity="0.18"/>`);
  s.push(`<polygon class="band aleatoric" points="${band((i) => v.aleatoricVar[i])}" fill="${COLORS.aleatoric}" fill-opacity="0.3"/>`);
  const dots: string[] = [];
  for (let i = 0; i < v.trainX.length; i++) dots.push(`<circle cx="${px(p.x(v.trainX[i]))}" cy="${px(clampY(v.trainY[i]))}" r="1.8"/>`);
  s.push(`<g fill="#333" fill-opacity="0.55">${dots.join('')}</g>`);
  if (v.truth) {
    const pts = Array.from({ length: 141 }, (_, i) => v.xDomain[0] + ((v.xDomain[1] - v.xDomain[0]) * i) / 140);
    s.push(`<polyline points="${pts.map((x) => `${px(p.x(x))},${px(clampY(v.truth!(x)))}`).join(' ')}" fill="none" stroke="#2ca02c" stroke-dasharray="5 4" stroke-width="1.4"/>`);
  }
  const line: string[] = [];
  for (let i = 0; i < n; i++) line.push(`${px(p.x(v.xs[i]))},${px(clampY(v.mean[i]))}`);
  s.push(`<polyline class="mean" points="${line.join(' ')}" fill="none" stroke="#111" stroke-width="2"/>`);
  s.push(legend(p.left, 32, [
    { name: 'predictive mean', color: '#111' },
    { name: '±2σ total (epistemic + aleatoric)', color: COLORS.epistemic, opacity: 0.18 },
    { name: '±2σ aleatoric', color: COLORS.aleatoric, opacity: 0.3 },
    { name: 'sin(x)', color: '#2ca02c' },
    { name: 'training points', color: '#333', opacity: 0.55 },
  ]));
  return svg(p, 'regression', s.join(''));
}

// ----------------------------------------------------------------- scatter

export interface ScatterSet {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color: string;
}

/** Points of several sets on shared axes (predictive entropy against mutual information). */
export function scatterSvg(sets: ScatterSet[], o: { title: string; xLabel: string; yLabel: string; x: [number, number]; y: [number, number]; width?: number; height?: number }): string {
  const width = o.width ?? 460;
  const height = o.height ?? 320;
  const p = plot(width, height, o.x, o.y, { left: 52, right: 12, top: 40, bottom: 36 });
  const s: string[] = [axes(p, ticks(o.x[0], o.x[1], 5), ticks(o.y[0], o.y[1], 4), { x: o.xLabel, y: o.yLabel, title: o.title })];
  for (const set of sets) {
    const dots: string[] = [];
    for (let i = 0; i < set.x.length; i++) {
      const cx = p.x(Math.min(Math.max(set.x[i], o.x[0]), o.x[1]));
      const cy = p.y(Math.min(Math.max(set.y[i], o.y[0]), o.y[1]));
      dots.push(`<circle cx="${px(cx)}" cy="${px(cy)}" r="2.6"/>`);
    }
    s.push(`<g class="set" data-name="${escape(set.name)}" data-count="${set.x.length}" fill="${set.color}" fill-opacity="0.6">${dots.join('')}</g>`);
  }
  s.push(legend(p.left, 32, sets.map((set) => ({ name: set.name, color: set.color, opacity: 0.8 }))));
  return svg(p, 'scatter', s.join(''));
}
