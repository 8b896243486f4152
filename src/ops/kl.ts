/**
 * KL(q || p) between the Gaussian weight posterior q = N(mu, sigma^2), sigma = softplus(rho),
 * and the prior p, summed over all elements on the GPU (shaders/kl.wgsl, then the sum of
 * shaders/reduce.wgsl), and its gradients with respect to mu and rho.
 *
 * Direction: we compute KL(q || p), posterior against prior, as the ELBO needs
 * (Blundell et al. 2015, eq. 1). PyTorch-BayesianCNN's calculate_kl(prior_mu, prior_sigma,
 * mu, sigma) computes KL(p || q) by its argument order.
 *
 * - Gaussian prior: the closed form, sum [log(sigma_p / sigma) + (sigma^2 + (mu - mu_p)^2)
 *   / (2 sigma_p^2) - 1/2].
 * - Gaussian prior of its own per element, N(priorMu[i], priorSigma[i]^2) (klGaussianTensor): the
 *   same closed form, for empirical-Bayes priors centred on trained weights (Krishnan et al. 2020,
 *   MOPED; src/nn/convert.ts).
 * - Any prior, in particular Blundell's scale mixture (eq. 7): the Monte Carlo estimate
 *   mean_s sum_i [log q(w_si) - log p(w_si)] over weight samples w = sampleWeights(mu, rho,
 *   key, S), and its gradient through w = mu + sigma * eps with eps regenerated from `key`.
 *
 * The *Into backward functions add scale * dKL into existing gradients in place, so a layer
 * accumulates data gradient + beta * KL gradient without another pass.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkNumber, shapeError } from '../errors.js';
import { type RandomKey, keyUniforms } from './random.js';
import { sum } from './reduce.js';
import { checkF32, checkSameShape, contextOf, optionsOf } from './check.js';

export interface GaussianPrior {
  mu: number;
  sigma: number;
}

/** p(w) = pi N(w; 0, sigma1^2) + (1 - pi) N(w; 0, sigma2^2) (Blundell et al. 2015, eq. 7). */
export interface MixturePrior {
  pi: number;
  sigma1: number;
  sigma2: number;
}

const WG = 64;
const SHADER = 'kl.wgsl';
/** Stands in for log(0) of an absent mixture component: exp(-1e30) = 0 with no infinity in f32 arithmetic. */
const LOG_ZERO = -1e30;

type PriorUniforms = { prior_mu: number; log_coef1: number; log_coef2: number; inv_var1: number; inv_var2: number };

/** w must be [S, ...mu.shape]; returns S. */
function checkSamples(op: string, w: Tensor, mu: Tensor): number {
  if (w.shape.length !== mu.shape.length + 1 || mu.shape.some((d, k) => d !== w.shape[k + 1])) {
    throw shapeError(op, 'w', `[S, ${mu.shape.join(', ')}] (samples, then the shape of mu)`, w.shape);
  }
  return w.shape[0];
}

/** Gradients are written in place: they may not share a buffer with an input or with each other. */
function checkDistinct(op: string, outputs: [string, Tensor][], inputs: [string, Tensor][]): void {
  for (let a = 0; a < outputs.length; a++) {
    const [name, t] = outputs[a];
    for (const [other, u] of [...inputs, ...outputs.slice(a + 1)]) {
      if (t.buffer === u.buffer) throw argumentError(op, name, `a tensor that does not share ${other}'s buffer`, t);
    }
  }
}

/** sigma > 0 whose 1 / sigma^2 is finite in f32 (sigma >= about 5.4e-20). */
function checkSigma(op: string, argument: string, value: unknown): number {
  return checkNumber(op, argument, value, (s) => s > 0 && Number.isFinite(s) && Number.isFinite(Math.fround(1 / (s * s))), 'a finite number > 0 whose 1/sigma^2 fits in f32');
}

function gaussianPrior(op: string, prior: unknown): PriorUniforms {
  if (prior === null || typeof prior !== 'object' || !('sigma' in prior)) throw argumentError(op, 'prior', 'a Gaussian prior { mu, sigma }', prior);
  const p = prior as GaussianPrior;
  const mu = checkNumber(op, 'prior.mu', p.mu);
  const sigma = checkSigma(op, 'prior.sigma', p.sigma);
  // Component 1 with weight 1; component 2 is absent.
  return { prior_mu: mu, log_coef1: -Math.log(sigma), log_coef2: LOG_ZERO, inv_var1: 1 / (sigma * sigma), inv_var2: 1 / (sigma * sigma) };
}

function anyPrior(op: string, prior: unknown): PriorUniforms {
  if (prior === null || typeof prior !== 'object' || !('pi' in prior || 'sigma' in prior)) {
    throw argumentError(op, 'prior', 'a Gaussian prior { mu, sigma } or a scale mixture { pi, sigma1, sigma2 }', prior);
  }
  if (!('pi' in prior)) return gaussianPrior(op, prior);
  const p = prior as MixturePrior;
  const pi = checkNumber(op, 'prior.pi', p.pi, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  const sigma1 = checkSigma(op, 'prior.sigma1', p.sigma1);
  const sigma2 = checkSigma(op, 'prior.sigma2', p.sigma2);
  // log(weight_k) - log(sigma_k), computed in float64 before rounding to f32.
  const logCoef = (weight: number, sigma: number) => (weight > 0 ? Math.log(weight) - Math.log(sigma) : LOG_ZERO);
  return { prior_mu: 0, log_coef1: logCoef(pi, sigma1), log_coef2: logCoef(1 - pi, sigma2), inv_var1: 1 / (sigma1 * sigma1), inv_var2: 1 / (sigma2 * sigma2) };
}

/** The uniforms of kl.wgsl; entries that draw nothing get a zero key, which they ignore. */
function params(n: number, samples: number, prior: PriorUniforms, scale: number, key?: { key: [number, number]; stream: number }) {
  return { n, samples, key: key?.key ?? [0, 0], stream: key?.stream ?? 0, ...prior, scale, inv_samples: 1 / samples };
}

/** Closed-form KL(q || p) for a Gaussian prior, summed over all elements: a [1] tensor. */
export function klGaussian(mu: Tensor, rho: Tensor, options: { prior: GaussianPrior }): Tensor<'f32'> {
  const ctx = contextOf('klGaussian', { mu, rho });
  const { prior } = optionsOf('klGaussian', options);
  const op = 'klGaussian';
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  const p = gaussianPrior(op, prior);
  const terms = ctx.empty([mu.size]);
  ctx.dispatch({
    shader: SHADER, entry: 'kl_gaussian_terms', constants: { WG },
    uniforms: params(mu.size, 1, p, 0), bindings: { mu, rho, terms }, workgroups: grid(Math.ceil(mu.size / WG)),
  });
  const kl = sum(terms);
  terms.dispose();
  return kl;
}

/** dMu += scale * (mu - mu_p) / sigma_p^2;  dRho += scale * (sigma / sigma_p^2 - 1 / sigma) * sigmoid(rho). */
export function klGaussianBackwardInto(mu: Tensor, rho: Tensor, dMu: Tensor, dRho: Tensor, options: { prior: GaussianPrior; scale: number }): void {
  const ctx = contextOf('klGaussianBackwardInto', { mu, rho, dMu, dRho });
  const { prior, scale } = optionsOf('klGaussianBackwardInto', options);
  const op = 'klGaussianBackwardInto';
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkF32(ctx, op, 'dMu', dMu);
  checkF32(ctx, op, 'dRho', dRho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  checkSameShape(op, 'dMu', dMu, mu, 'mu');
  checkSameShape(op, 'dRho', dRho, mu, 'mu');
  checkDistinct(op, [['dMu', dMu], ['dRho', dRho]], [['mu', mu], ['rho', rho]]);
  const p = gaussianPrior(op, prior);
  checkNumber(op, 'scale', scale);
  ctx.dispatch({
    shader: SHADER, entry: 'kl_gaussian_backward', constants: { WG },
    uniforms: params(mu.size, 1, p, scale), bindings: { mu, rho, d_mu: dMu, d_rho: dRho }, workgroups: grid(Math.ceil(mu.size / WG)),
  });
}

/** The prior tensors of klGaussianTensor: f32, the shape of mu, on mu's context, sigma > 0 in every element. */
function checkPriorTensors(op: string, ctx: Context, mu: Tensor, priorMu: unknown, priorSigma: unknown): { priorMu: Tensor; priorSigma: Tensor } {
  for (const [name, t] of [['priorMu', priorMu], ['priorSigma', priorSigma]] as const) {
    if (t === null || typeof t !== 'object' || !('buffer' in t) || !('shape' in t)) throw argumentError(op, name, 'a tensor with the shape of mu', t);
    checkF32(ctx, op, name, t as Tensor);
    checkSameShape(op, name, t as Tensor, mu, 'mu');
  }
  return { priorMu: priorMu as Tensor, priorSigma: priorSigma as Tensor };
}

/**
 * Closed-form KL(q || p) against a Gaussian prior of its own per element, p(w_i) = N(priorMu[i],
 * priorSigma[i]^2), summed over all elements: a [1] tensor. Every priorSigma element must be > 0
 * (not checked: that would read the tensor back; the layers that hold prior tensors guarantee it).
 */
export function klGaussianTensor(mu: Tensor, rho: Tensor, priorMu: Tensor, priorSigma: Tensor): Tensor<'f32'> {
  const op = 'klGaussianTensor';
  const ctx = contextOf(op, { mu, rho, priorMu, priorSigma });
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  const p = checkPriorTensors(op, ctx, mu, priorMu, priorSigma);
  const terms = ctx.empty([mu.size]);
  ctx.dispatch({
    shader: SHADER, entry: 'kl_gaussian_tensor_terms', constants: { WG },
    uniforms: { n: mu.size, samples: 1 }, bindings: { mu, rho, prior_mean: p.priorMu, prior_sigma: p.priorSigma, terms }, workgroups: grid(Math.ceil(mu.size / WG)),
  });
  const kl = sum(terms);
  terms.dispose();
  return kl;
}

/** dMu += scale * (mu - priorMu) / priorSigma^2;  dRho += scale * (sigma / priorSigma^2 - 1 / sigma) * sigmoid(rho), per element. */
export function klGaussianTensorBackwardInto(mu: Tensor, rho: Tensor, priorMu: Tensor, priorSigma: Tensor, dMu: Tensor, dRho: Tensor, options: { scale: number }): void {
  const op = 'klGaussianTensorBackwardInto';
  const ctx = contextOf(op, { mu, rho, priorMu, priorSigma, dMu, dRho });
  const { scale } = optionsOf(op, options);
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkF32(ctx, op, 'dMu', dMu);
  checkF32(ctx, op, 'dRho', dRho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  const p = checkPriorTensors(op, ctx, mu, priorMu, priorSigma);
  checkSameShape(op, 'dMu', dMu, mu, 'mu');
  checkSameShape(op, 'dRho', dRho, mu, 'mu');
  checkDistinct(op, [['dMu', dMu], ['dRho', dRho]], [['mu', mu], ['rho', rho], ['priorMu', p.priorMu], ['priorSigma', p.priorSigma]]);
  checkNumber(op, 'scale', scale);
  ctx.dispatch({
    shader: SHADER, entry: 'kl_gaussian_tensor_backward', constants: { WG },
    uniforms: { n: mu.size, samples: 1, scale }, bindings: { mu, rho, prior_mean: p.priorMu, prior_sigma: p.priorSigma, d_mu: dMu, d_rho: dRho }, workgroups: grid(Math.ceil(mu.size / WG)),
  });
}

/**
 * Monte Carlo KL(q || p) for any prior: mean over the S samples of sum_i [log q(w_si | mu, sigma)
 * - log p(w_si)], with w [S, ...mu.shape] from sampleWeights. A [1] tensor.
 */
export function klMonteCarlo(w: Tensor, mu: Tensor, rho: Tensor, options: { prior: MixturePrior | GaussianPrior }): Tensor<'f32'> {
  const ctx = contextOf('klMonteCarlo', { w, mu, rho });
  const { prior } = optionsOf('klMonteCarlo', options);
  const op = 'klMonteCarlo';
  checkF32(ctx, op, 'w', w);
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  const samples = checkSamples(op, w, mu);
  const p = anyPrior(op, prior);
  const terms = ctx.empty([w.size]);
  ctx.dispatch({
    shader: SHADER, entry: 'kl_mc_terms', constants: { WG },
    uniforms: params(mu.size, samples, p, 0), bindings: { w, mu, rho, terms }, workgroups: grid(Math.ceil(w.size / WG)),
  });
  const kl = sum(terms, { scale: 1 / samples });
  terms.dispose();
  return kl;
}

/**
 * Adds scale * the gradient of klMonteCarlo with respect to mu and rho into dMu and dRho, through
 * w = mu + sigma * eps with eps regenerated from `key` (the key that sampled w). Includes log q's
 * own dependence on mu and sigma: along the path log q = -log sigma - eps^2 / 2.
 */
export function klMonteCarloBackwardInto(w: Tensor, mu: Tensor, rho: Tensor, dMu: Tensor, dRho: Tensor, options: { prior: MixturePrior | GaussianPrior; key: RandomKey; scale: number }
): void {
  const ctx = contextOf('klMonteCarloBackwardInto', { w, mu, rho, dMu, dRho });
  const { prior, key, scale } = optionsOf('klMonteCarloBackwardInto', options);
  const op = 'klMonteCarloBackwardInto';
  checkF32(ctx, op, 'w', w);
  checkF32(ctx, op, 'mu', mu);
  checkF32(ctx, op, 'rho', rho);
  checkF32(ctx, op, 'dMu', dMu);
  checkF32(ctx, op, 'dRho', dRho);
  checkSameShape(op, 'rho', rho, mu, 'mu');
  const samples = checkSamples(op, w, mu);
  checkSameShape(op, 'dMu', dMu, mu, 'mu');
  checkSameShape(op, 'dRho', dRho, mu, 'mu');
  checkDistinct(op, [['dMu', dMu], ['dRho', dRho]], [['w', w], ['mu', mu], ['rho', rho]]);
  const p = anyPrior(op, prior);
  const k = keyUniforms(op, key);
  checkNumber(op, 'scale', scale);
  ctx.dispatch({
    shader: SHADER, entry: 'kl_mc_backward', constants: { WG },
    uniforms: params(mu.size, samples, p, scale, k), bindings: { w, rho, d_mu: dMu, d_rho: dRho }, workgroups: grid(Math.ceil(mu.size / WG)),
  });
}
