/**
 * The container, in the spirit of PyTorch-BayesianCNN's ModuleWrapper: named
 * layers run in order; `forward` returns the logits and the KL summed over
 * every Bayesian layer; `backward` runs the layers in reverse.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, checkInt } from '../errors.js';
import { add, tile } from '../ops/elementwise.js';
import { type Parameter, type Pass, Module, shapeString } from './module.js';
import { STREAMS_PER_LAYER } from './bayes.js';

export interface ForwardOptions {
  /** Monte Carlo samples T, batched on the GPU as a leading dimension (default 1). */
  samples?: number;
  /** Draw from the posterior; default: true in training mode, false in eval mode (the seed's `self.training or sample`). */
  sample?: boolean;
  /** Keep dropout on outside training (MC dropout). */
  mcDropout?: boolean;
  /** Random key of this pass. */
  seed?: number;
  step?: number;
  /** Index of the first Monte Carlo sample in the random streams (default 0; see Pass.sampleOffset). */
  sampleOffset?: number;
  /** Also compute the KL term (default true). */
  kl?: boolean;
}

export interface ForwardResult {
  /** [T * B, classes]: sample t of example b at row t * B + b. */
  logits: Tensor;
  /** [1]: KL(q || p) summed over the Bayesian layers, or null without Bayesian layers or with kl: false. */
  kl: Tensor | null;
  pass: Pass;
}

export class Sequential extends Module {
  readonly layers: [string, Module][];
  readonly inputShape: readonly number[];
  readonly outputShapeOf: readonly number[];
  training = true;

  /** `layers` in order, by their state-dict names; `inputShape` is one example's shape, e.g. [1, 32, 32]. */
  constructor(ctx: Context, layers: Record<string, Module> | [string, Module][], inputShape: readonly number[]) {
    super();
    this.layers = Array.isArray(layers) ? layers : Object.entries(layers);
    if (this.layers.length === 0) throw new BayesError('INVALID_ARGUMENT', "Sequential: argument 'layers' expected at least one layer, got none");
    if (!Array.isArray(inputShape) || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new BayesError('INVALID_ARGUMENT', `Sequential: argument 'inputShape' expected one example's shape such as [1, 32, 32], got ${JSON.stringify(inputShape)}`);
    }
    this.inputShape = [...inputShape];
    let shape: readonly number[] = inputShape;
    this.layers.forEach(([name, layer], i) => {
      layer.name = name;
      layer.streamBase = i * STREAMS_PER_LAYER;
      try {
        layer.build(ctx, shape);
        shape = layer.outputShape(shape);
      } catch (e) {
        if (e instanceof BayesError) throw new BayesError(e.code, `layer '${name}' (${layer.constructor.name}) with input ${shapeString(shape)}: ${e.message}`);
        throw e;
      }
    });
    this.outputShapeOf = shape;
  }

  override outputShape(input: readonly number[]): number[] {
    let shape = input;
    for (const [, layer] of this.layers) shape = layer.outputShape(shape);
    return [...shape];
  }

  train(): this {
    this.training = true;
    return this;
  }

  eval(): this {
    this.training = false;
    return this;
  }

  /** Parameters by their state-dict names ('conv1.W_mu', 'bn1.running_mean', ...). */
  namedParameters(): Map<string, Parameter> {
    const out = new Map<string, Parameter>();
    for (const [name, layer] of this.layers) for (const [k, p] of layer.parameters()) out.set(`${name}.${k}`, p);
    return out;
  }

  override parameters(): Map<string, Parameter> {
    return this.namedParameters();
  }

  /** Checks a batch [B, ...inputShape] (before any GPU work). */
  checkInput(op: string, x: Tensor): void {
    const per = x.shape.slice(1);
    if (x.shape.length !== this.inputShape.length + 1 || per.some((d, i) => d !== this.inputShape[i])) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'x' expected shape [B, ${this.inputShape.join(', ')}], got ${shapeString(x.shape)}`);
    }
  }

  makePass(options: ForwardOptions = {}): Pass {
    const samples = checkInt('forward', 'samples', options.samples ?? 1, 1);
    return {
      training: this.training,
      sample: options.sample ?? this.training,
      samples,
      mcDropout: options.mcDropout ?? false,
      seed: checkInt('forward', 'seed', options.seed ?? 0, 0),
      step: checkInt('forward', 'step', options.step ?? 0, 0),
      sampleOffset: checkInt('forward', 'sampleOffset', options.sampleOffset ?? 0, 0),
      needInputGrad: false,
    };
  }

  /**
   * Runs the T Monte Carlo samples as one batch of T * B (the input is tiled on
   * the GPU), returning logits [T * B, classes] and the summed KL.
   */
  run(ctx: Context, x: Tensor, options: ForwardOptions = {}): ForwardResult {
    ctx.own('forward', 'x', x);
    this.checkInput('forward', x);
    const pass = this.makePass(options);
    const xt = pass.samples > 1 ? tile(ctx, x, pass.samples).reshape([pass.samples * x.shape[0], ...this.inputShape]) : x;
    const logits = this.forward(ctx, xt, pass);
    const kl = options.kl === false ? null : this.kl(ctx, pass);
    return { logits, kl, pass };
  }

  override forward(ctx: Context, x: Tensor, pass: Pass): Tensor {
    let h = x;
    for (const [, layer] of this.layers) h = layer.forward(ctx, h, pass);
    return h;
  }

  override backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null {
    let g: Tensor | null = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i][1];
      g = layer.backward(ctx, g!, { ...pass, needInputGrad: i > 0 || pass.needInputGrad === true });
      if (i > 0 && !g) throw new BayesError('INVALID_ARGUMENT', `Sequential.backward: layer '${this.layers[i][0]}' returned no input gradient`);
    }
    return g;
  }

  override kl(ctx: Context, pass: Pass): Tensor | null {
    let total: Tensor | null = null;
    for (const [, layer] of this.layers) {
      const k = layer.kl(ctx, pass);
      if (k) total = total ? add(ctx, total, k) : k;
    }
    return total;
  }

  override klBackward(ctx: Context, pass: Pass, scale: number): void {
    for (const [, layer] of this.layers) layer.klBackward(ctx, pass, scale);
  }

  /** True when some layer is variational. */
  get isBayesian(): boolean {
    return [...this.namedParameters().values()].some((p) => p.role === 'rho');
  }

  override dispose(): void {
    for (const [, layer] of this.layers) layer.dispose();
  }
}
