/**
 * float64 references for KL(q || p), q = N(mu, sigma^2) with sigma = softplus(rho), against a
 * Gaussian prior (closed form) or Blundell et al.'s scale mixture (Monte Carlo, eq. 2 and 7).
 * Full log densities (with their log sqrt(2 pi)) and the unsimplified chain rule, so that they
 * check the simplifications the shader makes rather than repeat them.
 */
import { sigmoidRef, softplusRef } from './activation.js';
import { sampleWeightsRef } from './sample.js';

export type PriorRef = { mu: number; sigma: number } | { pi: number; sigma1: number; sigma2: number };

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

const logNormal = (w: number, mean: number, sigma: number) => -Math.log(sigma) - LOG_SQRT_2PI - (w - mean) ** 2 / (2 * sigma * sigma);

/** The prior as weighted components [weight, mean, sigma]. */
function components(prior: PriorRef): [number, number, number][] {
  if ('pi' in prior) return [[prior.pi, 0, prior.sigma1], [1 - prior.pi, 0, prior.sigma2]];
  return [[1, prior.mu, prior.sigma]];
}

/** log p(w), a log-sum-exp over the components so that it stays finite when every density underflows. */
export function logPriorRef(w: number, prior: PriorRef): number {
  const a = components(prior).filter(([weight]) => weight > 0).map(([weight, mean, sigma]) => Math.log(weight) + logNormal(w, mean, sigma));
  const m = Math.max(...a);
  return m + Math.log(a.reduce((s, v) => s + Math.exp(v - m), 0));
}

/** d log p / dw = sum_k r_k * (-(w - mean_k) / sigma_k^2) with responsibilities r_k = weight_k N_k / p. */
export function dLogPriorRef(w: number, prior: PriorRef): number {
  const lp = logPriorRef(w, prior);
  let g = 0;
  for (const [weight, mean, sigma] of components(prior)) {
    if (weight === 0) continue;
    const r = Math.exp(Math.log(weight) + logNormal(w, mean, sigma) - lp);
    g += (r * -(w - mean)) / (sigma * sigma);
  }
  return g;
}

/** Closed-form KL(q || p) per element: log(sigma_p / sigma) + (sigma^2 + (mu - mu_p)^2) / (2 sigma_p^2) - 1/2. */
export function klGaussianTermsRef(mu: ArrayLike<number>, rho: ArrayLike<number>, prior: { mu: number; sigma: number }): Float64Array {
  const sigma = softplusRef(rho);
  return Float64Array.from(mu, (m, i) => Math.log(prior.sigma / sigma[i]) + (sigma[i] ** 2 + (m - prior.mu) ** 2) / (2 * prior.sigma ** 2) - 0.5);
}

export const klGaussianRef = (mu: ArrayLike<number>, rho: ArrayLike<number>, prior: { mu: number; sigma: number }) =>
  klGaussianTermsRef(mu, rho, prior).reduce((a, b) => a + b, 0);

/** dKL/dmu = (mu - mu_p) / sigma_p^2;  dKL/drho = (sigma / sigma_p^2 - 1 / sigma) * sigmoid(rho). */
export function klGaussianBackwardRef(mu: ArrayLike<number>, rho: ArrayLike<number>, prior: { mu: number; sigma: number }): { dMu: Float64Array; dRho: Float64Array } {
  const sigma = softplusRef(rho);
  const vp = prior.sigma ** 2;
  return {
    dMu: Float64Array.from(mu, (m) => (m - prior.mu) / vp),
    dRho: Float64Array.from(rho, (r, i) => (sigma[i] / vp - 1 / sigma[i]) * sigmoidRef(r)),
  };
}

/** mean over the S samples of sum_i [log q(w_si | mu_i, sigma_i) - log p(w_si)]; w is [S * n], sample-major. */
export function klMonteCarloRef(w: ArrayLike<number>, mu: ArrayLike<number>, rho: ArrayLike<number>, prior: PriorRef): number {
  const n = mu.length;
  const sigma = softplusRef(rho);
  let total = 0;
  for (let j = 0; j < w.length; j++) total += logNormal(w[j], mu[j % n], sigma[j % n]) - logPriorRef(w[j], prior);
  return total / (w.length / n);
}

/** The Monte Carlo KL as a function of (mu, rho) with eps fixed: w = mu + sigma * eps. */
export const klMonteCarloPathRef = (mu: ArrayLike<number>, rho: ArrayLike<number>, eps: ArrayLike<number>, prior: PriorRef) =>
  klMonteCarloRef(sampleWeightsRef(mu, rho, eps), mu, rho, prior);

/**
 * Gradient of klMonteCarloPathRef by the chain rule, unsimplified: for f(w, mu, sigma) = log q(w | mu, sigma)
 * - log p(w) and w = mu + sigma * eps, df/dmu = f_w + f_mu and df/dsigma = f_w * eps + f_sigma;
 * dsigma/drho = sigmoid(rho). `w` is the sample the GPU saw (for f_w), `eps` its noise.
 */
export function klMonteCarloBackwardRef(w: ArrayLike<number>, eps: ArrayLike<number>, mu: ArrayLike<number>, rho: ArrayLike<number>, prior: PriorRef): { dMu: Float64Array; dRho: Float64Array } {
  const n = mu.length;
  const samples = w.length / n;
  const sigma = softplusRef(rho);
  const dMu = new Float64Array(n);
  const dSigma = new Float64Array(n);
  for (let j = 0; j < w.length; j++) {
    const i = j % n;
    const d = w[j] - mu[i];
    const s = sigma[i];
    const fw = -d / (s * s) - dLogPriorRef(w[j], prior);
    const fMu = d / (s * s);
    const fSigma = -1 / s + (d * d) / (s * s * s);
    dMu[i] += (fw + fMu) / samples;
    dSigma[i] += (fw * eps[j] + fSigma) / samples;
  }
  return { dMu, dRho: Float64Array.from(dSigma, (g, i) => g * sigmoidRef(rho[i])) };
}

/**
 * Closed-form KL(q || p) per element against a prior of its own per element, N(priorMu[i], priorSigma[i]^2)
 * (the empirical-Bayes priors of Krishnan et al. 2020): as klGaussianTermsRef, written out again from the
 * definition, log(sigma_p / sigma) + (sigma^2 + (mu - mu_p)^2) / (2 sigma_p^2) - 1/2.
 */
export function klGaussianTensorTermsRef(mu: ArrayLike<number>, rho: ArrayLike<number>, priorMu: ArrayLike<number>, priorSigma: ArrayLike<number>): Float64Array {
  const sigma = softplusRef(rho);
  return Float64Array.from(mu, (m, i) => Math.log(priorSigma[i] / sigma[i]) + (sigma[i] ** 2 + (m - priorMu[i]) ** 2) / (2 * priorSigma[i] ** 2) - 0.5);
}

export const klGaussianTensorRef = (mu: ArrayLike<number>, rho: ArrayLike<number>, priorMu: ArrayLike<number>, priorSigma: ArrayLike<number>) =>
  klGaussianTensorTermsRef(mu, rho, priorMu, priorSigma).reduce((a, b) => a + b, 0);

/** dKL/dmu = (mu - mu_p) / sigma_p^2;  dKL/drho = (sigma / sigma_p^2 - 1 / sigma) * sigmoid(rho), per element. */
export function klGaussianTensorBackwardRef(mu: ArrayLike<number>, rho: ArrayLike<number>, priorMu: ArrayLike<number>, priorSigma: ArrayLike<number>): { dMu: Float64Array; dRho: Float64Array } {
  const sigma = softplusRef(rho);
  return {
    dMu: Float64Array.from(mu, (m, i) => (m - priorMu[i]) / priorSigma[i] ** 2),
    dRho: Float64Array.from(rho, (r, i) => (sigma[i] / priorSigma[i] ** 2 - 1 / sigma[i]) * sigmoidRef(r)),
  };
}
