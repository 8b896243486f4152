/**
 * Bayesian layers with a Gaussian posterior q(w) = N(mu, sigma^2), sigma = softplus(rho)
 * (Blundell et al. 2015, "Weight Uncertainty in Neural Networks", sec. 3.2).
 *
 * layerType 'bbb': sample the weights, w = mu + sigma * eps (Bayes by Backprop). The T Monte
 *   Carlo samples of a batch use T weight samples, batched on the GPU as per-sample weights.
 * layerType 'lrt': sample the activations (local reparameterization, Kingma et al. 2015, eq. 6):
 *   mean = op(x, mu), var = op(x^2, sigma^2), y = mean + sqrt(var) * eps.
 * layerType 'flipout': one weight perturbation dW = sigma * eps per Monte Carlo sample, decorrelated
 *   across the examples by Rademacher signs per example and channel (Wen et al. 2018, eq. 3):
 *   y = op(x, mu) + s_out * op(x * s_in, dW), the bias perturbed and flipped with the weights
 *   (see src/ops/flipout.ts). Signs and eps are regenerated from their keys in backward.
 *
 * KL direction: these layers compute KL(q || p), posterior against prior, as the ELBO needs.
 * PyTorch-BayesianCNN's `calculate_kl(self.prior_mu, self.prior_sigma, self.W_mu, self.W_sigma)`
 * passes the prior as the first distribution and so computes KL(p || q) (its issues #28 and #73).
 *
 * Parameter names follow the seed's state_dict: W_mu, W_rho, bias_mu, bias_rho.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf, pair } from '../errors.js';
import { Prng } from '../util/prng.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward, conv2dOutputShape, lrtConv2dBackward, lrtConv2dForward } from '../ops/conv2d.js';
import { linearBackward, linearForward, lrtLinearBackward, lrtLinearForward } from '../ops/linear.js';
import { sampleWeights, sampleWeightsBackward, sigmaSquared, sigmaSquaredBackward } from '../ops/sample.js';
import { type GaussianPrior, type MixturePrior, klGaussian, klGaussianBackwardInto, klGaussianTensor, klGaussianTensorBackwardInto, klMonteCarlo, klMonteCarloBackwardInto } from '../ops/kl.js';
import { add } from '../ops/elementwise.js';
import { type FlipoutKeys, flipoutConv2dBackward, flipoutConv2dForward, flipoutLinearBackward, flipoutLinearForward, flipoutPerturbation } from '../ops/flipout.js';
import type { RandomKey } from '../ops/random.js';
import { type BuildState, type LayerConfig, type Parameter, type Pass, Module, passKey, setGrad } from './module.js';
import { type ConvOptions, built, checkInputRank, checkUnbuilt, convConfig, convOptions, initSeed } from './layers.js';

export type LayerType = 'lrt' | 'bbb' | 'flipout';

/** Every layer type, in the order error messages name them. */
export const LAYER_TYPES: readonly LayerType[] = ['lrt', 'bbb', 'flipout'];

/** The seed's `priors` dictionary; a `mixture` switches the prior to Blundell's scale mixture (eq. 7). */
export interface Priors {
  prior_mu?: number;
  prior_sigma?: number;
  mixture?: MixturePrior;
  posterior_mu_initial?: [number, number];
  posterior_rho_initial?: [number, number];
}

export interface ResolvedPriors {
  prior: { kind: 'gaussian'; mu: number; sigma: number } | { kind: 'mixture'; pi: number; sigma1: number; sigma2: number };
  posteriorMuInitial: [number, number];
  posteriorRhoInitial: [number, number];
}

/** The seed's defaults: prior N(0, 0.1^2), mu ~ N(0, 0.1), rho ~ N(-3, 0.1). */
export const DEFAULT_PRIORS: Required<Omit<Priors, 'mixture'>> = {
  prior_mu: 0,
  prior_sigma: 0.1,
  posterior_mu_initial: [0, 0.1],
  posterior_rho_initial: [-3, 0.1],
};

export function resolvePriors(op: string, p: Priors = {}): ResolvedPriors {
  const positive = (v: number) => Number.isFinite(v) && v > 0;
  const initPair = (name: string, v: unknown): [number, number] => {
    if (!Array.isArray(v) || v.length !== 2 || !Number.isFinite(v[0]) || !(v[1] >= 0)) throw argumentError(op, `priors.${name}`, '[mean, std] with std >= 0', v);
    return [v[0], v[1]];
  };
  const posteriorMuInitial = initPair('posterior_mu_initial', p.posterior_mu_initial ?? DEFAULT_PRIORS.posterior_mu_initial);
  const posteriorRhoInitial = initPair('posterior_rho_initial', p.posterior_rho_initial ?? DEFAULT_PRIORS.posterior_rho_initial);
  if (p.mixture) {
    const { pi, sigma1, sigma2 } = p.mixture;
    checkNumber(op, 'priors.mixture.pi', pi, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
    checkNumber(op, 'priors.mixture.sigma1', sigma1, positive, 'a positive number');
    checkNumber(op, 'priors.mixture.sigma2', sigma2, positive, 'a positive number');
    return { prior: { kind: 'mixture', pi, sigma1, sigma2 }, posteriorMuInitial, posteriorRhoInitial };
  }
  const mu = checkNumber(op, 'priors.prior_mu', p.prior_mu ?? DEFAULT_PRIORS.prior_mu);
  const sigma = checkNumber(op, 'priors.prior_sigma', p.prior_sigma ?? DEFAULT_PRIORS.prior_sigma, positive, 'a positive number');
  return { prior: { kind: 'gaussian', mu, sigma }, posteriorMuInitial, posteriorRhoInitial };
}

export interface BayesOptions {
  layerType?: LayerType;
  priors?: Priors;
  bias?: boolean;
  /** Seed of the initial mu and rho draws. */
  seed?: number;
  /**
   * A Gaussian prior of its own per weight, N(prior_W_mu[i], prior_W_sigma[i]^2) (and prior_bias_mu,
   * prior_bias_sigma): non-trainable parameters, saved with the model, built at the scalar prior of
   * `priors` and set by toBayesian to the trained weights (empirical Bayes, Krishnan et al. 2020, MOPED).
   * Gaussian priors only.
   */
  priorTensors?: boolean;
}

/** A per-weight Gaussian prior N(mu, sigma^2): non-trainable tensors of the shape of the weights. */
export interface PriorTensors {
  mu: Parameter;
  sigma: Parameter;
}

// Random streams of one layer (streamBase + offset): see Module.streamBase.
const STREAM_ACTIVATION = 0; // LRT output noise
const STREAM_WEIGHT = 1; // BBB weight samples
const STREAM_BIAS = 2; // BBB bias samples
const STREAM_KL_WEIGHT = 3; // weight samples for the Monte Carlo KL
const STREAM_KL_BIAS = 4;
// Flipout's weight and bias perturbations use STREAM_WEIGHT and STREAM_BIAS with BBB's index
// contract (so dW = BBB's w - mu under one key); its signs have streams of their own.
const STREAM_SIGN_IN = 5; // Flipout signs per example and input channel
const STREAM_SIGN_OUT = 6; // Flipout signs per example and output channel

/** A variational tensor: its posterior mean mu and rho, sigma = softplus(rho). */
export interface Variational {
  mu: Parameter;
  rho: Parameter;
}

/** What the Bayesian conv and linear layers share: parameters, sampling, KL. */
abstract class BayesLayer extends Module {
  readonly layerType: LayerType;
  readonly priors: ResolvedPriors;
  readonly hasBias: boolean;
  readonly seed: number | undefined;
  /** The seed's `priors` dictionary as given (saved with the architecture). */
  readonly priorsGiven: Priors | undefined;
  W: Variational | null = null;
  b: Variational | null = null;
  /** Whether the prior is a tensor of its own per weight (BayesOptions.priorTensors). */
  readonly hasPriorTensors: boolean;
  /** The per-weight priors of W and b (null without priorTensors, or before build). */
  priorW: PriorTensors | null = null;
  priorB: PriorTensors | null = null;
  /** Weight samples drawn for the Monte Carlo KL (mixture prior), kept for its backward. */
  private klSamples: { w: Tensor; b: Tensor | null; samples: number } | null = null;

  constructor(op: string, options: BayesOptions) {
    super();
    this.layerType = checkOneOf(op, 'layerType', options.layerType ?? 'lrt', LAYER_TYPES);
    this.priors = resolvePriors(op, options.priors);
    this.hasBias = options.bias ?? true;
    this.seed = options.seed === undefined ? undefined : checkInt(op, 'seed', options.seed, 0);
    this.priorsGiven = options.priors;
    this.hasPriorTensors = options.priorTensors ?? false;
    if (typeof this.hasPriorTensors !== 'boolean') throw argumentError(op, 'priorTensors', 'true or false', options.priorTensors);
    if (this.hasPriorTensors && this.priors.prior.kind !== 'gaussian') throw argumentError(op, 'priorTensors', 'false with a scale-mixture prior (per-weight priors are Gaussian)', true);
  }

  protected createParameters(ctx: Context, weightShape: number[], biasShape: number[], state: BuildState, input: readonly number[]): void {
    checkUnbuilt(this, this.W !== null);
    const prng = new Prng(initSeed(this.seed, state));
    super.build(ctx, input, state);
    const draw = (shape: number[], [mean, std]: [number, number], role: 'mu' | 'rho'): Parameter => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = mean + std * prng.normal();
      return { value: ctx.keep(ctx.tensor(data, shape)), grad: null, role, trainable: true };
    };
    this.W = { mu: draw(weightShape, this.priors.posteriorMuInitial, 'mu'), rho: draw(weightShape, this.priors.posteriorRhoInitial, 'rho') };
    if (this.hasBias) this.b = { mu: draw(biasShape, this.priors.posteriorMuInitial, 'mu'), rho: draw(biasShape, this.priors.posteriorRhoInitial, 'rho') };
    if (this.hasPriorTensors && this.priors.prior.kind === 'gaussian') {
      // Every element at the scalar prior until toBayesian (or a loaded file) sets its own.
      const { mu, sigma } = this.priors.prior;
      const constant = (shape: number[], v: number): Parameter => {
        const n = shape.reduce((a, b) => a * b, 1);
        return { value: ctx.keep(ctx.tensor(new Float32Array(n).fill(v), shape)), grad: null, role: 'weight', trainable: false };
      };
      this.priorW = { mu: constant(weightShape, mu), sigma: constant(weightShape, sigma) };
      if (this.hasBias) this.priorB = { mu: constant(biasShape, mu), sigma: constant(biasShape, sigma) };
    }
  }

  /** The Bayesian settings of getConfig: layer type, bias and the priors as given (the seed's names). */
  protected bayesConfig(): Record<string, unknown> {
    const out: Record<string, unknown> = { layerType: this.layerType, bias: this.hasBias };
    if (this.priorsGiven) out.priors = this.priorsGiven;
    if (this.hasPriorTensors) out.priorTensors = true;
    return out;
  }

  override parameters(): Map<string, Parameter> {
    const m = new Map<string, Parameter>();
    if (this.W) {
      m.set('W_mu', this.W.mu);
      m.set('W_rho', this.W.rho);
    }
    if (this.b) {
      m.set('bias_mu', this.b.mu);
      m.set('bias_rho', this.b.rho);
    }
    if (this.priorW) {
      m.set('prior_W_mu', this.priorW.mu);
      m.set('prior_W_sigma', this.priorW.sigma);
    }
    if (this.priorB) {
      m.set('prior_bias_mu', this.priorB.mu);
      m.set('prior_bias_sigma', this.priorB.sigma);
    }
    return m;
  }

  /** Key of stream `stream` of this layer; `drawsPerSample` places sample pass.sampleOffset (see passKey). */
  protected key(pass: Pass, stream: number, drawsPerSample = 0): RandomKey {
    return passKey(pass, this.streamBase + stream, drawsPerSample);
  }

  /** LRT draws one eps per output: one sample's outputs are the batch's outputs divided by the samples. */
  private activationKey(pass: Pass, x: Tensor): RandomKey {
    const outputs = x.shape[0] * this.outputShape(x.shape.slice(1)).reduce((a, b) => a * b, 1);
    return this.key(pass, STREAM_ACTIVATION, outputs / pass.samples);
  }

  /**
   * Flipout's sign keys: one sign per row and input channel, one per row and output channel; a Monte
   * Carlo sample's rows are the batch's divided by the samples, so sample pass.sampleOffset is placed.
   */
  private signKeys(pass: Pass, x: Tensor): FlipoutKeys {
    const rows = x.shape[0] / pass.samples;
    const outChannels = this.outputShape(x.shape.slice(1))[0];
    return { signIn: this.key(pass, STREAM_SIGN_IN, rows * x.shape[1]), signOut: this.key(pass, STREAM_SIGN_OUT, rows * outChannels) };
  }

  /** Stores dMu/dRho of one variational tensor from (dMu, dRho). */
  protected setGrads(v: Variational, dMu: Tensor, dRho: Tensor): void {
    setGrad(v.mu, dMu);
    setGrad(v.rho, dRho);
  }

  protected abstract plainForward(x: Tensor, w: Tensor, b: Tensor | null): Tensor;
  protected abstract plainBackward(dy: Tensor, x: Tensor, w: Tensor, needInput: boolean): { dx: Tensor | null; dWeight: Tensor; dBias: Tensor | null };
  protected abstract lrtForward(x: Tensor, wSigma2: Tensor, bSigma2: Tensor | null, key: RandomKey): { y: Tensor; std: Tensor };
  protected abstract flipoutForward(x: Tensor, wDelta: Tensor, bDelta: Tensor | null, keys: FlipoutKeys): Tensor;
  protected abstract flipoutBackward(dy: Tensor, x: Tensor, wDelta: Tensor, keys: FlipoutKeys, needInput: boolean): { dx: Tensor | null; dWeightMu: Tensor; dWeightDelta: Tensor; dBiasMu: Tensor | null; dBiasDelta: Tensor | null };
  protected abstract lrtBackward(dy: Tensor, x: Tensor, std: Tensor, wSigma2: Tensor, key: RandomKey, needInput: boolean): { dx: Tensor | null; dWeightMu: Tensor; dWeightSigma2: Tensor; dBiasMu: Tensor | null; dBiasSigma2: Tensor | null };

  private cache:
    | { mode: 'mean'; x: Tensor }
    | { mode: 'lrt'; x: Tensor; std: Tensor; wSigma2: Tensor; bSigma2: Tensor | null }
    | { mode: 'bbb'; x: Tensor; w: Tensor; b: Tensor | null; samples: number }
    | { mode: 'flipout'; x: Tensor; wDelta: Tensor; bDelta: Tensor | null }
    | null = null;

  override forward(x: Tensor, pass: Pass): Tensor {
    const W = built(this, this.W);
    if (!pass.sample) {
      // Deterministic: the posterior means (the seed's `sample=False`).
      this.cache = { mode: 'mean', x };
      return this.plainForward(x, W.mu.value, this.b?.mu.value ?? null);
    }
    if (this.layerType === 'lrt') {
      const wSigma2 = sigmaSquared(W.rho.value);
      const bSigma2 = this.b ? sigmaSquared(this.b.rho.value) : null;
      const { y, std } = this.lrtForward(x, wSigma2, bSigma2, this.activationKey(pass, x));
      this.cache = { mode: 'lrt', x, std, wSigma2, bSigma2 };
      return y;
    }
    const samples = pass.samples;
    if (x.shape[0] % samples !== 0) {
      throw new BayesError('SHAPE_MISMATCH', `${this.constructor.name}: batch of ${x.shape[0]} is not a multiple of the ${samples} Monte Carlo samples`);
    }
    if (this.layerType === 'flipout') {
      // One perturbation per Monte Carlo sample, keyed as BBB's weight samples (Wen et al. 2018, eq. 3).
      const wDelta = flipoutPerturbation(W.rho.value, { key: this.key(pass, STREAM_WEIGHT, W.mu.value.size), samples });
      const bDelta = this.b ? flipoutPerturbation(this.b.rho.value, { key: this.key(pass, STREAM_BIAS, this.b.mu.value.size), samples }) : null;
      this.cache = { mode: 'flipout', x, wDelta, bDelta };
      return this.flipoutForward(x, wDelta, bDelta, this.signKeys(pass, x));
    }
    const w = sampleWeights(W.mu.value, W.rho.value, { key: this.key(pass, STREAM_WEIGHT, W.mu.value.size), samples });
    const b = this.b ? sampleWeights(this.b.mu.value, this.b.rho.value, { key: this.key(pass, STREAM_BIAS, this.b.mu.value.size), samples }) : null;
    this.cache = { mode: 'bbb', x, w, b, samples };
    return this.plainForward(x, w, b);
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    const c = this.cache;
    if (!c) throw new BayesError('INVALID_ARGUMENT', `${this.name || this.constructor.name}.backward: called without a forward in this step`);
    const W = this.W!;
    const needInput = pass.needInputGrad !== false;
    if (c.mode === 'mean') {
      // Gradients of the mean network flow to mu only; rho gets zero data gradient.
      const g = this.plainBackward(dy, c.x, W.mu.value, needInput);
      this.setGrads(W, g.dWeight, dy.ctx.zeros(W.rho.value.shape));
      if (this.b && g.dBias) this.setGrads(this.b, g.dBias, dy.ctx.zeros(this.b.rho.value.shape));
      return g.dx;
    }
    if (c.mode === 'lrt') {
      const g = this.lrtBackward(dy, c.x, c.std, c.wSigma2, this.activationKey(pass, c.x), needInput);
      this.setGrads(W, g.dWeightMu, sigmaSquaredBackward(g.dWeightSigma2, W.rho.value));
      if (this.b && g.dBiasMu && g.dBiasSigma2) this.setGrads(this.b, g.dBiasMu, sigmaSquaredBackward(g.dBiasSigma2, this.b.rho.value));
      return g.dx;
    }
    if (c.mode === 'flipout') {
      // mu gets the mean path's gradient; rho the perturbation's through dW = softplus(rho) * eps.
      const g = this.flipoutBackward(dy, c.x, c.wDelta, this.signKeys(pass, c.x), needInput);
      const gw = sampleWeightsBackward(g.dWeightDelta, W.mu.value, W.rho.value, { key: this.key(pass, STREAM_WEIGHT, W.mu.value.size) });
      gw.dMu.dispose();
      this.setGrads(W, g.dWeightMu, gw.dRho);
      if (this.b && g.dBiasMu && g.dBiasDelta) {
        const gb = sampleWeightsBackward(g.dBiasDelta, this.b.mu.value, this.b.rho.value, { key: this.key(pass, STREAM_BIAS, this.b.mu.value.size) });
        gb.dMu.dispose();
        this.setGrads(this.b, g.dBiasMu, gb.dRho);
      }
      return g.dx;
    }
    const g = this.plainBackward(dy, c.x, c.w, needInput);
    const gw = sampleWeightsBackward(g.dWeight, W.mu.value, W.rho.value, { key: this.key(pass, STREAM_WEIGHT, W.mu.value.size) });
    this.setGrads(W, gw.dMu, gw.dRho);
    if (this.b && g.dBias) {
      const gb = sampleWeightsBackward(g.dBias, this.b.mu.value, this.b.rho.value, { key: this.key(pass, STREAM_BIAS, this.b.mu.value.size) });
      this.setGrads(this.b, gb.dMu, gb.dRho);
    }
    return g.dx;
  }

  /**
   * KL(q || p) summed over the layer's parameters. Gaussian prior (scalar, or one per weight with priorTensors): closed form.
   * Scale mixture: Monte Carlo, averaged over `pass.samples` fresh weight draws
   * (a stream of their own, so the estimate is unbiased for either layer type).
   */
  override kl(pass: Pass): Tensor {
    const W = built(this, this.W);
    const prior = this.priors.prior;
    if (this.priorW) {
      // A prior of its own per weight (BayesOptions.priorTensors): the same closed form, element by element.
      const kw = klGaussianTensor(W.mu.value, W.rho.value, this.priorW.mu.value, this.priorW.sigma.value);
      return this.b && this.priorB ? add(kw, klGaussianTensor(this.b.mu.value, this.b.rho.value, this.priorB.mu.value, this.priorB.sigma.value)) : kw;
    }
    if (prior.kind === 'gaussian') {
      const p: GaussianPrior = { mu: prior.mu, sigma: prior.sigma };
      const kw = klGaussian(W.mu.value, W.rho.value, { prior: p });
      return this.b ? add(kw, klGaussian(this.b.mu.value, this.b.rho.value, { prior: p })) : kw;
    }
    const p: MixturePrior = { pi: prior.pi, sigma1: prior.sigma1, sigma2: prior.sigma2 };
    const samples = Math.max(1, pass.samples);
    const w = sampleWeights(W.mu.value, W.rho.value, { key: this.key(pass, STREAM_KL_WEIGHT), samples });
    const b = this.b ? sampleWeights(this.b.mu.value, this.b.rho.value, { key: this.key(pass, STREAM_KL_BIAS), samples }) : null;
    this.klSamples = { w, b, samples };
    const kw = klMonteCarlo(w, W.mu.value, W.rho.value, { prior: p });
    return b && this.b ? add(kw, klMonteCarlo(b, this.b.mu.value, this.b.rho.value, { prior: p })) : kw;
  }

  /** Adds scale * dKL into the gradients set by backward (call after backward). */
  override klBackward(pass: Pass, scale: number): void {
    const W = this.W!;
    if (!W.mu.grad || !W.rho.grad) throw new BayesError('INVALID_ARGUMENT', `${this.name || this.constructor.name}.klBackward: run backward first`);
    const prior = this.priors.prior;
    const targets: [Variational, Tensor | null, number][] = [[W, this.klSamples?.w ?? null, STREAM_KL_WEIGHT]];
    if (this.b) targets.push([this.b, this.klSamples?.b ?? null, STREAM_KL_BIAS]);
    for (const [v, samples, stream] of targets) {
      const own = v === W ? this.priorW : this.priorB;
      if (own) {
        klGaussianTensorBackwardInto(v.mu.value, v.rho.value, own.mu.value, own.sigma.value, v.mu.grad!, v.rho.grad!, { scale });
      } else if (prior.kind === 'gaussian') {
        klGaussianBackwardInto(v.mu.value, v.rho.value, v.mu.grad!, v.rho.grad!, { prior: { mu: prior.mu, sigma: prior.sigma }, scale });
      } else {
        if (!samples) throw new BayesError('INVALID_ARGUMENT', `${this.name || this.constructor.name}.klBackward: run kl() first`);
        klMonteCarloBackwardInto(samples, v.mu.value, v.rho.value, v.mu.grad!, v.rho.grad!, { prior: { pi: prior.pi, sigma1: prior.sigma1, sigma2: prior.sigma2 }, key: this.key(pass, stream), scale });
      }
    }
  }
}

export class BBBConv2d extends BayesLayer {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: [number, number];
  readonly options: Conv2dOptions;

  constructor(inChannels: number, outChannels: number, kernel: number | [number, number], options: ConvOptions & BayesOptions = {}) {
    super('BBBConv2d', options);
    this.inChannels = checkInt('BBBConv2d', 'inChannels', inChannels, 1);
    this.outChannels = checkInt('BBBConv2d', 'outChannels', outChannels, 1);
    this.kernel = pair('BBBConv2d', 'kernel', kernel, 1, 1);
    this.options = convOptions('BBBConv2d', options);
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    this.outputShape(input);
    this.createParameters(ctx, [this.outChannels, this.inChannels, ...this.kernel], [this.outChannels], state, input);
  }

  override getConfig(): LayerConfig {
    return { type: 'BBBConv2d', inChannels: this.inChannels, outChannels: this.outChannels, kernel: this.kernel, ...convConfig(this.options), ...this.bayesConfig() };
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('BBBConv2d', input, 3, `[${this.inChannels}, H, W]`);
    if (input[0] !== this.inChannels) throw new BayesError('SHAPE_MISMATCH', `BBBConv2d: input expected ${this.inChannels} channels, got ${input[0]} (per-example shape [${input.join(', ')}])`);
    return conv2dOutputShape([1, ...input], [this.outChannels, this.inChannels, ...this.kernel], this.options).slice(1);
  }

  protected plainForward(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
    return conv2dForward(x, w, b, this.options);
  }
  protected plainBackward(dy: Tensor, x: Tensor, w: Tensor, needInput: boolean) {
    return conv2dBackward(dy, x, w, { ...this.options, needInput, needBias: this.hasBias });
  }
  protected lrtForward(x: Tensor, wSigma2: Tensor, bSigma2: Tensor | null, key: RandomKey) {
    return lrtConv2dForward(x, this.W!.mu.value, wSigma2, this.b?.mu.value ?? null, bSigma2, { ...this.options, key });
  }
  protected flipoutForward(x: Tensor, wDelta: Tensor, bDelta: Tensor | null, keys: FlipoutKeys) {
    return flipoutConv2dForward(x, this.W!.mu.value, wDelta, this.b?.mu.value ?? null, bDelta, { ...this.options, ...keys });
  }
  protected flipoutBackward(dy: Tensor, x: Tensor, wDelta: Tensor, keys: FlipoutKeys, needInput: boolean) {
    return flipoutConv2dBackward(dy, x, this.W!.mu.value, wDelta, { ...this.options, ...keys, needInput, needBias: this.hasBias });
  }
  protected lrtBackward(dy: Tensor, x: Tensor, std: Tensor, wSigma2: Tensor, key: RandomKey, needInput: boolean) {
    return lrtConv2dBackward(dy, x, std, this.W!.mu.value, wSigma2, { ...this.options, key, needInput, needBias: this.hasBias });
  }
}

export class BBBLinear extends BayesLayer {
  inFeatures: number | null;
  readonly outFeatures: number;

  /** `inFeatures` may be null: it is inferred from the input when the model is built. */
  constructor(inFeatures: number | null, outFeatures: number, options: BayesOptions = {}) {
    super('BBBLinear', options);
    this.inFeatures = inFeatures === null ? null : checkInt('BBBLinear', 'inFeatures', inFeatures, 1);
    this.outFeatures = checkInt('BBBLinear', 'outFeatures', outFeatures, 1);
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    const inF = this.checkInput(input);
    this.createParameters(ctx, [this.outFeatures, inF], [this.outFeatures], state, input);
    this.inFeatures = inF;
  }

  override getConfig(): LayerConfig {
    return { type: 'BBBLinear', inFeatures: this.inFeatures, outFeatures: this.outFeatures, ...this.bayesConfig() };
  }

  private checkInput(input: readonly number[]): number {
    checkInputRank('BBBLinear', input, 1, `[${this.inFeatures ?? 'features'}] (put a Flatten before it)`);
    if (this.inFeatures !== null && input[0] !== this.inFeatures) {
      throw new BayesError('SHAPE_MISMATCH', `BBBLinear: input expected ${this.inFeatures} features, got ${input[0]}`);
    }
    return input[0];
  }

  override outputShape(input: readonly number[]): number[] {
    this.checkInput(input);
    return [this.outFeatures];
  }

  protected plainForward(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
    return linearForward(x, w, b);
  }
  protected plainBackward(dy: Tensor, x: Tensor, w: Tensor, needInput: boolean) {
    return linearBackward(dy, x, w, { needInput, needBias: this.hasBias });
  }
  protected lrtForward(x: Tensor, wSigma2: Tensor, bSigma2: Tensor | null, key: RandomKey) {
    return lrtLinearForward(x, this.W!.mu.value, wSigma2, this.b?.mu.value ?? null, bSigma2, { key });
  }
  protected flipoutForward(x: Tensor, wDelta: Tensor, bDelta: Tensor | null, keys: FlipoutKeys) {
    return flipoutLinearForward(x, this.W!.mu.value, wDelta, this.b?.mu.value ?? null, bDelta, keys);
  }
  protected flipoutBackward(dy: Tensor, x: Tensor, wDelta: Tensor, keys: FlipoutKeys, needInput: boolean) {
    return flipoutLinearBackward(dy, x, this.W!.mu.value, wDelta, { ...keys, needInput, needBias: this.hasBias });
  }
  protected lrtBackward(dy: Tensor, x: Tensor, std: Tensor, wSigma2: Tensor, key: RandomKey, needInput: boolean) {
    return lrtLinearBackward(dy, x, std, this.W!.mu.value, wSigma2, { key, needInput, needBias: this.hasBias });
  }
}
