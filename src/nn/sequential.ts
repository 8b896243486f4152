/**
 * Containers. Sequential runs named layers in order, in the spirit of PyTorch-BayesianCNN's
 * ModuleWrapper: `run` returns the logits and the KL summed over every Bayesian layer,
 * `backward` runs the layers in reverse. Residual adds a block's output to its input (or to a
 * shortcut's output), He et al. 2016, eq. 1-2, so residual networks can be written.
 *
 * A Sequential is either a block inside another container, `new Sequential(layers)`, or a model
 * built on a context, `new Sequential(ctx, layers, { inputShape })`: the model is what trains,
 * predicts and saves; it holds the training mode and the input shape, and builds its layers.
 */
import { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt } from '../errors.js';
import { add, tile } from '../ops/elementwise.js';
import { checkTemperature } from '../ops/uncertainty.js';
import { type BuildState, type LayerConfig, type Pass, Module, shapeString } from './module.js';
import type { ModelInput } from './input.js';
import { type PredictOptions, type Prediction, type RegressionPrediction, predictModel } from './predict.js';
import type { BuiltModel, ForwardOptions, ForwardResult, ModelOptions, Task } from './model.js';
export type { BuiltModel, ForwardOptions, ForwardResult, ModelOptions, Preprocessing, Task } from './model.js';

/** Named layers: an object `{ conv1: layer, ... }` or `[name, layer]` pairs, in order. */
export type LayerList = Record<string, Module> | [string, Module][];

function layerEntries(op: string, layers: LayerList): [string, Module][] {
  if (layers === null || typeof layers !== 'object') throw argumentError(op, 'layers', 'an object or an array of [name, layer] pairs', layers);
  const entries = Array.isArray(layers) ? layers : Object.entries(layers);
  if (entries.length === 0) throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'layers' expected at least one layer, got none`);
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !(entry[1] instanceof Module)) throw argumentError(op, 'layers', '[name, layer] pairs of a string and a layer', entry);
    const [name] = entry;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw argumentError(op, 'layers', `layer names of letters, digits and '_' (they become state-dict names), got '${name}'`, name);
    if (seen.has(name)) throw argumentError(op, 'layers', 'distinct layer names', name);
    seen.add(name);
  }
  return entries;
}

export class Sequential extends Module implements BuiltModel {
  readonly layers: [string, Module][];
  /** Training mode (a model's): sampling on, batch statistics, dropout active. */
  training = true;
  private built: { ctx: Context; inputShape: readonly number[]; outputShape: readonly number[]; options: ModelOptions } | null = null;

  /** A block for another container: built when that container is. */
  constructor(layers: LayerList);
  /** A model built on `ctx`: its layers' parameters are allocated now, for `options.inputShape`. */
  constructor(ctx: Context, layers: LayerList, options: ModelOptions);
  constructor(a: Context | LayerList, b?: LayerList, c?: ModelOptions) {
    super();
    this.layers = layerEntries('Sequential', a instanceof Context ? (b as LayerList) : a);
    this.layers.forEach(([name, layer]) => (layer.name = name));
    if (a instanceof Context) this.buildModel(a, c as ModelOptions);
  }

  private buildModel(ctx: Context, options: ModelOptions): void {
    const op = 'Sequential';
    if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ inputShape, seed?, task?, classNames?, preprocessing?, temperature? }', options);
    const { inputShape } = options;
    if (!Array.isArray(inputShape) || inputShape.length === 0 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw argumentError(op, 'options.inputShape', "one example's shape such as [1, 32, 32]", inputShape);
    }
    const seed = checkInt(op, 'options.seed', options.seed ?? 0, 0);
    if (options.task !== undefined && options.task !== 'classification' && options.task !== 'regression') throw argumentError(op, 'options.task', "'classification' or 'regression'", options.task);
    for (const key of Object.keys(options)) {
      if (!['inputShape', 'seed', 'task', 'classNames', 'preprocessing', 'temperature'].includes(key)) throw argumentError(op, 'options', 'only the keys inputShape, seed, task, classNames, preprocessing, temperature', `a key '${key}'`);
    }
    if (options.temperature !== undefined) checkTemperature(op, 'options.temperature', options.temperature);
    const state: BuildState = { seed, nextStream: 0, layers: 0 };
    // Shapes first, for every layer, so that a bad network fails before anything is allocated.
    const out = this.outputShape(inputShape);
    if (options.classNames !== undefined) {
      const classes = out[out.length - 1];
      if (!Array.isArray(options.classNames) || options.classNames.some((c) => typeof c !== 'string') || options.classNames.length !== classes) {
        throw argumentError(op, 'options.classNames', `${classes} strings, one per output class`, options.classNames);
      }
    }
    if (options.preprocessing !== undefined && (options.preprocessing === null || typeof options.preprocessing !== 'object' || Array.isArray(options.preprocessing))) {
      throw argumentError(op, 'options.preprocessing', 'an object { resize?, invert?, centerByMass?, mean?, std? }', options.preprocessing);
    }
    try {
      this.build(ctx, inputShape, state);
    } catch (e) {
      this.dispose();
      throw e;
    }
    this.built = { ctx, inputShape: [...inputShape], outputShape: this.outputShape(inputShape), options: { ...options, inputShape: [...inputShape] } };
  }

  /** The context a model was built on (or moved to). */
  get ctx(): Context {
    return this.model('ctx').ctx;
  }

  /** One example's input shape (a model's). */
  get inputShape(): readonly number[] {
    return this.model('inputShape').inputShape;
  }

  /** One example's output shape (a model's). */
  get outputShapeOf(): readonly number[] {
    return this.model('outputShapeOf').outputShape;
  }

  /** The model's options: input shape, task, class names, preprocessing. */
  get modelOptions(): Readonly<ModelOptions> {
    return this.model('modelOptions').options;
  }

  get task(): Task {
    return this.built?.options.task ?? 'classification';
  }

  /**
   * The temperature tau > 0 that predict divides a classifier's logits by (Guo et al. 2017; default 1,
   * ModelOptions.temperature). Settable, checked (a bad value throws and leaves it as it was), and
   * saved by saveModel: `model.temperature = (await fitTemperature(model, heldOut)).temperature`.
   */
  get temperature(): number {
    return this.model('temperature').options.temperature ?? 1;
  }

  set temperature(value: number) {
    const built = this.model('temperature');
    built.options = { ...built.options, temperature: checkTemperature('Sequential.temperature', 'temperature', value) };
  }

  /** True once built on a context (a model, or a block inside one). */
  get isModel(): boolean {
    return this.built !== null;
  }

  private model(what: string) {
    if (!this.built) throw new BayesError('INVALID_ARGUMENT', `Sequential.${what}: this Sequential is a block, not a model; build a model with new Sequential(ctx, layers, { inputShape })`);
    return this.built;
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    let shape: readonly number[] = input;
    for (const [name, layer] of this.layers) {
      try {
        layer.build(ctx, shape, state);
        shape = layer.outputShape(shape);
      } catch (e) {
        if (e instanceof BayesError && !e.message.startsWith('layer ')) throw new BayesError(e.code, `layer '${name}' (${layer.constructor.name}) with input ${shapeString(shape)}: ${e.message}`);
        throw e;
      }
    }
  }

  override getConfig(): LayerConfig {
    return { type: 'Sequential', layers: this.layers.map(([name, layer]) => [name, layer.getConfig()]) };
  }

  override children(): [string, Module][] {
    return this.layers;
  }

  override outputShape(input: readonly number[]): number[] {
    let shape = input;
    for (const [name, layer] of this.layers) {
      try {
        shape = layer.outputShape(shape);
      } catch (e) {
        if (e instanceof BayesError && !e.message.startsWith('layer ')) throw new BayesError(e.code, `layer '${name}' (${layer.constructor.name}) with input ${shapeString(shape)}: ${e.message}`);
        throw e;
      }
    }
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

  /** Checks a batch [B, ...inputShape] (before any GPU work). */
  checkInput(op: string, x: Tensor): void {
    const inputShape = this.inputShape;
    const per = x.shape.slice(1);
    if (x.shape.length !== inputShape.length + 1 || per.some((d, i) => d !== inputShape[i])) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'x' expected shape [B, ${inputShape.join(', ')}], got ${shapeString(x.shape)}`);
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
  run(x: Tensor, options: ForwardOptions = {}): ForwardResult {
    this.ctx.own('forward', 'x', x);
    this.checkInput('forward', x);
    const pass = this.makePass(options);
    const xt = pass.samples > 1 ? tile(x, pass.samples).reshape([pass.samples * x.shape[0], ...this.inputShape]) : x;
    const logits = this.forward(xt, pass);
    const kl = options.kl === false ? null : this.kl(pass);
    return { logits, kl, pass };
  }

  override forward(x: Tensor, pass: Pass): Tensor {
    let h = x;
    for (const [, layer] of this.layers) h = layer.forward(h, pass);
    return h;
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    let g: Tensor | null = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i][1];
      g = layer.backward(g!, { ...pass, needInputGrad: i > 0 || pass.needInputGrad === true });
      if (i > 0 && !g) throw new BayesError('INVALID_ARGUMENT', `Sequential.backward: layer '${this.layers[i][0]}' returned no input gradient`);
    }
    return g;
  }

  override kl(pass: Pass): Tensor | null {
    return sumKl(this.layers, pass);
  }

  override klBackward(pass: Pass, scale: number): void {
    for (const [, layer] of this.layers) layer.klBackward(pass, scale);
  }

  /**
   * The predictive distribution of `input` (a Tensor [B, ...inputShape] or [...inputShape], values
   * `{ data, shape }`, a data set `{ x, count, shape, labels? }`, or image sources) from T Monte Carlo
   * samples, in eval mode (the mode is restored afterwards), as CPU arrays; every tensor it makes is
   * freed. A classifier gives a Prediction, a Regressor a RegressionPrediction (see nn/predict.ts).
   *
   * @example
   * const p = await model.predict(ctx.tensor(pixels, [1, 1, 32, 32]), { samples: 20 });
   * p.predicted[0]; p.maxProb[0]; p.mutualInformation[0];      // class, confidence, epistemic (BALD)
   * const test = await model.predict(testSet, { batchSize: 500, onProgress: ({ done, total }) => log(done, total) });
   */
  predict(this: Regressor, input: ModelInput, options?: PredictOptions): Promise<RegressionPrediction>;
  predict(input: ModelInput, options?: PredictOptions): Promise<Prediction>;
  predict(input: ModelInput, options: PredictOptions = {}): Promise<Prediction | RegressionPrediction> {
    return predictModel(this, input, options);
  }

  /** True when some layer is variational. */
  get isBayesian(): boolean {
    return [...this.namedParameters().values()].some((p) => p.role === 'rho');
  }

  /**
   * Points a model at `ctx` once every parameter already lives there: restoreSnapshot
   * (train/recovery.ts) after a device loss, where nothing can be read back from the lost context.
   * Internal; `to` is the public move.
   */
  adoptContext(ctx: Context): void {
    const built = this.model('adoptContext');
    for (const [name, p] of this.namedParameters()) {
      if (p.value.ctx !== ctx) throw new BayesError('INVALID_ARGUMENT', `Sequential.adoptContext: parameter '${name}' lives on another context; move the parameters first (restoreSnapshot) or use model.to(ctx)`);
    }
    built.ctx = ctx;
  }

  /**
   * Moves a model to another context in one call: every parameter is read back and recreated there
   * (the old buffers are freed). Resolves to the model itself.
   */
  async to(ctx: Context): Promise<this> {
    const built = this.model('to');
    if (!(ctx instanceof Context)) throw argumentError('Sequential.to', 'ctx', 'a Context', ctx);
    if (ctx === built.ctx) return this;
    const params = [...this.namedParameters()];
    const values = await built.ctx.readMany(params.map(([, p]) => p.value));
    params.forEach(([, p], i) => {
      const moved = ctx.keep(ctx.tensor(values[i] as Float32Array, p.value.shape));
      p.value.dispose();
      p.grad?.dispose();
      p.grad = null;
      p.value = moved;
    });
    built.ctx = ctx;
    return this;
  }
}

/**
 * A model whose task is regression: the network ends in two columns per example, the mean and the log
 * variance of a Gaussian likelihood (a last layer with 2 outputs, or 1 output followed by
 * HomoscedasticNoise). `predict` returns a RegressionPrediction, and `fit` trains it by the Gaussian NLL.
 *
 * @example
 * const model = new Regressor(ctx, { fc1: new BBBLinear(1, 50), act1: new ReLU(), out: new BBBLinear(50, 2) }, { inputShape: [1] });
 * const { mean, std, epistemicVar, aleatoricVar } = await model.predict({ data: xs, shape: [xs.length, 1] }, { samples: 100 });
 */
export class Regressor extends Sequential {
  constructor(ctx: Context, layers: LayerList, options: ModelOptions) {
    super(ctx, layers, regressorOptions(layers, options));
  }

  override get task(): 'regression' {
    return 'regression';
  }
}

/** Regressor's options with task 'regression', after checking that the network ends in the (mean, log variance) head. */
function regressorOptions(layers: LayerList, options: ModelOptions): ModelOptions {
  const op = 'Regressor';
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ inputShape, seed?, classNames?, preprocessing? }', options);
  if (options.task !== undefined && options.task !== 'regression') throw argumentError(op, 'options.task', "'regression' or nothing", options.task);
  const { inputShape } = options;
  // A bad inputShape or layer list is reported by the Sequential constructor; the head is checked here, before anything is built.
  if (Array.isArray(inputShape) && inputShape.length > 0 && inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    const shape = new Sequential(layers).outputShape(inputShape);
    if (shape.length !== 1 || shape[0] !== 2) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'layers' expected a network with outputs [2] per example (mean and log variance: a last layer with 2 outputs, or 1 output followed by HomoscedasticNoise), got ${shapeString(shape)}`);
    }
  }
  return { ...options, task: 'regression' };
}

function sumKl(layers: [string, Module][], pass: Pass): Tensor | null {
  let total: Tensor | null = null;
  for (const [, layer] of layers) {
    const k = layer.kl(pass);
    if (k) total = total ? add(total, k) : k;
  }
  return total;
}

/**
 * y = body(x) + shortcut(x), with the identity as the default shortcut (He et al. 2016, eq. 1; a
 * projection shortcut such as a strided 1x1 convolution, eq. 2, when the shapes differ). The
 * backward adds the two branches' input gradients: dx = d body + d shortcut.
 */
export class Residual extends Module {
  readonly body: Module;
  readonly shortcut: Module | null;

  constructor(body: Module, options: { shortcut?: Module | null } = {}) {
    super();
    if (!(body instanceof Module)) throw argumentError('Residual', 'body', 'a layer or a Sequential block', body);
    const shortcut = options.shortcut ?? null;
    if (shortcut !== null && !(shortcut instanceof Module)) throw argumentError('Residual', 'options.shortcut', 'a layer, a Sequential block or null (the identity)', shortcut);
    this.body = body;
    this.shortcut = shortcut;
    body.name = 'body';
    if (shortcut) shortcut.name = 'shortcut';
  }

  override children(): [string, Module][] {
    return this.shortcut ? [['body', this.body], ['shortcut', this.shortcut]] : [['body', this.body]];
  }

  override getConfig(): LayerConfig {
    return { type: 'Residual', body: this.body.getConfig(), shortcut: this.shortcut?.getConfig() ?? null };
  }

  override outputShape(input: readonly number[]): number[] {
    const out = this.body.outputShape(input);
    const other = this.shortcut ? this.shortcut.outputShape(input) : [...input];
    if (out.length !== other.length || out.some((d, i) => d !== other[i])) {
      throw new BayesError(
        'SHAPE_MISMATCH',
        `Residual: the body's output ${shapeString(out)} differs from the ${this.shortcut ? "shortcut's output" : 'input (the identity shortcut)'} ${shapeString(other)}; ${this.shortcut ? 'make the shortcut match' : 'add a projection shortcut (e.g. a 1x1 Conv2d with the same stride)'}`,
      );
    }
    return out;
  }

  override build(ctx: Context, input: readonly number[], state: BuildState): void {
    this.body.build(ctx, input, state);
    this.shortcut?.build(ctx, input, state);
  }

  override forward(x: Tensor, pass: Pass): Tensor {
    const y = this.body.forward(x, pass);
    return add(y, this.shortcut ? this.shortcut.forward(x, pass) : x);
  }

  override backward(dy: Tensor, pass: Pass): Tensor | null {
    const gBody = this.body.backward(dy, pass);
    const gShortcut = this.shortcut ? this.shortcut.backward(dy, pass) : dy;
    if (pass.needInputGrad === false) return null;
    if (!gBody || !gShortcut) throw new BayesError('INVALID_ARGUMENT', `Residual.backward: the ${gBody ? 'shortcut' : 'body'} returned no input gradient`);
    return add(gBody, gShortcut);
  }

  override kl(pass: Pass): Tensor | null {
    return sumKl(this.children(), pass);
  }

  override klBackward(pass: Pass, scale: number): void {
    this.body.klBackward(pass, scale);
    this.shortcut?.klBackward(pass, scale);
  }
}
