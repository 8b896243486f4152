/**
 * The predictive distribution of a classifier's T Monte Carlo samples and its uncertainty
 * decomposition (shaders/uncertainty.wgsl). The per-sample probabilities, their mean, the
 * per-class epistemic and aleatoric variances (Kwon et al. 2020, eq. 4, or Shridhar et al. 2019,
 * eq. 15, with 'normalized'), the predictive and expected entropies and the mutual information
 * (BALD, Houlsby et al. 2011) are reduced on the GPU, so only these results need reading back.
 *
 * Methods:
 *   'softmax'     p_t = softmax(logits_t)                             (Kwon et al. 2020)
 *   'normalized'  p_t = softplus(logits_t) / sum_c softplus(logits_t)  (Shridhar et al. 2019)
 *
 * The regression counterpart, the predictive mean and variance split of a (mean, log variance)
 * head, is `predictiveMoments` in ops/regression.ts, beside the rest of regression.wgsl.
 */
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { checkInt, checkOneOf, shapeError } from '../errors.js';
import { checkF32, contextOf, optionsOf } from './check.js';

export const PROBABILITY_METHODS = ['softmax', 'normalized'] as const;
export type ProbabilityMethod = (typeof PROBABILITY_METHODS)[number];

const SHADER = 'uncertainty.wgsl';
const WG = 64;

/** The GPU results of `predictiveDistribution`. */
export interface PredictiveTensors {
  /** [T * B, C] per-sample class probabilities, sample t of example b at row t * B + b. */
  probs: Tensor;
  /** Shape [3, B, C]: mean | epistemic | aleatoric. */
  moments: Tensor;
  /** Shape [4, B]: predictive entropy | expected entropy | mutual information | max mean probability. */
  information: Tensor;
}

/**
 * Records the reduction of logits [T * B, C] (Sequential.run's layout: sample t of example b at
 * row t * B + b) to the predictive distribution; reads nothing back.
 */
export function predictiveDistribution(logits: Tensor, options: { samples: number; method?: ProbabilityMethod }): PredictiveTensors {
  const op = 'predictiveDistribution';
  const ctx = contextOf(op, { logits });
  const { samples, method = 'softmax' } = optionsOf(op, options);
  checkF32(ctx, op, 'logits', logits);
  if (logits.shape.length !== 2) throw shapeError(op, 'logits', '[T * B, C]', logits.shape);
  checkInt(op, 'samples', samples, 1);
  checkOneOf(op, 'method', method, PROBABILITY_METHODS);
  const [rows, classes] = logits.shape;
  if (rows % samples !== 0) throw shapeError(op, 'logits', `[T * B, C] with rows a multiple of samples T = ${samples}`, logits.shape);
  const batch = rows / samples;
  const probs = ctx.empty([rows, classes]);
  const moments = ctx.empty([3, batch, classes]);
  const information = ctx.empty([4, batch]);
  ctx.dispatch({
    shader: SHADER, entry: 'predictive', constants: { WG, NORMALIZED: method === 'normalized' },
    uniforms: { samples, batch, classes }, bindings: { logits, probs, moments, information },
    workgroups: grid(Math.ceil(batch / WG)),
  });
  return { probs, moments, information };
}
