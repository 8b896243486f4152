/**
 * toBayesian: a trained frequentist network turned into a Bayesian one with MOPED priors
 * (Krishnan, Subedar and Tickoo 2020, "Specifying Weight Priors in Bayesian Deep Neural Networks
 * with Empirical Bayes", AAAI; bayesian-torch's dnn_to_bnn and MOPED_layer do the same in PyTorch).
 *
 * Every Conv2d becomes a BBBConv2d and every Linear a BBBLinear of the same shapes and settings
 * (stride, padding, dilation, bias), of the requested layer type. For each trained weight w:
 *   - the posterior mean is w:                mu = w (the f32 value itself);
 *   - the posterior scale is delta |w|:       rho = softplus^-1(max(delta |w|, MOPED_SIGMA_MIN));
 *   - the prior is centred on w:              p(w') = N(w, sigma_p^2), a tensor of its own per weight
 *     (BayesOptions.priorTensors), with sigma_p = max(delta |w|, MOPED_SIGMA_MIN) by default
 *     (`priorSigma: 'delta'`), or one number for every weight.
 * With the default the posterior starts equal to the prior, so the KL starts at 0 and the first
 * steps follow the data term from the trained solution.
 *
 * The prior scale. The paper's empirical-Bayes prior is centred on the maximum-likelihood weights
 * with the scale delta |w| (its section "MOPED"). bayesian-torch's MOPED_layer
 * (bayesian_torch/utils/util.py) sets `prior_weight_mu = det_layer.weight` and keeps the layer's
 * scalar prior sigma (`prior_variance`, 1.0 in its examples); `priorSigma: number` gives that.
 *
 * The floor. bayesian-torch computes rho = log(expm1(delta |w|) + 1e-20) (get_rho), a floor of about
 * 1e-20 on sigma for w = 0. Here sigma and sigma_p are floored at MOPED_SIGMA_MIN = 1e-8: a per-weight
 * prior N(0, (1e-20)^2) would make 1 / sigma_p^2 = 1e40, past f32's 3.4e38, and a KL of order
 * (d / 1e-20)^2 after any step d; at 1e-8 the KL and its gradient stay finite in f32 (a weight that
 * trained to exactly 0 is then held near 0 by its prior, which is what its estimate says).
 *
 * Other layers (activations, pooling, BatchNorm2d with its running statistics, Dropout, Flatten,
 * HomoscedasticNoise, layers of the user's own registered types, Bayesian layers already there) are
 * rebuilt from their config and get their parameters copied; Sequential blocks and Residual keep
 * their structure. The result is a new model on the input's context with its model options; the
 * input model is not changed.
 */
import { BayesError, argumentError, checkNumber, checkOneOf } from '../errors.js';
import type { Tensor } from '../gpu/tensor.js';
import { BBBConv2d, BBBLinear, LAYER_TYPES, type LayerType, type Priors } from './bayes.js';
import { Conv2d, Linear } from './layers.js';
import type { Module } from './module.js';
import { layerFromConfig } from './registry.js';
import { Regressor, Residual, Sequential } from './sequential.js';

/** The smallest sigma (posterior and per-weight prior) toBayesian sets, for |w| delta below it (see the header). */
export const MOPED_SIGMA_MIN = 1e-8;

export interface MopedOptions {
  /** sigma = delta |w| (Krishnan et al. 2020 use delta = 0.1): a finite number > 0. */
  delta: number;
  /**
   * The prior's scale: 'delta' (default) for sigma_p = delta |w| per weight, as the posterior's; or one
   * number > 0 for every weight (bayesian-torch's MOPED_layer, which sets only the prior's mean).
   */
  priorSigma?: 'delta' | number;
}

export interface ToBayesianOptions {
  /** The Bayesian layers' type (default 'lrt'); any LayerType the Bayesian layers accept. */
  layerType?: LayerType;
  /** Empirical-Bayes priors and posterior initialisation from the trained weights. */
  moped: MopedOptions;
}

const OP = 'toBayesian';

/** softplus^-1(s) = log(e^s - 1) = s + log(1 - e^-s), stable for every s > 0 (no e^s overflow, no cancellation for small s). */
export function inverseSoftplus(s: number): number {
  return s + Math.log(-Math.expm1(-s));
}

/** The unbuilt layer that replaces `layer`, and how to fill it from the old one. */
interface Plan {
  layer: Module;
  converted: number;
  fill: Fill[];
}

/** One converted weight tensor or one copied parameter, applied once the new model is built. */
type Fill =
  | { kind: 'copy'; from: Tensor; to: () => Tensor; name: string }
  | { kind: 'moped'; from: Tensor; to: () => { mu: Tensor; rho: Tensor; priorMu: Tensor; priorSigma: Tensor }; name: string };

function checkOptions(options: unknown): { layerType: LayerType; delta: number; priorSigma: 'delta' | number } {
  if (options === null || typeof options !== 'object') throw argumentError(OP, 'options', '{ layerType?, moped: { delta, priorSigma? } }', options);
  const o = options as Partial<ToBayesianOptions>;
  for (const key of Object.keys(o)) if (key !== 'layerType' && key !== 'moped') throw argumentError(OP, 'options', 'only the keys layerType, moped', `a key '${key}'`);
  const moped = o.moped;
  if (moped === null || typeof moped !== 'object') throw argumentError(OP, 'options.moped', '{ delta, priorSigma? } (MOPED, Krishnan et al. 2020)', moped);
  for (const key of Object.keys(moped)) if (key !== 'delta' && key !== 'priorSigma') throw argumentError(OP, 'options.moped', 'only the keys delta, priorSigma', `a key '${key}'`);
  const delta = checkNumber(OP, 'options.moped.delta', moped.delta, (v) => Number.isFinite(v) && v > 0, 'a finite number > 0');
  const priorSigma = moped.priorSigma ?? 'delta';
  if (priorSigma !== 'delta') {
    checkNumber(OP, 'options.moped.priorSigma', priorSigma, (v) => Number.isFinite(v) && v > 0 && Number.isFinite(Math.fround(1 / (v * v))), "'delta' or a finite number > 0 whose 1/sigma^2 fits in f32");
  }
  // The layer types the Bayesian layers define.
  const layerType = checkOneOf(OP, 'options.layerType', o.layerType ?? 'lrt', LAYER_TYPES);
  return { layerType, delta, priorSigma };
}

function planLayer(layer: Module, at: string, settings: { layerType: LayerType; priors: Priors | undefined }): Plan {
  const cls = layer.constructor;
  if (cls === Sequential) {
    const entries: [string, Module][] = [];
    const fill: Fill[] = [];
    let converted = 0;
    (layer as Sequential).layers.forEach(([name, child]) => {
      const p = planLayer(child, at ? `${at}.${name}` : name, settings);
      entries.push([name, p.layer]);
      fill.push(...p.fill);
      converted += p.converted;
    });
    return { layer: new Sequential(entries), converted, fill };
  }
  if (cls === Residual) {
    const r = layer as Residual;
    const body = planLayer(r.body, `${at}.body`, settings);
    const shortcut = r.shortcut ? planLayer(r.shortcut, `${at}.shortcut`, settings) : null;
    return { layer: new Residual(body.layer, { shortcut: shortcut?.layer ?? null }), converted: body.converted + (shortcut?.converted ?? 0), fill: [...body.fill, ...(shortcut?.fill ?? [])] };
  }
  const bayes = { layerType: settings.layerType, priors: settings.priors, priorTensors: true };
  if (cls === Conv2d || cls === Linear) {
    const c = layer as Conv2d | Linear;
    if (!c.weight) throw argumentError(OP, 'model', 'a built model', `layer '${at}' without parameters`);
    const next = cls === Conv2d
      ? new BBBConv2d((c as Conv2d).inChannels, (c as Conv2d).outChannels, (c as Conv2d).kernel, { ...(c as Conv2d).options, bias: c.hasBias, ...bayes })
      : new BBBLinear((c as Linear).inFeatures, (c as Linear).outFeatures, { bias: c.hasBias, ...bayes });
    // The new layer's tensors exist once the new model is built.
    const targets = (bias: boolean) => () => {
      const v = bias ? next.b : next.W;
      const p = bias ? next.priorB : next.priorW;
      if (!v || !p) throw new BayesError('INVALID_ARGUMENT', `${OP}: layer '${at}' was not built with its prior tensors`);
      return { mu: v.mu.value, rho: v.rho.value, priorMu: p.mu.value, priorSigma: p.sigma.value };
    };
    const fill: Fill[] = [{ kind: 'moped', from: c.weight.value, to: targets(false), name: `${at}.weight` }];
    if (c.bias) fill.push({ kind: 'moped', from: c.bias.value, to: targets(true), name: `${at}.bias` });
    return { layer: next, converted: 1, fill };
  }
  // Any other layer: a fresh copy from its config (registered types only), its parameters copied by name.
  let next: Module;
  try {
    next = layerFromConfig(layer.getConfig());
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new BayesError('INVALID_ARGUMENT', `${OP}: layer '${at}' (${layer.constructor.name}) cannot be copied: ${message}`);
  }
  const fill: Fill[] = [...layer.namedParameters()].map(([name, p]) => ({
    kind: 'copy' as const, from: p.value, name: `${at}.${name}`,
    to: () => {
      const q = next.namedParameters().get(name);
      if (!q) throw new BayesError('INVALID_ARGUMENT', `${OP}: the copy of layer '${at}' holds no parameter '${name}'`);
      return q.value;
    },
  }));
  return { layer: next, converted: 0, fill };
}

/**
 * A Bayesian copy of a trained frequentist `model` with MOPED priors (see the header): Conv2d and
 * Linear become BBBConv2d and BBBLinear with mu = w, sigma = delta |w| and a prior N(w, sigma_p^2)
 * per weight; every other layer is kept with its parameters. Resolves to a new model on the same
 * context with the same model options (a Regressor for a Regressor); `model` is left unchanged.
 * Bad input is refused before anything is allocated.
 *
 * @example
 * const bnn = await toBayesian(trainedLeNet, { layerType: 'lrt', moped: { delta: 0.1 } });
 */
export async function toBayesian(model: Sequential, options: ToBayesianOptions): Promise<Sequential> {
  if (!(model instanceof Sequential)) throw argumentError(OP, 'model', 'a model (a Sequential built on a context, or a named model such as LeNet)', model);
  if (!model.isModel) throw argumentError(OP, 'model', 'a model built on a context (new Sequential(ctx, layers, { inputShape })), not a block', 'an unbuilt Sequential');
  const { layerType, delta, priorSigma } = checkOptions(options);
  // The scalar prior the layers are built with until their prior tensors are written (and what their config records).
  const priors: Priors | undefined = priorSigma === 'delta' ? undefined : { prior_sigma: priorSigma };
  const entries: [string, Module][] = [];
  const fill: Fill[] = [];
  let converted = 0;
  for (const [name, layer] of model.layers) {
    const p = planLayer(layer, name, { layerType, priors });
    entries.push([name, p.layer]);
    fill.push(...p.fill);
    converted += p.converted;
  }
  if (converted === 0) {
    const got = model.isBayesian ? 'a network whose layers are all Bayesian already' : 'a network without Conv2d or Linear layers';
    throw new BayesError('INVALID_ARGUMENT', `${OP}: argument 'model' expected a network with at least one Conv2d or Linear layer to convert, got ${got}`);
  }
  const ctx = model.ctx;
  const inputShape = model.inputShape;
  // Shapes before anything is allocated (the constructors check them again, and the same way).
  new Sequential(entries).outputShape(inputShape);
  const values = (await ctx.readMany(fill.map((f) => f.from))) as Float32Array[];
  // The MOPED values, in float64 then rounded to f32 once, before the new model is allocated.
  const moped = fill.map((f, i) => {
    if (f.kind === 'copy') return null;
    const w = values[i];
    const rho = new Float32Array(w.length);
    const sigmaP = new Float32Array(w.length);
    for (let k = 0; k < w.length; k++) {
      if (!Number.isFinite(w[k])) throw new BayesError('NON_FINITE', `${OP}: ${f.name}[${k}] is ${w[k]}; the trained weights must be finite`);
      const sigma = Math.max(delta * Math.abs(w[k]), MOPED_SIGMA_MIN);
      rho[k] = inverseSoftplus(sigma);
      sigmaP[k] = priorSigma === 'delta' ? sigma : priorSigma;
    }
    return { rho, sigmaP };
  });
  const opts = { ...model.modelOptions, inputShape: [...inputShape] };
  const result = model.task === 'regression' ? new Regressor(ctx, entries, opts) : new Sequential(ctx, entries, opts);
  try {
    fill.forEach((f, i) => {
      const w = values[i];
      if (f.kind === 'copy') {
        ctx.write(f.to(), w);
        return;
      }
      const t = f.to();
      const m = moped[i]!;
      ctx.write(t.mu, w);
      ctx.write(t.rho, m.rho);
      ctx.write(t.priorMu, w);
      ctx.write(t.priorSigma, m.sigmaP);
    });
  } catch (e) {
    result.dispose();
    throw e;
  }
  result.training = model.training;
  return result;
}
