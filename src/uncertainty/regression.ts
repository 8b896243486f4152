/**
 * Bayesian regression with a Gaussian likelihood, the experiment of the seed's
 * tutorial: a Bayes-by-Backprop MLP (BBBLinear layers) fitted by the ELBO, whose
 * T Monte Carlo samples give a predictive mean and a split of the predictive
 * variance into epistemic (model) and aleatoric (noise) parts.
 *
 * Every regression network here ends in two columns per example, (mu, s) with
 * s = log sigma^2, the parameters of N(y | mu, sigma^2):
 * - heteroscedastic head: the last layer has 2 outputs, so the network predicts
 *   the noise per input (Nix & Weigend 1994; Kendall & Gal 2017, eq. 8);
 * - homoscedastic head: the last layer has 1 output (the mean) and a
 *   HomoscedasticNoise layer appends one log variance shared by every input,
 *   learned by maximum likelihood (a point estimate, no prior) or held fixed.
 * Both heads therefore train and predict through the same code.
 *
 * Training objective (Blundell et al. 2015, eq. 1-2, written as the seed's metrics.ELBO):
 *   loss = N * NLL + beta * KL(q || p),  NLL = (1/(T B)) sum_{t,b} -log N(y_b | mu_tb, sigma^2_tb)
 * NLL averages over the T Monte Carlo samples: (1/T) sum_t log p(y | w_t) is the standard unbiased
 * estimator of E_q[log p(y | w)], the ELBO's data term. (Classification in train/step.ts instead scores
 * log((1/T) sum_t p(y | w_t)), the log predictive, as the seed does; for T = 1 the two coincide.)
 * With the batch NLL scaled to the N training points, beta = 1 is the ELBO of the whole training set
 * for any batch size: every batch's loss is an unbiased estimate of it.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf, shapeError } from '../errors.js';
import { type LayerType, type Priors, BBBLinear } from '../nn/bayes.js';
import { HomoscedasticNoise, ReLU, Softplus } from '../nn/layers.js';
export { HomoscedasticNoise } from '../nn/layers.js';
import { type Parameter, type Pass, Module, setGrad, shapeString } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { Adam } from '../train/adam.js';
import { type BetaSchedule, beta as betaAt } from '../train/elbo.js';
import { addInto, scale, tile } from '../ops/elementwise.js';
import { gaussianNll, gaussianNllBackward } from '../ops/loss.js';
import { sum } from '../ops/reduce.js';
import { appendLogVar, mergeHead, predictiveMoments, splitHead } from '../ops/regression.js';
import { permutation } from '../data/batches.js';

export type RegressionHead = 'homoscedastic' | 'heteroscedastic';

// --------------------------------------------------------------- the model

export interface RegressorOptions {
  /** Input features per example (default 1). */
  features?: number;
  /** Hidden layer widths (default [50, 50]). */
  hidden?: number[];
  /** Hidden activation (default 'relu'). */
  activation?: 'relu' | 'softplus';
  /** 'heteroscedastic' (default): the network predicts mean and log variance; 'homoscedastic': one noise level. */
  head?: RegressionHead;
  /** Homoscedastic head: the noise standard deviation (initial value when learned; default 0.5). */
  noiseStd?: number;
  /** Homoscedastic head: learn the noise (default true) or keep noiseStd fixed. */
  learnNoise?: boolean;
  /** 'lrt' (default) or 'bbb', as the seed's layer_type. */
  layerType?: LayerType;
  /** The seed's priors dictionary; default prior N(0, 1) (see REGRESSION_PRIORS). */
  priors?: Priors;
  /** Seed of the initial mu and rho draws. */
  seed?: number;
}

/**
 * Priors for the regression MLP: N(0, 1) on every weight instead of the seed's N(0, 0.1^2), which is too
 * tight for a 1 -> 50 -> 50 network on one input: with it the noisy-sine fit (the acceptance test's
 * settings) flattens at +-0.7 where sin(x) reaches +-1 and the learned noise grows to 0.27 instead of 0.1.
 * The posterior starts as the seed's: mu ~ N(0, 0.1), rho ~ N(-3, 0.1), i.e. sigma = softplus(-3) ~ 0.05.
 */
export const REGRESSION_PRIORS: Priors = {
  prior_mu: 0,
  prior_sigma: 1,
  posterior_mu_initial: [0, 0.1],
  posterior_rho_initial: [-3, 0.1],
};

/**
 * A Bayesian MLP for regression: fc1 (features -> hidden[0]), act1, ..., out, [noise]. With the
 * heteroscedastic head `out` has 2 outputs (mean, log variance); with the homoscedastic head it has
 * 1 output and `noise` (HomoscedasticNoise) appends the shared log variance.
 *
 * @example
 * // 512 points of y = sin(x) + N(0, 0.1^2) on [-3, 3] (examples/regression.ts, the acceptance test):
 * const model = bayesianRegressor(ctx, { features: 1, hidden: [50, 50], head: 'heteroscedastic' });
 * await trainRegression(ctx, model, { x, y, count: 512, features: 1 }, { epochs: 100, batchSize: 256, lr: 0.03 });
 * const { mean, std, epistemicVar, aleatoricVar } = await predictWithUncertainty(ctx, model, grid, { samples: 100 });
 */
export function bayesianRegressor(ctx: Context, options: RegressorOptions = {}): Sequential {
  const op = 'bayesianRegressor';
  const features = checkInt(op, 'features', options.features ?? 1, 1);
  const hidden = options.hidden ?? [50, 50];
  if (!Array.isArray(hidden)) throw argumentError(op, 'hidden', 'an array of layer widths', hidden);
  hidden.forEach((h, i) => checkInt(op, `hidden[${i}]`, h, 1));
  const activation = checkOneOf(op, 'activation', options.activation ?? 'relu', ['relu', 'softplus'] as const);
  const head = checkOneOf(op, 'head', options.head ?? 'heteroscedastic', ['homoscedastic', 'heteroscedastic'] as const);
  const layerType = options.layerType ?? 'lrt';
  const priors = options.priors ?? REGRESSION_PRIORS;
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  // One initialisation seed per layer, as models.ts derives them.
  const layerSeed = (i: number) => (seed * 1000003 + (i + 1) * 7919) >>> 0;

  const layers: [string, Module][] = [];
  let inF = features;
  hidden.forEach((width, i) => {
    layers.push([`fc${i + 1}`, new BBBLinear(inF, width, { layerType, priors, seed: layerSeed(i) })]);
    layers.push([`act${i + 1}`, activation === 'relu' ? new ReLU() : new Softplus()]);
    inF = width;
  });
  layers.push(['out', new BBBLinear(inF, head === 'heteroscedastic' ? 2 : 1, { layerType, priors, seed: layerSeed(hidden.length) })]);
  if (head === 'homoscedastic') layers.push(['noise', new HomoscedasticNoise({ std: options.noiseStd, learn: options.learnNoise })]);
  return new Sequential(ctx, layers, { inputShape: [features] });
}

/** Throws unless `model` ends in the (mean, log variance) head a regression likelihood needs. */
export function checkRegressionModel(op: string, model: Sequential): void {
  if (!(model instanceof Sequential)) throw argumentError(op, 'model', 'a Sequential regression model', model);
  const out = model.outputShapeOf;
  if (out.length !== 1 || out[0] !== 2) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'model' expected outputs [2] per example (mean and log variance: a heteroscedastic last layer, or 1 output followed by HomoscedasticNoise), got ${shapeString(out)}`);
  }
}

// ---------------------------------------------------------------- training

/** A regression data set: `count` examples of `features` values (row-major) and one target each. */
export interface RegressionData {
  x: Float32Array;
  y: Float32Array;
  count: number;
  features: number;
}

export function checkRegressionData(op: string, model: Sequential, data: RegressionData): void {
  if (data === null || typeof data !== 'object') throw argumentError(op, 'data', '{ x, y, count, features }', data);
  const count = checkInt(op, 'data.count', data.count, 1);
  const features = checkInt(op, 'data.features', data.features, 1);
  if (!(data.x instanceof Float32Array)) throw argumentError(op, 'data.x', 'a Float32Array', data.x);
  if (!(data.y instanceof Float32Array)) throw argumentError(op, 'data.y', 'a Float32Array', data.y);
  if (data.x.length !== count * features) throw argumentError(op, 'data.x.length', `${count * features} (count ${count} x features ${features})`, data.x.length);
  if (data.y.length !== count) throw argumentError(op, 'data.y.length', `${count} (one target per example)`, data.y.length);
  if (model.inputShape.length !== 1 || model.inputShape[0] !== features) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'data' has ${features} features per example but the model expects input ${shapeString(model.inputShape)}`);
  }
  // A NaN target would turn every parameter into NaN after one step; say where it is instead.
  const bad = (a: Float32Array) => a.findIndex((v) => !Number.isFinite(v));
  const bx = bad(data.x);
  if (bx >= 0) throw argumentError(op, `data.x[${bx}]`, 'a finite number', data.x[bx]);
  const by = bad(data.y);
  if (by >= 0) throw argumentError(op, `data.y[${by}]`, 'a finite number', data.y[by]);
}

export interface RegressionStepOptions {
  /** Monte Carlo samples T per example, batched on the GPU (rows t * B + b). */
  samples: number;
  /** KL weight of this step (1: the ELBO). */
  beta: number;
  /** N, the training set size: the batch's mean NLL is scaled to the whole set. */
  trainSize: number;
  seed: number;
  step: number;
}

export interface RegressionStepResult {
  /** [1] N * NLL + beta * KL. */
  loss: Tensor;
  /** [1] the mean Gaussian NLL over the T * B rows. */
  nll: Tensor;
  /** [1] KL(q || p) (zero without Bayesian layers). */
  kl: Tensor;
}

/**
 * Forward, loss and backward of one batch: afterwards every trainable parameter's `grad` holds
 * d loss / d parameter. x: [B, features]; y: [B] (or [B, 1]). The returned [1] tensors survive.
 */
export function regressionLossAndGradients(ctx: Context, model: Sequential, x: Tensor, y: Tensor, o: RegressionStepOptions): RegressionStepResult {
  const op = 'regressionLossAndGradients';
  checkRegressionModel(op, model);
  ctx.own(op, 'x', x);
  model.checkInput(op, x);
  ctx.own(op, 'y', y);
  const batch = x.shape[0];
  if (y.size !== batch || y.shape.length > 2 || (y.shape.length === 2 && y.shape[1] !== 1)) throw shapeError(op, 'y', `[${batch}] (one target per row of x)`, y.shape);
  const samples = checkInt(op, 'samples', o.samples, 1);
  const beta = checkNumber(op, 'beta', o.beta, (v) => v >= 0 && Number.isFinite(v), 'a number >= 0');
  const trainSize = checkInt(op, 'trainSize', o.trainSize, 1);
  if (!model.training) model.train();
  return ctx.scope(() => {
    const { logits: pred, kl, pass } = model.run(x, { samples, seed: o.seed, step: o.step }); // [T * B, 2]
    const { mu, logVar } = splitHead(pred);
    // Each of the T samples is scored against the same targets: tile y like the input.
    const target = samples > 1 ? tile(y, samples).reshape([samples * batch]) : y.reshape([batch]);
    const nll = gaussianNll(mu, logVar, target);
    const loss = scale(nll, trainSize);
    if (kl) addInto(loss, kl, beta);

    const { dMean, dLogVar } = gaussianNllBackward(mu, logVar, target, { scale: trainSize });
    model.backward(mergeHead(dMean, dLogVar), pass);
    if (kl && beta > 0) model.klBackward(pass, beta);
    return { loss, nll, kl: kl ?? ctx.zeros([1]) };
  });
}

export interface RegressionEpoch {
  epoch: number;
  epochs: number;
  /** Mean over the epoch's batches of N * NLL + beta * KL. */
  loss: number;
  /** Mean over the batches of the Gaussian NLL per point. */
  nll: number;
  kl: number;
  seconds: number;
}

export interface TrainRegressionOptions {
  epochs: number;
  batchSize: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** KL weight: a number (default 1, the ELBO) or a schedule of train/elbo.ts. */
  beta?: BetaSchedule;
  /** Monte Carlo samples per example and step (default 1). */
  samples?: number;
  seed?: number;
  /**
   * Adam's decoupled weight decay (default 0); for MC dropout it plays the prior's part (Gal & Ghahramani
   * 2016). It applies to every trainable parameter, a learned noise log variance included.
   */
  weightDecay?: number;
  /** Continue with an existing optimizer (its step counter continues the random keys). */
  optimizer?: Adam;
  onEpoch?: (e: RegressionEpoch) => void | Promise<void>;
}

export interface TrainRegressionResult {
  history: RegressionEpoch[];
  optimizer: Adam;
  /** Steps done so far (the random key's step counter). */
  steps: number;
}

/**
 * Fits a regression model (output [2]: mean and log variance) by the ELBO with Adam over shuffled
 * mini-batches. A frequentist model (e.g. an MC dropout MLP) trains by the same loop: its KL is 0 and
 * the loss is N * NLL.
 */
export async function trainRegression(ctx: Context, model: Sequential, data: RegressionData, options: TrainRegressionOptions): Promise<TrainRegressionResult> {
  const op = 'trainRegression';
  checkRegressionModel(op, model);
  checkRegressionData(op, model, data);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ epochs, batchSize, ... }', options);
  const epochs = checkInt(op, 'epochs', options.epochs, 1);
  const batchSize = Math.min(checkInt(op, 'batchSize', options.batchSize, 1), data.count);
  const lr = checkNumber(op, 'lr', options.lr ?? 0.01, (v) => v > 0 && Number.isFinite(v), 'a positive number');
  const samples = checkInt(op, 'samples', options.samples ?? 1, 1);
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  const schedule = options.beta ?? 1;
  betaAt(schedule, 0, 1); // validates the schedule before any GPU work
  const { count, features } = data;
  const batches = Math.ceil(count / batchSize);
  const optimizer = options.optimizer ?? new Adam(ctx, model.namedParameters(), { lr, weightDecay: options.weightDecay ?? 0 });

  // Batch tensors by size (the last batch of an epoch may be smaller), reused across steps.
  const slots = new Map<number, { x: Tensor; y: Tensor; hx: Float32Array; hy: Float32Array }>();
  const slot = (n: number) => {
    let s = slots.get(n);
    if (!s) slots.set(n, (s = { x: ctx.keep(ctx.empty([n, features])), y: ctx.keep(ctx.empty([n])), hx: new Float32Array(n * features), hy: new Float32Array(n) }));
    return s;
  };
  const totals = { loss: ctx.keep(ctx.zeros([1])), nll: ctx.keep(ctx.zeros([1])), kl: ctx.keep(ctx.zeros([1])) };
  const history: RegressionEpoch[] = [];
  let step = optimizer.step;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const started = performance.now();
      const order = permutation(count, seed + 1000 + epoch);
      for (const t of Object.values(totals)) ctx.write(t, [0]);
      for (let b = 0; b < batches; b++) {
        const from = b * batchSize;
        const to = Math.min(from + batchSize, count);
        const s = slot(to - from);
        for (let i = from; i < to; i++) {
          const j = order[i];
          s.hx.set(data.x.subarray(j * features, (j + 1) * features), (i - from) * features);
          s.hy[i - from] = data.y[j];
        }
        ctx.write(s.x, s.hx);
        ctx.write(s.y, s.hy);
        const beta = betaAt(schedule, b, batches, epoch, epochs);
        ctx.scope(() => {
          const r = regressionLossAndGradients(ctx, model, s.x, s.y, { samples, beta, trainSize: count, seed, step: step++ });
          optimizer.update(ctx);
          addInto(totals.loss, r.loss);
          addInto(totals.nll, r.nll);
          addInto(totals.kl, r.kl);
        });
      }
      const [loss, nll, kl] = await Promise.all([totals.loss.read(), totals.nll.read(), totals.kl.read()]);
      const summary: RegressionEpoch = { epoch: epoch + 1, epochs, loss: loss[0] / batches, nll: nll[0] / batches, kl: kl[0] / batches, seconds: (performance.now() - started) / 1000 };
      history.push(summary);
      await options.onEpoch?.(summary);
    }
  } finally {
    for (const s of slots.values()) {
      s.x.dispose();
      s.y.dispose();
    }
    for (const t of Object.values(totals)) t.dispose();
  }
  return { history, optimizer, steps: step };
}

// -------------------------------------------------------------- prediction

export interface PredictRegressionOptions {
  /** Monte Carlo samples T (>= 1), batched on the GPU. */
  samples: number;
  seed?: number;
  /** Random key step of the first batch (default 0); batch k uses step + its first row. */
  step?: number;
  /** Sample from the posterior (default true; false: the posterior means, a deterministic network). */
  sample?: boolean;
  /** Keep dropout active (MC dropout, Gal & Ghahramani 2016). */
  mcDropout?: boolean;
  /** Points per GPU batch (default 512); each runs T * batchSize rows. */
  batchSize?: number;
}

/** Per point: predictive mean, std = sqrt(epistemic + aleatoric), and the two variances. */
export interface RegressionPrediction {
  mean: Float32Array;
  std: Float32Array;
  /** var_t mu_t: how much the sampled networks disagree (shrinks with data). */
  epistemicVar: Float32Array;
  /** mean_t sigma^2_t: the noise the likelihood expects (the learned noise for the homoscedastic head). */
  aleatoricVar: Float32Array;
}

/**
 * Predictive mean and variance decomposition from T Monte Carlo samples (mu_t, sigma^2_t) per point
 * (Kendall & Gal 2017, eq. 9): mean = mean_t mu_t, epistemicVar = var_t mu_t (population variance over
 * the T samples), aleatoricVar = mean_t sigma^2_t. x: `count * features` values, or a [B, features] tensor.
 */
export async function predictWithUncertainty(ctx: Context, model: Sequential, x: Float32Array | Tensor, options: PredictRegressionOptions): Promise<RegressionPrediction> {
  const op = 'predictWithUncertainty';
  checkRegressionModel(op, model);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ samples, ... }', options);
  const samples = checkInt(op, 'samples', options.samples, 1);
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  const step0 = checkInt(op, 'step', options.step ?? 0, 0);
  let batchSize = checkInt(op, 'batchSize', options.batchSize ?? 512, 1);
  const features = model.inputShape.reduce((a, b) => a * b, 1);
  let count: number;
  if (x instanceof Float32Array) {
    if (x.length === 0 || x.length % features !== 0) throw argumentError(op, 'x.length', `a positive multiple of ${features} (the features per example)`, x.length);
    count = x.length / features;
  } else {
    ctx.own(op, 'x', x);
    model.checkInput(op, x);
    count = x.shape[0];
    batchSize = count; // a tensor already on the GPU runs as one batch
  }
  const out: RegressionPrediction = { mean: new Float32Array(count), std: new Float32Array(count), epistemicVar: new Float32Array(count), aleatoricVar: new Float32Array(count) };
  // Eval mode for the prediction (batch statistics off, dropout only with mcDropout); restored afterwards.
  const wasTraining = model.training;
  model.eval();
  try {
    for (let from = 0; from < count; from += batchSize) {
      const to = Math.min(from + batchSize, count);
      const moments = ctx.scope(() => {
        const xb = x instanceof Float32Array ? ctx.tensor(x.subarray(from * features, to * features), [to - from, ...model.inputShape]) : x;
        const { logits: pred } = model.run(xb, { samples, sample: options.sample ?? true, mcDropout: options.mcDropout ?? false, seed, step: step0 + from, kl: false });
        return predictiveMoments(pred, { samples });
      });
      let m: Float32Array;
      try {
        m = (await moments.read()) as Float32Array;
      } finally {
        moments.dispose();
      }
      for (let b = 0; b < to - from; b++) {
        out.mean[from + b] = m[4 * b];
        out.epistemicVar[from + b] = m[4 * b + 1];
        out.aleatoricVar[from + b] = m[4 * b + 2];
        out.std[from + b] = m[4 * b + 3];
      }
    }
  } finally {
    if (wasTraining) model.train();
  }
  return out;
}
