/**
 * Point-estimate layers and the parameter-free ones: Conv2d, Linear, ReLU,
 * Softplus, MaxPool2d, Flatten, Dropout, BatchNorm2d. Shapes follow PyTorch
 * (NCHW, weights [out, in, kh, kw] and [out, in]) so state dicts carry over.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, checkInt, checkNumber, pair } from '../errors.js';
import { Prng } from '../util/prng.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward, conv2dOutputShape } from '../ops/conv2d.js';
import { linearBackward, linearForward } from '../ops/linear.js';
import { activationBackward, activationForward } from '../ops/activation.js';
import { maxPool2dBackward, maxPool2dForward } from '../ops/pool.js';
import { dropoutBackward, dropoutForward } from '../ops/dropout.js';
import { batchNorm2dBackward, batchNorm2dForward } from '../ops/batchnorm.js';
import { type Parameter, type Pass, Module, passKey, setGrad, shapeString } from './module.js';

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

function param(ctx: Context, data: ArrayLike<number>, shape: number[], role: Parameter['role'] = 'weight', trainable = true): Parameter {
  return { value: ctx.keep(ctx.tensor(data, shape)), grad: null, role, trainable };
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
  weight!: Parameter;
  bias: Parameter | null = null;
  private x: Tensor | null = null;

  constructor(ctx: Context, inChannels: number, outChannels: number, kernel: number | [number, number], options: ConvOptions & { seed?: number } = {}) {
    super();
    this.inChannels = checkInt('Conv2d', 'inChannels', inChannels, 1);
    this.outChannels = checkInt('Conv2d', 'outChannels', outChannels, 1);
    this.kernel = pair('Conv2d', 'kernel', kernel, 1, 1);
    this.options = convOptions('Conv2d', options);
    this.hasBias = options.bias ?? true;
    const prng = new Prng(options.seed ?? 0);
    const fanIn = inChannels * this.kernel[0] * this.kernel[1];
    this.weight = param(ctx, uniformInit(outChannels * fanIn, fanIn, prng), [outChannels, inChannels, ...this.kernel]);
    if (this.hasBias) this.bias = param(ctx, uniformInit(outChannels, fanIn, prng), [outChannels]);
  }

  override parameters(): Map<string, Parameter> {
    const m = new Map<string, Parameter>([['weight', this.weight]]);
    if (this.bias) m.set('bias', this.bias);
    return m;
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('Conv2d', input, 3, `[${this.inChannels}, H, W]`);
    return conv2dOutputShape([1, ...input], [this.outChannels, this.inChannels, ...this.kernel], this.options).slice(1);
  }

  override forward(ctx: Context, x: Tensor): Tensor {
    this.x = x;
    return conv2dForward(ctx, x, this.weight.value, this.bias?.value ?? null, this.options);
  }

  override backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    const g = conv2dBackward(ctx, this.x!, this.weight.value, dy, this.options, { input: pass.needInputGrad !== false, bias: this.hasBias });
    setGrad(ctx, this.weight, g.dw);
    if (this.bias && g.db) setGrad(ctx, this.bias, g.db);
    return g.dx;
  }
}

export class Linear extends Module {
  inFeatures: number | null;
  readonly outFeatures: number;
  readonly hasBias: boolean;
  weight: Parameter | null = null;
  bias: Parameter | null = null;
  private readonly seed: number;
  private x: Tensor | null = null;

  /** `inFeatures` may be null: it is then inferred from the input when the model is built. */
  constructor(ctx: Context, inFeatures: number | null, outFeatures: number, options: { bias?: boolean; seed?: number } = {}) {
    super();
    this.inFeatures = inFeatures === null ? null : checkInt('Linear', 'inFeatures', inFeatures, 1);
    this.outFeatures = checkInt('Linear', 'outFeatures', outFeatures, 1);
    this.hasBias = options.bias ?? true;
    this.seed = options.seed ?? 0;
    if (this.inFeatures !== null) this.build(ctx, [this.inFeatures]);
  }

  override build(ctx: Context, input: readonly number[]): void {
    if (this.weight) return;
    const inF = this.outputShapeCheck(input);
    this.inFeatures = inF;
    const prng = new Prng(this.seed);
    this.weight = param(ctx, uniformInit(this.outFeatures * inF, inF, prng), [this.outFeatures, inF]);
    if (this.hasBias) this.bias = param(ctx, uniformInit(this.outFeatures, inF, prng), [this.outFeatures]);
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

  override forward(ctx: Context, x: Tensor): Tensor {
    this.x = x;
    return linearForward(ctx, x, this.weight!.value, this.bias?.value ?? null);
  }

  override backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    const g = linearBackward(ctx, this.x!, this.weight!.value, dy, { input: pass.needInputGrad !== false, bias: this.hasBias });
    setGrad(ctx, this.weight!, g.dw);
    if (this.bias && g.db) setGrad(ctx, this.bias, g.db);
    return g.dx;
  }
}

abstract class ActivationLayer extends Module {
  protected abstract readonly kind: 'relu' | 'softplus';
  private x: Tensor | null = null;
  override outputShape(input: readonly number[]): number[] {
    return [...input];
  }
  override forward(ctx: Context, x: Tensor): Tensor {
    this.x = x;
    return activationForward(ctx, this.kind, x);
  }
  override backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : activationBackward(ctx, this.kind, this.x!, dy);
  }
}

export class ReLU extends ActivationLayer {
  protected readonly kind = 'relu';
}

export class Softplus extends ActivationLayer {
  protected readonly kind = 'softplus';
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

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('MaxPool2d', input, 3, '[C, H, W]');
    const [c, h, w] = input;
    const oh = Math.floor((h + 2 * this.padding[0] - this.kernel[0]) / this.stride[0]) + 1;
    const ow = Math.floor((w + 2 * this.padding[1] - this.kernel[1]) / this.stride[1]) + 1;
    if (oh < 1 || ow < 1) throw new BayesError('SHAPE_MISMATCH', `MaxPool2d: input ${shapeString(input)} is smaller than the kernel ${shapeString(this.kernel)}`);
    return [c, oh, ow];
  }

  override forward(ctx: Context, x: Tensor): Tensor {
    const { y, argmax } = maxPool2dForward(ctx, x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
    this.argmax = argmax;
    this.xShape = x.shape;
    return y;
  }

  override backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : maxPool2dBackward(ctx, dy, this.argmax!, this.xShape);
  }
}

/** [N, ...] -> [N, product of the rest]; the size is inferred, never typed. */
export class Flatten extends Module {
  private xShape: readonly number[] = [];
  override outputShape(input: readonly number[]): number[] {
    return [input.reduce((a, b) => a * b, 1)];
  }
  override forward(_ctx: Context, x: Tensor): Tensor {
    this.xShape = x.shape;
    return x.reshape([x.shape[0], x.size / x.shape[0]]);
  }
  override backward(_ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    return pass.needInputGrad === false ? null : dy.reshape(this.xShape);
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
  override outputShape(input: readonly number[]): number[] {
    return [...input];
  }
  override forward(ctx: Context, x: Tensor, pass: Pass): Tensor {
    this.active = (pass.training || pass.mcDropout) && this.p > 0;
    return this.active ? dropoutForward(ctx, x, this.p, passKey(pass, this.streamBase, x.size / pass.samples)) : x;
  }
  override backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    if (pass.needInputGrad === false) return null;
    return this.active ? dropoutBackward(ctx, dy, this.p, passKey(pass, this.streamBase, dy.size / pass.samples)) : dy;
  }
}

export class BatchNorm2d extends Module {
  readonly channels: number;
  readonly momentum: number;
  readonly eps: number;
  weight: Parameter;
  bias: Parameter;
  runningMean: Parameter;
  runningVar: Parameter;
  numBatchesTracked: Parameter;
  private x: Tensor | null = null;
  private saved: { mean: Tensor; invStd: Tensor } | null = null;

  constructor(ctx: Context, channels: number, options: { momentum?: number; eps?: number } = {}) {
    super();
    this.channels = checkInt('BatchNorm2d', 'channels', channels, 1);
    this.momentum = checkNumber('BatchNorm2d', 'momentum', options.momentum ?? 0.1, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
    this.eps = checkNumber('BatchNorm2d', 'eps', options.eps ?? 1e-5, (v) => v > 0, 'a positive number');
    this.weight = param(ctx, new Float32Array(channels).fill(1), [channels]);
    this.bias = param(ctx, new Float32Array(channels), [channels]);
    this.runningMean = param(ctx, new Float32Array(channels), [channels], 'weight', false);
    this.runningVar = param(ctx, new Float32Array(channels).fill(1), [channels], 'weight', false);
    this.numBatchesTracked = param(ctx, [0], [1], 'weight', false);
  }

  override parameters(): Map<string, Parameter> {
    return new Map([
      ['weight', this.weight],
      ['bias', this.bias],
      ['running_mean', this.runningMean],
      ['running_var', this.runningVar],
      ['num_batches_tracked', this.numBatchesTracked],
    ]);
  }

  override outputShape(input: readonly number[]): number[] {
    checkInputRank('BatchNorm2d', input, 3, `[${this.channels}, H, W]`);
    if (input[0] !== this.channels) throw new BayesError('SHAPE_MISMATCH', `BatchNorm2d: input expected ${this.channels} channels, got ${input[0]}`);
    return [...input];
  }

  override forward(ctx: Context, x: Tensor, pass: Pass): Tensor {
    this.x = x;
    const r = batchNorm2dForward(ctx, x, this.weight.value, this.bias.value, this.runningMean.value, this.runningVar.value, {
      training: pass.training,
      momentum: this.momentum,
      eps: this.eps,
    });
    this.saved = r.saved;
    return r.y;
  }

  override backward(ctx: Context, dy: Tensor, _pass: Pass): Tensor | null {
    const g = batchNorm2dBackward(ctx, this.x!, dy, this.weight.value, this.saved!);
    setGrad(ctx, this.weight, g.dGamma);
    setGrad(ctx, this.bias, g.dBeta);
    return g.dx;
  }
}

