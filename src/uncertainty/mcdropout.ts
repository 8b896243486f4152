/**
 * MC dropout (Gal & Ghahramani 2016, "Dropout as a Bayesian Approximation"): a
 * frequentist network trained with dropout is an approximate Bayesian neural
 * network whose posterior samples are its dropout masks. Train it normally
 * (dropout on); at prediction keep dropout on and run T stochastic passes.
 * Their spread is the epistemic uncertainty, exactly as for the T weight
 * samples of a Bayes-by-Backprop model, so every uncertainty API takes it with
 * `mcDropout: true`:
 *
 *   const model = LeNet(ctx, { dropout: 0.5 });          // src/nn/models.ts
 *   await fit(model, train, { epochs: 10, batchSize: 128 });
 *   const p = await model.predict(x, { samples: 20, mcDropout: true });
 *   p.mutualInformation;                                  // BALD score per example (nn/predict.ts)
 *
 *   const reg = mcDropoutMLP(ctx, { features: 1, outputs: 2, dropout: 0.1, task: 'regression' }); // mean + log variance
 *   await fit(reg, data, { epochs: 100, batchSize: 64, weightDecay: 1e-4 });
 *   await reg.predict({ data: xs, shape: [xs.length, 1] }, { samples: 50, mcDropout: true });
 *
 * Sample t of example b sits at row t * B + b (Sequential.run tiles the input).
 * A Dropout layer draws its mask per element of that [T * B, ...] tensor, from
 * rand_uniform((seed, step), element index, the layer's stream): every row has
 * its own mask, so the T samples of one example differ and the examples of one
 * sample are independent, and the whole set is reproducible from the key.
 */
import type { Context } from '../gpu/context.js';
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf } from '../errors.js';
import { Dropout, Linear, ReLU, Softplus } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Regressor, Sequential, type Task } from '../nn/sequential.js';
import { HomoscedasticNoise } from './regression.js';

/** The model's Dropout layers that drop something (p > 0), by name. */
export function dropoutLayers(model: Sequential): [string, Dropout][] {
  return model.layers.filter((entry): entry is [string, Dropout] => entry[1] instanceof Dropout && entry[1].p > 0);
}

/**
 * Throws unless `model` has a Dropout layer with p > 0: MC dropout on a model without one returns T
 * identical samples, i.e. zero epistemic uncertainty, which is a silent mistake worth an error.
 */
export function checkMcDropout(op: string, model: Sequential): void {
  if (!(model instanceof Sequential)) throw argumentError(op, 'model', 'a Sequential model', model);
  if (dropoutLayers(model).length === 0) {
    throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'model' expected a model with a Dropout layer of p > 0 for MC dropout (e.g. LeNet(ctx, { dropout: 0.5 })), got one without (layers: ${model.layers.map(([n]) => n).join(', ')})`);
  }
}

export interface McDropoutMlpOptions {
  /** Input features per example. */
  features: number;
  /** Hidden layer widths (default [50, 50]). */
  hidden?: number[];
  /** Output columns: classes for a classifier; 2 (mean, log variance) for heteroscedastic regression. */
  outputs: number;
  /** Drop probability after every hidden layer (default 0.5). */
  dropout?: number;
  activation?: 'relu' | 'softplus';
  /** Homoscedastic regression: append a HomoscedasticNoise head (outputs must be 1). */
  noise?: { std?: number; learn?: boolean };
  /** Seed of the weight initialisation. */
  seed?: number;
  /**
   * What fit trains it for: 'classification' (outputs = classes) or 'regression' (outputs: 2, mean and
   * log variance, or 1 with `noise`). Default: 'regression' with `noise`, otherwise 'classification'.
   */
  task?: Task;
}

/**
 * A frequentist MLP with dropout after every hidden activation (fc1, act1, drop1, ..., out), the network of
 * Gal & Ghahramani's experiments. Layer names follow the seed's fc1/fc2 convention.
 */
export function mcDropoutMLP(ctx: Context, options: McDropoutMlpOptions & ({ task: 'regression' } | { noise: NonNullable<McDropoutMlpOptions['noise']>; task?: 'regression' })): Regressor;
export function mcDropoutMLP(ctx: Context, options: McDropoutMlpOptions): Sequential;
export function mcDropoutMLP(ctx: Context, options: McDropoutMlpOptions): Sequential {
  const op = 'mcDropoutMLP';
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ features, outputs, ... }', options);
  const features = checkInt(op, 'features', options.features, 1);
  const outputs = checkInt(op, 'outputs', options.outputs, 1);
  const hidden = options.hidden ?? [50, 50];
  if (!Array.isArray(hidden)) throw argumentError(op, 'hidden', 'an array of layer widths', hidden);
  hidden.forEach((h, i) => checkInt(op, `hidden[${i}]`, h, 1));
  const p = checkNumber(op, 'dropout', options.dropout ?? 0.5, (v) => v >= 0 && v < 1, 'a probability in [0, 1)');
  const activation = checkOneOf(op, 'activation', options.activation ?? 'relu', ['relu', 'softplus'] as const);
  if (options.noise && outputs !== 1) throw argumentError(op, 'outputs', '1 with a homoscedastic noise head (the mean; the head appends the log variance)', outputs);
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  const task = checkOneOf(op, 'task', options.task ?? (options.noise ? 'regression' : 'classification'), ['classification', 'regression'] as const);
  if (task === 'regression' && !options.noise && outputs !== 2) throw argumentError(op, 'outputs', "2 for regression (mean and log variance), or 1 with a noise head", outputs);
  const layerSeed = (i: number) => (seed * 1000003 + (i + 1) * 7919) >>> 0;

  const layers: [string, Module][] = [];
  let inF = features;
  hidden.forEach((width, i) => {
    layers.push([`fc${i + 1}`, new Linear(inF, width, { seed: layerSeed(i) })]);
    layers.push([`act${i + 1}`, activation === 'relu' ? new ReLU() : new Softplus()]);
    layers.push([`drop${i + 1}`, new Dropout(p)]);
    inF = width;
  });
  layers.push(['out', new Linear(inF, outputs, { seed: layerSeed(hidden.length) })]);
  if (options.noise) layers.push(['noise', new HomoscedasticNoise(options.noise)]);
  return task === 'regression' ? new Regressor(ctx, layers, { inputShape: [features] }) : new Sequential(ctx, layers, { inputShape: [features], task });
}
