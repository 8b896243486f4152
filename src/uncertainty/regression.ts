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
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf, shapeError } from '../errors.js';
import { type LayerType, type Priors, BBBLinear } from '../nn/bayes.js';
import { HomoscedasticNoise, ReLU, Softplus } from '../nn/layers.js';
export { HomoscedasticNoise } from '../nn/layers.js';
import { type Parameter, type Pass, Module, setGrad, shapeString } from '../nn/module.js';
import { Regressor, Sequential } from '../nn/sequential.js';
import { addInto, scale, tile } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { appendLogVar, mergeHead, splitHead } from '../ops/regression.js';

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
  /** 'lrt' (default), 'bbb' (the seed's layer_type) or 'flipout'. */
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
 * await fit(model, { x, y, count: 512, features: 1 }, { epochs: 100, batchSize: 256, lr: 0.03, beta: 1, validFraction: 0 });
 * const { mean, std, epistemicVar, aleatoricVar } = await model.predict({ data: grid, shape: [grid.length, 1] }, { samples: 100 });
 */
export function bayesianRegressor(ctx: Context, options: RegressorOptions = {}): Regressor {
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
  return new Regressor(ctx, layers, { inputShape: [features] });
}

/** Throws unless `model` ends in the (mean, log variance) head a regression likelihood needs. */
export function checkRegressionModel(op: string, model: Sequential): void {
  if (!(model instanceof Sequential)) throw argumentError(op, 'model', 'a Sequential regression model', model);
  const out = model.outputShapeOf;
  if (out.length !== 1 || out[0] !== 2) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'model' expected outputs [2] per example (mean and log variance: a heteroscedastic last layer, or 1 output followed by HomoscedasticNoise), got ${shapeString(out)}`);
  }
}

// Training: fit(model, data, options) (src/train/fit.ts), whose regression step body and data checks
// are in src/train/regression.ts.

// Prediction: model.predict(input, options) (src/nn/predict.ts) returns a RegressionPrediction for a
// regression model (a Regressor, as bayesianRegressor builds).
