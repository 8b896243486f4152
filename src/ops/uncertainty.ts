/**
 * The predictive distribution of a classifier's T Monte Carlo samples and its uncertainty
 * decomposition (shaders/uncertainty.wgsl). The per-sample probabilities, their mean, the
 * per-class epistemic and aleatoric variances (Kwon et al. 2020, eq. 4, or Shridhar et al. 2019,
 * eq. 15, with 'normalized'), the predictive and expected entropies and the mutual information
 * (BALD, Houlsby et al. 2011) are reduced on the GPU, so only these results need reading back.
 *
 * Methods, with a temperature tau > 0 (Guo et al. 2017, section 4.2; default 1, which changes no bit):
 *   'softmax'     p_t = softmax(logits_t / tau)                                   (Kwon et al. 2020)
 *   'normalized'  p_t = softplus(logits_t / tau) / sum_c softplus(logits_t / tau)  (Shridhar et al. 2019)
 *
 * Temperature scaling's fit (shaders/temperature.wgsl, src/uncertainty/calibration.ts): `placeSamples`
 * gathers the batches' per-sample logits into one [T * N, C] tensor, and `temperatureNll` reduces it to
 * the summed NLL of the MC-averaged predictive at a temperature and its derivative with respect to log tau.
 *
 * The regression counterpart, the predictive mean and variance split of a (mean, log variance)
 * head, is `predictiveMoments` in ops/regression.ts, beside the rest of regression.wgsl.
 */
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, checkNumber, checkOneOf, shapeError } from '../errors.js';
import { checkF32, contextOf, optionsOf } from './check.js';
import { sumAxes } from './reduce.js';

export const PROBABILITY_METHODS = ['softmax', 'normalized'] as const;
export type ProbabilityMethod = (typeof PROBABILITY_METHODS)[number];

const SHADER = 'uncertainty.wgsl';
const TEMPERATURE_SHADER = 'temperature.wgsl';
const WG = 64;

/**
 * Checks a temperature: a finite number > 0 whose reciprocal is a finite, nonzero f32 (the kernels
 * multiply by 1 / tau), i.e. about 3e-39 < tau < 3e38. Returns it.
 */
export function checkTemperature(op: string, argument: string, value: unknown): number {
  const ok = (t: number) => Number.isFinite(t) && t > 0 && Number.isFinite(Math.fround(1 / t)) && Math.fround(1 / t) > 0;
  return checkNumber(op, argument, value, ok, 'a finite number > 0 (1 / temperature a finite, nonzero f32)');
}

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
export function predictiveDistribution(logits: Tensor, options: { samples: number; method?: ProbabilityMethod; temperature?: number }): PredictiveTensors {
  const op = 'predictiveDistribution';
  const ctx = contextOf(op, { logits });
  const { samples, method = 'softmax', temperature = 1 } = optionsOf(op, options);
  checkF32(ctx, op, 'logits', logits);
  if (logits.shape.length !== 2) throw shapeError(op, 'logits', '[T * B, C]', logits.shape);
  checkInt(op, 'samples', samples, 1);
  checkOneOf(op, 'method', method, PROBABILITY_METHODS);
  checkTemperature(op, 'temperature', temperature);
  const [rows, classes] = logits.shape;
  if (rows % samples !== 0) throw shapeError(op, 'logits', `[T * B, C] with rows a multiple of samples T = ${samples}`, logits.shape);
  const batch = rows / samples;
  const probs = ctx.empty([rows, classes]);
  const moments = ctx.empty([3, batch, classes]);
  const information = ctx.empty([4, batch]);
  ctx.dispatch({
    shader: SHADER, entry: 'predictive', constants: { WG, NORMALIZED: method === 'normalized' },
    // 1 / tau in float64, rounded once to f32: exactly 1 at tau = 1, so the logits are used as they are.
    uniforms: { samples, batch, classes, inv_temperature: 1 / temperature }, bindings: { logits, probs, moments, information },
    workgroups: grid(Math.ceil(batch / WG)),
  });
  return { probs, moments, information };
}

/**
 * Copies one batch's per-sample logits [T * n, C] (row t * n + b) into `into` [T * N, C] at rows
 * t * N + offset + b, so that the batches of a data set predicted in parts form the [T, N, C] layout
 * of one call over it. Records one dispatch; reads nothing back.
 */
export function placeSamples(batch: Tensor, into: Tensor, options: { samples: number; offset: number }): void {
  const op = 'placeSamples';
  const ctx = contextOf(op, { batch, into });
  const { samples, offset } = optionsOf(op, options);
  checkF32(ctx, op, 'batch', batch);
  checkF32(ctx, op, 'into', into);
  checkInt(op, 'samples', samples, 1);
  checkInt(op, 'offset', offset, 0);
  if (batch.shape.length !== 2 || batch.shape[0] % samples !== 0) throw shapeError(op, 'batch', `[T * n, C] with rows a multiple of samples T = ${samples}`, batch.shape);
  if (into.shape.length !== 2 || into.shape[0] % samples !== 0 || into.shape[1] !== batch.shape[1]) {
    throw shapeError(op, 'into', `[T * N, ${batch.shape[1]}] with rows a multiple of samples T = ${samples}`, into.shape);
  }
  if (into.buffer === batch.buffer) throw argumentError(op, 'into', "a tensor that does not share batch's buffer", into);
  const [rows, classes] = batch.shape;
  const n = rows / samples;
  const count = into.shape[0] / samples;
  if (offset + n > count) throw argumentError(op, 'offset', `at most ${count - n} (the batch's ${n} examples must fit in the ${count} of into)`, offset);
  ctx.dispatch({
    shader: TEMPERATURE_SHADER, entry: 'place_samples', constants: { WG },
    uniforms: { samples, count, classes, batch: n, offset }, bindings: { batch, placed: into },
    workgroups: grid(Math.ceil(batch.size / WG)),
  });
}

/**
 * Shape [2]: the summed negative log likelihood over the N examples of the MC-averaged predictive
 * p_bar(tau) = (1/T) sum_t p(logits_t / tau) at their labels, and its derivative with respect to
 * log tau (shaders/temperature.wgsl): sum_n -log p_bar(tau)_{labels[n]} and sum_n d(-log p_bar)/d log tau.
 * logits [T * N, C] in Sequential.run's layout (sample t of example n at row t * N + n), labels
 * u32 [N], each < C (a label >= C gives NaN). One dispatch and the sums of src/ops/reduce.ts; the
 * temperature fit reads back only these two numbers per step.
 */
export function temperatureNll(logits: Tensor, labels: Tensor, options: { samples: number; temperature: number; method?: ProbabilityMethod }): Tensor {
  const op = 'temperatureNll';
  const ctx = contextOf(op, { logits, labels });
  const { samples, temperature, method = 'softmax' } = optionsOf(op, options);
  checkF32(ctx, op, 'logits', logits);
  checkInt(op, 'samples', samples, 1);
  checkOneOf(op, 'method', method, PROBABILITY_METHODS);
  checkTemperature(op, 'temperature', temperature);
  if (logits.shape.length !== 2 || logits.shape[0] % samples !== 0) throw shapeError(op, 'logits', `[T * N, C] with rows a multiple of samples T = ${samples}`, logits.shape);
  const [rows, classes] = logits.shape;
  const count = rows / samples;
  ctx.own(op, 'labels', labels);
  if (labels.dtype !== 'u32') throw argumentError(op, 'labels', "a tensor of dtype 'u32'", labels.dtype);
  if (labels.shape.length !== 1 || labels.shape[0] !== count) throw shapeError(op, 'labels', `[${count}] (one label per example of logits)`, labels.shape);
  const terms = ctx.empty([2, count]);
  ctx.dispatch({
    shader: TEMPERATURE_SHADER, entry: 'temperature_terms', constants: { WG, NORMALIZED: method === 'normalized' },
    uniforms: { samples, count, classes, inv_temperature: 1 / temperature, log_samples: Math.log(samples) },
    bindings: { logits, labels, terms },
    workgroups: grid(Math.ceil(count / WG)),
  });
  const sums = sumAxes(terms, { axes: { outer: 2, reduceA: count } });
  terms.dispose();
  return sums;
}
