/**
 * The predictive distribution of a Bayesian classifier and its uncertainty
 * decomposition (shaders/uncertainty.wgsl). The T Monte Carlo samples run as
 * one GPU batch of T * B (Sequential.run); the per-sample probabilities, their
 * mean, the per-class epistemic and aleatoric variances (Kwon et al. 2020,
 * eq. 4, or Shridhar et al. 2019, eq. 15, with 'normalized'), the predictive
 * and expected entropies and the mutual information (BALD) are reduced on the
 * GPU; only these results are read back.
 *
 * Methods:
 *   'softmax'     p_t = softmax(logits_t)                             (Kwon et al. 2020)
 *   'normalized'  p_t = softplus(logits_t) / sum_c softplus(logits_t)  (Shridhar et al. 2019)
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkOneOf, shapeError } from '../errors.js';
import type { Sequential } from '../nn/sequential.js';
import { contextOf, optionsOf } from '../ops/check.js';

export const PROBABILITY_METHODS = ['softmax', 'normalized'] as const;
export type ProbabilityMethod = (typeof PROBABILITY_METHODS)[number];

const SHADER = 'uncertainty.wgsl';
const WG = 64;

/** The GPU results of `predictiveDistribution`, before readback. */
export interface PredictiveTensors {
  /** [T * B, C] per-sample class probabilities, sample t of example b at row t * B + b. */
  probs: Tensor;
  /** [3, B, C]: mean | epistemic | aleatoric. */
  moments: Tensor;
  /** [4, B]: predictive entropy | expected entropy | mutual information | max mean probability. */
  information: Tensor;
}

/**
 * Records the reduction of logits [T * B, C] (Sequential.run's layout) to the
 * predictive distribution; reads nothing back.
 */
export function predictiveDistribution(logits: Tensor, options: { samples: number; method?: ProbabilityMethod }): PredictiveTensors {
  const ctx = contextOf('predictiveDistribution', { logits });
  const { samples, method = 'softmax' } = optionsOf('predictiveDistribution', options);
  const op = 'predictiveDistribution';
  ctx.own(op, 'logits', logits);
  if (logits.dtype !== 'f32') throw argumentError(op, 'logits', "a tensor of dtype 'f32'", logits.dtype);
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

/** The predictive distribution of one batch, read back. Arrays are row-major. */
export interface Prediction {
  /** [T, B, C] per-sample class probabilities. */
  probs: Float32Array;
  /** [B, C] the predictive distribution p_bar = mean over samples. */
  mean: Float32Array;
  /** [B, C] mean_t (p_t - p_bar)^2: variance from the weights (model uncertainty). */
  epistemic: Float32Array;
  /** [B, C] mean_t (p_t - p_t^2): expected multinomial variance (data noise). */
  aleatoric: Float32Array;
  /** [B] H[p_bar] in nats. */
  predictiveEntropy: Float32Array;
  /** [B] mean_t H[p_t] in nats. */
  expectedEntropy: Float32Array;
  /** [B] predictiveEntropy - expectedEntropy (BALD). */
  mutualInformation: Float32Array;
  /** [B] max_c p_bar. */
  maxProb: Float32Array;
  samples: number;
  classes: number;
  batch: number;
  method: ProbabilityMethod;
}

/** Reads the tensors of `predictiveDistribution` back (three readbacks). */
export async function readPrediction(t: PredictiveTensors, samples: number, method: ProbabilityMethod): Promise<Prediction> {
  const [, batch, classes] = t.moments.shape;
  const n = batch * classes;
  const probs = (await t.probs.read()) as Float32Array;
  const moments = (await t.moments.read()) as Float32Array;
  const info = (await t.information.read()) as Float32Array;
  return {
    probs,
    mean: moments.subarray(0, n),
    epistemic: moments.subarray(n, 2 * n),
    aleatoric: moments.subarray(2 * n, 3 * n),
    predictiveEntropy: info.subarray(0, batch),
    expectedEntropy: info.subarray(batch, 2 * batch),
    mutualInformation: info.subarray(2 * batch, 3 * batch),
    maxProb: info.subarray(3 * batch, 4 * batch),
    samples, classes, batch, method,
  };
}

export interface PredictOptions {
  /** Monte Carlo samples T (>= 1), batched on the GPU. */
  samples: number;
  /** How logits become probabilities (default 'softmax'). */
  method?: ProbabilityMethod;
  /** Random key of the pass (defaults 0, 0). */
  seed?: number;
  step?: number;
  /** Keep dropout active (MC dropout, Gal & Ghahramani 2016) for models with Dropout layers. */
  mcDropout?: boolean;
  /** Draw from the posterior (default true); false uses the posterior means, so all samples agree. */
  sample?: boolean;
}

interface CheckedOptions { samples: number; method: ProbabilityMethod; seed: number; step: number; mcDropout: boolean; sample: boolean }

function checkOptions(op: string, o: PredictOptions): CheckedOptions {
  if (o === null || typeof o !== 'object') throw argumentError(op, 'options', '{ samples, method?, seed?, step?, mcDropout? }', o);
  const u32 = (name: string, v: unknown) => {
    checkInt(op, name, v, 0);
    if ((v as number) > 0xffffffff) throw argumentError(op, name, 'an integer <= 2^32 - 1', v);
    return v as number;
  };
  return {
    samples: checkInt(op, 'samples', o.samples, 1),
    method: checkOneOf(op, 'method', o.method ?? 'softmax', PROBABILITY_METHODS),
    seed: u32('seed', o.seed ?? 0),
    step: u32('step', o.step ?? 0),
    mcDropout: o.mcDropout ?? false,
    sample: o.sample ?? true,
  };
}

/** Runs `fn` with the model in eval mode and restores its mode afterwards. */
async function inEvalMode<T>(model: Sequential, fn: () => Promise<T>): Promise<T> {
  const wasTraining = model.training;
  model.eval();
  try {
    return await fn();
  } finally {
    if (wasTraining) model.train();
  }
}

/** Records forward + reduction for one batch; the returned tensors outlive the scope. */
function recordBatch(ctx: Context, model: Sequential, x: Tensor, o: CheckedOptions, step: number): PredictiveTensors {
  return ctx.scope(() => {
    const { logits } = model.run(x, { samples: o.samples, sample: o.sample, mcDropout: o.mcDropout, seed: o.seed, step, kl: false });
    return predictiveDistribution(logits, { samples: o.samples, method: o.method });
  });
}

function disposeAll(t: PredictiveTensors): void {
  t.probs.dispose();
  t.moments.dispose();
  t.information.dispose();
}

/**
 * The predictive distribution of `model` for a batch x [B, C, H, W]: T samples
 * in one GPU batch (eval mode, sampling from the posterior, or MC dropout).
 */
export async function predict(ctx: Context, model: Sequential, x: Tensor, options: PredictOptions): Promise<Prediction> {
  const op = 'predict';
  const o = checkOptions(op, options);
  ctx.own(op, 'x', x);
  model.checkInput(op, x);
  return inEvalMode(model, async () => {
    const t = recordBatch(ctx, model, x, o, o.step);
    try {
      return await readPrediction(t, o.samples, o.method);
    } finally {
      disposeAll(t);
    }
  });
}

/** Images as floats, NCHW (a FloatDataset; labels are optional, e.g. for OOD sets). */
export interface ImageSource {
  x: Float32Array;
  count: number;
  /** One example's shape [C, H, W]. */
  shape: readonly number[];
  labels?: ArrayLike<number>;
}

/** Per-example results of `predictDataset` (N examples, C classes), for the metrics. */
export interface DatasetPrediction {
  /** [N, C] predictive distribution. */
  mean: Float32Array;
  predictiveEntropy: Float32Array;
  expectedEntropy: Float32Array;
  mutualInformation: Float32Array;
  maxProb: Float32Array;
  /** argmax_c of mean (lowest index on ties). */
  predicted: Uint32Array;
  /** The data set's labels, or null when it has none. */
  labels: Uint32Array | null;
  count: number;
  classes: number;
  samples: number;
  method: ProbabilityMethod;
}

export interface PredictDatasetOptions extends PredictOptions {
  /** Examples per GPU batch (each runs T * batchSize rows; default 256). */
  batchSize?: number;
}

/**
 * Evaluates a whole data set in batches. Batch i (starting at example `from`)
 * uses the random key (seed, step + from), as `evaluate` (src/train/fit.ts)
 * does, so both see the same noise.
 */
export async function predictDataset(ctx: Context, model: Sequential, data: ImageSource, options: PredictDatasetOptions): Promise<DatasetPrediction> {
  const op = 'predictDataset';
  const o = checkOptions(op, options);
  const batchSize = checkInt(op, 'batchSize', options.batchSize ?? 256, 1);
  if (data === null || typeof data !== 'object') throw argumentError(op, 'data', '{ x, count, shape, labels? }', data);
  const count = checkInt(op, 'data.count', data.count, 1);
  const shape = data.shape;
  if (!Array.isArray(shape) || shape.length !== model.inputShape.length || shape.some((d, i) => d !== model.inputShape[i])) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'data' has images of shape ${JSON.stringify(shape)} but the model expects [${model.inputShape.join(', ')}]`);
  }
  const per = shape.reduce((a, b) => a * b, 1);
  if (!(data.x instanceof Float32Array) || data.x.length !== count * per) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'data.x' expected a Float32Array of ${count * per} values (${count} images of [${shape.join(', ')}]), got ${data.x?.length}`);
  }
  if (data.labels !== undefined && data.labels.length !== count) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'data.labels' expected ${count} labels (one per image), got ${data.labels.length}`);
  }
  if (o.step + count > 0xffffffff) throw argumentError(op, 'step', `at most ${0xffffffff - count} (batch keys are step + first index)`, o.step);

  const classes = model.outputShapeOf[model.outputShapeOf.length - 1];
  const mean = new Float32Array(count * classes);
  const predictiveEntropy = new Float32Array(count);
  const expectedEntropy = new Float32Array(count);
  const mutualInformation = new Float32Array(count);
  const maxProb = new Float32Array(count);
  const predicted = new Uint32Array(count);

  await inEvalMode(model, async () => {
    for (let from = 0; from < count; from += batchSize) {
      const n = Math.min(batchSize, count - from);
      const x = ctx.tensor(data.x.subarray(from * per, (from + n) * per), [n, ...shape]);
      let t: PredictiveTensors | null = null;
      try {
        t = recordBatch(ctx, model, x, o, o.step + from);
        const moments = (await t.moments.read()) as Float32Array;
        const info = (await t.information.read()) as Float32Array;
        mean.set(moments.subarray(0, n * classes), from * classes);
        predictiveEntropy.set(info.subarray(0, n), from);
        expectedEntropy.set(info.subarray(n, 2 * n), from);
        mutualInformation.set(info.subarray(2 * n, 3 * n), from);
        maxProb.set(info.subarray(3 * n, 4 * n), from);
      } finally {
        x.dispose();
        if (t) disposeAll(t);
      }
    }
  });
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (mean[i * classes + c] > mean[i * classes + best]) best = c;
    predicted[i] = best;
  }
  return {
    mean, predictiveEntropy, expectedEntropy, mutualInformation, maxProb, predicted,
    labels: data.labels === undefined ? null : Uint32Array.from(data.labels),
    count, classes, samples: o.samples, method: o.method,
  };
}
