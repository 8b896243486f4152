/**
 * Point-estimate layers and the parameter-free ones: Conv2d, Linear, ReLU,
 * Softplus, MaxPool2d, GlobalAvgPool2d, Flatten, ZeroPadShortcut, Dropout, BatchNorm2d, HomoscedasticNoise. Shapes follow
 * PyTorch (NCHW, weights [out, in, kh, kw] and [out, in]) so state dicts carry over.
 * Constructors take settings only; parameters are allocated by `build` (see module.ts).
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, checkInt, checkNumber, pair } from '../errors.js';
import { Prng } from '../util/prng.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward, conv2dOutputShape } from '../ops/conv2d.js';
import { linearBackward, linearForward } from '../ops/linear.js';
import { activationBackward, activationForward } from '../ops/activation.js';
import { globalAvgPool2dBackward, globalAvgPool2dForward, maxPool2dBackward, maxPool2dForward } from '../ops/pool.js';
import { subsampledSize, zeroPadShortcutBackward, zeroPadShortcutForward } from '../ops/shortcut.js';
import { dropoutBackward, dropoutForward } from '../ops/dropout.js';
import { batchNorm2dBackward, batchNorm2dForward } from '../ops/batchnorm.js';
import { sum } from '../ops/reduce.js';
import { appendLogVar, splitHead } from '../ops/regression.js';
import { type BuildState, type LayerConfig, type Parameter, type Pass, Module, createParameter, layerSeed, passKey, setGrad, shapeString } from './module.js';

export interface ConvOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  bias?: boolean;
}

/** PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias (kaiming_uniform with a = sqrt(5)). */
function uniformInit(n: number, fanIn: number, prng: Prng): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (prng.next() * 2 - 1) * bound;
  return out;
}

/** Throws if a layer is built a second time (a layer belongs to one model). */
export function checkUnbuilt(layer: Module, built: boolean): void {
  if (built) throw new BayesError('INVALID_ARGUMENT', `${layer.constructor.name}${layer.name ? ` '${layer.name}'` : ''}: this layer is already built into a model; make a new layer for another model`);
}

/** The init seed of a layer: its own `seed` option, or one derived from the model's seed and its position. */
export function initSeed(own: number | undefined, state: BuildState): number {
  return own ?? layerSeed(state.seed, state.layers);
}

export function convOptions(op: string, o: ConvOptions): Conv2dOptions {
  return { stride: pair(op, 'stride', o.stride, 1, 1), padding: pair(op, 'padding', o.padding, 0, 0), dilation: pair(op, 'dilation', o.dilation, 1, 1) };
}

export function checkInputRank(op: string, input: readonly number[], rank: number, what: string): void {
  if (input.length !== rank) throw new BayesError('SHAPE_MISMATCH', `${op}: input expected ${what}, got per-example shape ${shapeString(input)}`);
}

export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: [number, number];
  readonly options: Conv2dOptions;
  readonly hasBias: boolean;
  readonly seed: number | undefined;
  weight: Parameter | null = null;
  bias: Parameter | null = null;
  private x: Tensor | null = null;

  constructor(inChannels: number, outChannels: number, kernel: number | [number, number], options: ConvOptions & { seed?: number } = {}) {
    super();
    this.inChannels = checkInt('Conv2d', 'inChannels', inChannels, 1);
    this.outChannels = checkInt('Conv2d', 'outChannels', outChannels, 1);
    this.kernel = pair('Conv2d', 'kernel', kernel, 1, 1);
    this.options = convOptions('Conv2d', options);
    this.hasBias = options.bias ?? true;
    this.seed = options.seed === undefined ? undefined : checkInt('Conv2d', 'seed', options.seed, 0);
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    checkUnbuilt(this, this.weight !== null);
    this.outputShape(input);
    const prng = new Prng(initSeed(this.seed, state));
    super.build(ctx, input, state);
    const fanIn = this.inChannels * this.kernel[0] * this.kernel[1];
    this.weight = createParameter(ctx, uniformInit(this.outChannels * fanIn, fanIn, prng), [this.outChannels, this.inChannels, ...this.kernel]);
    if (this.hasBias) this.bias = createParameter(ctx, uniformInit(this.outChannels, fanIn, prng), [this.outChannels]);
  }

  override getConfig(): LayerConfig {
    return { type: 'Conv2d', inChannels: this.inChannels, outChannels: this.outChannels, kernel: this.kernel, ...convConfig(this.options), bias: this.hasBias };
  }

  override parameters(): Map<string, Parameter> {
    const m = new Map<string, Parameter>();
    if (this.weight) m.set('weight', this.weight);
    if (this.bias) m.set('bias', this.bias);
    return m;
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('Conv2d', input, 3, `[${this.inChannels}, H, W]`);
    if (input[0] !== this.inChannels) throw new BayesError('SHAPE_MISMATCH', `Conv2d: input expected ${this.inChannels} channels, got ${input[0]} (per-example shape ${shapeString(input)})`);
    return conv2dOutputShape([1, ...input], [this.outChannels, this.inChannels, ...this.kernel], this.options).slice(1);
  }

  override forward(x: Tensor): Tensor {
    this.x = x;
    return conv2dForward(x, built(this, this.weight).value, this.bias?.value ?? null, this.options);
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    const g = conv2dBackward(dy, this.x!, this.weight!.value, { ...this.options, needInput: pass.needInputGrad !== false, needBias: this.hasBias });
    setGrad(this.weight!, g.dWeight);
    if (this.bias && g.dBias) setGrad(this.bias, g.dBias);
    return g.dx;
  }
}

/** Throws unless the layer has been built (its parameters exist). */
export function built<T>(layer: Module, value: T | null): T {
  if (value === null) throw new BayesError('INVALID_ARGUMENT', `${layer.constructor.name}${layer.name ? ` '${layer.name}'` : ''}: the layer is not built yet; put it in a model built on a context (new Sequential(ctx, layers, { inputShape }))`);
  return value;
}

/** Conv settings as JSON: pairs, omitted at their defaults. */
export function convConfig(options: Conv2dOptions): Record<string, unknown> {
  const o = options as { stride?: [number, number]; padding?: [number, number]; dilation?: [number, number] };
  const out: Record<string, unknown> = {};
  if (o.stride && (o.stride[0] !== 1 || o.stride[1] !== 1)) out.stride = [...o.stride];
  if (o.padding && (o.padding[0] !== 0 || o.padding[1] !== 0)) out.padding = [...o.padding];
  if (o.dilation && (o.dilation[0] !== 1 || o.dilation[1] !== 1)) out.dilation = [...o.dilation];
  return out;
}

export class Linear extends Module {
  inFeatures: number | null;
  readonly outFeatures: number;
  readonly hasBias: boolean;
  readonly seed: number | undefined;
  weight: Parameter | null = null;
  bias: Parameter | null = null;
  private x: Tensor | null = null;

  /** `inFeatures` may be null: it is then inferred from the input when the model is built. */
  constructor(inFeatures: number | null, outFeatures: number, options: { bias?: boolean; seed?: number } = {}) {
    super();
    this.inFeatures = inFeatures === null ? null : checkInt('Linear', 'inFeatures', inFeatures, 1);
    this.outFeatures = checkInt('Linear', 'outFeatures', outFeatures, 1);
    this.hasBias = options.bias ?? true;
    this.seed = options.seed === undefined ? undefined : checkInt('Linear', 'seed', options.seed, 0);
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    checkUnbuilt(this, this.weight !== null);
    const inF = this.outputShapeCheck(input);
    const prng = new Prng(initSeed(this.seed, state));
    super.build(ctx, input, state);
    this.inFeatures = inF;
    this.weight = createParameter(ctx, uniformInit(this.outFeatures * inF, inF, prng), [this.outFeatures, inF]);
    if (this.hasBias) this.bias = createParameter(ctx, uniformInit(this.outFeatures, inF, prng), [this.outFeatures]);
  }

  override getConfig(): LayerConfig {
    return { type: 'Linear', inFeatures: this.inFeatures, outFeatures: this.outFeatures, bias: this.hasBias };
  }

  private outputShapeCheck(input: readonly number[]): number {
    checkInputRank('Linear', input, 1, `[${this.inFeatures ?? 'features'}] (put a Flatten before it)`);
    if (this.inFeatures !== null && input[0] !== this.inFeatures) {
      throw new BayesError('SHAPE_MISMATCH', `Linear: input expected ${this.inFeatures} features, got ${input[0]}`);
    }
    return input[0];
  }

  override parameters(): Map<string, Parameter> {
    const m = new Map<string, Parameter>();
    if (this.weight) m.set('weight', this.weight);
    if (this.bias) m.set('bias', this.bias);
    return m;
  }

  override outputShape(input: readonly number[]): number[] {
    this.outputShapeCheck(input);
    return [this.outFeatures];
  }

  override forward(x: Tensor): Tensor {
    this.x = x;
    return linearForward(x, built(this, this.weight).value, this.bias?.value ?? null);
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    const g = linearBackward(dy, this.x!, this.weight!.value, { needInput: pass.needInputGrad !== false, needBias: this.hasBias });
    setGrad(this.weight!, g.dWeight);
    if (this.bias && g.dBias) setGrad(this.bias, g.dBias);
    return g.dx;
  }
}

abstract class ActivationLayer extends Module {
  protected abstract readonly kind: 'relu' | 'softplus';
  private x: Tensor | null = null;
  override outputShape(input: readonly number[]): number[] {
    return [...input];
  }
  override forward(x: Tensor): Tensor {
    this.x = x;
    return activationForward(x, { kind: this.kind });
  }
  override backward(dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : activationBackward(dy, this.x!, { kind: this.kind });
  }
}

export class ReLU extends ActivationLayer {
  protected readonly kind = 'relu';
  override getConfig(): LayerConfig {
    return { type: 'ReLU' };
  }
}

export class Softplus extends ActivationLayer {
  protected readonly kind = 'softplus';
  override getConfig(): LayerConfig {
    return { type: 'Softplus' };
  }
}

export class MaxPool2d extends Module {
  readonly kernel: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  private argmax: Tensor | null = null;
  private xShape: readonly number[] = [];

  constructor(kernel: number | [number, number], options: { stride?: number | [number, number]; padding?: number | [number, number] } = {}) {
    super();
    this.kernel = pair('MaxPool2d', 'kernel', kernel, 1, 1);
    this.stride = pair('MaxPool2d', 'stride', options.stride ?? this.kernel, 1, 1);
    this.padding = pair('MaxPool2d', 'padding', options.padding, 0, 0);
  }

  override getConfig(): LayerConfig {
    return { type: 'MaxPool2d', kernel: this.kernel, stride: this.stride, padding: this.padding };
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('MaxPool2d', input, 3, '[C, H, W]');
    const [c, h, w] = input;
    const oh = Math.floor((h + 2 * this.padding[0] - this.kernel[0]) / this.stride[0]) + 1;
    const ow = Math.floor((w + 2 * this.padding[1] - this.kernel[1]) / this.stride[1]) + 1;
    if (oh < 1 || ow < 1) throw new BayesError('SHAPE_MISMATCH', `MaxPool2d: input ${shapeString(input)} is smaller than the kernel ${shapeString(this.kernel)}`);
    return [c, oh, ow];
  }

  override forward(x: Tensor): Tensor {
    const { y, argmax } = maxPool2dForward(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
    this.argmax = argmax;
    this.xShape = x.shape;
    return y;
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : maxPool2dBackward(dy, this.argmax!, { inputShape: this.xShape });
  }
}

/** [N, ...] -> [N, product of the rest]; the size is inferred, never typed. */
export class Flatten extends Module {
  private xShape: readonly number[] = [];
  override getConfig(): LayerConfig {
    return { type: 'Flatten' };
  }
  override outputShape(input: readonly number[]): number[] {
    return [input.reduce((a, b) => a * b, 1)];
  }
  override forward(x: Tensor): Tensor {
    this.xShape = x.shape;
    return x.reshape([x.shape[0], x.size / x.shape[0]]);
  }
  override backward(dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : dy.reshape(this.xShape);
  }
}

/**
 * Global average pooling, [N, C, H, W] -> [N, C]: the mean of each feature map, the head of
 * He et al. 2016's CIFAR ResNets (sec. 4.2) before their fully connected layer.
 */
export class GlobalAvgPool2d extends Module {
  private xShape: readonly number[] = [];
  override getConfig(): LayerConfig {
    return { type: 'GlobalAvgPool2d' };
  }
  override outputShape(input: readonly number[]): number[] {
    checkInputRank('GlobalAvgPool2d', input, 3, '[C, H, W]');
    return [input[0]];
  }
  override forward(x: Tensor): Tensor {
    this.xShape = x.shape;
    return globalAvgPool2dForward(x);
  }
  override backward(dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : globalAvgPool2dBackward(dy, { inputShape: this.xShape });
  }
}

/**
 * He et al. 2016's parameter-free shortcut (sec. 3.3, option A; its CIFAR-10 choice, sec. 4.2): where
 * a residual block halves the feature map and widens it, x[:, :, ::stride, ::stride] with zero
 * channels added, half in front and half behind (src/ops/shortcut.ts), so that it matches the body's
 * [outChannels, ceil(H / stride), ceil(W / stride)]. `stride` defaults to 1 (as Conv2d's); He et al.'s
 * stages use 2.
 */
export class ZeroPadShortcut extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly stride: number;
  private xShape: readonly number[] = [];

  constructor(inChannels: number, outChannels: number, options: { stride?: number } = {}) {
    super();
    this.inChannels = checkInt('ZeroPadShortcut', 'inChannels', inChannels, 1);
    this.outChannels = checkInt('ZeroPadShortcut', 'outChannels', outChannels, 1);
    if (this.outChannels < this.inChannels) {
      throw new BayesError('INVALID_ARGUMENT', `ZeroPadShortcut: argument 'outChannels' expected at least inChannels (${this.inChannels}), got ${this.outChannels}`);
    }
    this.stride = checkInt('ZeroPadShortcut', 'stride', options.stride ?? 1, 1);
  }

  override getConfig(): LayerConfig {
    return { type: 'ZeroPadShortcut', inChannels: this.inChannels, outChannels: this.outChannels, stride: this.stride };
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('ZeroPadShortcut', input, 3, `[${this.inChannels}, H, W]`);
    if (input[0] !== this.inChannels) throw new BayesError('SHAPE_MISMATCH', `ZeroPadShortcut: input expected ${this.inChannels} channels, got ${input[0]} (per-example shape ${shapeString(input)})`);
    return [this.outChannels, subsampledSize(input[1], this.stride), subsampledSize(input[2], this.stride)];
  }

  override forward(x: Tensor): Tensor {
    this.xShape = x.shape;
    return zeroPadShortcutForward(x, { outChannels: this.outChannels, stride: this.stride });
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : zeroPadShortcutBackward(dy, { inputShape: this.xShape, stride: this.stride });
  }
}

/** Inverted dropout; active in training and, for MC dropout, whenever pass.mcDropout is set. */
export class Dropout extends Module {
  readonly p: number;
  private active = false;
  constructor(p = 0.5) {
    super();
    this.p = checkNumber('Dropout', 'p', p, (v) => v >= 0 && v < 1, 'a probability in [0, 1)');
  }
  override getConfig(): LayerConfig {
    return { type: 'Dropout', p: this.p };
  }
  override outputShape(input: readonly number[]): number[] {
    return [...input];
  }
  override forward(x: Tensor, pass: Pass): Tensor {
    this.active = (pass.training || pass.mcDropout) && this.p > 0;
    return this.active ? dropoutForward(x, { p: this.p, key: passKey(pass, this.streamBase, x.size / pass.samples) }) : x;
  }
  override backward(dy: Tensor, pass: Pass): Tensor | null {
    if (pass.needInputGrad === false) return null;
    return this.active ? dropoutBackward(dy, { p: this.p, key: passKey(pass, this.streamBase, dy.size / pass.samples) }) : dy;
  }
}

export class BatchNorm2d extends Module {
  readonly channels: number;
  readonly momentum: number;
  readonly eps: number;
  weight: Parameter | null = null;
  bias: Parameter | null = null;
  runningMean: Parameter | null = null;
  runningVar: Parameter | null = null;
  numBatchesTracked: Parameter | null = null;
  /** @internal While set, training passes update the running statistics with this momentum instead (updateBatchNorm). */
  momentumOverride: number | null = null;
  private x: Tensor | null = null;
  private saved: { mean: Tensor; invStd: Tensor } | null = null;

  constructor(channels: number, options: { momentum?: number; eps?: number } = {}) {
    super();
    this.channels = checkInt('BatchNorm2d', 'channels', channels, 1);
    this.momentum = checkNumber('BatchNorm2d', 'momentum', options.momentum ?? 0.1, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
    this.eps = checkNumber('BatchNorm2d', 'eps', options.eps ?? 1e-5, (v) => v > 0, 'a positive number');
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    checkUnbuilt(this, this.weight !== null);
    this.outputShape(input);
    super.build(ctx, input, state);
    const c = this.channels;
    this.weight = createParameter(ctx, new Float32Array(c).fill(1), [c]);
    this.bias = createParameter(ctx, new Float32Array(c), [c]);
    this.runningMean = createParameter(ctx, new Float32Array(c), [c], 'weight', false);
    this.runningVar = createParameter(ctx, new Float32Array(c).fill(1), [c], 'weight', false);
    this.numBatchesTracked = createParameter(ctx, [0], [1], 'weight', false);
  }

  override getConfig(): LayerConfig {
    return { type: 'BatchNorm2d', channels: this.channels, momentum: this.momentum, eps: this.eps };
  }

  override parameters(): Map<string, Parameter> {
    if (!this.weight) return new Map();
    return new Map([
      ['weight', this.weight],
      ['bias', this.bias!],
      ['running_mean', this.runningMean!],
      ['running_var', this.runningVar!],
      ['num_batches_tracked', this.numBatchesTracked!],
    ]);
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('BatchNorm2d', input, 3, `[${this.channels}, H, W]`);
    if (input[0] !== this.channels) throw new BayesError('SHAPE_MISMATCH', `BatchNorm2d: input expected ${this.channels} channels, got ${input[0]}`);
    return [...input];
  }

  override forward(x: Tensor, pass: Pass): Tensor {
    this.x = x;
    const r = batchNorm2dForward(x, built(this, this.weight).value, this.bias!.value, this.runningMean!.value, this.runningVar!.value, {
      training: pass.training,
      momentum: this.momentumOverride ?? this.momentum,
      eps: this.eps,
    });
    this.saved = r.saved;
    return r.y;
  }

  override backward(dy: Tensor, _pass: Pass): Tensor | null {
    const g = batchNorm2dBackward(dy, this.x!, this.weight!.value, this.saved!);
    setGrad(this.weight!, g.dGamma);
    setGrad(this.bias!, g.dBeta);
    return g.dx;
  }
}

/**
 * The homoscedastic likelihood head of a regression network: [N, 1] predicted means -> [N, 2]
 * (mean, log sigma^2) with one log variance for every row. Its parameter 'log_var' is learned
 * (trainable, by maximum likelihood: a point estimate, no prior) or fixed.
 */
export class HomoscedasticNoise extends Module {
  readonly std: number;
  readonly learn: boolean;
  logVar: Parameter | null = null;

  /** `std`: the noise standard deviation sigma (the initial value when learned); `learn`: fit it by maximum likelihood. */
  constructor(options: { std?: number; learn?: boolean } = {}) {
    super();
    this.std = checkNumber('HomoscedasticNoise', 'std', options.std ?? 0.5, (v) => v > 0 && Number.isFinite(v), 'a positive number');
    this.learn = options.learn ?? true;
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    checkUnbuilt(this, this.logVar !== null);
    this.outputShape(input);
    super.build(ctx, input, state);
    this.logVar = createParameter(ctx, [2 * Math.log(this.std)], [1], 'weight', this.learn);
  }

  override getConfig(): LayerConfig {
    return { type: 'HomoscedasticNoise', std: this.std, learn: this.learn };
  }

  override parameters(): Map<string, Parameter> {
    return this.logVar ? new Map([['log_var', this.logVar]]) : new Map();
  }

  override outputShape(input: readonly number[]): number[] {
    if (input.length !== 1 || input[0] !== 1) throw new BayesError('SHAPE_MISMATCH', `HomoscedasticNoise: input expected [1] (one predicted mean per example), got ${shapeString(input)}`);
    return [2];
  }

  override forward(x: Tensor): Tensor {
    return appendLogVar(x, built(this, this.logVar).value);
  }

  /** d mean flows to the input; d log_var is the sum of the second column's gradient over every row. */
  override backward(dy: Tensor, pass: Pass): Tensor | null {
    const { mu: dx, logVar: dLogVarRows } = splitHead(dy);
    if (this.logVar!.trainable) setGrad(this.logVar!, sum(dLogVarRows));
    return pass.needInputGrad === false ? null : dx.reshape([dx.shape[0], 1]);
  }

  /** The noise variance sigma^2 = exp(log_var). */
  async variance(): Promise<number> {
    return Math.exp((await built(this, this.logVar).value.read())[0]);
  }
}
