/**
 * The risk-coverage chart of selective classification: the error rate among the accepted
 * examples against the fraction accepted, one line per confidence ranking (Geifman & El-Yaniv
 * 2017, fig. 1). A better ranking lies lower; every line ends at the full-coverage error rate.
 */
import { argumentError } from '../errors.js';
import { CHART_COLORS, isArray, type ChartOptions, axes, checkColors, checkDomain, checkOptions, checkSize, checkTitle, cycle, escapeHtml, fmt, frame, legend, niceTicks, num, px, svg } from './svg.js';

/** One curve: riskCoverage() (src/uncertainty/selective.ts) returns it. */
export interface RiskCoverageCurve {
  /** The legend name; by default `by`. */
  name?: string;
  /** The ranking it came from ('maxProb', 'entropy', 'mutualInformation'). */
  by?: string;
  /** Coverage of each point, in (0, 1], increasing. */
  coverage: ArrayLike<number>;
  /** Selective risk of each point, in [0, 1]. */
  risk: ArrayLike<number>;
  /** The area under the curve, shown in the legend when given. */
  aurc?: number;
}

/** Options of riskCoverageSvg: the common chart options, the risk axis and the points per line. */
export interface RiskCoverageChartOptions extends ChartOptions {
  /** The risk axis; by default 0 to 1.05 x the highest risk drawn (values outside sit on the edge). */
  yDomain?: readonly [number, number];
  /** At most this many points per line (evenly spaced along the curve, ends kept); default 500. */
  maxPoints?: number;
}

const isNumbers = (v: unknown): v is ArrayLike<number> => ArrayBuffer.isView(v) || Array.isArray(v);

/** Indices of at most `max` points of `length`, evenly spread, first and last kept. */
function thin(length: number, max: number): number[] {
  if (length <= max) return Array.from({ length }, (_, i) => i);
  return Array.from({ length: max }, (_, k) => Math.round((k * (length - 1)) / (max - 1)));
}

/**
 * Colours: one per curve. SVG: `polyline.line` per curve (data-series), `g.series` per curve
 * (data-series, data-name, data-by, data-aurc: '' when not given, data-points: the curve's points,
 * data-count: the points drawn, data-last: the risk at the last point, '' when none).
 */
export function riskCoverageSvg(curves: readonly RiskCoverageCurve[], options?: RiskCoverageChartOptions): string {
  const op = 'riskCoverageSvg';
  const o = checkOptions(op, options);
  if (!isArray(curves)) throw argumentError(op, 'curves', 'an array of { coverage, risk } (riskCoverage() results)', curves);
  curves.forEach((c, k) => {
    if (c === null || typeof c !== 'object') throw argumentError(op, `curves[${k}]`, '{ coverage, risk, name?, by?, aurc? }', c);
    if (!isNumbers(c.coverage)) throw argumentError(op, `curves[${k}].coverage`, 'an array of coverages', c.coverage);
    if (!isNumbers(c.risk) || c.risk.length !== c.coverage.length) throw argumentError(op, `curves[${k}].risk`, `an array of ${c.coverage.length} risks (one per coverage)`, c.risk);
    if (c.name !== undefined && typeof c.name !== 'string') throw argumentError(op, `curves[${k}].name`, 'a string', c.name);
    if (c.aurc !== undefined && typeof c.aurc !== 'number') throw argumentError(op, `curves[${k}].aurc`, 'a number', c.aurc);
    for (let i = 0; i < c.coverage.length; i++) {
      if (!(c.coverage[i] >= 0 && c.coverage[i] <= 1)) throw argumentError(op, `curves[${k}].coverage[${i}]`, 'a coverage in [0, 1]', c.coverage[i]);
      if (!Number.isFinite(c.risk[i])) throw argumentError(op, `curves[${k}].risk[${i}]`, 'a finite risk', c.risk[i]);
    }
  });
  const width = checkSize(op, 'options.width', o.width, 460, 160);
  const height = checkSize(op, 'options.height', o.height, 320, 120);
  const colors = checkColors(op, o.colors, CHART_COLORS);
  const title = checkTitle(op, o.title, 'Risk vs coverage');
  const maxPoints = o.maxPoints ?? 500;
  if (typeof maxPoints !== 'number' || !Number.isInteger(maxPoints) || maxPoints < 2) throw argumentError(op, 'options.maxPoints', 'an integer >= 2', maxPoints);
  let highest = 0;
  for (const c of curves) for (let i = 0; i < c.risk.length; i++) highest = Math.max(highest, c.risk[i]);
  const yDomain = checkDomain(op, 'options.yDomain', o.yDomain) ?? [0, highest > 0 ? highest * 1.05 : 1];
  const f = frame(width, height, [0, 1], yDomain);
  const parts: string[] = [axes(f, niceTicks(0, 1, 5), niceTicks(yDomain[0], yDomain[1], 4), { x: 'coverage (fraction answered)', y: 'selective risk (error rate)', title })];
  const names = curves.map((c, k) => c.name ?? c.by ?? `curve ${k}`);
  curves.forEach((c, k) => {
    const color = cycle(colors, k);
    const drawn = thin(c.coverage.length, maxPoints);
    if (drawn.length > 0) {
      parts.push(`<polyline class="line" data-series="${k}" points="${drawn.map((i) => `${px(f.x(c.coverage[i]))},${px(f.yClamped(c.risk[i]))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    }
    const last = c.risk.length > 0 ? num(c.risk[c.risk.length - 1]) : '';
    parts.push(`<g class="series" data-series="${k}" data-name="${escapeHtml(names[k])}" data-by="${escapeHtml(c.by ?? '')}" data-aurc="${c.aurc === undefined ? '' : num(c.aurc)}" data-points="${c.coverage.length}" data-count="${drawn.length}" data-last="${last}"/>`);
  });
  parts.push(legend(f.left, curves.map((c, k) => ({ name: c.aurc === undefined ? names[k] : `${names[k]} (AURC ${fmt(c.aurc)})`, color: cycle(colors, k), line: true }))));
  return svg(width, height, 'risk-coverage', parts.join(''));
}
