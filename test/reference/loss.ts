/** float64 references for the losses, written directly from their definitions. */

/** Row-wise log softmax of [rows, cols]; subtracts the row maximum so extreme logits stay finite. */
export function logSoftmaxRef(logits: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, logits[r * cols + c]);
    let total = 0;
    for (let c = 0; c < cols; c++) total += Math.exp(logits[r * cols + c] - m);
    for (let c = 0; c < cols; c++) out[r * cols + c] = logits[r * cols + c] - m - Math.log(total);
  }
  return out;
}

/** d logits of L = <logSoftmax(logits), g>: g - softmax * sum(g), per row. */
export function logSoftmaxBackwardRef(logits: ArrayLike<number>, g: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const logp = logSoftmaxRef(logits, rows, cols);
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let total = 0;
    for (let c = 0; c < cols; c++) total += g[r * cols + c];
    for (let c = 0; c < cols; c++) out[r * cols + c] = g[r * cols + c] - Math.exp(logp[r * cols + c]) * total;
  }
  return out;
}

/** log of the mean over T samples of exp(logp), per element of one [B*C] slab. */
export function logMeanExpRef(logp: ArrayLike<number>, samples: number): Float64Array {
  const slab = logp.length / samples;
  const out = new Float64Array(slab);
  for (let i = 0; i < slab; i++) {
    let m = -Infinity;
    for (let t = 0; t < samples; t++) m = Math.max(m, logp[t * slab + i]);
    let total = 0;
    for (let t = 0; t < samples; t++) total += Math.exp(logp[t * slab + i] - m);
    out[i] = m + Math.log(total / samples);
  }
  return out;
}

export function logMeanExpBackwardRef(logp: ArrayLike<number>, g: ArrayLike<number>, samples: number): Float64Array {
  const lme = logMeanExpRef(logp, samples);
  const slab = lme.length;
  return Float64Array.from(logp, (v, i) => (g[i % slab] * Math.exp(v - lme[i % slab])) / samples);
}

export function nllRef(logp: ArrayLike<number>, labels: ArrayLike<number>, cols: number): number {
  let total = 0;
  for (let r = 0; r < labels.length; r++) total -= logp[r * cols + labels[r]];
  return total / labels.length;
}

export function nllBackwardRef(labels: ArrayLike<number>, cols: number, scale: number): Float64Array {
  const out = new Float64Array(labels.length * cols);
  for (let r = 0; r < labels.length; r++) out[r * cols + labels[r]] = -scale / labels.length;
  return out;
}

export function correctCountRef(logp: ArrayLike<number>, labels: ArrayLike<number>, cols: number): number {
  let count = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logp[r * cols + c] > logp[r * cols + best]) best = c;
    if (best === labels[r]) count++;
  }
  return count;
}

export function mseRef(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < pred.length; i++) total += (pred[i] - target[i]) ** 2;
  return total / pred.length;
}

export const mseBackwardRef = (pred: ArrayLike<number>, target: ArrayLike<number>, scale: number) =>
  Float64Array.from(pred, (p, i) => (scale * 2 * (p - target[i])) / pred.length);

/** Mean over elements of the Gaussian negative log-density with variance exp(logVar). */
export function gaussianNllRef(mean: ArrayLike<number>, logVar: ArrayLike<number>, target: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < mean.length; i++) total += 0.5 * (Math.log(2 * Math.PI) + logVar[i] + (target[i] - mean[i]) ** 2 / Math.exp(logVar[i]));
  return total / mean.length;
}

export function gaussianNllBackwardRef(mean: ArrayLike<number>, logVar: ArrayLike<number>, target: ArrayLike<number>, scale: number): { dMean: Float64Array; dLogVar: Float64Array } {
  const n = mean.length;
  const dMean = Float64Array.from(mean, (m, i) => ((scale / n) * (m - target[i])) / Math.exp(logVar[i]));
  const dLogVar = Float64Array.from(mean, (m, i) => (scale / n) * 0.5 * (1 - (target[i] - m) ** 2 / Math.exp(logVar[i])));
  return { dMean, dLogVar };
}
