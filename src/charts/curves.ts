/**
 * Training curves: series of values over steps or epochs (loss, accuracy,
 * KL), on shared axes.
 */
import { argumentError } from '../errors.js';
import { CHART_COLORS, isArray, type ChartOptions, axes, checkColors, checkDomain, checkOptions, checkSize, checkTitle, cycle, escapeHtml, finiteRange, frame, legend, niceTicks, num, px, svg } from './svg.js';

export interface CurveSeries {
  name: string;
  /** [x, y] pairs, e.g. [step, loss]; points with a non-finite y are left out. */
  points: readonly (readonly [number, number])[];
  /** Markers at the points as well (sparse series such as a held-out accuracy). */
  markers?: boolean;
}

export interface TrainingCurvesOptions extends ChartOptions {
  xLabel?: string;
  yLabel?: string;
  /** The y range (e.g. [0, 1] for an accuracy); values outside sit on its edge. By default from 0 (or the lowest value) to 1.05 x the highest. */
  yDomain?: readonly [number, number];
}

/**
 * Colours: one per series. SVG: `polyline.line` per series with points,
 * `circle.marker` where markers are on, and `g.series` per series (data-series,
 * data-name, data-count: the points drawn, data-last: the last drawn y, ''
 * when none).
 */
export function trainingCurvesSvg(series: readonly CurveSeries[], options?: TrainingCurvesOptions): string {
  const op = 'trainingCurvesSvg';
  const o = checkOptions(op, options);
  if (!isArray(series)) throw argumentError(op, 'series', 'an array of { name, points }', series);
  series.forEach((s, k) => {
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string') throw argumentError(op, `series[${k}]`, '{ name, points }', s);
    if (!isArray(s.points)) throw argumentError(op, `series[${k}].points`, 'an array of [x, y] pairs', s.points);
    s.points.forEach((p, i) => {
      if (!isArray(p) || p.length !== 2 || typeof p[0] !== 'number' || !Number.isFinite(p[0]) || typeof p[1] !== 'number') {
        throw argumentError(op, `series[${k}].points[${i}]`, '[x, y] with a finite x', p);
      }
    });
  });
  const width = checkSize(op, 'options.width', o.width, 400, 160);
  const height = checkSize(op, 'options.height', o.height, 220, 120);
  const colors = checkColors(op, o.colors, CHART_COLORS);
  const title = checkTitle(op, o.title, '');
  const xLabel = checkTitle(op, o.xLabel, 'step');
  const yLabel = checkTitle(op, o.yLabel, '');
  const drawn = series.map((s) => s.points.filter((p) => Number.isFinite(p[1])));
  const xRange = finiteRange(drawn.flatMap((pts) => pts.map((p) => p[0])));
  const yRange = finiteRange(drawn.flatMap((pts) => pts.map((p) => p[1])));
  // Steps and epochs count from 0: the x axis starts there unless a point lies left of it.
  const x0 = Math.min(0, xRange?.[0] ?? 0);
  const xDomain: [number, number] = [x0, Math.max(x0 + 1, xRange?.[1] ?? 1)];
  const y0 = Math.min(0, yRange?.[0] ?? 0);
  const yTop = yRange?.[1] ?? 1;
  const yDomain = checkDomain(op, 'options.yDomain', o.yDomain) ?? [y0, yTop > y0 ? yTop + 0.05 * (yTop - y0) : y0 + 1];
  const f = frame(width, height, xDomain, yDomain);
  const parts: string[] = [axes(f, niceTicks(xDomain[0], xDomain[1], 5), niceTicks(yDomain[0], yDomain[1], 4), { x: xLabel, y: yLabel, title })];
  series.forEach((s, k) => {
    const color = cycle(colors, k);
    const pts = drawn[k];
    if (pts.length > 0) parts.push(`<polyline class="line" data-series="${k}" points="${pts.map((p) => `${px(f.x(p[0]))},${px(f.yClamped(p[1]))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    if (s.markers) for (const p of pts) parts.push(`<circle class="marker" data-series="${k}" data-x="${num(p[0])}" data-y="${num(p[1])}" cx="${px(f.x(p[0]))}" cy="${px(f.yClamped(p[1]))}" r="2.5" fill="${color}"/>`);
    const last = pts.at(-1);
    parts.push(`<g class="series" data-series="${k}" data-name="${escapeHtml(s.name)}" data-count="${pts.length}" data-last="${last ? num(last[1]) : ''}"/>`);
  });
  parts.push(legend(f.left, series.map((s, k) => ({ name: s.name, color: cycle(colors, k), line: true }))));
  return svg(width, height, 'training-curves', parts.join(''));
}
