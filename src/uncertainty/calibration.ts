/**
 * Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks", section 4.2) for
 * the Monte Carlo predictive of a Bayesian or MC-dropout classifier, or a frequentist one: one scalar
 * tau > 0 divides every sample's logits, p_bar(tau) = (1/T) sum_t softmax(z_t / tau), and is fitted
 * by minimising the negative log likelihood of p_bar(tau) on a held-out labelled set. Dividing by one
 * positive number keeps each sample's argmax, so a single network's accuracy is unchanged; for an MC
 * average it can change only where the samples disagree.
 *
 *   const fit = await fitTemperature(model, validationSet, { samples: 10 });
 *   fit.temperature;                    // > 1 for an over-confident model
 *   model.temperature = fit.temperature; // fitTemperature does not change the model: set it yourself
 *   await model.predict(testSet);        // now tempered by default; saveModel keeps the temperature
 *
 * How it is fitted. The model's T samples of the whole set are drawn once, as predict draws them
 * (same keys: the batch from example `from` uses (seed, step + from)), and kept on the GPU as logits
 * [T, N, C]. The NLL is then a function of lambda = log tau alone, whose derivative
 * dNLL/dlambda = sum_n sum_t w_nt a_nt (shaders/temperature.wgsl) the GPU reduces with the NLL, so
 * each step of the search reads back two numbers. The search finds the root of the derivative on
 * [log 0.05, log 20] by the Illinois variant of regula falsi (Dowell & Jarratt 1971), which keeps a
 * bracket with a negative derivative at its left end and a positive one at its right, so it ends at
 * a minimum, never a maximum; every third step bisects, which bounds the number of steps. When the
 * derivative has one sign over the whole range the minimum is at that end. A result whose NLL is
 * above the NLL at tau = 1 (possible only for an NLL with several minima) falls back to tau = 1, so
 * nllAfter <= nllBefore always.
 */
import { BayesError, argumentError, checkInt } from '../errors.js';
import type { Tensor } from '../gpu/tensor.js';
import type { ModelInput } from '../nn/input.js';
import { type SampleLogitsOptions, sampleLogits } from '../nn/predict.js';
import { Sequential } from '../nn/sequential.js';
import { type ProbabilityMethod, predictiveDistribution, temperatureNll } from '../ops/uncertainty.js';
import { reliability } from './metrics.js';

/** The temperature range searched: [0.05, 20] (a wider fit usually means a broken model or set). */
export const TEMPERATURE_RANGE = [0.05, 20] as const;

export interface TemperatureFitOptions {
  /** Monte Carlo samples T (default 10 for a Bayesian model or with mcDropout, otherwise 1), as in predict. */
  samples?: number;
  /** Random key (defaults 0, 0), as in predict: the batch from example `from` uses step + from. */
  seed?: number;
  step?: number;
  /** Examples per GPU batch while drawing the samples (default 256). */
  batchSize?: number;
  /** How logits become probabilities (default 'softmax'; 'normalized': Shridhar et al. 2019, eq. 15). */
  method?: ProbabilityMethod;
  /** Draw from the posterior (default true), as in predict. */
  sample?: boolean;
  /** Keep dropout on (MC dropout), as in predict. */
  mcDropout?: boolean;
  /** Confidence bins of the expected calibration error (default 15, as Guo et al.). */
  bins?: number;
}

/** The fitted temperature and the held-out set's figures at tau = 1 (before) and at the fitted tau (after). */
export interface TemperatureFit {
  /** The fitted tau: set `model.temperature = fit.temperature` to use it. */
  temperature: number;
  /** Mean NLL (nats) of the MC-averaged predictive at tau = 1. */
  nllBefore: number;
  /** Mean NLL at the fitted tau; never above nllBefore. */
  nllAfter: number;
  /** Expected calibration error (reliability, `bins` bins) of p_bar at tau = 1. */
  eceBefore: number;
  /** Expected calibration error of p_bar at the fitted tau. */
  eceAfter: number;
  /** Examples in the held-out set. */
  count: number;
  /** Monte Carlo samples T drawn (1 for a deterministic network). */
  samples: number;
  /**
   * [count, classes] the held-out set's p_bar at the fitted tau, from the same samples: what
   * predict(data, { ...the same options, temperature }) returns as `mean`, without drawing them again
   * (e.g. to calibrate conformal sets on the same held-out set).
   */
  probabilities: Float32Array;
}

const OPTION_NAMES = ['samples', 'seed', 'step', 'batchSize', 'method', 'sample', 'mcDropout', 'bins'] as const;
/** The search stops when the bracket on log tau is this narrow (tau to a relative 1e-6)... */
const LOG_TOLERANCE = 1e-6;
/** ...or when |dNLL/dlog tau| per example is below this, the size of the f32 rounding of the sums. */
const GRADIENT_TOLERANCE = 1e-6;
const MAX_STEPS = 100;

/**
 * Fits the temperature tau that minimises the held-out NLL of the model's MC-averaged predictive
 * p_bar(tau) = (1/T) sum_t softmax(z_t / tau) (Guo et al. 2017, temperature scaling; see the module
 * comment for the search). `data` is a labelled held-out set (a FloatDataset `{ x, labels, count,
 * shape }`, or any data set predict accepts with labels), not the training set. The model is not
 * changed: set `model.temperature = fit.temperature`, after which predict uses it by default and
 * saveModel stores it. Every tensor made is freed and the model's train/eval mode is left as it was.
 * Bad input (an unlabelled or empty set, a label >= the model's classes, a regression model, bad
 * options) throws a BayesError before any GPU work.
 *
 * @example
 * const fit = await fitTemperature(model, heldOut, { samples: 20 });
 * console.log(fit.temperature, fit.eceBefore, '->', fit.eceAfter);
 * model.temperature = fit.temperature;
 */
export async function fitTemperature(model: Sequential, data: ModelInput, options: TemperatureFitOptions = {}): Promise<TemperatureFit> {
  const op = 'fitTemperature';
  if (!(model instanceof Sequential) || !model.isModel) throw argumentError(op, 'model', 'a classifier built on a context (a Sequential model or a named model such as BBBLeNet)', model);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', `an options object { ${OPTION_NAMES.join(', ')} }`, options);
  for (const key of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) throw argumentError(op, 'options', `only the keys ${OPTION_NAMES.join(', ')}`, `unknown key '${key}'`);
  }
  const { bins: binsOption, ...sampling } = options;
  const bins = checkInt(op, 'bins', binsOption ?? 15, 1);
  const plan = sampleLogits(op, model, data, sampling as SampleLogitsOptions);
  const { count, classes, labels, samples, method } = plan;
  if (labels === null) throw argumentError(op, 'data', 'a labelled held-out set { x, labels, count, shape } (the temperature is fitted to its labels)', 'a set without labels');
  if (count === 0) throw argumentError(op, 'data', 'at least one example', 'an empty set');
  let maxLabel = 0;
  for (let i = 0; i < count; i++) maxLabel = Math.max(maxLabel, labels[i]);
  if (maxLabel >= classes) {
    throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'data.labels' expected class indices below the model's ${classes} classes, got a largest label of ${maxLabel} (a temperature fit on a set whose labels don't match the model's classes)`);
  }

  const ctx = model.ctx;
  const logits = await plan.record();
  let labelTensor: Tensor | null = null;
  try {
    labelTensor = ctx.tensor(labels, [count], 'u32');
    const lt = labelTensor;
    /** Mean NLL and mean dNLL/dlog tau at log tau = lambda: two numbers read back. */
    const evaluate = async (lambda: number): Promise<{ nll: number; slope: number }> => {
      const sums = temperatureNll(logits, lt, { samples, temperature: Math.exp(lambda), method });
      try {
        const [total, dTotal] = (await sums.read()) as Float32Array;
        return { nll: total / count, slope: dTotal / count };
      } finally {
        sums.dispose();
      }
    };
    const meanProbabilities = async (temperature: number): Promise<Float32Array> => {
      const t = predictiveDistribution(logits, { samples, method, temperature });
      try {
        // moments is [3, count, classes]: the mean is its first plane, copied out of the read buffer.
        return ((await t.moments.read()) as Float32Array).slice(0, count * classes);
      } finally {
        for (const x of [t.probs, t.moments, t.information]) x.dispose();
      }
    };

    const atOne = await evaluate(0);
    let lambda = await searchLogTemperature(evaluate, atOne.slope);
    let nllAfter = lambda === 0 ? atOne.nll : (await evaluate(lambda)).nll;
    if (!(nllAfter <= atOne.nll)) {
      lambda = 0;
      nllAfter = atOne.nll;
    }
    const temperature = Math.exp(lambda);
    const eceBefore = reliability(await meanProbabilities(1), labels, classes, bins).ece;
    const probabilities = await meanProbabilities(temperature);
    const eceAfter = reliability(probabilities, labels, classes, bins).ece;
    return { temperature, nllBefore: atOne.nll, nllAfter, eceBefore, eceAfter, count, samples, probabilities };
  } finally {
    logits.dispose();
    labelTensor?.dispose();
  }
}

/**
 * The root of the derivative g(lambda) = dNLL/dlambda on the searched range, lambda = log tau, by
 * the Illinois method with a bisection every third step (see the module comment); `slopeAtZero` is
 * g(0), already computed. Returns lambda.
 */
async function searchLogTemperature(evaluate: (lambda: number) => Promise<{ slope: number }>, slopeAtZero: number): Promise<number> {
  if (Math.abs(slopeAtZero) <= GRADIENT_TOLERANCE) return 0;
  let a = Math.log(TEMPERATURE_RANGE[0]);
  let b = Math.log(TEMPERATURE_RANGE[1]);
  // tau = 1 splits the range: the minimum lies on the side the NLL decreases towards.
  let ga: number;
  let gb: number;
  if (slopeAtZero < 0) {
    ga = slopeAtZero;
    a = 0;
    gb = (await evaluate(b)).slope;
    if (!(gb > 0)) return b; // still decreasing at the upper end
  } else {
    gb = slopeAtZero;
    b = 0;
    ga = (await evaluate(a)).slope;
    if (!(ga < 0)) return a; // still increasing at the lower end
  }
  let kept: 'a' | 'b' | null = null;
  let x = (a + b) / 2;
  for (let step = 0; step < MAX_STEPS && b - a > LOG_TOLERANCE; step++) {
    const secant = b - (gb * (b - a)) / (gb - ga);
    x = step % 3 === 2 || !(secant > a && secant < b) ? (a + b) / 2 : secant;
    const gx = (await evaluate(x)).slope;
    if (Math.abs(gx) <= GRADIENT_TOLERANCE) return x;
    if (gx < 0) {
      a = x;
      ga = gx;
      // Illinois: an end kept twice in a row has its value halved, so the secant moves off it.
      if (kept === 'b') gb /= 2;
      kept = 'b';
    } else if (gx > 0) {
      b = x;
      gb = gx;
      if (kept === 'a') ga /= 2;
      kept = 'a';
    } else {
      return x; // NaN cannot occur for finite logits; stop rather than loop on it
    }
  }
  return x;
}
