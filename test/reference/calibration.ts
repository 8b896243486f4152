/**
 * Float64 CPU references for temperature scaling (Guo et al. 2017, section 4.2) of an MC-averaged
 * predictive, written from the formulas without sharing code with src/ or the shader:
 *   p_bar(tau) = (1/S) sum_s p(z_s / tau),  NLL(tau) = sum_n -log p_bar(tau)_{y_n},
 * with p the softmax or the softplus normalisation, the derivative with respect to lambda = log tau
 * by the chain rule on p_bar itself (the kernel uses log-sum-exp weights instead), and a brute-force
 * minimiser over tau (a dense grid on log tau, then golden-section refinement).
 * Logits are [S * N, C], sample s of example n at row s * N + n.
 */
import { type Method, probabilities } from './uncertainty.js';

const sp = (x: number) => (x > 30 ? x : Math.log1p(Math.exp(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The logits divided by tau, in float64. */
export function tempered(logits: ArrayLike<number>, tau: number): Float64Array {
  return Float64Array.from(logits as ArrayLike<number>, (z) => z / tau);
}

/**
 * Sum over examples of -log p_bar_y, and of its derivative with respect to log tau:
 * d p_{s,y} / d lambda for u = z / tau (du/dlambda = -u):
 *   softmax:    -p_y (u_y - sum_c p_c u_c)
 *   normalized: -p_y (u_y sigmoid(u_y) / softplus(u_y) - sum_c u_c sigmoid(u_c) / sum_c softplus(u_c))
 * and d(-log p_bar_y)/d lambda = -(1/S) sum_s (d p_{s,y}/d lambda) / p_bar_y.
 * Logs are taken of the exact p_bar, so logits must keep p_bar_y above float64's underflow.
 */
export function temperatureNllReference(logits: ArrayLike<number>, labels: ArrayLike<number>, S: number, N: number, C: number, tau: number, method: Method): { nll: number; slope: number; terms: Float64Array } {
  const u = tempered(logits, tau);
  let nll = 0;
  let slope = 0;
  const terms = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const y = labels[n];
    let pBar = 0;
    let dpBar = 0;
    for (let s = 0; s < S; s++) {
      const row = Array.from({ length: C }, (_, c) => u[(s * N + n) * C + c]);
      const p = probabilities(row, method);
      let a: number;
      if (method === 'softmax') {
        let ubar = 0;
        for (let c = 0; c < C; c++) ubar += p[c] * row[c];
        a = row[y] - ubar;
      } else {
        let total = 0;
        let weighted = 0;
        for (let c = 0; c < C; c++) {
          total += sp(row[c]);
          weighted += row[c] * sigmoid(row[c]);
        }
        a = (row[y] * sigmoid(row[y])) / sp(row[y]) - weighted / total;
      }
      pBar += p[y] / S;
      dpBar += (-p[y] * a) / S;
    }
    terms[n] = -Math.log(pBar);
    nll += terms[n];
    slope += -dpBar / pBar;
  }
  return { nll, slope, terms };
}

/** The tau in [lo, hi] minimising the reference NLL: a 1001-point grid on log tau, then golden-section search. */
export function bruteForceTemperature(logits: ArrayLike<number>, labels: ArrayLike<number>, S: number, N: number, C: number, method: Method, lo = 0.05, hi = 20): number {
  const f = (lambda: number) => temperatureNllReference(logits, labels, S, N, C, Math.exp(lambda), method).nll;
  const a0 = Math.log(lo);
  const b0 = Math.log(hi);
  const points = 1000;
  let best = 0;
  let bestF = Infinity;
  for (let i = 0; i <= points; i++) {
    const x = a0 + ((b0 - a0) * i) / points;
    const v = f(x);
    if (v < bestF) {
      bestF = v;
      best = i;
    }
  }
  const h = (b0 - a0) / points;
  let a = Math.max(a0, a0 + (best - 1) * h);
  let b = Math.min(b0, a0 + (best + 1) * h);
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = b - g * (b - a);
  let x2 = a + g * (b - a);
  let f1 = f(x1);
  let f2 = f(x2);
  while (b - a > 1e-10) {
    if (f1 < f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - g * (b - a);
      f1 = f(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + g * (b - a);
      f2 = f(x2);
    }
  }
  return Math.exp((a + b) / 2);
}
