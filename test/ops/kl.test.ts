import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { type GaussianPrior, type MixturePrior, klGaussian, klGaussianBackwardInto, klGaussianTensor, klGaussianTensorBackwardInto, klMonteCarlo, klMonteCarloBackwardInto } from '../../src/ops/kl.js';
import { SUM_SPLIT_ABOVE, sumRoundingDepth } from '../../src/ops/reduce.js';
import { drawNormal, sampleWeights } from '../../src/ops/sample.js';
import { context, expectClose, numericGradient, randomArray } from '../helpers.js';
import { softplusRef } from '../reference/activation.js';
import { sampleWeightsRef } from '../reference/sample.js';
import {
  type PriorRef, klGaussianBackwardRef, klGaussianRef, klGaussianTensorBackwardRef, klGaussianTensorRef, klGaussianTensorTermsRef, klGaussianTermsRef,
  klMonteCarloBackwardRef, klMonteCarloPathRef, klMonteCarloRef, logPriorRef,
} from '../reference/kl.js';

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const U = 2 ** -24;

/** Rounding bound of the GPU sum of n terms (times `scale`) relative to sum |term| (see reduce.test.ts). */
function reductionBound(n: number, scale = 1): number {
  return sumRoundingDepth({ reduceA: n }, { scale }) * U;
}

/**
 * Parameters in the range where common.wgsl's softplus is accurate to 2.2e-6 relative (rho >= -4,
 * measured on SwiftShader; below, its log(1 + exp(rho)) loses relative accuracy, see the report).
 */
function posterior(n: number, seed: number, rhoLo = -4, rhoHi = 1): { mus: Float32Array; rhos: Float32Array } {
  return { mus: f32(randomArray(n, seed, -0.3, 0.3)), rhos: f32(randomArray(n, seed + 1, rhoLo, rhoHi)) };
}

const GAUSSIAN: GaussianPrior = { mu: 0.05, sigma: 0.1 };
// Blundell et al. 2015 use pi in {1/4, 1/2, 3/4}, -log sigma1 in {0, 1, 2}, -log sigma2 in {6, 7, 8}.
const MIXTURES: MixturePrior[] = [
  { pi: 0.5, sigma1: 1, sigma2: Math.exp(-7) },
  { pi: 0.25, sigma1: Math.exp(-1), sigma2: Math.exp(-6) },
  { pi: 1, sigma1: 0.3, sigma2: 1e-3 },
  { pi: 0, sigma1: 0.3, sigma2: 0.05 },
];

async function gaussianKl(ctx: Context, mus: Float32Array, rhos: Float32Array, prior: GaussianPrior): Promise<number> {
  const n = mus.length;
  return (await klGaussian(ctx.tensor(mus, [n]), ctx.tensor(rhos, [n]), { prior }).read())[0];
}

describe('klGaussian (closed form, reduced on the GPU)', () => {
  for (const n of [1, 7, 1000, 100_003]) {
    it(`matches float64, n=${n}`, async () => {
      const ctx = await context();
      const { mus, rhos } = posterior(n, n);
      const got = await gaussianKl(ctx, mus, rhos, GAUSSIAN);
      const want = klGaussianRef(mus, rhos, GAUSSIAN);
      // Condition scale: sum of the magnitudes of each term's parts.
      const sigma = softplusRef(rhos);
      let scale = 0;
      for (let i = 0; i < n; i++) scale += Math.abs(Math.log(GAUSSIAN.sigma / sigma[i])) + (sigma[i] ** 2 + (mus[i] - GAUSSIAN.mu) ** 2) / (2 * GAUSSIAN.sigma ** 2) + 0.5;
      // Tolerance relative to that scale: sigma from f32 softplus is within 2.2e-6 (doubled in sigma^2),
      // a few more ulp for log, squares and the uniforms, plus the reduction's rounding bound.
      // (Measured: 1.6e-7 at n = 1, 6e-8 at n = 100003.)
      expect(Math.abs(got - want)).toBeLessThanOrEqual((5e-6 + 8 * U + reductionBound(n)) * scale);
    });
  }

  it('stays finite and accurate where sigma underflows or rho is large (rho = -90, -30, -16, 25)', async () => {
    const ctx = await context();
    const mus = f32([0, 0.1, -0.2, 0.5]);
    const rhos = f32([-90, -30, -16, 25]);
    const prior = { mu: 0, sigma: 1 };
    const got = await gaussianKl(ctx, mus, rhos, prior);
    const want = klGaussianTermsRef(mus, rhos, prior);
    // Per element: rho = -90 gives log(1 / e^-90) - 1/2 = 89.5 although sigma = 8e-40 is 0 in f32.
    for (let i = 0; i < 4; i++) {
      const one = await gaussianKl(ctx, mus.subarray(i, i + 1), rhos.subarray(i, i + 1), prior);
      // Tolerance 1e-6 relative: exact branches of softplus and its log in this range, f32 rounding.
      expect(Math.abs(one - want[i]) / Math.abs(want[i]), `rho = ${rhos[i]}`).toBeLessThan(1e-6);
    }
    expect(Math.abs(got - want.reduce((a, b) => a + b)) / Math.abs(got)).toBeLessThan(1e-6);
  });

  for (const n of [1, 7, 1000]) {
    it(`backward adds scale * dKL into dMu and dRho in place, vs float64, n=${n}`, async () => {
      const ctx = await context();
      const { mus, rhos } = posterior(n, 3 * n);
      const dMu0 = f32(randomArray(n, 5 * n));
      const dRho0 = f32(randomArray(n, 5 * n + 1));
      const dMu = ctx.tensor(dMu0, [n]);
      const dRho = ctx.tensor(dRho0, [n]);
      const scale = 0.37;
      klGaussianBackwardInto(ctx.tensor(mus, [n]), ctx.tensor(rhos, [n]), dMu, dRho, { prior: GAUSSIAN, scale });
      const g = klGaussianBackwardRef(mus, rhos, GAUSSIAN);
      // dMu: 1e-6 of the largest entry, a few f32 roundings (measured 1e-7..3e-7). dRho: 5e-6, because
      // sigma from f32 softplus is within 2.2e-6 relative and enters both sigma / sigma_p^2 and 1 / sigma
      // (measured 3e-7..1e-6).
      expectClose(await dMu.read(), Float64Array.from(g.dMu, (v, i) => dMu0[i] + scale * v), 1e-6, 'dMu');
      expectClose(await dRho.read(), Float64Array.from(g.dRho, (v, i) => dRho0[i] + scale * v), 5e-6, 'dRho');
    });
  }

  it('reference backward equals central finite differences', () => {
    const mus = randomArray(9, 1, -0.3, 0.3);
    const rhos = randomArray(9, 2, -4, 1);
    const g = klGaussianBackwardRef(mus, rhos, GAUSSIAN);
    // Tolerance 1e-7: O(h^2) central differences with h = 1e-5 on a smooth function.
    expectClose(g.dMu, numericGradient((m) => klGaussianRef(m, rhos, GAUSSIAN), Float64Array.from(mus)), 1e-7, 'dMu fd');
    expectClose(g.dRho, numericGradient((r) => klGaussianRef(mus, r, GAUSSIAN), Float64Array.from(rhos)), 1e-7, 'dRho fd');
  });
});

describe('klMonteCarlo (any prior, from weight samples)', () => {
  it('with a Gaussian prior converges to the closed form (S = 2000, within 5 standard errors)', async () => {
    const ctx = await context();
    const n = 12;
    const samples = 2000;
    const { mus, rhos } = posterior(n, 77, -3, 0);
    const mu = ctx.tensor(mus, [n]);
    const rho = ctx.tensor(rhos, [n]);
    const w = sampleWeights(mu, rho, { key: { seed: 9, step: 1, stream: 3 }, samples });
    const got = (await klMonteCarlo(w, mu, rho, { prior: GAUSSIAN }).read())[0];
    const want = klGaussianRef(mus, rhos, GAUSSIAN);
    // With w = mu + sigma eps, one sample's term is const + b eps + a eps^2 with a = sigma^2 / (2 sigma_p^2) - 1/2
    // and b = sigma (mu - mu_p) / sigma_p^2, so its variance is b^2 + 2 a^2 (Var eps^2 = 2, Cov(eps, eps^2) = 0).
    const sigma = softplusRef(rhos);
    let variance = 0;
    for (let i = 0; i < n; i++) {
      const a = sigma[i] ** 2 / (2 * GAUSSIAN.sigma ** 2) - 0.5;
      const b = (sigma[i] * (mus[i] - GAUSSIAN.mu)) / GAUSSIAN.sigma ** 2;
      variance += b * b + 2 * a * a;
    }
    const se = Math.sqrt(variance / samples);
    expect(Math.abs(got - want)).toBeLessThan(5 * se);
  });

  const priors: [string, PriorRef][] = [['Gaussian', GAUSSIAN], ...MIXTURES.map((m): [string, PriorRef] => [`mixture ${JSON.stringify(m)}`, m])];
  for (const [name, prior] of priors) {
    it(`log q - log p matches float64 on the same samples, ${name}`, async () => {
      const ctx = await context();
      const n = 257;
      const samples = 3;
      const { mus, rhos } = posterior(n, 11, -3, 0);
      const mu = ctx.tensor(mus, [n]);
      const rho = ctx.tensor(rhos, [n]);
      const w = sampleWeights(mu, rho, { key: { seed: 1, step: 2, stream: 3 }, samples });
      const ws = await w.read();
      const got = (await klMonteCarlo(w, mu, rho, { prior }).read())[0];
      const want = klMonteCarloRef(ws, mus, rhos, prior);
      let scale = 0;
      for (let j = 0; j < ws.length; j++) scale += (Math.abs(Math.log(softplusRef([rhos[j % n]])[0])) + Math.abs(logPriorRef(ws[j], prior)) + ((ws[j] - mus[j % n]) / softplusRef([rhos[j % n]])[0]) ** 2) / samples;
      // Tolerance relative to the sum of the parts' magnitudes (|log sigma|, z^2, |log p|): each part is a
      // handful of f32 operations on f32 inputs (<= 16 ulp), plus the reduction bound. Measured <= 4e-8.
      expect(Math.abs(got - want)).toBeLessThanOrEqual((16 * U + reductionBound(ws.length, 1 / samples)) * scale);
    });
  }

  it('the mixture log-sum-exp stays finite when both component densities underflow', async () => {
    const ctx = await context();
    // sigma1 = 1e-3, sigma2 = 1e-4 and |w| ~ 1: both densities are exp(-5e5) = 0 even in float64;
    // exp-then-log would give -Infinity.
    const prior = { pi: 0.5, sigma1: 1e-3, sigma2: 1e-4 };
    const mus = f32([1, -0.7, 0.4]);
    const rhos = f32([-3, -2, -4]);
    const mu = ctx.tensor(mus, [3]);
    const rho = ctx.tensor(rhos, [3]);
    const w = sampleWeights(mu, rho, { key: { seed: 4, step: 4, stream: 4 }, samples: 2 });
    const got = (await klMonteCarlo(w, mu, rho, { prior }).read())[0];
    const want = klMonteCarloRef(await w.read(), mus, rhos, prior);
    expect(Number.isFinite(got)).toBe(true);
    // Tolerance 1e-6: the terms are ~2.5e5, dominated by (w / sigma1)^2 / 2, computed to a few f32 ulp.
    expect(Math.abs(got - want) / Math.abs(want)).toBeLessThan(1e-6);
  });
});

describe('klMonteCarloBackwardInto', () => {
  for (const [name, prior] of [['Gaussian', GAUSSIAN], ['mixture', MIXTURES[0]], ['mixture', MIXTURES[1]], ['mixture pi=0', MIXTURES[3]]] as [string, PriorRef][]) {
    it(`GPU equals the float64 chain rule on the same samples and eps, ${name} ${JSON.stringify(prior)}`, async () => {
      const ctx = await context();
      const n = 37;
      const samples = 4;
      const key = { seed: 21, step: 8, stream: 6 };
      const { mus, rhos } = posterior(n, 19, -3, 0);
      const mu = ctx.tensor(mus, [n]);
      const rho = ctx.tensor(rhos, [n]);
      const w = sampleWeights(mu, rho, { key, samples });
      const eps = await drawNormal(ctx, [samples * n], { key }).read();
      const dMu0 = f32(randomArray(n, 1));
      const dRho0 = f32(randomArray(n, 2));
      const dMu = ctx.tensor(dMu0, [n]);
      const dRho = ctx.tensor(dRho0, [n]);
      const scale = 0.5;
      klMonteCarloBackwardInto(w, mu, rho, dMu, dRho, { prior: prior as MixturePrior | GaussianPrior, key, scale });
      const g = klMonteCarloBackwardRef(await w.read(), eps, mus, rhos, prior);
      // Tolerance 5e-6 of the largest entry: sigma from f32 softplus is within 2.2e-6 relative (it scales
      // the 1 / sigma term), the reference recomputes w - mu from the f32 w, plus f32 rounding of the
      // responsibilities and the S-term sums. Measured <= 3e-7.
      expectClose(await dMu.read(), Float64Array.from(g.dMu, (v, i) => dMu0[i] + scale * v), 5e-6, 'dMu');
      expectClose(await dRho.read(), Float64Array.from(g.dRho, (v, i) => dRho0[i] + scale * v), 5e-6, 'dRho');
    });
  }

  for (const [name, prior] of [['Gaussian', GAUSSIAN], ['mixture', { pi: 0.3, sigma1: 0.8, sigma2: 0.05 }]] as [string, PriorRef][]) {
    it(`reference gradient equals central finite differences with eps fixed, ${name}`, () => {
      const n = 5;
      const mus = randomArray(n, 3, -0.3, 0.3);
      const rhos = randomArray(n, 4, -3, 0);
      const eps = randomArray(3 * n, 5, -2, 2);
      const w = sampleWeightsRef(mus, rhos, eps);
      const g = klMonteCarloBackwardRef(w, eps, mus, rhos, prior);
      // Tolerance 1e-6: O(h^2) central differences with h = 1e-5; the mixture's curvature is up to 1 / sigma2^2 = 400.
      expectClose(g.dMu, numericGradient((m) => klMonteCarloPathRef(m, rhos, eps, prior), Float64Array.from(mus)), 1e-6, 'dMu fd');
      expectClose(g.dRho, numericGradient((r) => klMonteCarloPathRef(mus, r, eps, prior), Float64Array.from(rhos)), 1e-6, 'dRho fd');
    });
  }
});

describe('KL: bad input is rejected before GPU work', () => {
  it('shape mismatches, disposed tensors, invalid keys, bad priors and aliased gradients', async () => {
    const ctx = await context();
    const key = { seed: 1, step: 1, stream: 1 };
    const mu = ctx.zeros([2, 3]);
    const rho = ctx.zeros([2, 3]);
    const w = ctx.zeros([4, 2, 3]);
    const dMu = ctx.zeros([2, 3]);
    const dRho = ctx.zeros([2, 3]);
    const flat = ctx.zeros([6]);
    const wrongW = ctx.zeros([4, 3, 2]);
    const rhoView = rho.reshape([2, 3]);
    const muI32 = ctx.zeros([2, 3], 'i32');
    const dead = ctx.zeros([2, 3]);
    dead.dispose();
    const mix = { pi: 0.5, sigma1: 1, sigma2: 0.01 };
    const before = ctx.memory().liveTensors;

    expect(() => klGaussian(mu, flat, { prior: GAUSSIAN })).toThrow(/klGaussian: argument 'rho' expected shape \[2, 3\] \(the shape of mu\), got \[6\]/);
    expect(() => klGaussianBackwardInto(mu, rho, flat, dRho, { prior: GAUSSIAN, scale: 1 })).toThrow(/klGaussianBackwardInto: argument 'dMu' expected shape \[2, 3\]/);
    expect(() => klMonteCarlo(flat, mu, rho, { prior: mix })).toThrow(/klMonteCarlo: argument 'w' expected shape \[S, 2, 3\]/);
    expect(() => klMonteCarlo(wrongW, mu, rho, { prior: mix })).toThrow(/klMonteCarlo: argument 'w' expected shape \[S, 2, 3\]/);
    expect(() => klMonteCarloBackwardInto(w, mu, rho, dMu, flat, { prior: mix, key, scale: 1 })).toThrow(/klMonteCarloBackwardInto: argument 'dRho' expected shape \[2, 3\]/);

    // Priors.
    expect(() => klGaussian(mu, rho, { prior: { mu: 0, sigma: 0 } })).toThrow(/klGaussian: argument 'prior.sigma' expected a finite number > 0/);
    expect(() => klGaussian(mu, rho, { prior: { mu: 0, sigma: -0.1 } })).toThrow(/argument 'prior.sigma'/);
    expect(() => klGaussian(mu, rho, { prior: { mu: 0, sigma: 1e-30 } })).toThrow(/argument 'prior.sigma' expected a finite number > 0 whose 1\/sigma\^2 fits in f32/);
    expect(() => klGaussian(mu, rho, { prior: { mu: NaN, sigma: 1 } })).toThrow(/klGaussian: argument 'prior.mu' expected a finite number, got NaN/);
    expect(() => klGaussian(mu, rho, { prior: mix as never })).toThrow(/klGaussian: argument 'prior' expected a Gaussian prior \{ mu, sigma \}/);
    expect(() => klGaussian(mu, rho, { prior: null as never })).toThrow(/klGaussian: argument 'prior'/);
    expect(() => klMonteCarlo(w, mu, rho, { prior: { pi: 1.5, sigma1: 1, sigma2: 0.1 } })).toThrow(/klMonteCarlo: argument 'prior.pi' expected a number in \[0, 1\], got 1.5/);
    expect(() => klMonteCarlo(w, mu, rho, { prior: { pi: -0.1, sigma1: 1, sigma2: 0.1 } })).toThrow(/argument 'prior.pi'/);
    expect(() => klMonteCarlo(w, mu, rho, { prior: { pi: NaN, sigma1: 1, sigma2: 0.1 } })).toThrow(/argument 'prior.pi'/);
    expect(() => klMonteCarlo(w, mu, rho, { prior: { pi: 0.5, sigma1: 0, sigma2: 0.1 } })).toThrow(/klMonteCarlo: argument 'prior.sigma1' expected a finite number > 0/);
    expect(() => klMonteCarlo(w, mu, rho, { prior: { pi: 0.5, sigma1: 1, sigma2: Infinity } })).toThrow(/argument 'prior.sigma2'/);
    expect(() => klMonteCarlo(w, mu, rho, { prior: { sigma1: 1 } as never })).toThrow(/klMonteCarlo: argument 'prior' expected a Gaussian prior \{ mu, sigma \} or a scale mixture/);
    expect(() => klMonteCarloBackwardInto(w, mu, rho, dMu, dRho, { prior: { mu: 0, sigma: -1 }, key, scale: 1 })).toThrow(/klMonteCarloBackwardInto: argument 'prior.sigma'/);

    // Keys, scale, aliasing, dtype.
    expect(() => klMonteCarloBackwardInto(w, mu, rho, dMu, dRho, { prior: mix, key: { seed: -1, step: 0, stream: 0 }, scale: 1 })).toThrow(/klMonteCarloBackwardInto: argument 'key.seed' expected an integer >= 0/);
    expect(() => klMonteCarloBackwardInto(w, mu, rho, dMu, dRho, { prior: mix, key: null as never, scale: 1 })).toThrow(/klMonteCarloBackwardInto: argument 'key'/);
    expect(() => klMonteCarloBackwardInto(w, mu, rho, dMu, dRho, { prior: mix, key, scale: NaN })).toThrow(/klMonteCarloBackwardInto: argument 'scale' expected a finite number, got NaN/);
    expect(() => klGaussianBackwardInto(mu, rho, dMu, dRho, { prior: GAUSSIAN, scale: Infinity })).toThrow(/klGaussianBackwardInto: argument 'scale'/);
    expect(() => klGaussianBackwardInto(mu, rho, mu, dRho, { prior: GAUSSIAN, scale: 1 })).toThrow(/klGaussianBackwardInto: argument 'dMu' expected a tensor that does not share mu's buffer/);
    expect(() => klGaussianBackwardInto(mu, rho, dMu, dMu, { prior: GAUSSIAN, scale: 1 })).toThrow(/argument 'dMu' expected a tensor that does not share dRho's buffer/);
    expect(() => klMonteCarloBackwardInto(w, mu, rho, dMu, rhoView, { prior: mix, key, scale: 1 })).toThrow(/argument 'dRho' expected a tensor that does not share rho's buffer/);
    expect(() => klGaussian(muI32, rho, { prior: GAUSSIAN })).toThrow(/klGaussian: argument 'mu' expected a tensor of dtype 'f32', got "i32"/);

    // Disposed tensors.
    expect(() => klGaussian(dead, rho, { prior: GAUSSIAN })).toThrow(/klGaussian: argument 'mu' is a disposed tensor/);
    expect(() => klGaussianBackwardInto(mu, rho, dMu, dead, { prior: GAUSSIAN, scale: 1 })).toThrow(/klGaussianBackwardInto: argument 'dRho' is a disposed tensor/);
    expect(() => klMonteCarlo(w, mu, dead, { prior: mix })).toThrow(/klMonteCarlo: argument 'rho' is a disposed tensor/);
    expect(() => klMonteCarloBackwardInto(w, dead, rho, dMu, dRho, { prior: mix, key, scale: 1 })).toThrow(/klMonteCarloBackwardInto: argument 'mu' is a disposed tensor/);

    // The failed calls allocated nothing.
    expect(ctx.memory().liveTensors).toBe(before);
  });

  it('klGaussian and klMonteCarlo free their per-element terms', async () => {
    const ctx = await context();
    const n = 3 * SUM_SPLIT_ABOVE + 1;
    const mu = ctx.zeros([n]);
    const rho = ctx.zeros([n]);
    const w = ctx.zeros([2, n]);
    const before = ctx.memory().liveTensors;
    const a = klGaussian(mu, rho, { prior: GAUSSIAN });
    const b = klMonteCarlo(w, mu, rho, { prior: MIXTURES[0] });
    expect(ctx.memory().liveTensors).toBe(before + 2);
    expect(Number.isFinite((await a.read())[0] + (await b.read())[0])).toBe(true);
  });
});

describe('klGaussianTensor (a Gaussian prior of its own per element, closed form)', () => {
  /** A prior centred near the posterior (as MOPED's, Krishnan et al. 2020) with sigma_p in [1e-3, 0.5]. */
  function elementPrior(n: number, seed: number, mus: Float32Array): { pMu: Float32Array; pSigma: Float32Array } {
    const shift = randomArray(n, seed, -0.05, 0.05);
    return { pMu: f32(Array.from(mus, (m, i) => m + shift[i])), pSigma: f32(randomArray(n, seed + 1, 0, 1).map((u) => Math.exp(Math.log(1e-3) + u * Math.log(500)))) };
  }

  for (const n of [1, 7, 1000, 100_003]) {
    it(`matches float64, n=${n}`, async () => {
      const ctx = await context();
      const { mus, rhos } = posterior(n, 2 * n + 5, -8, 0);
      const { pMu, pSigma } = elementPrior(n, n + 9, mus);
      const got = (await klGaussianTensor(ctx.tensor(mus, [n]), ctx.tensor(rhos, [n]), ctx.tensor(pMu, [n]), ctx.tensor(pSigma, [n])).read())[0];
      const want = klGaussianTensorRef(mus, rhos, pMu, pSigma);
      const sigma = softplusRef(rhos);
      let scale = 0;
      for (let i = 0; i < n; i++) scale += Math.abs(Math.log(pSigma[i] / sigma[i])) + (sigma[i] ** 2 + (mus[i] - pMu[i]) ** 2) / (2 * pSigma[i] ** 2) + 0.5;
      // As for klGaussian: sigma from f32 softplus within 2.2e-6 relative (doubled in sigma^2, rho >= -8 here
      // is in its accurate range), a few ulp for the ratios, log and squares, and the reduction's bound.
      expect(Math.abs(got - want)).toBeLessThanOrEqual((5e-6 + 8 * U + reductionBound(n)) * scale);
    });
  }

  it('with every element at one prior equals klGaussian with that scalar prior', async () => {
    const ctx = await context();
    const n = 513;
    const { mus, rhos } = posterior(n, 41);
    const mu = ctx.tensor(mus, [n]);
    const rho = ctx.tensor(rhos, [n]);
    const tensorKl = (await klGaussianTensor(mu, rho, ctx.tensor(new Float32Array(n).fill(GAUSSIAN.mu), [n]), ctx.tensor(new Float32Array(n).fill(GAUSSIAN.sigma), [n])).read())[0];
    const scalarKl = await gaussianKl(ctx, mus, rhos, GAUSSIAN);
    // Two f32 evaluations of one formula (ratios vs 1 / sigma_p^2): a few ulp per term, the same reduction.
    expect(Math.abs(tensorKl - scalarKl)).toBeLessThanOrEqual(1e-6 * Math.abs(scalarKl) + 1e-6);
  });

  it('is 0 when the posterior equals the prior (MOPED at conversion), also for sigma_p = 1e-19', async () => {
    const ctx = await context();
    const mus = f32([0.3, -0.02, 0, 1e-6]);
    const pSigma = f32([0.03, 0.002, 1e-19, 1e-7]);
    // rho with softplus(rho) = sigma_p in float64, rounded to f32.
    const rhos = f32(Array.from(pSigma, (s) => s + Math.log(-Math.expm1(-s))));
    const terms = klGaussianTensorTermsRef(mus, rhos, mus, pSigma);
    for (let i = 0; i < 4; i++) {
      const one = (await klGaussianTensor(ctx.tensor(mus.subarray(i, i + 1), [1]), ctx.tensor(rhos.subarray(i, i + 1), [1]), ctx.tensor(mus.subarray(i, i + 1), [1]), ctx.tensor(pSigma.subarray(i, i + 1), [1])).read())[0];
      // The reference of the rounded rho is ~1e-14; the f32 ratio sigma / sigma_p is 1 within a few ulp, so
      // the term is 0 within 1e-5 (its log and square each round to about 2^-24 of 1).
      expect(Number.isFinite(one), `sigma_p = ${pSigma[i]}`).toBe(true);
      expect(Math.abs(one - terms[i]), `sigma_p = ${pSigma[i]}`).toBeLessThan(1e-5);
    }
  });

  for (const n of [1, 7, 1000]) {
    it(`backward adds scale * dKL into dMu and dRho in place, vs float64, n=${n}`, async () => {
      const ctx = await context();
      const { mus, rhos } = posterior(n, 7 * n);
      const { pMu, pSigma } = elementPrior(n, 11 * n, mus);
      const dMu0 = f32(randomArray(n, 5 * n));
      const dRho0 = f32(randomArray(n, 5 * n + 1));
      const dMu = ctx.tensor(dMu0, [n]);
      const dRho = ctx.tensor(dRho0, [n]);
      const scale = 0.37;
      klGaussianTensorBackwardInto(ctx.tensor(mus, [n]), ctx.tensor(rhos, [n]), ctx.tensor(pMu, [n]), ctx.tensor(pSigma, [n]), dMu, dRho, { scale });
      const g = klGaussianTensorBackwardRef(mus, rhos, pMu, pSigma);
      // The tolerances of klGaussianBackwardInto: dMu a few f32 roundings, dRho 5e-6 for f32 softplus.
      expectClose(await dMu.read(), Float64Array.from(g.dMu, (v, i) => dMu0[i] + scale * v), 1e-6, 'dMu');
      expectClose(await dRho.read(), Float64Array.from(g.dRho, (v, i) => dRho0[i] + scale * v), 5e-6, 'dRho');
    });
  }

  it('reference backward equals central finite differences', () => {
    const mus = randomArray(9, 3, -0.3, 0.3);
    const rhos = randomArray(9, 4, -4, 1);
    const pMu = randomArray(9, 5, -0.3, 0.3);
    const pSigma = randomArray(9, 6, 0.05, 0.5);
    const g = klGaussianTensorBackwardRef(mus, rhos, pMu, pSigma);
    // O(h^2) central differences with h = 1e-5 on a smooth function (sigma_p >= 0.05 keeps the curvature small).
    expectClose(g.dMu, numericGradient((m) => klGaussianTensorRef(m, rhos, pMu, pSigma), Float64Array.from(mus)), 1e-7, 'dMu fd');
    expectClose(g.dRho, numericGradient((r) => klGaussianTensorRef(mus, r, pMu, pSigma), Float64Array.from(rhos)), 1e-7, 'dRho fd');
  });

  it('refuses missing or mis-shaped prior tensors and aliased gradients by name, before any GPU work', async () => {
    const ctx = await context();
    const mu = ctx.tensor(f32([0.1, 0.2]), [2]);
    const rho = ctx.tensor(f32([-3, -3]), [2]);
    const pMu = ctx.tensor(f32([0, 0]), [2]);
    const pSigma = ctx.tensor(f32([0.1, 0.1]), [2]);
    expect(() => klGaussianTensor(mu, rho, null as unknown as typeof pMu, pSigma)).toThrow(/klGaussianTensor: argument 'priorMu'/);
    expect(() => klGaussianTensor(mu, rho, pMu, ctx.tensor(f32([0.1, 0.1, 0.1]), [3]))).toThrow(/klGaussianTensor: argument 'priorSigma'/);
    const dMu = ctx.tensor(f32([0, 0]), [2]);
    expect(() => klGaussianTensorBackwardInto(mu, rho, pMu, pSigma, dMu, pSigma, { scale: 1 })).toThrow(/klGaussianTensorBackwardInto: argument 'dRho'/);
  });
});
