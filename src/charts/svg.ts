/**
 * What every chart shares: escaping, tick placement, a plot frame that maps
 * data to pixels, axes, a legend row, the <svg> wrapper, and the checks of
 * the common options (width, height, title, colors). Pure string building,
 * no DOM: the same code runs in browsers, workers, Node and Deno.
 *
 * Layout of every chart (y grows downwards): the title at y = 18, one legend
 * row at y = 32, the plot area from `top` to `bottom`, tick labels and the
 * x label under it.
 */
import { argumentError, checkNumber } from '../errors.js';

/** The options every chart takes. Sizes are in CSS pixels. */
export interface ChartOptions {
  width?: number;
  height?: number;
  /** Drawn at the top left; each chart has its own default. */
  title?: string;
  /** Fill and stroke colours in the order each chart documents; missing entries keep the default. */
  colors?: readonly string[];
}

/** The default palette: matplotlib's "tab10" (colour-blind friendlier than pure hues). */
export const CHART_COLORS: readonly string[] = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML or SVG element content and (double- or single-quoted) attribute values. */
export function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Coordinates rounded to 0.01 px keep the SVG small; the error is far below a device pixel. */
export const px = (v: number): string => (Math.round(v * 100) / 100).toString();

/** Data attributes keep full precision (NaN stays NaN, e.g. an empty bin's accuracy). */
export const num = (v: number): string => String(v);

/** A fixed-digit label; '–' for NaN and infinities. */
export const fmt = (v: number, digits = 4): string => (Number.isFinite(v) ? v.toFixed(digits) : '–');

/** Two significant digits for value labels, in at most 7 characters: 0.87, 0.012, 1.6e-4; '–' for NaN and infinities. */
export function compact(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(1).replace('.0e', 'e');
  return String(Number(v.toPrecision(2)));
}

/**
 * About `count` round tick values covering [lo, hi]: the step is 1, 2 or 5
 * times a power of ten (Heckbert, "Nice numbers for graph labels", Graphics
 * Gems 1990), the first tick the first multiple of the step at or above lo.
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-12))!;
  const ticks: number[] = [];
  // k * step rather than repeated addition, so that no rounding error accumulates; 12 digits drop the last ulp.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    const v = k * step;
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/** A tick label: the tick's shortest decimal form (the ticks are round already). */
export const tickLabel = (v: number): string => String(v);

/** The margins around the plot area. */
export interface Margins {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export const DEFAULT_MARGINS: Margins = { left: 56, right: 16, top: 48, bottom: 44 };

/** A plot area inside an SVG, with the linear maps from data to pixels. */
export interface Frame {
  width: number;
  height: number;
  /** Left edge of this panel inside its SVG (panels side by side share one SVG). */
  originX: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  xDomain: readonly [number, number];
  yDomain: readonly [number, number];
  x: (v: number) => number;
  y: (v: number) => number;
  /** y(v) with v clamped into the y domain first (points outside stay on the plot's edge). */
  yClamped: (v: number) => number;
}

export function frame(width: number, height: number, xDomain: readonly [number, number], yDomain: readonly [number, number], margins: Margins = DEFAULT_MARGINS, originX = 0): Frame {
  const left = originX + margins.left;
  const right = originX + width - margins.right;
  const top = margins.top;
  const bottom = height - margins.bottom;
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  const y = (v: number) => bottom - ((v - y0) / (y1 - y0 || 1)) * (bottom - top);
  return {
    width, height, originX, left, right, top, bottom, xDomain, yDomain,
    x: (v) => left + ((v - x0) / (x1 - x0 || 1)) * (right - left),
    y,
    yClamped: (v) => y(Math.min(Math.max(v, y0), y1)),
  };
}

/** Axes with ticks, horizontal grid lines, the axis labels and the title. */
export function axes(f: Frame, xTicks: readonly number[], yTicks: readonly number[], labels: { x: string; y: string; title: string }): string {
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(`<line class="grid" x1="${px(f.left)}" x2="${px(f.right)}" y1="${px(f.y(t))}" y2="${px(f.y(t))}" stroke="#eee"/>`);
    parts.push(`<text class="tick y" data-value="${num(t)}" x="${px(f.left - 6)}" y="${px(f.y(t) + 4)}" text-anchor="end">${escapeHtml(tickLabel(t))}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line class="axis" x1="${px(f.x(t))}" x2="${px(f.x(t))}" y1="${px(f.bottom)}" y2="${px(f.bottom + 4)}" stroke="#555"/>`);
    parts.push(`<text class="tick x" data-value="${num(t)}" x="${px(f.x(t))}" y="${px(f.bottom + 16)}" text-anchor="middle">${escapeHtml(tickLabel(t))}</text>`);
  }
  parts.push(`<path class="axis" d="M${px(f.left)},${px(f.top)}V${px(f.bottom)}H${px(f.right)}" fill="none" stroke="#555"/>`);
  if (labels.x) parts.push(`<text class="label x" x="${px((f.left + f.right) / 2)}" y="${px(f.height - 8)}" text-anchor="middle">${escapeHtml(labels.x)}</text>`);
  if (labels.y) parts.push(`<text class="label y" transform="translate(${px(f.originX + 14)} ${px((f.top + f.bottom) / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(labels.y)}</text>`);
  parts.push(titleText(f.left, labels.title));
  return parts.join('');
}

/** The chart's title (skipped when empty). */
export function titleText(x: number, title: string): string {
  return title ? `<text class="title" x="${px(x)}" y="18" font-weight="600">${escapeHtml(title)}</text>` : '';
}

export interface LegendItem {
  name: string;
  /** Already escaped (checkColors' output). */
  color: string;
  opacity?: number;
  /** A short line instead of a filled square (for lines). */
  line?: boolean;
  dashed?: boolean;
}

/** One row of legend entries at y = 32 from x on (about 6.2 px per character of 11 px text). */
export function legend(x: number, items: readonly LegendItem[]): string {
  let at = x;
  return items.map((it) => {
    const name = it.name.length > 48 ? `…${it.name.slice(-47)}` : it.name;
    const color = it.color;
    const mark = it.line
      ? `<line x1="${px(at)}" x2="${px(at + 12)}" y1="32" y2="32" stroke="${color}" stroke-width="2"${it.dashed ? ' stroke-dasharray="4 3"' : ''}/>`
      : `<rect x="${px(at)}" y="27" width="11" height="11" fill="${color}" fill-opacity="${it.opacity ?? 1}"/>`;
    const entry = `<g class="legend">${mark}<text x="${px(at + 16)}" y="37">${escapeHtml(name)}</text></g>`;
    at += 16 + name.length * 6.2 + 14;
    return entry;
  }).join('');
}

/** The outer <svg>: `chart` names the chart for tools (data-chart), `attributes` are extra data-* attributes. */
export function svg(width: number, height: number, chart: string, body: string, attributes = ''): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${chart}"${attributes} width="${px(width)}" height="${px(height)}" viewBox="0 0 ${px(width)} ${px(height)}" font-family="system-ui, sans-serif" font-size="11">${body}</svg>`;
}

// ------------------------------------------------------------------ option checks

/** Array.isArray without narrowing (narrowing a readonly array to any[] would drop its element type). */
export const isArray = (value: unknown): boolean => Array.isArray(value);

/** The options object itself: undefined or a plain object. */
export function checkOptions<T extends object>(op: string, options: T | undefined): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw argumentError(op, 'options', 'an options object', options);
  return options;
}

/** A chart size in pixels: finite and at least `min` (room for the margins). */
export function checkSize(op: string, argument: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  return checkNumber(op, argument, value, (v) => Number.isFinite(v) && v >= min, `a finite number >= ${min} (pixels)`);
}

export function checkTitle(op: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw argumentError(op, 'options.title', 'a string', value);
  return value;
}

/** The chart's colours, escaped for attributes: `defaults` with the entries of options.colors put over them. */
export function checkColors(op: string, value: readonly string[] | undefined, defaults: readonly string[]): string[] {
  if (value === undefined) return defaults.map(escapeHtml);
  if (!Array.isArray(value)) throw argumentError(op, 'options.colors', 'an array of CSS colour strings', value);
  value.forEach((c, k) => {
    if (typeof c !== 'string' || c.length === 0) throw argumentError(op, `options.colors[${k}]`, 'a CSS colour string', c);
  });
  const out = defaults.slice();
  value.forEach((c, k) => (out[k] = c));
  return out.map(escapeHtml);
}

/** The k-th colour of a palette, cycling (one per data set or series). */
export const cycle = (colors: readonly string[], k: number): string => colors[k % colors.length];

/** Class names, one per class (or the class indices when none are given). */
export function checkClassNames(op: string, value: readonly string[] | undefined, classes: number): string[] {
  if (value === undefined) return Array.from({ length: classes }, (_, c) => String(c));
  if (!Array.isArray(value)) throw argumentError(op, 'options.classNames', `an array of ${classes} strings (one per class)`, value);
  if (value.length !== classes) throw argumentError(op, 'options.classNames', `${classes} names (one per class)`, `${value.length} names`);
  value.forEach((n, c) => {
    if (typeof n !== 'string') throw argumentError(op, `options.classNames[${c}]`, 'a string', n);
  });
  return value.slice();
}

/** A [lo, hi] range with lo < hi, both finite. */
export function checkDomain(op: string, argument: string, value: readonly [number, number] | undefined): [number, number] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'number' && Number.isFinite(v)) || !(value[1] > value[0])) {
    throw argumentError(op, argument, '[lo, hi] with finite lo < hi', value);
  }
  return [value[0], value[1]];
}

/** An array-like of numbers (a typed array or number[]). */
export function checkValues(op: string, argument: string, value: ArrayLike<number> | undefined): ArrayLike<number> {
  const ok = value !== null && typeof value === 'object' && typeof (value as ArrayLike<number>).length === 'number' && (ArrayBuffer.isView(value) || Array.isArray(value));
  if (!ok) throw argumentError(op, argument, 'an array of numbers', value);
  return value!;
}

/** The [min, max] of the finite values, or undefined when there are none. */
export function finiteRange(values: Iterable<number>): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : undefined;
}
