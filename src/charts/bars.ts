/**
 * Per-class uncertainty of one input: the predictive probability p̄ and its
 * split into an epistemic and an aleatoric part (Kwon et al. 2020, eq. 4;
 * Shridhar et al. 2019, sec. 4): per class, epistemic + aleatoric =
 * p̄ (1 - p̄), the variance of the class indicator under p̄.
 */
import { shapeError } from '../errors.js';
import { type ChartOptions, checkClassNames, checkColors, checkOptions, checkSize, checkTitle, checkValues, escapeHtml, num, px, compact, svg, titleText } from './svg.js';

/** One input's per-class numbers (arrays over the C classes); one row of predict()'s result fits. */
export interface ClassUncertainty {
  mean: ArrayLike<number>;
  epistemic: ArrayLike<number>;
  aleatoric: ArrayLike<number>;
}

export interface UncertaintyBarsOptions extends ChartOptions {
  /** One name per class (default: the class indices). */
  classNames?: readonly string[];
}

/** Colours: [p̄, epistemic, aleatoric]. */
const COLORS = ['#444', '#d62728', '#1f77b4'];
const ROW = 22;

/**
 * One row per class and three columns of horizontal bars: p̄ on the scale
 * 0..1, then the epistemic and the aleatoric variance, each on its own scale
 * (its largest value over the classes) because the epistemic part is often 10
 * to 100 times smaller, as the seed's plots show them. The most probable
 * class is drawn solid and its label bold.
 *
 * SVG: `rect.mean`, `rect.epistemic`, `rect.aleatoric` per class (data-class,
 * data-value; width = value / scale x the width of the `rect.track` behind
 * it), one `g.class` per class (data-class, data-mean, data-epistemic,
 * data-aleatoric); the <svg> carries data-best and data-classes.
 * `options.height`, when given, sets the row height; by default rows are 22 px.
 */
export function uncertaintyBarsSvg(u: ClassUncertainty, options?: UncertaintyBarsOptions): string {
  const op = 'uncertaintyBarsSvg';
  const o = checkOptions(op, options);
  const mean = checkValues(op, 'mean', u?.mean);
  const C = mean.length;
  if (C === 0) throw shapeError(op, 'mean', '[C] with C >= 1 (one value per class)', [0]);
  const epistemic = checkValues(op, 'epistemic', u.epistemic);
  const aleatoric = checkValues(op, 'aleatoric', u.aleatoric);
  if (epistemic.length !== C) throw shapeError(op, 'epistemic', `[${C}] (one value per class, as mean)`, [epistemic.length]);
  if (aleatoric.length !== C) throw shapeError(op, 'aleatoric', `[${C}] (one value per class, as mean)`, [aleatoric.length]);
  const names = checkClassNames(op, o.classNames, C);
  const width = checkSize(op, 'options.width', o.width, 520, 200);
  const title = checkTitle(op, o.title, '');
  const colors = checkColors(op, o.colors, COLORS);
  const top = title ? 40 : 24;
  const row = o.height === undefined ? ROW : (checkSize(op, 'options.height', o.height, 0, top + 6 + 8 * C) - top - 6) / C;
  const height = top + C * row + 6;
  // Class labels right-aligned in a column as wide as the longest (about 6.2 px per character).
  const labelWidth = Math.min(160, 10 + 6.2 * Math.max(...names.map((n) => n.length)));
  const gap = 10;
  const columnWidth = (width - labelWidth - 3 * gap) / 3;
  const barWidth = Math.max(columnWidth - 44, 1);
  let best = 0;
  for (let c = 1; c < C; c++) if (mean[c] > mean[best]) best = c;
  const largest = (values: ArrayLike<number>) => Math.max(1e-12, ...Array.from(values).filter(Number.isFinite));
  const columns = [
    { kind: 'mean', heading: 'predictive p̄', values: mean, scale: 1 },
    { kind: 'epistemic', heading: 'epistemic var', values: epistemic, scale: largest(epistemic) },
    { kind: 'aleatoric', heading: 'aleatoric var', values: aleatoric, scale: largest(aleatoric) },
  ];
  const parts: string[] = [titleText(0, title)];
  columns.forEach((column, k) => {
    const x0 = labelWidth + gap + k * (columnWidth + gap);
    parts.push(`<text class="heading" x="${px(x0)}" y="${px(top - 8)}">${escapeHtml(column.heading)}${k > 0 ? ` (max ${compact(column.scale)})` : ''}</text>`);
    for (let c = 0; c < C; c++) {
      const v = column.values[c];
      const y = top + c * row;
      const w = Number.isFinite(v) ? Math.min(Math.max(v / column.scale, 0), 1) * barWidth : 0;
      parts.push(`<rect class="track" x="${px(x0)}" y="${px(y + 3)}" width="${px(barWidth)}" height="${px(row - 6)}" fill="#f3f3f3"/>`);
      parts.push(`<rect class="${column.kind}" data-class="${c}" data-value="${num(v)}" x="${px(x0)}" y="${px(y + 3)}" width="${px(w)}" height="${px(row - 6)}" fill="${colors[k]}" fill-opacity="${k === 0 && c !== best ? 0.55 : 1}"><title>${escapeHtml(names[c])}: ${escapeHtml(column.heading)} ${num(v)}</title></rect>`);
      parts.push(`<text class="value" x="${px(x0 + barWidth + 4)}" y="${px(y + row / 2 + 4)}">${compact(v)}</text>`);
    }
  });
  for (let c = 0; c < C; c++) {
    parts.push(`<text class="class-name${c === best ? ' best' : ''}" x="${px(labelWidth)}" y="${px(top + c * row + row / 2 + 4)}" text-anchor="end"${c === best ? ' font-weight="600"' : ''}>${escapeHtml(names[c])}</text>`);
  }
  // The numbers once more, per class, for tools reading the SVG.
  for (let c = 0; c < C; c++) {
    parts.push(`<g class="class" data-class="${c}" data-name="${escapeHtml(names[c])}" data-mean="${num(mean[c])}" data-epistemic="${num(epistemic[c])}" data-aleatoric="${num(aleatoric[c])}"/>`);
  }
  return svg(width, height, 'uncertainty-bars', parts.join(''), ` data-best="${best}" data-classes="${C}"`);
}
