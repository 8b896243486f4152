/**
 * float64 / BigInt references for the generator (Philox4x32-10, Salmon et al. SC 2011;
 * Box-Muller) and for reparameterized sampling (Blundell et al. 2015, section 3.2),
 * plus the statistics the generator tests use (erf, normal CDF, Kolmogorov-Smirnov).
 * Written from the papers, independent of the WGSL.
 */
import { sigmoidRef, softplusRef } from './activation.js';

const MASK32 = 0xffffffffn;
const PHILOX_M = [0xd2511f53n, 0xcd9e8d57n] as const;
const PHILOX_W = [0x9e3779b9n, 0xbb67ae85n] as const;

/** The full 64-bit product of two u32 as [hi, lo]. */
export function mulHiLoRef(a: number, b: number): [number, number] {
  const p = BigInt(a >>> 0) * BigInt(b >>> 0);
  return [Number(p >> 32n), Number(p & MASK32)];
}

/** Philox4x32-10 of a 4-word counter under a 2-word key (Random123's philox4x32_R with R = 10). */
export function philoxRef(counter: readonly number[], key: readonly number[]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => BigInt(v >>> 0));
  let [k0, k1] = key.map((v) => BigInt(v >>> 0));
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      // The key schedule bumps the key by the Weyl constants before every round but the first.
      k0 = (k0 + PHILOX_W[0]) & MASK32;
      k1 = (k1 + PHILOX_W[1]) & MASK32;
    }
    const p0 = PHILOX_M[0] * c0;
    const p1 = PHILOX_M[1] * c2;
    const [hi0, lo0, hi1, lo1] = [p0 >> 32n, p0 & MASK32, p1 >> 32n, p1 & MASK32];
    [c0, c1, c2, c3] = [hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0];
  }
  return [Number(c0), Number(c1), Number(c2), Number(c3)];
}

/**
 * The four words random.wgsl makes elements 4b .. 4b + 3 from, b = index >> 2 (one Philox call
 * per four consecutive elements): counter (b, stream, 0, 0), key (seed, step).
 */
export function philoxDrawRef(seed: number, step: number, index: number, stream: number): [number, number, number, number] {
  return philoxRef([Math.floor((index >>> 0) / 4), stream, 0, 0], [seed, step]);
}

/** rand_uniform: the top 24 bits of word (index & 3) as a fraction in [0, 1) (exact in f32). */
export function uniformRef(seed: number, step: number, index: number, stream: number): number {
  return (philoxDrawRef(seed, step, index, stream)[index & 3] >>> 8) / 2 ** 24;
}

/**
 * Box-Muller (Box & Muller 1958) in float64 on one word pair: r = sqrt(-2 ln u1) with u1 in (0, 1]
 * from word a, theta = 2 pi (u2 - 1/2) in [-pi, pi) with u2 in [0, 1) from word b; returns
 * [r cos theta, r sin theta].
 */
export function boxMullerRef(a: number, b: number): [number, number] {
  const r = Math.sqrt(-2 * Math.log(((a >>> 8) + 1) / 2 ** 24));
  const theta = 2 * Math.PI * ((b >>> 8) / 2 ** 24 - 0.5);
  return [r * Math.cos(theta), r * Math.sin(theta)];
}

/** The four normals of one Philox call: lanes 0, 1 from words 0, 1 and lanes 2, 3 from words 2, 3. */
export function normalLanesRef(seed: number, step: number, index: number, stream: number): [number, number, number, number] {
  const [w0, w1, w2, w3] = philoxDrawRef(seed, step, index, stream);
  return [...boxMullerRef(w0, w1), ...boxMullerRef(w2, w3)];
}

/** rand_normal in float64: lane (index & 3) of the four normals of Philox call index >> 2. */
export function normalRef(seed: number, step: number, index: number, stream: number): number {
  return normalLanesRef(seed, step, index, stream)[index & 3];
}

/** Normals of elements offset .. offset + n - 1 (one Philox call per four, like the GPU). */
export function normalsRef(seed: number, step: number, stream: number, n: number, offset = 0): Float64Array {
  const out = new Float64Array(n);
  let lanes: number[] = [];
  for (let i = 0; i < n; i++) {
    const index = offset + i;
    if (i === 0 || (index & 3) === 0) lanes = normalLanesRef(seed, step, index, stream);
    out[i] = lanes[index & 3];
  }
  return out;
}

/**
 * erf in float64. |x| < 6: erf(x) = 2/sqrt(pi) e^{-x^2} sum_k 2^k x^{2k+1} / (1*3*...*(2k+1))
 * (Abramowitz & Stegun 7.1.6), whose terms are all positive, so there is no cancellation;
 * |x| >= 6: erf = +-1 to double precision (erfc(6) = 2.2e-17).
 */
export function erf(x: number): number {
  if (Math.abs(x) >= 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let k = 1; k < 200; k++) {
    term *= (2 * x * x) / (2 * k + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

export const normalCdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));

/** Kolmogorov-Smirnov statistic D = sup |F_n - F| of a sample against a continuous CDF. */
export function ksStatistic(sample: ArrayLike<number>, cdf: (x: number) => number): number {
  const sorted = Float64Array.from(sample).sort();
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(sorted[i]);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  return d;
}

/** w[s, i] = mu[i] + softplus(rho[i]) * eps[s, i]; eps is [S * n] in the sample-major order of the GPU. */
export function sampleWeightsRef(mu: ArrayLike<number>, rho: ArrayLike<number>, eps: ArrayLike<number>): Float64Array {
  const n = mu.length;
  const sigma = softplusRef(rho);
  return Float64Array.from(eps, (e, j) => mu[j % n] + sigma[j % n] * e);
}

/** dMu = sum_s dw_s;  dRho = sum_s dw_s * eps_s * sigmoid(rho). */
export function sampleWeightsBackwardRef(rho: ArrayLike<number>, dw: ArrayLike<number>, eps: ArrayLike<number>): { dMu: Float64Array; dRho: Float64Array } {
  const n = rho.length;
  const dMu = new Float64Array(n);
  const dRho = new Float64Array(n);
  for (let j = 0; j < dw.length; j++) {
    dMu[j % n] += dw[j];
    dRho[j % n] += dw[j] * eps[j] * sigmoidRef(rho[j % n]);
  }
  return { dMu, dRho };
}

export const sigmaSquaredRef = (rho: ArrayLike<number>) => Float64Array.from(softplusRef(rho), (s) => s * s);

export const sigmaSquaredBackwardRef = (rho: ArrayLike<number>, dSigma2: ArrayLike<number>) =>
  Float64Array.from(rho, (r, i) => dSigma2[i] * 2 * softplusRef([r])[0] * sigmoidRef(r));
