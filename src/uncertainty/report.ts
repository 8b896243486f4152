/**
 * A self-contained HTML report of one evaluation: inline SVG charts and inline
 * PNG images (data URLs), no external assets, no script that runs. Every chart
 * is drawn from the run's numbers, which are also embedded twice: as data-*
 * attributes on the drawn elements, and as one JSON block
 * (<script type="application/json" id="bayesgpu-report-data">) for tools.
 *
 * Charts:
 *   reliabilityDiagramSvg   accuracy against confidence per bin, with the gap to the
 *                           diagonal (Guo et al. 2017, fig. 1)
 *   entropyHistogramSvg     predictive entropy, in-distribution against OOD sets
 *   uncertaintyBarsSvg      per-class epistemic and aleatoric uncertainty of one image
 *                           (the seed's uncertainty_estimation plots)
 *   regressionChartSvg      predictive mean with a +-2 sigma band over the training points
 *
 * Pure string building: runs in browsers as well as in Node (the CLI writes the file).
 */
import { encode as encodePng } from 'fast-png';
import { BayesError, shapeError } from '../errors.js';
import type { OodDetection, Reliability } from './metrics.js';

// ------------------------------------------------------------------ helpers

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Coordinates rounded to 0.01 px keep the SVG small. */
const px = (v: number) => (Math.round(v * 100) / 100).toString();
/** Data attributes keep full precision (NaN for empty bins). */
const num = (v: number) => String(v);
const fmt = (v: number, digits = 4) => (Number.isFinite(v) ? v.toFixed(digits) : '–');

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return ticks;
}

interface Frame {
  width: number;
  height: number;
  /** Left edge of this panel inside its SVG (panels side by side share one SVG). */
  originX: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

/** A plot area: title at the top, a legend row below it, then the axes. */
function frame(width: number, height: number, xDomain: [number, number], yDomain: [number, number], originX = 0): Frame {
  const left = originX + 56;
  const right = originX + width - 16;
  const top = 48;
  const bottom = height - 44;
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  return {
    width, height, originX, left, right, top, bottom,
    x: (v) => left + ((v - x0) / (x1 - x0 || 1)) * (right - left),
    y: (v) => bottom - ((v - y0) / (y1 - y0 || 1)) * (bottom - top),
  };
}

/** Axes with ticks, grid lines, labels and a title. */
function axes(f: Frame, xTicks: number[], yTicks: number[], labels: { x: string; y: string; title: string }, xTickText: (v: number) => string = String): string {
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(`<line x1="${px(f.left)}" x2="${px(f.right)}" y1="${px(f.y(t))}" y2="${px(f.y(t))}" class="grid"/>`);
    parts.push(`<text x="${px(f.left - 6)}" y="${px(f.y(t) + 4)}" text-anchor="end">${escapeHtml(String(t))}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${px(f.x(t))}" x2="${px(f.x(t))}" y1="${px(f.bottom)}" y2="${px(f.bottom + 4)}" class="axis"/>`);
    parts.push(`<text x="${px(f.x(t))}" y="${px(f.bottom + 16)}" text-anchor="middle">${escapeHtml(xTickText(t))}</text>`);
  }
  parts.push(`<line x1="${px(f.left)}" x2="${px(f.right)}" y1="${px(f.bottom)}" y2="${px(f.bottom)}" class="axis"/>`);
  parts.push(`<line x1="${px(f.left)}" x2="${px(f.left)}" y1="${px(f.top)}" y2="${px(f.bottom)}" class="axis"/>`);
  parts.push(`<text x="${px((f.left + f.right) / 2)}" y="${px(f.height - 8)}" text-anchor="middle" class="label">${escapeHtml(labels.x)}</text>`);
  parts.push(`<text transform="translate(${px(f.originX + 14)} ${px((f.top + f.bottom) / 2)}) rotate(-90)" text-anchor="middle" class="label">${escapeHtml(labels.y)}</text>`);
  parts.push(`<text x="${px(f.left)}" y="18" class="title">${escapeHtml(labels.title)}</text>`);
  return parts.join('');
}

function svg(f: Frame, chart: string, body: string, attributes = ''): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${chart}"${attributes} width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}">${body}</svg>`;
}

/** One row of legend entries between the title and the plot (about 6 px per character of 11 px text). */
function legend(f: Frame, items: { name: string; color: string; opacity?: number; line?: boolean }[]): string {
  let x = f.left;
  return items.map((it) => {
    const name = it.name.length > 48 ? `…${it.name.slice(-47)}` : it.name;
    const mark = it.line
      ? `<line x1="${px(x)}" x2="${px(x + 12)}" y1="${px(32)}" y2="${px(32)}" stroke="${it.color}" stroke-width="2"/>`
      : `<rect x="${px(x)}" y="27" width="11" height="11" fill="${it.color}" fill-opacity="${it.opacity ?? 1}"/>`;
    const entry = `${mark}<text x="${px(x + 16)}" y="37">${escapeHtml(name)}</text>`;
    x += 16 + name.length * 6.2 + 14;
    return entry;
  }).join('');
}

// ------------------------------------------------------------------ charts

/** Reliability diagram: per confidence bin, the accuracy (bar) against the mean confidence (gap to the diagonal). */
export function reliabilityDiagramSvg(rel: Reliability, options: { width?: number; height?: number } = {}): string {
  const f = frame(options.width ?? 460, options.height ?? 400, [0, 1], [0, 1]);
  const parts: string[] = [axes(f, niceTicks(0, 1, 5), niceTicks(0, 1, 5), { x: 'confidence (max probability)', y: 'accuracy', title: `Reliability (ECE ${fmt(rel.ece)}, MCE ${fmt(rel.mce)})` })];
  parts.push(`<line x1="${px(f.x(0))}" y1="${px(f.y(0))}" x2="${px(f.x(1))}" y2="${px(f.y(1))}" class="diagonal"/>`);
  rel.bins.forEach((b, k) => {
    const x = f.x(b.lower) + 1;
    const w = f.x(b.upper) - f.x(b.lower) - 2;
    const data = `data-bin="${k}" data-lower="${num(b.lower)}" data-upper="${num(b.upper)}" data-count="${num(b.count)}" data-confidence="${num(b.confidence)}" data-accuracy="${num(b.accuracy)}"`;
    if (b.count === 0) {
      parts.push(`<rect class="bin empty" ${data} x="${px(x)}" y="${px(f.bottom)}" width="${px(w)}" height="0"/>`);
      return;
    }
    parts.push(`<rect class="bin" ${data} x="${px(x)}" y="${px(f.y(b.accuracy))}" width="${px(w)}" height="${px(f.bottom - f.y(b.accuracy))}" fill="${PALETTE[0]}" fill-opacity="0.8"><title>confidence ${fmt(b.confidence)}, accuracy ${fmt(b.accuracy)}, ${b.count} images</title></rect>`);
    // The gap between accuracy and mean confidence, shaded, and the mean confidence as a black tick.
    const [lo, hi] = [Math.min(b.accuracy, b.confidence), Math.max(b.accuracy, b.confidence)];
    parts.push(`<rect class="gap" data-bin="${k}" x="${px(x)}" y="${px(f.y(hi))}" width="${px(w)}" height="${px(f.y(lo) - f.y(hi))}" fill="#d62728" fill-opacity="0.3" stroke="#d62728" stroke-width="0.8"/>`);
    parts.push(`<line class="confidence" data-bin="${k}" x1="${px(x)}" x2="${px(x + w)}" y1="${px(f.y(b.confidence))}" y2="${px(f.y(b.confidence))}" stroke="#000" stroke-width="2"/>`);
    parts.push(`<text class="count" x="${px(x + w / 2)}" y="${px(f.bottom - 3)}" text-anchor="middle" fill="#fff" style="font-size:8px">${b.count}</text>`);
  });
  parts.push(legend(f, [{ name: 'accuracy (count inside)', color: PALETTE[0], opacity: 0.8 }, { name: 'mean confidence', color: '#000', line: true }, { name: 'gap', color: '#d62728', opacity: 0.3 }]));
  return svg(f, 'reliability', parts.join(''), ` data-ece="${num(rel.ece)}" data-mce="${num(rel.mce)}"`);
}

export interface Histogram {
  name: string;
  /** Bin edges, bins + 1 values. */
  edges: number[];
  counts: number[];
  /** counts / total: each set's bars sum to 1. */
  fractions: number[];
  total: number;
}

/** Counts of `values` in `bins` equal bins over [lo, hi] (values outside go to the end bins). */
export function histogram(name: string, values: ArrayLike<number>, lo: number, hi: number, bins: number): Histogram {
  const edges = Array.from({ length: bins + 1 }, (_, k) => lo + ((hi - lo) * k) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const k = Math.floor(((values[i] - lo) / (hi - lo || 1)) * bins);
    counts[Math.min(Math.max(k, 0), bins - 1)]++;
  }
  return { name, edges, counts, fractions: counts.map((c) => c / Math.max(values.length, 1)), total: values.length };
}

/** Histograms of predictive entropy (fraction of each set per bin), overlaid; the first set is in-distribution. */
export function entropyHistogramSvg(histograms: Histogram[], options: { width?: number; height?: number; maxEntropy?: number } = {}): string {
  const lo = histograms[0]?.edges[0] ?? 0;
  const hi = histograms[0]?.edges[histograms[0].edges.length - 1] ?? 1;
  const top = Math.max(1e-9, ...histograms.flatMap((h) => h.fractions));
  const f = frame(options.width ?? 620, options.height ?? 400, [lo, hi], [0, top * 1.05]);
  const parts: string[] = [axes(f, niceTicks(lo, hi, 6), niceTicks(0, top * 1.05, 5), { x: 'predictive entropy H[p̄] (nats)', y: 'fraction of images', title: 'Predictive entropy: in-distribution vs OOD' })];
  if (options.maxEntropy !== undefined && options.maxEntropy <= hi) {
    parts.push(`<line x1="${px(f.x(options.maxEntropy))}" x2="${px(f.x(options.maxEntropy))}" y1="${px(f.top)}" y2="${px(f.bottom)}" class="diagonal"/>`);
    parts.push(`<text x="${px(f.x(options.maxEntropy) - 4)}" y="${px(f.top + 10)}" text-anchor="end">log C</text>`);
  }
  histograms.forEach((h, s) => {
    const color = PALETTE[s % PALETTE.length];
    const bars = h.counts.map((c, k) => {
      const y = f.y(h.fractions[k]);
      return `<rect class="hbar" data-set="${s}" data-lower="${num(h.edges[k])}" data-upper="${num(h.edges[k + 1])}" data-count="${c}" data-fraction="${num(h.fractions[k])}" x="${px(f.x(h.edges[k]))}" y="${px(y)}" width="${px(f.x(h.edges[k + 1]) - f.x(h.edges[k]))}" height="${px(f.bottom - y)}"/>`;
    });
    parts.push(`<g class="histogram" data-set="${s}" data-name="${escapeHtml(h.name)}" data-total="${h.total}" fill="${color}" fill-opacity="${s === 0 ? 0.55 : 0.4}" stroke="${color}" stroke-width="0.5">${bars.join('')}</g>`);
  });
  parts.push(legend(f, histograms.map((h, s) => ({ name: `${h.name} (${h.total})`, color: PALETTE[s % PALETTE.length], opacity: 0.5 }))));
  return svg(f, 'entropy-histogram', parts.join(''));
}

/** One image's predictive distribution and per-class uncertainty (arrays over classes). */
export interface ExampleUncertainty {
  /** The set the image comes from. */
  set: string;
  /** The image, [C, H, W] in [0, 1]. */
  image: Float32Array;
  shape: readonly [number, number, number] | readonly number[];
  /** The true class, when known. */
  label?: number | null;
  mean: ArrayLike<number>;
  epistemic: ArrayLike<number>;
  aleatoric: ArrayLike<number>;
  predictiveEntropy?: number;
  mutualInformation?: number;
}

/**
 * Three bar panels over the classes, each on its own scale: the predictive
 * probability p̄, the epistemic and the aleatoric variance (the seed's
 * per-image uncertainty plot; epistemic values are often 100x smaller).
 */
export function uncertaintyBarsSvg(example: ExampleUncertainty, options: { panelWidth?: number; height?: number; classNames?: readonly string[] } = {}): string {
  const C = example.mean.length;
  const panelWidth = options.panelWidth ?? 260;
  const height = options.height ?? 240;
  const name = (c: number) => options.classNames?.[c] ?? String(c);
  const panels: { kind: 'mean' | 'epistemic' | 'aleatoric'; title: string; values: ArrayLike<number>; color: string }[] = [
    { kind: 'mean', title: 'predictive p̄', values: example.mean, color: '#555' },
    { kind: 'epistemic', title: 'epistemic', values: example.epistemic, color: PALETTE[3] },
    { kind: 'aleatoric', title: 'aleatoric', values: example.aleatoric, color: PALETTE[0] },
  ];
  const parts: string[] = [];
  panels.forEach((panel, k) => {
    const top = Math.max(1e-12, ...Array.from(panel.values));
    const f = frame(panelWidth, height, [0, C], [0, top * 1.1], k * panelWidth);
    const ticks = niceTicks(0, top * 1.1, 3);
    parts.push(axes(f, [], ticks, { x: 'class', y: '', title: panel.title }));
    const slot = (f.right - f.left) / C;
    for (let c = 0; c < C; c++) {
      const v = panel.values[c];
      const x0 = f.left + c * slot;
      parts.push(`<rect class="${panel.kind}" data-class="${c}" data-value="${num(v)}" x="${px(x0 + slot * 0.15)}" y="${px(f.y(v))}" width="${px(slot * 0.7)}" height="${px(f.bottom - f.y(v))}" fill="${panel.color}"><title>class ${escapeHtml(name(c))}: ${escapeHtml(panel.title)} ${v.toExponential(3)}</title></rect>`);
      parts.push(`<text x="${px(x0 + slot / 2)}" y="${px(f.bottom + 14)}" text-anchor="middle">${escapeHtml(name(c))}</text>`);
    }
  });
  // The numbers once more, per class, for tools reading the SVG.
  for (let c = 0; c < C; c++) {
    parts.push(`<g class="class" data-class="${c}" data-mean="${num(example.mean[c])}" data-epistemic="${num(example.epistemic[c])}" data-aleatoric="${num(example.aleatoric[c])}"/>`);
  }
  const width = panelWidth * panels.length;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="uncertainty-bars" data-set="${escapeHtml(example.set)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
}

export interface RegressionChartData {
  /** Where the predictive distribution was evaluated (sorted or not; drawn in x order). */
  xs: ArrayLike<number>;
  mean: ArrayLike<number>;
  /** Predictive standard deviation at each x. */
  std: ArrayLike<number>;
  trainX: ArrayLike<number>;
  trainY: ArrayLike<number>;
  title?: string;
  width?: number;
  height?: number;
}

/** Predictive mean with a +-2 sigma band over the training points (1-D regression). */
export function regressionChartSvg(data: RegressionChartData): string {
  const n = data.xs.length;
  const op = 'regressionChartSvg';
  if (n === 0) throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'xs' expected at least one point, got none`);
  if (data.mean.length !== n) throw shapeError(op, 'mean', `[${n}] (one value per x)`, [data.mean.length]);
  if (data.std.length !== n) throw shapeError(op, 'std', `[${n}] (one value per x)`, [data.std.length]);
  if (data.trainY.length !== data.trainX.length) throw shapeError(op, 'trainY', `[${data.trainX.length}] (one value per trainX)`, [data.trainY.length]);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => data.xs[a] - data.xs[b]);
  const xsAll = [...Array.from(data.xs), ...Array.from(data.trainX)];
  const ysAll = [...order.flatMap((i) => [data.mean[i] - 2 * data.std[i], data.mean[i] + 2 * data.std[i]]), ...Array.from(data.trainY)].filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xsAll), Math.max(...xsAll)];
  const [yMin, yMax] = [Math.min(...ysAll), Math.max(...ysAll)];
  const pad = (yMax - yMin) * 0.05 || 1;
  const f = frame(data.width ?? 620, data.height ?? 400, [x0, x1], [yMin - pad, yMax + pad]);
  const parts: string[] = [axes(f, niceTicks(x0, x1, 6), niceTicks(yMin - pad, yMax + pad, 5), { x: 'x', y: 'y', title: data.title ?? 'Predictive mean ± 2σ' })];
  const upper = order.map((i) => `${px(f.x(data.xs[i]))},${px(f.y(data.mean[i] + 2 * data.std[i]))}`);
  const lower = order.map((i) => `${px(f.x(data.xs[i]))},${px(f.y(data.mean[i] - 2 * data.std[i]))}`).reverse();
  parts.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}" fill="${PALETTE[0]}" fill-opacity="0.2" stroke="none"/>`);
  parts.push(`<polyline class="mean" points="${order.map((i) => `${px(f.x(data.xs[i]))},${px(f.y(data.mean[i]))}`).join(' ')}" fill="none" stroke="${PALETTE[0]}" stroke-width="2"/>`);
  const points: string[] = [];
  for (let i = 0; i < data.trainX.length; i++) {
    points.push(`<circle class="train" data-x="${num(data.trainX[i])}" data-y="${num(data.trainY[i])}" cx="${px(f.x(data.trainX[i]))}" cy="${px(f.y(data.trainY[i]))}" r="2.5"/>`);
  }
  parts.push(`<g fill="#333" fill-opacity="0.7">${points.join('')}</g>`);
  const series = order.map((i) => `<g class="point" data-x="${num(data.xs[i])}" data-mean="${num(data.mean[i])}" data-std="${num(data.std[i])}"/>`);
  parts.push(`<g class="series">${series.join('')}</g>`);
  parts.push(legend(f, [{ name: 'predictive mean', color: PALETTE[0], line: true }, { name: '± 2σ', color: PALETTE[0], opacity: 0.2 }, { name: 'training points', color: '#333', opacity: 0.7 }]));
  return svg(f, 'regression', parts.join(''));
}

// ------------------------------------------------------------------ images

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** An image [C, H, W] in [0, 1] (C = 1 or 3) as a PNG data URL. */
export function imageDataUrl(image: ArrayLike<number>, shape: readonly number[]): string {
  const [channels, height, width] = shape;
  if (channels !== 1 && channels !== 3) throw shapeError('imageDataUrl', 'shape', '[1 or 3, H, W]', shape);
  if (image.length !== channels * height * width) throw shapeError('imageDataUrl', 'image', `${channels * height * width} values for shape [${shape.join(', ')}]`, [image.length]);
  const pixels = height * width;
  const data = new Uint8Array(pixels * channels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < channels; c++) data[p * channels + c] = Math.round(Math.min(Math.max(image[c * pixels + p], 0), 1) * 255);
  }
  return `data:image/png;base64,${base64(encodePng({ width, height, data, channels, depth: 8 }))}`;
}

// ------------------------------------------------------------------ the report

export interface ReportMetrics {
  accuracy: number;
  accuracyMeanWeights?: number;
  nll: number;
  brier: number;
  ece: number;
  mce: number;
  count: number;
}

export interface ReportData {
  title?: string;
  /** One line describing the model, e.g. 'lenet (BBB-LRT), model.safetensors'. */
  model: string;
  dataset: string;
  samples: number;
  method: string;
  adapter?: string;
  metrics: ReportMetrics;
  reliability: Reliability;
  /** Predictive entropy of every in-distribution test image. */
  inDistribution: { name: string; predictiveEntropy: ArrayLike<number> };
  ood: { name: string; predictiveEntropy: ArrayLike<number>; detection: OodDetection }[];
  /** Number of classes: the entropy axis runs to log C. */
  classes: number;
  /** One image of each set with its per-class uncertainty. */
  examples: ExampleUncertainty[];
  classNames?: readonly string[];
  /** Extra charts (e.g. regressionChartSvg output) appended as they are. */
  extraSections?: { title: string; svg: string }[];
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1150px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; } th:first-child, td:first-child { text-align: left; }
.chart text { font: 11px system-ui, sans-serif; fill: #333; } .chart .title { font-size: 13px; font-weight: 600; } .chart .label { font-size: 12px; }
.chart .grid { stroke: #eee; } .chart .axis { stroke: #555; } .chart .diagonal { stroke: #888; stroke-dasharray: 4 3; }
.row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.example { display: flex; gap: 14px; align-items: center; margin: 10px 0; }
.example img { width: 112px; height: 112px; image-rendering: pixelated; border: 1px solid #ccc; }
.meta { color: #666; font-size: 12px; } .set { font-weight: 600; }
`;

/** The whole report as one HTML document. */
export function buildReport(data: ReportData): string {
  const maxEntropy = Math.log(data.classes);
  const bins = 30;
  const histograms = [
    histogram(data.inDistribution.name, data.inDistribution.predictiveEntropy, 0, maxEntropy, bins),
    ...data.ood.map((o) => histogram(o.name, o.predictiveEntropy, 0, maxEntropy, bins)),
  ];
  const m = data.metrics;
  const metricRows: [string, number | undefined][] = [
    [`accuracy (MC average of ${data.samples} samples)`, m.accuracy],
    ['accuracy (mean weights)', m.accuracyMeanWeights],
    ['NLL (nats)', m.nll],
    ['Brier score', m.brier],
    ['ECE (15 bins)', m.ece],
    ['MCE (15 bins)', m.mce],
  ];
  const oodRows = data.ood.map((o) => `<tr data-ood="${escapeHtml(o.name)}"><td>${escapeHtml(o.name)}</td><td>${o.predictiveEntropy.length}</td>` +
    `<td>${fmt(o.detection.aurocEntropy)}</td><td>${fmt(o.detection.aurocMutualInformation)}</td><td>${fmt(o.detection.aurocMaxProb)}</td><td>${fmt(o.detection.auprEntropy)}</td></tr>`).join('');
  const examples = data.examples.map((e) => {
    const top = Array.from(e.mean).reduce((best, p, c, all) => (p > all[best] ? c : best), 0);
    const name = (c: number) => data.classNames?.[c] ?? String(c);
    return `<div class="example"><img alt="${escapeHtml(e.set)}" src="${imageDataUrl(e.image, e.shape)}"/>` +
      `<div><div class="set">${escapeHtml(e.set)}</div><div>${uncertaintyBarsSvg(e, { classNames: data.classNames })}</div>` +
      `<div class="meta">predicted ${escapeHtml(name(top))} (p̄ = ${fmt(e.mean[top], 3)})${e.label !== undefined && e.label !== null ? `, label ${escapeHtml(name(e.label))}` : ''}` +
      `${e.predictiveEntropy !== undefined ? `, H[p̄] = ${fmt(e.predictiveEntropy, 3)}` : ''}${e.mutualInformation !== undefined ? `, MI = ${fmt(e.mutualInformation, 4)}` : ''}</div></div></div>`;
  }).join('');
  const embedded = {
    model: data.model, dataset: data.dataset, samples: data.samples, method: data.method, adapter: data.adapter ?? null, classes: data.classes,
    metrics: m,
    reliability: { ece: data.reliability.ece, mce: data.reliability.mce, bins: data.reliability.bins.map((b) => ({ ...b, confidence: Number.isNaN(b.confidence) ? null : b.confidence, accuracy: Number.isNaN(b.accuracy) ? null : b.accuracy })) },
    entropyHistograms: histograms,
    ood: data.ood.map((o) => ({ name: o.name, count: o.predictiveEntropy.length, ...o.detection })),
    examples: data.examples.map((e) => ({ set: e.set, label: e.label ?? null, mean: Array.from(e.mean), epistemic: Array.from(e.epistemic), aleatoric: Array.from(e.aleatoric), predictiveEntropy: e.predictiveEntropy ?? null, mutualInformation: e.mutualInformation ?? null })),
  };
  // JSON inside <script>: '<' is escaped so that no '</script>' can end the block early.
  const json = JSON.stringify(embedded).replace(/</g, '\\u003c');
  const title = data.title ?? `bayesgpu evaluation: ${data.model} on ${data.dataset}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">${escapeHtml(data.model)} · ${escapeHtml(data.dataset)} (${m.count} test images) · ${data.samples} Monte Carlo samples · probabilities: ${escapeHtml(data.method)}${data.adapter ? ` · ${escapeHtml(data.adapter)}` : ''}</p>
<h2>Classification</h2>
<table class="metrics"><tbody>${metricRows.filter(([, v]) => v !== undefined).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td data-metric="${escapeHtml(k)}">${fmt(v!)}</td></tr>`).join('')}</tbody></table>
<div class="row">${reliabilityDiagramSvg(data.reliability)}</div>
<h2>Out-of-distribution detection</h2>
${data.ood.length ? `<table class="ood"><thead><tr><th>OOD set</th><th>images</th><th>AUROC entropy</th><th>AUROC MI</th><th>AUROC max prob</th><th>AUPR entropy</th></tr></thead><tbody>${oodRows}</tbody></table>` : '<p>No OOD set was evaluated.</p>'}
<div class="row">${entropyHistogramSvg(histograms, { maxEntropy })}</div>
<h2>Uncertainty of single images</h2>
<p class="meta">Epistemic: mean over samples of (p̂ − p̄)²; aleatoric: mean of p̂ − p̂² (Kwon et al. 2020; Shridhar et al. 2019), per class.</p>
${examples}
${(data.extraSections ?? []).map((s) => `<h2>${escapeHtml(s.title)}</h2><div class="row">${s.svg}</div>`).join('\n')}
<script type="application/json" id="bayesgpu-report-data">${json}</script>
</body></html>
`;
}
