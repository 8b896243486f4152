/**
 * Numerics over extreme inputs: softplus and its derivative for rho in [-50, 50], log-softmax and
 * log-mean-exp for logits of +-1e4, the KL (closed form and Monte Carlo) and its gradients for rho in
 * [-50, 50], where sigma = softplus(rho) reaches 2e-22. Every GPU result is compared with the float64
 * references of test/reference/ on the same f32 inputs (the Monte Carlo KL gradient with a path-form one
 * written below, where that test says why).
 *
 * Errors are measured in units of u = 2^-24 (the f32 unit roundoff) times a per-element scale: the
 * result's own magnitude for softplus and sigmoid (so the bound is relative, also where the value is
 * 1e-22), and for the sums and differences (log-softmax, log-mean-exp, the KL) the sum of the magnitudes
 * of the parts that are added, the size of the rounding those additions must make in f32 whatever the
 * formula (a backward-stable bound; a relative bound on a result that cancels would demand more than
 * f32 inputs carry). Each tolerance is stated beside its test with its reasons and the value measured on
 * SwiftShader; the test logs the worst error of every comparison.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { activationBackward, activationForward } from '../../src/ops/activation.js';
import { type GaussianPrior, type MixturePrior, klGaussian, klGaussianBackwardInto, klMonteCarlo, klMonteCarloBackwardInto } from '../../src/ops/kl.js';
import { logMeanExp, logMeanExpBackward, logSoftmax, logSoftmaxBackward } from '../../src/ops/loss.js';
import { sumInto } from '../../src/ops/reduce.js';
import { drawNormal, sampleWeights } from '../../src/ops/sample.js';
import { context, randomArray, rng } from '../helpers.js';
import { sigmoidRef, softplusRef } from '../reference/activation.js';
import { klGaussianBackwardRef, klGaussianTermsRef, dLogPriorRef, logPriorRef, type PriorRef } from '../reference/kl.js';
import { logMeanExpBackwardRef, logMeanExpRef, logSoftmaxBackwardRef, logSoftmaxRef } from '../reference/loss.js';

const U = 2 ** -24;
const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

/** The worst |got - want| / (U * scale_i) over all elements, and where: the error in units of u. */
function worstUlps(got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>, input?: ArrayLike<number>): { ulps: number; at: string } {
  expect(got.length).toBe(want.length);
  let ulps = 0;
  let at = '';
  for (let i = 0; i < want.length; i++) {
    const e = Number.isFinite(got[i]) ? Math.abs(got[i] - want[i]) / (U * scale[i]) : Infinity;
    if (!(e <= ulps)) {
      ulps = e;
      at = `index ${i}${input ? ` (input ${input[i]})` : ''}: got ${got[i]}, want ${want[i]}`;
    }
  }
  return { ulps, at };
}

function expectUlps(what: string, got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>, tolerance: number, input?: ArrayLike<number>): void {
  const w = worstUlps(got, want, scale, input);
  console.log(`numerics: ${what}: worst ${w.ulps.toFixed(2)} u (tolerance ${tolerance} u) at ${w.at}`);
  expect(w.ulps, `${what}: ${w.at}`).toBeLessThanOrEqual(tolerance);
}

/** rho in [-50, 50] every 0.05, plus the neighbours of softplus' branch points (f32 values). */
function rhoGrid(): Float32Array {
  const values: number[] = [];
  for (let k = 0; k <= 2000; k++) values.push(-50 + k * 0.05);
  for (const b of [-15, -3, 0, 20]) for (const d of [-1e-6, -1e-7, 0, 1e-7, 1e-6, 1e-3]) values.push(b + d);
  return f32(values);
}

/** Rows of C = 10 logits with magnitudes up to 1e4: spread, near ties at +-1e4, one dominant, equal, tiny tails. */
function extremeLogits(): { logits: Float32Array; rows: number; cols: number } {
  const cols = 10;
  const rows: number[][] = [];
  const r = rng(7);
  const row = (f: (c: number) => number) => rows.push(Array.from({ length: cols }, (_, c) => f(c)));
  for (let k = 0; k < 8; k++) row(() => -1e4 + 2e4 * r());
  for (let k = 0; k < 4; k++) row(() => 1e4 - 5 * r());
  for (let k = 0; k < 4; k++) row(() => -1e4 + 5 * r());
  row((c) => (c === 3 ? 1e4 : -1e4));
  row((c) => (c === 0 ? -1e4 : 1e4));
  row(() => 1e4);
  row(() => -1e4);
  // The other classes 16 to 30 below the maximum: probabilities 1e-7 .. 1e-13 that 1 + p rounds away.
  for (let k = 0; k < 4; k++) row((c) => (c === k ? 0 : -16 - 14 * r()));
  for (let k = 0; k < 4; k++) row(() => -5 + 10 * r());
  return { logits: f32(rows.flat()), rows: rows.length, cols };
}

/** Reads many [1] results with one readback: result k goes to element k of one tensor. */
async function readScalars(ctx: Context, scalars: Tensor[]): Promise<Float32Array> {
  const out = ctx.empty([scalars.length]);
  scalars.forEach((s, k) => sumInto(s, out, { index: k }));
  const v = await out.read();
  out.dispose();
  for (const s of scalars) s.dispose();
  return v;
}

describe('softplus and sigmoid, rho in [-50, 50]', () => {
  it('softplus is accurate relative to its value everywhere, 2e-22 included', async () => {
    const ctx = await context();
    const xs = rhoGrid();
    const got = await activationForward(ctx.tensor(xs, [xs.length]), { kind: 'softplus' }).read();
    const want = softplusRef(xs);
    // Tolerance 10 u relative: exp_accurate's exp(r), |r| <= ln 2 / 2, is within WGSL's 3 + 2|r| < 3.7 ulp
    // (<= 7.4 u), then a division and the series add about 2 u. (Before common.wgsl's exp_accurate and
    // log1p_unit: 55 u at rho = -47.5, where e^rho came from exp with its 3 + 2|x| ulp. Measured on SwiftShader: 4.1 u.)
    expectUlps('softplus', got, want, want, 10, xs);
  });

  it('its derivative sigmoid(rho) is accurate relative to its value', async () => {
    const ctx = await context();
    const xs = rhoGrid();
    const ones = f32(new Array(xs.length).fill(1));
    const got = await activationBackward(ctx.tensor(ones, [xs.length]), ctx.tensor(xs, [xs.length]), { kind: 'softplus' }).read();
    const want = Float64Array.from(xs, (x) => sigmoidRef(x));
    // Tolerance 10 u relative: exp_accurate (<= 7.4 u, as above), one addition and one division. (Before: 55 u at
    // rho = -47.5; measured now: 4.3 u.)
    expectUlps('sigmoid', got, want, want, 10, xs);
  });
});

describe('log-softmax and log-mean-exp, logits +-1e4', () => {
  it('log-softmax and its backward', async () => {
    const ctx = await context();
    const { logits, rows, cols } = extremeLogits();
    const logp = logSoftmax(ctx.tensor(logits, [rows, cols]));
    const got = await logp.read();
    const want = logSoftmaxRef(logits, rows, cols);
    // Scale: |x - m| + |log sum exp(x - m)| + |logp|, the parts of logp = (x - m) - log(total).
    const scale = Float64Array.from(want, (v, i) => {
      const r = Math.floor(i / cols);
      let m = -Infinity;
      for (let c = 0; c < cols; c++) m = Math.max(m, logits[r * cols + c]);
      return Math.abs(logits[i] - m) + Math.abs(logits[i] - m - v) + Math.abs(v);
    });
    // Tolerance 8 u of that: one rounding of x - m and of the difference, and log1p(rest) with rest's far
    // terms from exp_accurate (<= 7.4 u, see softplus) and the series (2 u), against a scale of 2 |logp| for
    // the maximum. (Before the log1p in loss.wgsl: 2^23 u, the maximum's logp 0 instead of -4.4e-8; measured now: 1.4 u.)
    expectUlps('logSoftmax', got, want, scale, 8, logits);

    const g = f32(randomArray(rows * cols, 3));
    const dLogits = await logSoftmaxBackward(ctx.tensor(g, [rows, cols]), logp).read();
    const dWant = logSoftmaxBackwardRef(logits, g, rows, cols);
    // Scale: |g| + softmax * sum |g|, the parts of g - softmax * sum g.
    const dScale = Float64Array.from(dWant, (_, i) => {
      const r = Math.floor(i / cols);
      let total = 0;
      for (let c = 0; c < cols; c++) total += Math.abs(g[r * cols + c]);
      return Math.abs(g[i]) + Math.exp(want[i]) * total;
    });
    // Tolerance 16 u: exp(logp) carries logp's absolute error (4 u of |x - m| is up to 0.005 at 1e4, but
    // there softmax is exp(-1e4) = 0), the row sum of 10 gradients adds 9 roundings. Measured: 1.4 u.
    expectUlps('logSoftmaxBackward', dLogits, dWant, dScale, 16);
  });

  for (const samples of [1, 4]) {
    it(`log-mean-exp over ${samples} sample(s) and its backward`, async () => {
      const ctx = await context();
      const { logits, rows, cols } = extremeLogits();
      // T samples of log-probabilities in [-2e4, 0]: the rows of extremeLogits, rotated per sample so that
      // a class is certain in one sample and impossible (logp = -2e4) in another.
      const perSample = rows * cols;
      const logpRows = logSoftmaxRef(logits, rows, cols);
      const lp = new Float32Array(samples * perSample);
      for (let t = 0; t < samples; t++) for (let i = 0; i < perSample; i++) lp[t * perSample + i] = logpRows[(i + t * 3 * cols) % perSample];
      const logp = ctx.tensor(lp, [samples * rows, cols]);
      const lme = logMeanExp(logp, { samples });
      const got = await lme.read();
      const want = logMeanExpRef(lp, samples);
      // Scale: |m| + |log sum exp(logp - m)| + log T + |lme|, the parts of m + log(total) - log T.
      const scale = Float64Array.from(want, (v, i) => {
        let m = -Infinity;
        for (let t = 0; t < samples; t++) m = Math.max(m, lp[t * perSample + i]);
        return Math.abs(m) + Math.abs(v - m + Math.log(samples)) + Math.log(samples) + Math.abs(v);
      });
      // Tolerance 8 u of that: log(total) for total in [1, 2] is within WGSL's absolute 2^-21 (8 u) and
      // elsewhere 3 ulp, log T the same, and two additions. Measured: 0 u (T = 1), 0.8 u (T = 4).
      expectUlps(`logMeanExp T=${samples}`, got, want, scale, 8);

      const g = f32(randomArray(perSample, 5));
      const dLogp = await logMeanExpBackward(ctx.tensor(g, [rows, cols]), logp, lme, { samples }).read();
      const dWant = logMeanExpBackwardRef(lp, g, samples);
      // Scale: |g| / T times the weight exp(logp - lme) <= T, with the error of lme (4 u of its scale) in the
      // exponent: |d| * (1 + scale of lme / u-units), bounded here by |g| * (weight / T) * (1 + lme scale).
      const dScale = Float64Array.from(dWant, (v, i) => Math.abs(v) * (1 + scale[i % perSample]) + Math.abs(g[i % perSample]) / samples);
      // Tolerance 8 u: exp of a difference with lme's error, a product and the 1/T factor. Measured: <= 0.9 u.
      expectUlps(`logMeanExpBackward T=${samples}`, dLogp, dWant, dScale, 8);
    });
  }
});

describe('KL(q || p), rho in [-50, 50] (sigma from 2e-22 to 50)', () => {
  const GAUSSIAN: GaussianPrior = { mu: 0, sigma: 0.1 };
  const BLUNDELL: MixturePrior = { pi: 0.5, sigma1: 1, sigma2: Math.exp(-7) };

  /** rho every 1 in [-50, 50] with mu in [-1, 1]: 101 elements, one KL each (so each is checked alone). */
  function posterior(): { mus: Float32Array; rhos: Float32Array } {
    const rhos = f32(Array.from({ length: 101 }, (_, k) => -50 + k));
    return { mus: f32(randomArray(rhos.length, 11, -1, 1)), rhos };
  }

  it('closed form, per element', async () => {
    const ctx = await context();
    const { mus, rhos } = posterior();
    const one = (i: number) => klGaussian(ctx.tensor(mus.subarray(i, i + 1), [1]), ctx.tensor(rhos.subarray(i, i + 1), [1]), { prior: GAUSSIAN });
    const got = await readScalars(ctx, Array.from(mus, (_, i) => one(i)));
    const want = klGaussianTermsRef(mus, rhos, GAUSSIAN);
    // Scale: the parts |log(sigma_p / sigma)| + (sigma^2 + d^2) / (2 sigma_p^2) + 1/2.
    const sigma = softplusRef(rhos);
    const scale = Float64Array.from(want, (_, i) => Math.abs(Math.log(GAUSSIAN.sigma / sigma[i])) + (sigma[i] ** 2 + mus[i] ** 2) / (2 * GAUSSIAN.sigma ** 2) + 0.5);
    // Tolerance 12 u: sigma (4 u) enters squared (8 u of that part), plus the log, the uniforms and 3 additions.
    // Measured: 3.0 u.
    expectUlps('klGaussian terms', got, want, scale, 12, rhos);
  });

  it('closed-form gradients', async () => {
    const ctx = await context();
    const rhos = rhoGrid();
    const mus = f32(randomArray(rhos.length, 12, -1, 1));
    const n = rhos.length;
    const dMu = ctx.zeros([n]);
    const dRho = ctx.zeros([n]);
    klGaussianBackwardInto(ctx.tensor(mus, [n]), ctx.tensor(rhos, [n]), dMu, dRho, { prior: GAUSSIAN, scale: 1 });
    const g = klGaussianBackwardRef(mus, rhos, GAUSSIAN);
    const sigma = softplusRef(rhos);
    const vp = GAUSSIAN.sigma ** 2;
    // dRho = sigma sigmoid(rho) / sigma_p^2 - sigmoid(rho) / sigma: scale is the sum of the two parts' magnitudes.
    const rhoScale = Float64Array.from(rhos, (r, i) => (sigma[i] * sigmoidRef(r)) / vp + sigmoidRef(r) / sigma[i]);
    // Tolerance 12 u: each part is a product of sigma (4 u), sigmoid (4 u) and a constant, then one subtraction.
    // (Before common.wgsl's log1p_unit: 19 u at rho = -2.85, from log(1 + e^rho) near 1; measured now: 5.5 u, dMu 1.0 u.)
    expectUlps('klGaussianBackward dRho', await dRho.read(), g.dRho, rhoScale, 12, rhos);
    expectUlps('klGaussianBackward dMu', await dMu.read(), g.dMu, Float64Array.from(g.dMu, Math.abs), 4, rhos);
  });

  for (const [name, prior] of [['Gaussian', GAUSSIAN], ['Blundell mixture', BLUNDELL]] as [string, PriorRef][]) {
    it(`Monte Carlo terms and gradients on the same samples, ${name} prior`, async () => {
      const ctx = await context();
      const { mus, rhos } = posterior();
      const n = mus.length;
      const samples = 2;
      const key = { seed: 5, step: 3, stream: 2 };
      const mu = ctx.tensor(mus, [n]);
      const rho = ctx.tensor(rhos, [n]);
      const w = sampleWeights(mu, rho, { key, samples });
      const ws = await w.read();
      const eps = await drawNormal(ctx, [samples * n], { key }).read();
      // Per element: the KL of element i alone, from its own samples (columns i of w).
      const one = (i: number) => {
        const wi = ctx.tensor(Float32Array.from({ length: samples }, (_, s) => ws[s * n + i]), [samples, 1]);
        return klMonteCarlo(wi, ctx.tensor(mus.subarray(i, i + 1), [1]), ctx.tensor(rhos.subarray(i, i + 1), [1]), { prior: prior as MixturePrior });
      };
      const got = await readScalars(ctx, Array.from(mus, (_, i) => one(i)));
      const sigma = softplusRef(rhos);
      const logNormal = (x: number, m: number, s: number) => -Math.log(s) - 0.5 * Math.log(2 * Math.PI) - (x - m) ** 2 / (2 * s * s);
      const want = new Float64Array(n);
      const scale = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        for (let s = 0; s < samples; s++) {
          const x = ws[s * n + i];
          want[i] += (logNormal(x, mus[i], sigma[i]) - logPriorRef(x, prior)) / samples;
          scale[i] += (Math.abs(Math.log(sigma[i])) + ((x - mus[i]) / sigma[i]) ** 2 + Math.abs(logPriorRef(x, prior))) / samples;
        }
      }
      // Tolerance 16 u of the parts (|log sigma|, z^2, |log p|): as in kl.test.ts. Measured: <= 2.2 u.
      expectUlps(`klMonteCarlo terms, ${name}`, got, want, scale, 16, rhos);

      const dMu = ctx.zeros([n]);
      const dRho = ctx.zeros([n]);
      klMonteCarloBackwardInto(w, mu, rho, dMu, dRho, { prior: prior as MixturePrior, key, scale: 1 });
      // Reference: the path derivative in float64 (along w = mu + sigma eps, log q = -log sigma - eps^2 / 2 -
      // log sqrt(2 pi), so d/dmu = -mean_s p'(w)/p(w) and d/dsigma = mean_s(-p'(w)/p(w) eps) - 1/sigma), with
      // dLogPriorRef at the f32 samples. (klMonteCarloBackwardRef's unsimplified chain rule forms w - mu from
      // the f32 sample: at sigma = 2e-22 that is 0 or an ulp of mu, which its d^2 / sigma^3 makes 1e50.)
      const grad = { dMu: new Float64Array(n), dRho: new Float64Array(n) };
      const muScale = new Float64Array(n);
      const rhoScale = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let dSigma = -1 / sigma[i];
        for (let s = 0; s < samples; s++) {
          const x = ws[s * n + i];
          const dp = dLogPriorRef(x, prior);
          grad.dMu[i] -= dp / samples;
          dSigma -= (dp * eps[s * n + i]) / samples;
          muScale[i] += dLogPriorParts(x, prior) / samples;
          rhoScale[i] += (dLogPriorParts(x, prior) * Math.abs(eps[s * n + i]) * sigmoidRef(rhos[i])) / samples;
        }
        grad.dRho[i] = dSigma * sigmoidRef(rhos[i]);
        rhoScale[i] += sigmoidRef(rhos[i]) / sigma[i];
      }
      // Tolerance 16 u: the responsibilities, the eps-weighted sum of S terms and sigma's 4 u. Measured: <= 3.1 u.
      expectUlps(`klMonteCarloBackward dRho, ${name}`, await dRho.read(), grad.dRho, rhoScale, 16, rhos);
      expectUlps(`klMonteCarloBackward dMu, ${name}`, await dMu.read(), grad.dMu, muScale, 16, rhos);
    });
  }
});

/** |w - mu_p| (1 / sigma1^2 + 1 / sigma2^2): the magnitude of the parts of d log p / dw (responsibilities <= 1). */
function dLogPriorParts(w: number, prior: PriorRef): number {
  if ('pi' in prior) return Math.abs(w) * (1 / prior.sigma1 ** 2 + 1 / prior.sigma2 ** 2);
  return Math.abs(w - prior.mu) / prior.sigma ** 2;
}
