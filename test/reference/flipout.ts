/**
 * float64 references for Flipout (Wen et al. 2018, eq. 3), written from the definition on top of
 * the conv2d and linear references:
 *   y_n = op(x_n, wMu) + bMu + s_out,n * (op(x_n * s_in,n, wDelta) + bDelta),  wDelta = softplus(rho) * eps,
 * with Rademacher signs per row and channel, sign(r, c) = +1 where the generator's uniform at index
 * offset + r * C + c is below 1/2 (uniformRef: the BigInt Philox reference), else -1.
 */
import { softplusRef } from './activation.js';
import { type ConvShape, conv2dBackwardRef, conv2dRef } from './conv2d.js';
import { type LinearDims, linearBackwardRef, linearRef } from './linear.js';
import { uniformRef } from './sample.js';

/** The signs [rows * channels] of the key (seed, step, stream, offset), from the Philox reference. */
export function signsRef(seed: number, step: number, stream: number, count: number, offset = 0): Float64Array {
  return Float64Array.from({ length: count }, (_, q) => (uniformRef(seed, step, offset + q, stream) < 0.5 ? 1 : -1));
}

/** Signs from uniforms read back from the GPU (drawUniform under the same key). */
export function signsFromUniformsRef(u: ArrayLike<number>): Float64Array {
  return Float64Array.from(u, (v) => (v < 0.5 ? 1 : -1));
}

/** x * s for x [rows, channels, inner] and s [rows * channels]. */
export function flipRef(x: ArrayLike<number>, signs: ArrayLike<number>, inner: number): Float64Array {
  return Float64Array.from(x, (v, j) => v * signs[Math.floor(j / inner)]);
}

/** softplus(rho[i]) * eps[s * n + i] over the S * n draws eps. */
export function perturbationRef(rho: ArrayLike<number>, eps: ArrayLike<number>): Float64Array {
  const sigma = softplusRef(rho);
  return Float64Array.from(eps, (e, j) => sigma[j % rho.length] * e);
}

/** The signs of a Flipout product: s_in [N * Cin], s_out [N * Cout]. */
export interface SignsRef {
  signIn: ArrayLike<number>;
  signOut: ArrayLike<number>;
}

/** s: the conv shape with w = wDelta's shape ([Cout, Cin, KH, KW] or [S, Cout, Cin, KH, KW]). */
export function flipoutConv2dRef(s: ConvShape, x: ArrayLike<number>, wMu: ArrayLike<number>, wDelta: ArrayLike<number>, bMu: ArrayLike<number> | null, bDelta: ArrayLike<number> | null, signs: SignsRef): Float64Array {
  const [n, , h, w] = s.x;
  const muShape = s.w.length === 5 ? s.w.slice(1) : s.w;
  const mean = conv2dRef({ ...s, w: muShape }, x, wMu, bMu);
  const perturbed = conv2dRef(s, flipRef(x, signs.signIn, h * w), wDelta, bDelta);
  const inner = mean.length / (n * muShape[0]);
  return Float64Array.from(mean, (m, j) => m + signs.signOut[Math.floor(j / inner)] * perturbed[j]);
}

/** Gradients of L = <flipoutConv2dRef(...), dy> with signs and wDelta held fixed. */
export function flipoutConv2dBackwardRef(s: ConvShape, x: ArrayLike<number>, wMu: ArrayLike<number>, wDelta: ArrayLike<number>, dy: ArrayLike<number>, signs: SignsRef) {
  const [n, , h, w] = s.x;
  const muShape = s.w.length === 5 ? s.w.slice(1) : s.w;
  const inner = dy.length / (n * muShape[0]);
  const mean = conv2dBackwardRef({ ...s, w: muShape }, x, wMu, dy);
  const perturbed = conv2dBackwardRef(s, flipRef(x, signs.signIn, h * w), wDelta, flipRef(dy, signs.signOut, inner));
  const dx = Float64Array.from(mean.dx, (d, j) => d + signs.signIn[Math.floor(j / (h * w))] * perturbed.dx[j]);
  return { dx, dWeightMu: mean.dWeight, dWeightDelta: perturbed.dWeight, dBiasMu: mean.dBias, dBiasDelta: perturbed.dBias };
}

/** d: rows, features and the samples of wDelta ([out, in] when 1 and 2-D, else [S, out, in]). */
export function flipoutLinearRef(d: LinearDims, x: ArrayLike<number>, wMu: ArrayLike<number>, wDelta: ArrayLike<number>, bMu: ArrayLike<number> | null, bDelta: ArrayLike<number> | null, signs: SignsRef): Float64Array {
  const mean = linearRef(x, wMu, bMu, { ...d, samples: 1 });
  const perturbed = linearRef(flipRef(x, signs.signIn, 1), wDelta, bDelta, d);
  return Float64Array.from(mean, (m, j) => m + signs.signOut[j] * perturbed[j]);
}

export function flipoutLinearBackwardRef(d: LinearDims, x: ArrayLike<number>, wMu: ArrayLike<number>, wDelta: ArrayLike<number>, dy: ArrayLike<number>, signs: SignsRef) {
  const mean = linearBackwardRef(x, wMu, dy, { ...d, samples: 1 });
  const perturbed = linearBackwardRef(flipRef(x, signs.signIn, 1), wDelta, flipRef(dy, signs.signOut, 1), d);
  const dx = Float64Array.from(mean.dx, (v, j) => v + signs.signIn[j] * perturbed.dx[j]);
  return { dx, dWeightMu: mean.dWeight, dWeightDelta: perturbed.dWeight, dBiasMu: mean.dBias, dBiasDelta: perturbed.dBias };
}
