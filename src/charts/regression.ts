/**
 * 1-D regression: the predictive mean with ±2σ bands over the training
 * points. Given the two parts of the predictive variance (Kendall & Gal 2017,
 * eq. 9: var = var_t mu_t + mean_t sigma^2_t), it draws the total band
 * sqrt(epistemic + aleatoric) and, inside it, the aleatoric band alone, so the
 * gap between the two is the model's own (epistemic) uncertainty; given only
 * the total std, one band.
 */
import { argumentError, shapeError } from '../errors.js';
import { type ChartOptions, axes, checkColors, checkDomain, checkOptions, checkSize, checkTitle, checkValues, finiteRange, frame, legend, niceTicks, num, px, svg } from './svg.js';

/** A RegressionPrediction (predictWithUncertainty's result) spread with xs and the training points fits. */
export interface RegressionChartData {
  /** Where the predictive distribution was evaluated (drawn in x order). */
  xs: ArrayLike<number>;
  mean: ArrayLike<number>;
  /** Total predictive standard deviation per x; not needed when both variance parts are given. */
  std?: ArrayLike<number>;
  /** var_t mu_t per x. */
  epistemicVar?: ArrayLike<number>;
  /** mean_t sigma^2_t per x. */
  aleatoricVar?: ArrayLike<number>;
  trainX?: ArrayLike<number>;
  trainY?: ArrayLike<number>;
  /** The noise-free function at each x, drawn dashed (synthetic data). */
  truth?: { name: string; values: ArrayLike<number> };
}

export interface RegressionChartOptions extends ChartOptions {
  /** Fixed axes keep the picture still while training redraws it; by default the data's range. */
  xDomain?: readonly [number, number];
  /** Values outside it sit on its edge. */
  yDomain?: readonly [number, number];
  xLabel?: string;
  yLabel?: string;
}

/** Colours: [mean, total band, aleatoric band, truth, training points]. */
const COLORS = ['#111', '#d62728', '#1f77b4', '#2ca02c', '#333'];

/**
 * SVG: `polyline.mean`, `polygon.band` (one band: class "band"; two:
 * "band total" and "band aleatoric"), `polyline.truth`, one `circle.train`
 * per training point (data-x, data-y; no other circles), and per x in x
 * order `g.point` (data-x, data-mean, data-std, and data-epistemic-var,
 * data-aleatoric-var when given).
 */
export function regressionChartSvg(data: RegressionChartData, options?: RegressionChartOptions): string {
  const op = 'regressionChartSvg';
  const o = checkOptions(op, options);
  if (data === null || typeof data !== 'object') throw argumentError(op, 'data', '{ xs, mean, std | epistemicVar + aleatoricVar, trainX?, trainY? }', data);
  const xs = checkValues(op, 'xs', data.xs);
  const n = xs.length;
  if (n === 0) throw argumentError(op, 'xs', 'at least one point', 'none');
  const perX = (name: 'mean' | 'std' | 'epistemicVar' | 'aleatoricVar', value: ArrayLike<number> | undefined) => {
    checkValues(op, name, value);
    if (value!.length !== n) throw shapeError(op, name, `[${n}] (one value per x)`, [value!.length]);
    return value!;
  };
  const mean = perX('mean', data.mean);
  const split = data.epistemicVar !== undefined || data.aleatoricVar !== undefined;
  if (split && (data.epistemicVar === undefined || data.aleatoricVar === undefined)) {
    throw argumentError(op, data.epistemicVar === undefined ? 'epistemicVar' : 'aleatoricVar', 'both epistemicVar and aleatoricVar (or std alone)', undefined);
  }
  if (!split && data.std === undefined) throw argumentError(op, 'std', 'the predictive std per x (or epistemicVar and aleatoricVar)', undefined);
  const epistemicVar = split ? perX('epistemicVar', data.epistemicVar) : undefined;
  const aleatoricVar = split ? perX('aleatoricVar', data.aleatoricVar) : undefined;
  // With both parts the total std is computed from them, so a given std cannot disagree with the bands.
  const std = split
    ? Float64Array.from({ length: n }, (_, i) => Math.sqrt(Math.max(epistemicVar![i] + aleatoricVar![i], 0)))
    : perX('std', data.std);
  const trainX = data.trainX === undefined ? [] : checkValues(op, 'trainX', data.trainX);
  const trainY = data.trainY === undefined ? [] : checkValues(op, 'trainY', data.trainY);
  if (trainY.length !== trainX.length) throw shapeError(op, 'trainY', `[${trainX.length}] (one value per trainX)`, [trainY.length]);
  if (data.truth !== undefined) {
    if (data.truth === null || typeof data.truth !== 'object' || typeof data.truth.name !== 'string') throw argumentError(op, 'truth', '{ name, values }', data.truth);
    checkValues(op, 'truth.values', data.truth.values);
    if (data.truth.values.length !== n) throw shapeError(op, 'truth.values', `[${n}] (one value per x)`, [data.truth.values.length]);
  }
  const width = checkSize(op, 'options.width', o.width, 620, 160);
  const height = checkSize(op, 'options.height', o.height, 400, 120);
  const colors = checkColors(op, o.colors, COLORS);
  const title = checkTitle(op, o.title, 'Predictive mean ± 2σ');
  const xLabel = checkTitle(op, o.xLabel, 'x');
  const yLabel = checkTitle(op, o.yLabel, 'y');

  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const xRange = finiteRange([...Array.from(xs), ...Array.from(trainX)]) ?? [0, 1];
  const yRange = finiteRange([...order.flatMap((i) => [mean[i] - 2 * std[i], mean[i] + 2 * std[i]]), ...Array.from(trainY)]) ?? [0, 1];
  const pad = (yRange[1] - yRange[0]) * 0.05 || 1;
  const xDomain = checkDomain(op, 'options.xDomain', o.xDomain) ?? (xRange[1] > xRange[0] ? xRange : [xRange[0] - 1, xRange[0] + 1]);
  const yDomain = checkDomain(op, 'options.yDomain', o.yDomain) ?? [yRange[0] - pad, yRange[1] + pad];
  const f = frame(width, height, xDomain, yDomain);
  const at = (x: number, y: number) => `${px(f.x(x))},${px(f.yClamped(y))}`;
  const band = (sd: (i: number) => number) => {
    const upper = order.map((i) => at(xs[i], mean[i] + 2 * sd(i)));
    const lower = order.map((i) => at(xs[i], mean[i] - 2 * sd(i))).reverse();
    return [...upper, ...lower].join(' ');
  };

  const parts: string[] = [axes(f, niceTicks(xDomain[0], xDomain[1], 7), niceTicks(yDomain[0], yDomain[1], 5), { x: xLabel, y: yLabel, title })];
  if (split) {
    parts.push(`<polygon class="band total" points="${band((i) => std[i])}" fill="${colors[1]}" fill-opacity="0.18" stroke="none"/>`);
    parts.push(`<polygon class="band aleatoric" points="${band((i) => Math.sqrt(Math.max(aleatoricVar![i], 0)))}" fill="${colors[2]}" fill-opacity="0.3" stroke="none"/>`);
  } else {
    parts.push(`<polygon class="band" points="${band((i) => std[i])}" fill="${colors[1]}" fill-opacity="0.2" stroke="none"/>`);
  }
  const dots: string[] = [];
  for (let i = 0; i < trainX.length; i++) {
    dots.push(`<circle class="train" data-x="${num(trainX[i])}" data-y="${num(trainY[i])}" cx="${px(f.x(trainX[i]))}" cy="${px(f.yClamped(trainY[i]))}" r="2"/>`);
  }
  parts.push(`<g fill="${colors[4]}" fill-opacity="0.55">${dots.join('')}</g>`);
  if (data.truth) {
    const truth = data.truth.values;
    parts.push(`<polyline class="truth" points="${order.map((i) => at(xs[i], truth[i])).join(' ')}" fill="none" stroke="${colors[3]}" stroke-dasharray="5 4" stroke-width="1.4"/>`);
  }
  parts.push(`<polyline class="mean" points="${order.map((i) => at(xs[i], mean[i])).join(' ')}" fill="none" stroke="${colors[0]}" stroke-width="2"/>`);
  const series = order.map((i) => `<g class="point" data-x="${num(xs[i])}" data-mean="${num(mean[i])}" data-std="${num(std[i])}"` +
    `${split ? ` data-epistemic-var="${num(epistemicVar![i])}" data-aleatoric-var="${num(aleatoricVar![i])}"` : ''}/>`);
  parts.push(`<g class="series">${series.join('')}</g>`);
  parts.push(legend(f.left, [
    { name: 'predictive mean', color: colors[0], line: true },
    ...(split
      ? [{ name: '±2σ total (epistemic + aleatoric)', color: colors[1], opacity: 0.18 }, { name: '±2σ aleatoric', color: colors[2], opacity: 0.3 }]
      : [{ name: '±2σ', color: colors[1], opacity: 0.2 }]),
    ...(data.truth ? [{ name: data.truth.name, color: colors[3], line: true, dashed: true }] : []),
    ...(trainX.length ? [{ name: 'training points', color: colors[4], opacity: 0.55 }] : []),
  ]));
  return svg(width, height, 'regression', parts.join(''), ` data-points="${n}" data-train="${trainX.length}"`);
}
