/**
 * `model.predict(input, options)`: the predictive distribution of a model, in eval mode, from T
 * Monte Carlo samples batched on the GPU (Sequential.run tiles each batch T times: sample t of
 * example b at row t * B + b), read back as CPU arrays.
 *
 * - A classifier gives a `Prediction`: the mean of the T per-sample probabilities and its
 *   decomposition into epistemic and aleatoric parts, entropies and mutual information
 *   (ops/uncertainty.ts: Kwon et al. 2020, eq. 4; Shridhar et al. 2019, eq. 15; Houlsby et al. 2011).
 * - A regressor (task 'regression': a (mean, log variance) head) gives a `RegressionPrediction`:
 *   the predictive mean and the split of its variance (ops/regression.ts: Kendall & Gal 2017, eq. 9).
 *
 * Random keys: the batch starting at example `from` draws with (seed, step + from), as `evaluate`
 * (train/fit.ts) does, so a prediction does not depend on how its input was given (a tensor, values,
 * a data set), and a data set predicted in parts with step = first index equals one call over it.
 * A deterministic network (no variational layer, or sample: false, and no MC dropout) gives T equal
 * samples, so it runs once whatever `samples` says, as predictLogProbs (train/step.ts) does.
 *
 * Temperature: a classifier's logits are divided by a temperature tau before the softmax (Guo et al.
 * 2017, temperature scaling), by default the model's own `model.temperature` (1 unless set, e.g. from
 * fitTemperature in src/uncertainty/calibration.ts); `temperature: 1` gives the untempered result bit for bit.
 */
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkOneOf } from '../errors.js';
import { predictiveMoments } from '../ops/regression.js';
import { PROBABILITY_METHODS, type ProbabilityMethod, checkTemperature, placeSamples, predictiveDistribution } from '../ops/uncertainty.js';
import type { ImageOptions } from './image_input.js';
import { type ModelInput, inputBatches } from './input.js';
import { Dropout } from './layers.js';
import { type Module, shapeString } from './module.js';
import type { BuiltModel } from './model.js';

/** The predictive distribution of a classifier over N examples and C classes; arrays are row-major. */
export interface Prediction {
  /** [N, C] the predictive distribution p_bar = mean over the T samples of p_t. */
  mean: Float32Array;
  /** [N, C] mean_t (p_t - p_bar)^2: the variance from the weights (model uncertainty). */
  epistemic: Float32Array;
  /** [N, C] mean_t (p_t - p_t^2): the expected multinomial variance (data noise). */
  aleatoric: Float32Array;
  /** [N] H[p_bar] in nats. */
  predictiveEntropy: Float32Array;
  /** [N] mean_t H[p_t] in nats. */
  expectedEntropy: Float32Array;
  /** [N] predictiveEntropy - expectedEntropy (BALD). */
  mutualInformation: Float32Array;
  /** [N] max_c p_bar. */
  maxProb: Float32Array;
  /** [N] argmax_c p_bar (the lowest index on ties). */
  predicted: Uint32Array;
  /** [N] the data set's labels, or null when the input had none. */
  labels: Uint32Array | null;
  /** [T, N, C] the per-sample probabilities, with keepSamples (null otherwise: it is T times larger). */
  probs: Float32Array | null;
  count: number;
  classes: number;
  /** Samples T drawn: 1 for a deterministic network, whatever was asked. */
  samples: number;
  method: ProbabilityMethod;
}

/** Per point of a regressor: the predictive mean, std = sqrt(epistemicVar + aleatoricVar) and the two variances. */
export interface RegressionPrediction {
  /** [N] mean_t mu_t. */
  mean: Float32Array;
  /** [N] sqrt(epistemicVar + aleatoricVar). */
  std: Float32Array;
  /** [N] var_t mu_t: how much the sampled networks disagree (shrinks with data). */
  epistemicVar: Float32Array;
  /** [N] mean_t sigma^2_t: the noise the likelihood expects (the learned noise for a homoscedastic head). */
  aleatoricVar: Float32Array;
  /** [T, N, 2] the per-sample (mu_t, log sigma^2_t), with keepSamples (null otherwise). */
  outputs: Float32Array | null;
  count: number;
  /** Samples T drawn: 1 for a deterministic network. */
  samples: number;
}

/** Progress of a prediction in batches: examples done out of the total. */
export interface PredictProgress {
  done: number;
  total: number;
}

export interface PredictOptions {
  /** Monte Carlo samples T (default 10 for a Bayesian model or with mcDropout, otherwise 1), batched on the GPU. */
  samples?: number;
  /** How a classifier's logits become probabilities (default 'softmax'; 'normalized': Shridhar et al. 2019). */
  method?: ProbabilityMethod;
  /** Random key (defaults 0, 0); the batch starting at example `from` uses step + from. */
  seed?: number;
  step?: number;
  /** Draw from the posterior (default true); false uses the posterior means, a deterministic network. */
  sample?: boolean;
  /** Keep dropout on (MC dropout, Gal & Ghahramani 2016); the model needs a Dropout layer with p > 0. */
  mcDropout?: boolean;
  /** Examples per GPU batch (default 256); each batch runs T * batchSize rows. */
  batchSize?: number;
  /** Called after each batch. */
  onProgress?: (progress: PredictProgress) => void | Promise<void>;
  /** Also return every sample: Prediction.probs [T, N, C], RegressionPrediction.outputs [T, N, 2] (default false). */
  keepSamples?: boolean;
  /** For image inputs: settings that override the model's preprocessing (see ImageOptions). */
  image?: ImageOptions;
  /**
   * A classifier's temperature tau > 0: each sample's logits are divided by it before the softmax (or
   * the softplus normalisation), p_t = softmax(z_t / tau) (Guo et al. 2017). Default `model.temperature`
   * (1 unless set; fitTemperature fits one on held-out data). Not for a regression model.
   */
  temperature?: number;
}

const OPTION_NAMES = ['samples', 'method', 'seed', 'step', 'sample', 'mcDropout', 'batchSize', 'onProgress', 'keepSamples', 'image', 'temperature'] as const;
const U32_MAX = 0xffffffff;

interface Checked {
  samples: number;
  method: ProbabilityMethod;
  seed: number;
  step: number;
  sample: boolean;
  mcDropout: boolean;
  batchSize: number;
  onProgress: ((progress: PredictProgress) => void | Promise<void>) | null;
  keepSamples: boolean;
  image: ImageOptions | undefined;
  temperature: number;
}

/** The Dropout layers with p > 0 anywhere in the network (blocks and residual bodies included), by path. */
export function droppingLayers(module: Module, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, child] of module.children()) {
    const path = prefix ? `${prefix}.${name}` : name;
    if (child instanceof Dropout && child.p > 0) out.push(path);
    out.push(...droppingLayers(child, path));
  }
  return out;
}

function checkOptions(op: string, model: BuiltModel, options: PredictOptions): Checked {
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', `an options object { ${OPTION_NAMES.join(', ')} }`, options);
  for (const key of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) throw argumentError(op, 'options', `only the keys ${OPTION_NAMES.join(', ')}`, `unknown key '${key}'`);
  }
  const u32 = (name: string, v: unknown) => {
    checkInt(op, name, v, 0);
    if ((v as number) > U32_MAX) throw argumentError(op, name, 'an integer <= 2^32 - 1', v);
    return v as number;
  };
  const flag = (name: string, v: unknown, fallback: boolean) => {
    if (v !== undefined && typeof v !== 'boolean') throw argumentError(op, name, 'true or false', v);
    return (v as boolean | undefined) ?? fallback;
  };
  const mcDropout = flag('mcDropout', options.mcDropout, false);
  if (mcDropout && droppingLayers(model).length === 0) {
    // MC dropout without a dropping layer returns T identical samples, zero epistemic uncertainty: a silent mistake.
    throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'model' expected a model with a Dropout layer of p > 0 for MC dropout (e.g. LeNet(ctx, { dropout: 0.5 })), got one without (layers: ${model.children().map(([n]) => n).join(', ')})`);
  }
  const sample = flag('sample', options.sample, true);
  const stochastic = mcDropout || (sample && model.isBayesian);
  const requested = checkInt(op, 'samples', options.samples ?? (stochastic ? 10 : 1), 1);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw argumentError(op, 'onProgress', 'a function ({ done, total }) => void', options.onProgress);
  if (options.image !== undefined && (options.image === null || typeof options.image !== 'object')) throw argumentError(op, 'image', 'an ImageOptions object', options.image);
  return {
    // T equal samples of a deterministic network reduce to that one sample: run it once.
    samples: stochastic ? requested : 1,
    method: checkOneOf(op, 'method', options.method ?? 'softmax', PROBABILITY_METHODS),
    seed: u32('seed', options.seed ?? 0),
    step: u32('step', options.step ?? 0),
    sample,
    mcDropout,
    batchSize: checkInt(op, 'batchSize', options.batchSize ?? 256, 1),
    onProgress: options.onProgress ?? null,
    keepSamples: flag('keepSamples', options.keepSamples, false),
    image: options.image,
    temperature: options.temperature === undefined ? model.temperature : checkTemperature(op, 'temperature', options.temperature),
  };
}

/**
 * The implementation of `Sequential.predict` (see there): checks the options and the input on the CPU,
 * then predicts batch by batch in eval mode, leaving the model's mode as it was and freeing every tensor it made.
 */
export async function predictModel(model: BuiltModel, input: ModelInput, options: PredictOptions = {}): Promise<Prediction | RegressionPrediction> {
  const op = 'predict';
  if (!model.isModel) throw new BayesError('INVALID_ARGUMENT', `${op}: this Sequential is a block, not a model; build a model with new Sequential(ctx, layers, { inputShape })`);
  const o = checkOptions(op, model, options);
  const regression = model.task === 'regression';
  const out = model.outputShapeOf;
  if (regression && (out.length !== 1 || out[0] !== 2)) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: a regression model must output [2] per example (mean and log variance: a heteroscedastic last layer, or 1 output followed by HomoscedasticNoise), got ${shapeString(out)}`);
  }
  if (!regression && out.length !== 1) throw new BayesError('SHAPE_MISMATCH', `${op}: a classifier must output [classes] per example, got ${shapeString(out)}`);
  if (regression && options.method !== undefined) throw argumentError(op, 'method', "nothing for a regression model (it applies to a classifier's probabilities)", options.method);
  if (regression && options.temperature !== undefined) throw argumentError(op, 'temperature', "nothing for a regression model (it scales a classifier's logits)", options.temperature);
  const batches = inputBatches(op, model, input, { image: o.image });
  const { count } = batches;
  if (o.step + count - 1 > U32_MAX) throw argumentError(op, 'step', `at most ${U32_MAX - count + 1} (the batch keys are step + first index)`, o.step);

  return regression ? predictRegression(model, batches, o) : predictClasses(model, batches, o);
}

type Batches = ReturnType<typeof inputBatches>;

/**
 * Runs `record` on every batch [from, from + n) and hands its read-back tensors to `store`; frees everything per batch.
 * The model is in eval mode while a batch is recorded (recording is synchronous) and back in its own mode at every
 * await, so a training loop or another prediction of the same model running between the batches sees its mode unchanged.
 */
async function eachBatch(model: BuiltModel, batches: Batches, o: Checked, record: (x: Tensor, step: number) => Tensor[], store: (from: number, n: number, values: Float32Array[]) => void): Promise<void> {
  const ctx = model.ctx;
  const { count } = batches;
  for (let from = 0; from < count; from += o.batchSize) {
    const n = Math.min(o.batchSize, count - from);
    const x = await batches.batch(from, n);
    let results: Tensor[] = [];
    try {
      const wasTraining = model.training;
      model.eval();
      try {
        results = ctx.scope(() => record(x, o.step + from));
      } finally {
        if (wasTraining) model.train();
      }
      store(from, n, (await ctx.readMany(results)) as Float32Array[]);
    } finally {
      for (const t of results) t.dispose();
      batches.release(x);
    }
    await o.onProgress?.({ done: from + n, total: count });
  }
}

async function predictClasses(model: BuiltModel, batches: Batches, o: Checked): Promise<Prediction> {
  const { count } = batches;
  const T = o.samples;
  const classes = model.outputShapeOf[0];
  const mean = new Float32Array(count * classes);
  const epistemic = new Float32Array(count * classes);
  const aleatoric = new Float32Array(count * classes);
  const predictiveEntropy = new Float32Array(count);
  const expectedEntropy = new Float32Array(count);
  const mutualInformation = new Float32Array(count);
  const maxProb = new Float32Array(count);
  const probs = o.keepSamples ? new Float32Array(T * count * classes) : null;

  await eachBatch(model, batches, o, (x, step) => {
    const { logits } = model.run(x, { samples: T, sample: o.sample, mcDropout: o.mcDropout, seed: o.seed, step, kl: false });
    const t = predictiveDistribution(logits, { samples: T, method: o.method, temperature: o.temperature });
    return o.keepSamples ? [t.moments, t.information, t.probs] : [t.moments, t.information];
  }, (from, n, [moments, info, p]) => {
    const nc = n * classes;
    mean.set(moments.subarray(0, nc), from * classes);
    epistemic.set(moments.subarray(nc, 2 * nc), from * classes);
    aleatoric.set(moments.subarray(2 * nc, 3 * nc), from * classes);
    predictiveEntropy.set(info.subarray(0, n), from);
    expectedEntropy.set(info.subarray(n, 2 * n), from);
    mutualInformation.set(info.subarray(2 * n, 3 * n), from);
    maxProb.set(info.subarray(3 * n, 4 * n), from);
    // The batch's rows are [T, n, C]; sample t of the batch goes to rows t * N + from .. of [T, N, C].
    if (probs) for (let t = 0; t < T; t++) probs.set(p.subarray(t * nc, (t + 1) * nc), (t * count + from) * classes);
  });

  const predicted = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (mean[i * classes + c] > mean[i * classes + best]) best = c;
    predicted[i] = best;
  }
  return { mean, epistemic, aleatoric, predictiveEntropy, expectedEntropy, mutualInformation, maxProb, predicted, labels: batches.labels, probs, count, classes, samples: T, method: o.method };
}

async function predictRegression(model: BuiltModel, batches: Batches, o: Checked): Promise<RegressionPrediction> {
  const { count } = batches;
  const T = o.samples;
  const result: RegressionPrediction = {
    mean: new Float32Array(count), std: new Float32Array(count), epistemicVar: new Float32Array(count), aleatoricVar: new Float32Array(count),
    outputs: o.keepSamples ? new Float32Array(T * count * 2) : null, count, samples: T,
  };
  await eachBatch(model, batches, o, (x, step) => {
    const { logits: pred } = model.run(x, { samples: T, sample: o.sample, mcDropout: o.mcDropout, seed: o.seed, step, kl: false }); // [T * n, 2]
    const moments = predictiveMoments(pred, { samples: T }); // [n, 4]: mean, epistemic, aleatoric, std
    return o.keepSamples ? [moments, pred] : [moments];
  }, (from, n, [m, pred]) => {
    for (let b = 0; b < n; b++) {
      result.mean[from + b] = m[4 * b];
      result.epistemicVar[from + b] = m[4 * b + 1];
      result.aleatoricVar[from + b] = m[4 * b + 2];
      result.std[from + b] = m[4 * b + 3];
    }
    if (result.outputs) for (let t = 0; t < T; t++) result.outputs.set(pred.subarray(t * n * 2, (t + 1) * n * 2), (t * count + from) * 2);
  });
  return result;
}

/** The sampling options of `sampleLogits`: predict's, without what concerns the read-back results. */
export type SampleLogitsOptions = Pick<PredictOptions, 'samples' | 'method' | 'seed' | 'step' | 'sample' | 'mcDropout' | 'batchSize'>;

/** A classifier's per-sample logits over a whole input, checked on the CPU; `record` runs the model. */
export interface SampledLogitsPlan {
  count: number;
  classes: number;
  /** Samples T that will be drawn (1 for a deterministic network). */
  samples: number;
  method: ProbabilityMethod;
  seed: number;
  step: number;
  sample: boolean;
  mcDropout: boolean;
  batchSize: number;
  /** The input's labels, or null. */
  labels: Uint32Array | null;
  /**
   * Runs the model over the input batch by batch, exactly as predict does (eval mode, the batch from
   * example `from` keyed with (seed, step + from), the model's mode restored at every await), and
   * returns the logits [T * N, C] in one tensor, sample t of example n at row t * N + n; the caller
   * disposes it. Reads nothing back.
   */
  record(): Promise<Tensor>;
}

/**
 * Internal (src/uncertainty/calibration.ts): the checks of predict for a classifier and `options`,
 * done on the CPU before any GPU work, and a plan that then records the T per-sample logits of every
 * example of `input` on the GPU, with predict's random keys, so that a temperature fitted on them
 * is the one predict's own samples see.
 */
export function sampleLogits(op: string, model: BuiltModel, input: ModelInput, options: SampleLogitsOptions): SampledLogitsPlan {
  if (!model.isModel) throw new BayesError('INVALID_ARGUMENT', `${op}: this Sequential is a block, not a model; build a model with new Sequential(ctx, layers, { inputShape })`);
  if (model.task === 'regression') throw argumentError(op, 'model', 'a classifier (temperature scaling calibrates class probabilities)', 'a regression model');
  const out = model.outputShapeOf;
  if (out.length !== 1) throw new BayesError('SHAPE_MISMATCH', `${op}: a classifier must output [classes] per example, got ${shapeString(out)}`);
  const o = checkOptions(op, model, options);
  const batches = inputBatches(op, model, input, {});
  const { count } = batches;
  if (o.step + count - 1 > U32_MAX) throw argumentError(op, 'step', `at most ${U32_MAX - count + 1} (the batch keys are step + first index)`, o.step);
  const classes = out[0];
  const T = o.samples;
  return {
    count, classes, samples: T, method: o.method, seed: o.seed, step: o.step, sample: o.sample, mcDropout: o.mcDropout, batchSize: o.batchSize,
    labels: batches.labels,
    async record() {
      const ctx = model.ctx;
      const all = ctx.empty([T * count, classes]);
      try {
        for (let from = 0; from < count; from += o.batchSize) {
          const n = Math.min(o.batchSize, count - from);
          const x = await batches.batch(from, n);
          try {
            const wasTraining = model.training;
            model.eval();
            try {
              ctx.scope(() => {
                const { logits } = model.run(x, { samples: T, sample: o.sample, mcDropout: o.mcDropout, seed: o.seed, step: o.step + from, kl: false });
                placeSamples(logits, all, { samples: T, offset: from });
              });
            } finally {
              if (wasTraining) model.train();
            }
            // One batch's work at a time on the GPU, as predict's per-batch read does.
            await ctx.sync();
          } finally {
            batches.release(x);
          }
        }
      } catch (e) {
        all.dispose();
        throw e;
      }
      return all;
    },
  };
}
