/**
 * Charts of per-image uncertainty scores across data sets (in distribution
 * against out of distribution): histograms of the predictive entropy, and the
 * predictive entropy against the mutual information, one dot per image.
 * H[p̄] = E[H[p_t]] + MI: the mutual information is the part of the entropy
 * that comes from the weights (Houlsby et al. 2011, BALD; Gal 2016, sec. 3.3).
 */
import { argumentError, shapeError } from '../errors.js';
import {
  CHART_COLORS, isArray, type ChartOptions, axes, checkColors, checkDomain, checkOptions, checkSize, checkTitle, checkValues, cycle, escapeHtml, finiteRange, frame, legend, niceTicks, num, px, svg,
} from './svg.js';

// ------------------------------------------------------------------ histograms

export interface Histogram {
  name: string;
  /** Bin edges, bins + 1 values. */
  edges: number[];
  counts: number[];
  /** counts / total: each set's bars sum to 1. */
  fractions: number[];
  total: number;
}

export interface HistogramOptions {
  /** The set's name (legend and data-name). */
  name?: string;
  /** The range [lo, hi] split into `bins` equal bins; values outside go to the end bins. */
  lo: number;
  hi: number;
  bins: number;
}

/** Counts of `values` in equal bins over [lo, hi]; values outside go to the end bins, NaN to none. */
export function histogram(values: ArrayLike<number>, options: HistogramOptions): Histogram {
  const op = 'histogram';
  checkValues(op, 'values', values);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ lo, hi, bins, name? }', options);
  const { lo, hi, bins } = options;
  if (typeof lo !== 'number' || typeof hi !== 'number' || !Number.isFinite(lo) || !Number.isFinite(hi) || !(hi > lo)) {
    throw argumentError(op, 'options.lo, options.hi', 'finite numbers with lo < hi', [lo, hi]);
  }
  if (typeof bins !== 'number' || !Number.isInteger(bins) || bins < 1) throw argumentError(op, 'options.bins', 'an integer >= 1', bins);
  const edges = Array.from({ length: bins + 1 }, (_, k) => lo + ((hi - lo) * k) / bins);
  const counts = new Array<number>(bins).fill(0);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) continue;
    const k = Math.floor(((values[i] - lo) / (hi - lo)) * bins);
    counts[Math.min(Math.max(k, 0), bins - 1)]++;
    total++;
  }
  return { name: options.name ?? '', edges, counts, fractions: counts.map((c) => c / Math.max(total, 1)), total };
}

export interface EntropyHistogramOptions extends ChartOptions {
  /** Where to draw a dashed line labelled 'log C' (the entropy of the uniform distribution over C classes). */
  maxEntropy?: number;
}

/**
 * Histograms of predictive entropy (fraction of each set per bin), overlaid
 * on the first set's bin edges; the first set is the in-distribution one.
 * Colours: one per set. SVG: `g.histogram` per set (data-set, data-name,
 * data-total) holding `rect.hbar` per bin (data-set, data-lower, data-upper,
 * data-count, data-fraction).
 */
export function entropyHistogramSvg(histograms: readonly Histogram[], options?: EntropyHistogramOptions): string {
  const op = 'entropyHistogramSvg';
  const o = checkOptions(op, options);
  if (!isArray(histograms) || histograms.length === 0) throw argumentError(op, 'histograms', 'a non-empty array of histogram() results', histograms);
  const edges = histograms[0].edges;
  histograms.forEach((h, s) => {
    if (!isArray(h.edges) || h.edges.length !== edges.length || h.edges.some((e, k) => e !== edges[k])) {
      throw argumentError(op, `histograms[${s}].edges`, `the edges of histograms[0] (${edges.length} values from ${edges[0]} to ${edges.at(-1)})`, h.edges);
    }
    if (h.counts.length !== edges.length - 1) throw shapeError(op, `histograms[${s}].counts`, `[${edges.length - 1}] (one per bin)`, [h.counts.length]);
    if (h.fractions.length !== edges.length - 1) throw shapeError(op, `histograms[${s}].fractions`, `[${edges.length - 1}] (one per bin)`, [h.fractions.length]);
  });
  const width = checkSize(op, 'options.width', o.width, 620, 160);
  const height = checkSize(op, 'options.height', o.height, 400, 120);
  const colors = checkColors(op, o.colors, CHART_COLORS);
  const title = checkTitle(op, o.title, 'Predictive entropy: in-distribution vs OOD');
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const top = Math.max(1e-9, ...histograms.flatMap((h) => h.fractions.filter(Number.isFinite)));
  const f = frame(width, height, [lo, hi], [0, top * 1.05]);
  const parts: string[] = [axes(f, niceTicks(lo, hi, 6), niceTicks(0, top * 1.05, 5), { x: 'predictive entropy H[p̄] (nats)', y: 'fraction of images', title })];
  if (o.maxEntropy !== undefined && Number.isFinite(o.maxEntropy) && o.maxEntropy >= lo && o.maxEntropy <= hi) {
    const x = px(f.x(o.maxEntropy));
    parts.push(`<line class="max-entropy" data-value="${num(o.maxEntropy)}" x1="${x}" x2="${x}" y1="${px(f.top)}" y2="${px(f.bottom)}" stroke="#888" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${px(f.x(o.maxEntropy) - 4)}" y="${px(f.top + 10)}" text-anchor="end">log C</text>`);
  }
  histograms.forEach((h, s) => {
    const color = cycle(colors, s);
    const bars = h.counts.map((c, k) => {
      const y = f.y(h.fractions[k]);
      return `<rect class="hbar" data-set="${s}" data-lower="${num(edges[k])}" data-upper="${num(edges[k + 1])}" data-count="${num(c)}" data-fraction="${num(h.fractions[k])}" x="${px(f.x(edges[k]))}" y="${px(y)}" width="${px(f.x(edges[k + 1]) - f.x(edges[k]))}" height="${px(f.bottom - y)}"/>`;
    });
    parts.push(`<g class="histogram" data-set="${s}" data-name="${escapeHtml(h.name)}" data-total="${num(h.total)}" fill="${color}" fill-opacity="${s === 0 ? 0.55 : 0.4}" stroke="${color}" stroke-width="0.5">${bars.join('')}</g>`);
  });
  parts.push(legend(f.left, histograms.map((h, s) => ({ name: `${h.name} (${h.total})`, color: cycle(colors, s), opacity: 0.5 }))));
  return svg(width, height, 'entropy-histogram', parts.join(''));
}

// ------------------------------------------------------------------ scatter

/** One data set's per-image scores; a Prediction (or predict()'s result) spread with a name fits. */
export interface EntropyScatterSet {
  name: string;
  /** [N] H[p̄] per image, in nats. */
  predictiveEntropy: ArrayLike<number>;
  /** [N] mutual information per image, in nats. */
  mutualInformation: ArrayLike<number>;
}

export interface EntropyScatterOptions extends ChartOptions {
  /** The x axis runs from 0 to this (log C for C classes); by default to the largest entropy. */
  maxEntropy?: number;
  /** The y range; by default [0, 1.05 x the largest mutual information] (at least [0, 0.05]). */
  yDomain?: readonly [number, number];
  xLabel?: string;
  yLabel?: string;
}

/**
 * Predictive entropy (x) against mutual information (y), one dot per image,
 * one colour per set; points outside the axes sit on their edge. The dashed
 * diagonal is MI = H, the largest mutual information an entropy allows.
 * SVG: `g.set` per set (data-set, data-name, data-count) holding one
 * `circle` per image (data-entropy, data-mi); no other circles.
 */
export function entropyScatterSvg(sets: readonly EntropyScatterSet[], options?: EntropyScatterOptions): string {
  const op = 'entropyScatterSvg';
  const o = checkOptions(op, options);
  if (!isArray(sets) || sets.length === 0) throw argumentError(op, 'sets', 'a non-empty array of { name, predictiveEntropy, mutualInformation }', sets);
  sets.forEach((s, k) => {
    checkValues(op, `sets[${k}].predictiveEntropy`, s.predictiveEntropy);
    checkValues(op, `sets[${k}].mutualInformation`, s.mutualInformation);
    if (s.mutualInformation.length !== s.predictiveEntropy.length) {
      throw shapeError(op, `sets[${k}].mutualInformation`, `[${s.predictiveEntropy.length}] (one per image, as predictiveEntropy)`, [s.mutualInformation.length]);
    }
  });
  const width = checkSize(op, 'options.width', o.width, 460, 160);
  const height = checkSize(op, 'options.height', o.height, 320, 120);
  const colors = checkColors(op, o.colors, CHART_COLORS);
  const title = checkTitle(op, o.title, 'Predictive entropy against mutual information');
  const xLabel = checkTitle(op, o.xLabel, 'predictive entropy H[p̄] (nats)');
  const yLabel = checkTitle(op, o.yLabel, 'mutual information (nats)');
  const entropyRange = finiteRange(sets.flatMap((s) => Array.from(s.predictiveEntropy)));
  const miRange = finiteRange(sets.flatMap((s) => Array.from(s.mutualInformation)));
  const xDomain = checkDomain(op, 'options.maxEntropy', o.maxEntropy === undefined ? undefined : [0, o.maxEntropy]) ?? [0, Math.max(entropyRange?.[1] ?? 0, 1e-3) * 1.05];
  const yDomain = checkDomain(op, 'options.yDomain', o.yDomain) ?? [0, Math.max(miRange?.[1] ?? 0, 0.05 / 1.05) * 1.05];
  const f = frame(width, height, xDomain, yDomain);
  const parts: string[] = [axes(f, niceTicks(xDomain[0], xDomain[1], 5), niceTicks(yDomain[0], yDomain[1], 4), { x: xLabel, y: yLabel, title })];
  const diagonalEnd = Math.min(xDomain[1], yDomain[1]);
  parts.push(`<line class="diagonal" x1="${px(f.x(0))}" y1="${px(f.y(0))}" x2="${px(f.x(diagonalEnd))}" y2="${px(f.y(diagonalEnd))}" stroke="#888" stroke-dasharray="4 3"/>`);
  sets.forEach((s, k) => {
    const dots: string[] = [];
    for (let i = 0; i < s.predictiveEntropy.length; i++) {
      const h = s.predictiveEntropy[i];
      const mi = s.mutualInformation[i];
      if (!Number.isFinite(h) || !Number.isFinite(mi)) continue;
      const cx = f.x(Math.min(Math.max(h, xDomain[0]), xDomain[1]));
      dots.push(`<circle data-entropy="${num(h)}" data-mi="${num(mi)}" cx="${px(cx)}" cy="${px(f.yClamped(mi))}" r="2.6"/>`);
    }
    parts.push(`<g class="set" data-set="${k}" data-name="${escapeHtml(s.name)}" data-count="${dots.length}" fill="${cycle(colors, k)}" fill-opacity="0.6">${dots.join('')}</g>`);
  });
  parts.push(legend(f.left, sets.map((s, k) => ({ name: s.name, color: cycle(colors, k), opacity: 0.8 }))));
  return svg(width, height, 'entropy-scatter', parts.join(''));
}
