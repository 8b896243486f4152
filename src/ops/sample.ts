/**
 * Reparameterized weight sampling (Blundell et al. 2015, section 3.2) and raw
 * draws of the counter-based generator (shaders/sample.wgsl).
 *
 * w = mu + sigma * eps with sigma = softplus(rho). Sample s of element i of a
 * parameter with n elements uses eps = rand_normal((seed, step), s * n + i,
 * stream) (plus key.offset): exactly element s * n + i of drawNormal(ctx, [S * n], key). The
 * backward pass regenerates the same eps from the key instead of storing it.
 * One Philox call makes four consecutive draws (shaders/random.wgsl), so the entries that
 * draw run one invocation per four elements.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, shapeError } from '../errors.js';
import { type RandomKey, keyOffset, keyUniforms } from './random.js';
import { checkF32, checkSameShape, contextOf, optionsOf } from './check.js';

const WG = 64;
const SHADER = 'sample.wgsl';
/** Draw indices are u32: S * n must stay below 2^32. */
const MAX_DRAWS = 2 ** 32 - 1;

/** Workgroups for entries whose invocations take four consecutive elements each. */
const groupsOf4 = (elements: number) => grid(Math.ceil(elements / 4 / WG));

function checkDrawShape(op: string, shape: readonly number[]): number {
  if (!Array.isArray(shape) || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw argumentError(op, 'shape', 'a non-empty array of positive integers', shape);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > MAX_DRAWS) throw argumentError(op, 'shape', `at most ${MAX_DRAWS} elements (draw indices are u32)`, shape);
  return n;
}

/** Uniforms of sample.wgsl; entries that draw nothing get a zero key, which they ignore. */
function params(n: number, samples: number, key?: { key: [number, number]; stream: number }, offset = 0) {
  return { n, samples, key: key?.key ?? [0, 0], stream: key?.stream ?? 0, offset };
}

/** `samples` draws of the weights, shape [samples, ...mu.shape]: w = mu + softplus(rho) * eps. */
export function sampleWeights(mu: Tensor, rho: Tensor, options: { key: RandomKey; samples: number }): Tensor<'f32'> {
  const ctx = contextOf('sampleWeights', { mu, rho });
  const { key, samples } = optionsOf('sampleWeights', options);
  const op = 'sampleWeights';
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  const k = keyUniforms(op, key);
  checkInt(op, 'samples', samples, 1);
  if (samples * mu.size > MAX_DRAWS) throw argumentError(op, 'samples', `at most ${Math.floor(MAX_DRAWS / mu.size)} for ${mu.size} weights (draw indices are u32)`, samples);
  const offset = keyOffset(op, key, samples * mu.size);
  const w = ctx.empty([samples, ...mu.shape]);
  ctx.dispatch({
    shader: SHADER, entry: 'sample_weights', constants: { WG },
    uniforms: params(mu.size, samples, k, offset), bindings: { mu, rho, w }, workgroups: groupsOf4(w.size),
  });
  return w;
}

/**
 * Gradients of sampleWeights for dL/dw `dw` [S, ...mu.shape]:
 * dMu = sum_s dw_s, dRho = sum_s dw_s * eps_s * sigmoid(rho), with eps_s regenerated from `key`
 * (pass the key the forward pass used).
 */
export function sampleWeightsBackward(dw: Tensor, mu: Tensor, rho: Tensor, options: { key: RandomKey }): { dMu: Tensor; dRho: Tensor } {
  const ctx = contextOf('sampleWeightsBackward', { dw, mu, rho });
  const { key } = optionsOf('sampleWeightsBackward', options);
  const op = 'sampleWeightsBackward';
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkF32(ctx, op, 'dw', dw);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  if (dw.shape.length !== mu.shape.length + 1 || mu.shape.some((d, k) => d !== dw.shape[k + 1])) {
    throw shapeError(op, 'dw', `[S, ${mu.shape.join(', ')}] (samples, then the shape of mu)`, dw.shape);
  }
  const k = keyUniforms(op, key);
  const offset = keyOffset(op, key, dw.size);
  const dMu = ctx.empty(mu.shape);
  const dRho = ctx.empty(mu.shape);
  ctx.dispatch({
    shader: SHADER, entry: 'sample_weights_backward', constants: { WG },
    uniforms: params(mu.size, dw.shape[0], k, offset), bindings: { rho, dw, d_mu: dMu, d_rho: dRho }, workgroups: groupsOf4(mu.size),
  });
  return { dMu, dRho };
}

/** softplus(rho)^2, the weight variance used by the local reparameterization trick (Kingma et al. 2015). */
export function sigmaSquared(rho: Tensor): Tensor<'f32'> {
  const ctx = contextOf('sigmaSquared', { rho });
  checkF32(ctx, 'sigmaSquared', 'rho', rho);
  const sigma2 = ctx.empty(rho.shape);
  ctx.dispatch({
    shader: SHADER, entry: 'sigma_squared', constants: { WG },
    uniforms: params(rho.size, 1), bindings: { rho, sigma2 }, workgroups: grid(Math.ceil(rho.size / WG)),
  });
  return sigma2;
}

/** dRho = dSigma2 * 2 softplus(rho) sigmoid(rho). */
export function sigmaSquaredBackward(dSigma2: Tensor, rho: Tensor): Tensor<'f32'> {
  const ctx = contextOf('sigmaSquaredBackward', { dSigma2, rho });
  const op = 'sigmaSquaredBackward';
  checkF32(ctx, op, 'rho', rho);
  checkF32(ctx, op, 'dSigma2', dSigma2);
  checkSameShape(op, 'dSigma2', dSigma2, rho, 'rho');
  const dRho = ctx.empty(rho.shape);
  ctx.dispatch({
    shader: SHADER, entry: 'sigma_squared_backward', constants: { WG },
    uniforms: params(rho.size, 1), bindings: { rho, d_sigma2: dSigma2, d_rho: dRho }, workgroups: grid(Math.ceil(rho.size / WG)),
  });
  return dRho;
}

function draw(ctx: Context, op: string, entry: string, shape: readonly number[], key: RandomKey): Tensor<'f32'> {
  const n = checkDrawShape(op, shape);
  const k = keyUniforms(op, key);
  const offset = keyOffset(op, key, n);
  const draws = ctx.empty(shape);
  ctx.dispatch({
    shader: SHADER, entry, constants: { WG },
    uniforms: params(n, 1, k, offset), bindings: { draws }, workgroups: groupsOf4(n),
  });
  return draws;
}

/**
 * Standard normal draws; element i is rand_normal(key, key.offset + i, stream): lane (j & 3) of
 * Box-Muller on the four words of Philox4x32-10 at counter (j >> 2, stream, 0, 0), j = key.offset + i.
 */
export function drawNormal(ctx: Context, shape: readonly number[], options: { key: RandomKey }): Tensor<'f32'> {
  const { key } = optionsOf('drawNormal', options);
  return draw(ctx, 'drawNormal', 'draw_normal', shape, key);
}

/** Uniform draws in [0, 1) with 24 random bits; element i is rand_uniform(key, key.offset + i, stream) (the top 24 bits of word j & 3 of the same Philox call). */
export function drawUniform(ctx: Context, shape: readonly number[], options: { key: RandomKey }): Tensor<'f32'> {
  const { key } = optionsOf('drawUniform', options);
  return draw(ctx, 'drawUniform', 'draw_uniform', shape, key);
}
