/**
 * The reliability diagram: per confidence bin, the accuracy (a bar) against
 * the mean confidence (a black tick), with the gap between them shaded
 * (Guo et al. 2017, "On calibration of modern neural networks", fig. 1).
 */
import { argumentError } from '../errors.js';
import { type ChartOptions, axes, checkColors, checkOptions, checkSize, checkTitle, fmt, frame, legend, niceTicks, num, px, svg } from './svg.js';

/**
 * What the diagram draws: reliability() and classificationMetrics() (src/uncertainty/metrics.ts)
 * return it. Each bin is (lower, upper] with its count, mean confidence and accuracy (NaN when empty).
 */
export interface ReliabilityData {
  bins: readonly { lower: number; upper: number; count: number; confidence: number; accuracy: number }[];
  ece: number;
  mce: number;
}

/**
 * Colours: [accuracy bars, gap, mean-confidence tick].
 * The default title names the ECE and MCE.
 */
export type ReliabilityDiagramOptions = ChartOptions;

const COLORS = ['#1f77b4', '#d62728', '#000'];

/**
 * SVG: `rect.bin` per bin (data-bin, data-lower, data-upper, data-count,
 * data-confidence, data-accuracy; height 0 when empty), `rect.gap`,
 * `line.confidence`; the <svg> carries data-ece and data-mce.
 */
export function reliabilityDiagramSvg(reliability: ReliabilityData, options?: ReliabilityDiagramOptions): string {
  const op = 'reliabilityDiagramSvg';
  const o = checkOptions(op, options);
  if (reliability === null || typeof reliability !== 'object' || !Array.isArray(reliability.bins)) {
    throw argumentError(op, 'reliability', '{ bins, ece, mce } (from reliability() or classificationMetrics())', reliability);
  }
  const width = checkSize(op, 'options.width', o.width, 460, 120);
  const height = checkSize(op, 'options.height', o.height, 400, 120);
  const colors = checkColors(op, o.colors, COLORS);
  const title = checkTitle(op, o.title, `Reliability (ECE ${fmt(reliability.ece)}, MCE ${fmt(reliability.mce)})`);
  const f = frame(width, height, [0, 1], [0, 1]);
  const parts: string[] = [axes(f, niceTicks(0, 1, 5), niceTicks(0, 1, 5), { x: 'confidence (max probability)', y: 'accuracy', title })];
  parts.push(`<line class="diagonal" x1="${px(f.x(0))}" y1="${px(f.y(0))}" x2="${px(f.x(1))}" y2="${px(f.y(1))}" stroke="#888" stroke-dasharray="4 3"/>`);
  reliability.bins.forEach((b, k) => {
    const x = f.x(b.lower) + 1;
    const w = Math.max(f.x(b.upper) - f.x(b.lower) - 2, 0);
    const data = `data-bin="${k}" data-lower="${num(b.lower)}" data-upper="${num(b.upper)}" data-count="${num(b.count)}" data-confidence="${num(b.confidence)}" data-accuracy="${num(b.accuracy)}"`;
    if (b.count === 0) {
      parts.push(`<rect class="bin empty" ${data} x="${px(x)}" y="${px(f.bottom)}" width="${px(w)}" height="0"/>`);
      return;
    }
    parts.push(`<rect class="bin" ${data} x="${px(x)}" y="${px(f.y(b.accuracy))}" width="${px(w)}" height="${px(f.bottom - f.y(b.accuracy))}" fill="${colors[0]}" fill-opacity="0.8"><title>confidence ${fmt(b.confidence)}, accuracy ${fmt(b.accuracy)}, ${b.count} images</title></rect>`);
    const [lo, hi] = [Math.min(b.accuracy, b.confidence), Math.max(b.accuracy, b.confidence)];
    parts.push(`<rect class="gap" data-bin="${k}" x="${px(x)}" y="${px(f.y(hi))}" width="${px(w)}" height="${px(f.y(lo) - f.y(hi))}" fill="${colors[1]}" fill-opacity="0.3" stroke="${colors[1]}" stroke-width="0.8"/>`);
    parts.push(`<line class="confidence" data-bin="${k}" x1="${px(x)}" x2="${px(x + w)}" y1="${px(f.y(b.confidence))}" y2="${px(f.y(b.confidence))}" stroke="${colors[2]}" stroke-width="2"/>`);
    parts.push(`<text class="count" x="${px(x + w / 2)}" y="${px(f.bottom - 3)}" text-anchor="middle" fill="#fff" style="font-size:8px">${b.count}</text>`);
  });
  parts.push(legend(f.left, [
    { name: 'accuracy (count inside)', color: colors[0], opacity: 0.8 },
    { name: 'mean confidence', color: colors[2], line: true },
    { name: 'gap', color: colors[1], opacity: 0.3 },
  ]));
  return svg(width, height, 'reliability', parts.join(''), ` data-ece="${num(reliability.ece)}" data-mce="${num(reliability.mce)}"`);
}
