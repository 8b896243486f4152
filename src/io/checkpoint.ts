/**
 * Models in safetensors files: any network of registered layers (src/nn/registry.ts) saves with
 * its architecture and loads back on any context.
 *
 *   const bytes = await saveModel(model, { optimizer: adam, metadata: { epochs: '3' } });
 *   const model = loadModel(ctx, bytes);          // the same network, the same parameters
 *   const adam = loadOptimizer(model, bytes);     // its Adam state to resume training, or null
 *   const info = modelMetadata(bytes);            // { epochs: '3' }
 *
 * The file: one tensor per parameter, by state-dict name (conv1.W_mu, block.body.conv1.weight, ...),
 * the Adam moments as `optimizer.m.<name>` / `optimizer.v.<name>`, and in `__metadata__`:
 *   format        'bayesgpu/2'
 *   architecture  JSON: model.getConfig(), { type: 'Sequential', layers: [[name, config], ...] }
 *                 (the BBB layers' configs hold their priors)
 *   modelOptions  JSON: inputShape, seed, task, classNames, preprocessing, and temperature only when it
 *                 is not 1 (so files of untempered models are as before)
 *   config        JSON: a named model's ModelConfig (BBBLeNet, ...), so it reloads as that Model
 *   optimizer     JSON: { kind: 'adam', step, lr, beta1, beta2, eps, weightDecay }, with the moments
 *   ...           the caller's own string metadata
 * Files of the first format ('bayesgpu/1': a named model's `config`, no architecture) load too.
 * Tensor names follow the seed's state_dict, so a PyTorch-BayesianCNN state dict
 * (`save_file(model.state_dict(), path)`) loads into a model built by hand: loadStateDict.
 *
 * Loading validates the whole file (layout, metadata, architecture, every tensor's name, shape and
 * values, which must be finite) before anything is allocated on the GPU, so a failed load leaves
 * nothing behind. test/io/hostile.test.ts and test/io/fuzz.test.ts attack it.
 */
import type { Context } from '../gpu/context.js';
import { BayesError, argumentError } from '../errors.js';
import { type ModelConfig, type ModelName, MODEL_NAMES, Model, modelLayers, resolveConfig } from '../nn/models.js';
import { type ModelOptions, type Preprocessing, Regressor, Sequential } from '../nn/sequential.js';
import { checkTemperature } from '../ops/uncertainty.js';
import { type LayerType, resolvePriors } from '../nn/bayes.js';
import { type ExpectedParameter, configForInput, expectedParameters, readLayer } from '../nn/registry.js';
import { Adam } from '../train/adam.js';
import { type DecodedTensor, decodeSafetensors, encodeSafetensors, quoteName, rawValues } from './safetensors.js';

/** The first format: a named model's config only (still read). */
export const CHECKPOINT_FORMAT = 'bayesgpu/1';
/** The format saveModel writes: any network's architecture. */
export const MODEL_FORMAT = 'bayesgpu/2';
const OPT_M = 'optimizer.m.';
const OPT_V = 'optimizer.v.';
/** Metadata keys the library writes; the caller's own metadata may not use them. */
const RESERVED = ['format', 'architecture', 'modelOptions', 'config', 'optimizer'];

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

const fileError = (op: string, message: string) => new BayesError('BAD_FILE', `${op}: ${message}`);
const mismatch = (op: string, message: string) => new BayesError('CHECKPOINT_MISMATCH', `${op}: ${message}`);
const has = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

/** A value from the file for a message, cut short. */
function preview(value: unknown): string {
  const text = value === undefined || typeof value === 'number' ? String(value) : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Saving

export interface SaveModelOptions {
  /** The Adam optimizer training this model: its moments, step and settings are saved for resuming. */
  optimizer?: Adam;
  /** The caller's own string metadata (epoch, validation loss, ...); read back with modelMetadata. */
  metadata?: Record<string, string>;
}

type F32Entry = { dtype: 'F32'; shape: number[]; data: Float32Array };

async function parameterTensors(model: Sequential, optimizer: Adam | undefined): Promise<Record<string, F32Entry>> {
  const tensors: Record<string, F32Entry> = {};
  const entries: [string, { shape: readonly number[]; read(): Promise<unknown> }][] = [...model.namedParameters()].map(([name, p]) => [name, p.value]);
  if (optimizer) {
    for (const [name, s] of optimizer.state) entries.push([OPT_M + name, s.m], [OPT_V + name, s.v]);
  }
  for (const [name, t] of entries) tensors[name] = { dtype: 'F32', shape: [...t.shape], data: (await t.read()) as Float32Array };
  return tensors;
}

function optimizerMetadata(opt: Adam): string {
  return JSON.stringify({ kind: 'adam', step: opt.step, lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay });
}

/** The model's options in a fixed order, without unset entries (so that a reloaded model saves the same bytes). */
function canonicalOptions(o: Readonly<ModelOptions>): ModelOptions {
  const out: ModelOptions = { inputShape: [...o.inputShape] };
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.task !== undefined) out.task = o.task;
  if (o.classNames !== undefined) out.classNames = [...o.classNames];
  if (o.preprocessing !== undefined) out.preprocessing = o.preprocessing;
  // The default temperature is left out, so an untempered model writes the bytes it always has.
  if (o.temperature !== undefined && o.temperature !== 1) out.temperature = o.temperature;
  return out;
}

/**
 * Serialises a model as one safetensors file: its parameters by state-dict name, its architecture
 * (any network of registered layers; a named model's ModelConfig too) and options, and with
 * `optimizer` the Adam moments, step and settings. Reads the parameters back from the GPU.
 */
export async function saveModel(model: Sequential, options: SaveModelOptions = {}): Promise<Uint8Array> {
  const op = 'saveModel';
  if (!(model instanceof Sequential) || !model.isModel) throw argumentError(op, 'model', 'a model (a Sequential built on a context, or a named model such as BBBLeNet)', model);
  if (!isPlainObject(options)) throw argumentError(op, 'options', '{ optimizer?, metadata? }', options);
  const extra = options.metadata ?? {};
  if (!isPlainObject(extra)) throw argumentError(op, 'options.metadata', 'an object of strings', extra);
  for (const [key, value] of Object.entries(extra)) {
    if (typeof value !== 'string') throw argumentError(op, `options.metadata.${key}`, 'a string', value);
    if (RESERVED.includes(key)) throw argumentError(op, 'options.metadata', `keys other than the library's own (${RESERVED.join(', ')})`, key);
  }
  const opt = options.optimizer;
  if (opt !== undefined) {
    if (!(opt instanceof Adam)) throw argumentError(op, 'options.optimizer', 'an Adam optimizer', opt);
    const params = model.namedParameters();
    for (const name of opt.state.keys()) {
      if (params.get(name) !== opt.parameters.get(name)) throw argumentError(op, 'options.optimizer', "the optimizer of this model's parameters", `an optimizer of another model (its '${name}' is not this model's)`);
    }
  }
  // The file must load: every layer type registered, and each config rebuilding the same layer.
  const architecture = JSON.stringify(model.getConfig());
  const rebuilt = JSON.stringify(readLayer(JSON.parse(architecture), { op, code: 'INVALID_ARGUMENT', path: '' }).getConfig());
  if (rebuilt !== architecture) {
    throw new BayesError('INVALID_ARGUMENT', `${op}: the model's getConfig() does not rebuild to itself through the registered factories (a layer's getConfig or its factory leaves a setting out): ${preview(architecture)} became ${preview(rebuilt)}`);
  }
  const tensors = await parameterTensors(model, opt);
  const metadata: Record<string, string> = {
    format: MODEL_FORMAT,
    architecture,
    modelOptions: JSON.stringify(canonicalOptions(model.modelOptions)),
  };
  if (model instanceof Model) metadata.config = JSON.stringify(model.config);
  if (opt) metadata.optimizer = optimizerMetadata(opt);
  return encodeSafetensors(tensors, { ...metadata, ...(extra as Record<string, string>) });
}

export interface SaveOptions {
  optimizer?: Adam;
  /** Free-form string metadata (epoch, validation loss, ...). */
  extra?: Record<string, string>;
}

/** @internal The first format ('bayesgpu/1'): parameters, a named model's config, Adam state. Kept to test that such files still load. */
export async function saveCheckpoint(model: Sequential, options: SaveOptions = {}): Promise<Uint8Array> {
  const tensors = await parameterTensors(model, options.optimizer);
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, ...(options.extra ?? {}) };
  if (model instanceof Model) metadata.config = JSON.stringify(model.config);
  if (options.optimizer) metadata.optimizer = optimizerMetadata(options.optimizer);
  return encodeSafetensors(tensors, metadata);
}

// ---------------------------------------------------------------------------------------------
// The metadata

function metadataJson(op: string, metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key]);
  } catch (err) {
    throw fileError(op, `the metadata '${key}' is not valid JSON (${(err as Error).message.slice(0, 120)})`);
  }
}

/** A named model's config from the file, validated as the model constructors validate their options. */
function configFromFile(op: string, metadata: Record<string, string>): ModelConfig {
  const where = "metadata 'config'";
  const c = metadataJson(op, metadata, 'config');
  if (!isPlainObject(c)) throw fileError(op, `the ${where} is ${preview(c)}, not an object { model, bayesian, layerType, ... }`);
  if (typeof c.bayesian !== 'boolean') throw fileError(op, `the ${where} has bayesian ${preview(c.bayesian)}, not true or false`);
  if (c.dropout !== undefined && typeof c.dropout !== 'number') throw fileError(op, `the ${where} has dropout ${preview(c.dropout)}, not a number`);
  try {
    const config = resolveConfig(where, c.model as string, c.bayesian, c);
    if (config.bayesian && config.priors !== undefined) {
      if (!isPlainObject(config.priors)) throw argumentError(where, 'priors', 'an object', config.priors);
      resolvePriors(where, config.priors);
    }
    return config;
  } catch (err) {
    if (!(err instanceof BayesError)) throw err;
    throw fileError(op, err.message.length > 300 ? `${err.message.slice(0, 300)}…` : err.message);
  }
}

/** The model options saved by saveModel, checked entry by entry. */
function modelOptionsFromFile(op: string, metadata: Record<string, string>): ModelOptions {
  const where = "the metadata 'modelOptions'";
  const o = metadataJson(op, metadata, 'modelOptions');
  if (!isPlainObject(o)) throw fileError(op, `${where} is ${preview(o)}, not an object { inputShape, seed?, task?, classNames?, preprocessing?, temperature? }`);
  const bad = (key: string, expected: string) => fileError(op, `${where} has ${key} ${preview(o[key])}, expected ${expected}`);
  for (const key of Object.keys(o)) if (!['inputShape', 'seed', 'task', 'classNames', 'preprocessing', 'temperature'].includes(key)) throw fileError(op, `${where} has an unknown entry ${preview(key)}`);
  const dims = o.inputShape;
  if (!Array.isArray(dims) || dims.length === 0 || dims.some((d) => !Number.isSafeInteger(d) || d < 1)) throw bad('inputShape', "one example's shape, whole numbers >= 1");
  if (o.seed !== undefined && !(Number.isSafeInteger(o.seed) && (o.seed as number) >= 0)) throw bad('seed', 'an integer >= 0');
  if (o.task !== undefined && o.task !== 'classification' && o.task !== 'regression') throw bad('task', "'classification' or 'regression'");
  if (o.classNames !== undefined && !(Array.isArray(o.classNames) && o.classNames.every((n) => typeof n === 'string'))) throw bad('classNames', 'an array of strings');
  if (o.preprocessing !== undefined) checkPreprocessing(op, where, o.preprocessing);
  if (o.temperature !== undefined) {
    try {
      checkTemperature(op, 'temperature', o.temperature);
    } catch {
      throw bad('temperature', 'a finite number > 0 (1 / temperature a finite, nonzero f32)');
    }
  }
  return canonicalOptions(o as unknown as ModelOptions);
}

function checkPreprocessing(op: string, where: string, p: unknown): asserts p is Preprocessing {
  const bad = (key: string, value: unknown, expected: string) => fileError(op, `${where} has preprocessing${key ? `.${key}` : ''} ${preview(value)}, expected ${expected}`);
  if (!isPlainObject(p)) throw bad('', p, 'an object { resize?, invert?, centerByMass?, mean?, std? }');
  for (const key of Object.keys(p)) if (!['resize', 'invert', 'centerByMass', 'mean', 'std'].includes(key)) throw bad(key, p[key], 'no such entry (resize, invert, centerByMass, mean, std)');
  if (p.resize !== undefined && !['bilinear', 'area', 'nearest'].includes(p.resize as string)) throw bad('resize', p.resize, "'bilinear', 'area' or 'nearest'");
  for (const key of ['invert', 'centerByMass']) if (p[key] !== undefined && typeof p[key] !== 'boolean') throw bad(key, p[key], 'true or false');
  for (const key of ['mean', 'std']) {
    const v = p[key];
    if (v !== undefined && !(Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (key === 'mean' || x > 0)))) {
      throw bad(key, v, key === 'std' ? 'an array of positive numbers' : 'an array of finite numbers');
    }
  }
}

export interface OptimizerState {
  step: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

function optimizerFromFile(op: string, metadata: Record<string, string>): OptimizerState | null {
  if (!has(metadata, 'optimizer')) return null;
  const o = metadataJson(op, metadata, 'optimizer');
  const where = "the metadata 'optimizer'";
  if (!isPlainObject(o)) throw fileError(op, `${where} is ${preview(o)}, not an object { kind, step, lr, ... }`);
  if (o.kind !== undefined && o.kind !== 'adam') throw fileError(op, `${where} has kind ${preview(o.kind)}; only 'adam' is supported`);
  const field = (key: keyof OptimizerState, fallback: number | undefined, ok: (v: number) => boolean, expected: string): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== 'number' || !ok(v)) throw fileError(op, `${where} has ${key} ${preview(o[key])}, expected ${expected}`);
    return v;
  };
  const finite = Number.isFinite;
  return {
    step: field('step', undefined, (v) => Number.isSafeInteger(v) && v >= 0, 'an integer >= 0'),
    lr: field('lr', undefined, (v) => finite(v) && v > 0, 'a positive number'),
    beta1: field('beta1', 0.9, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    beta2: field('beta2', 0.999, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    eps: field('eps', 1e-8, (v) => finite(v) && v > 0, 'a positive number'),
    weightDecay: field('weightDecay', 0, (v) => finite(v) && v >= 0, 'a number >= 0'),
  };
}

// ---------------------------------------------------------------------------------------------
// The architecture, before anything is built

export interface LoadOptions {
  /** For files without bayesgpu metadata (e.g. saved by PyTorch-BayesianCNN): which model. */
  model?: ModelName;
  layerType?: LayerType;
  activation?: 'softplus' | 'relu';
  inChannels?: number;
  classes?: number;
  imageSize?: number;
}

/** For files without metadata: the architecture from the options; channels and classes from the first and last layers unless given. */
function configFromOptions(op: string, o: LoadOptions, tensors: Map<string, { shape: number[] }>): ModelConfig {
  if (!o.model || !MODEL_NAMES.includes(o.model)) {
    throw new BayesError('INVALID_ARGUMENT', `${op}: the file has no bayesgpu metadata, so argument 'model' must name the architecture (one of ${MODEL_NAMES.join(', ')}), got ${JSON.stringify(o.model)}`);
  }
  const bayesian = [...tensors.keys()].some((n) => n.endsWith('.W_mu'));
  const suffix = bayesian ? ['W_mu', 'bias_mu'] : ['weight', 'bias'];
  const first = tensors.get(`conv1.${suffix[0]}`);
  const last = tensors.get(`${o.model === 'alexnet' ? 'classifier' : 'fc3'}.${suffix[1]}`);
  // Inferred only when usable; otherwise the default stays and the shape check names the tensor.
  const usable = (d: number | undefined) => (d !== undefined && d >= 1 ? d : undefined);
  return resolveConfig(op, o.model, bayesian, {
    layerType: o.layerType,
    activation: o.activation,
    inChannels: o.inChannels ?? usable(first?.shape.length === 4 ? first.shape[1] : undefined),
    classes: o.classes ?? usable(last?.shape.length === 1 ? last.shape[0] : undefined),
    imageSize: o.imageSize,
  });
}

/**
 * The parameters `layers` will hold for `input`, or a message: the network does not fit its input,
 * or a size is beyond 2^53 (it could not be computed exactly; no file holds so much).
 */
function plannedParameters(layers: Sequential, input: readonly number[]): Map<string, ExpectedParameter> | string {
  if (input.some((d) => !Number.isSafeInteger(d))) return `its input shape ${shapeText(input)} is beyond 2^53`;
  let expected: Map<string, ExpectedParameter>;
  try {
    expected = expectedParameters(layers, input);
  } catch (e) {
    if (e instanceof BayesError && (e.code === 'SHAPE_MISMATCH' || e.code === 'INVALID_ARGUMENT')) return e.message;
    throw e;
  }
  for (const [name, p] of expected) {
    if (p.shape.some((d) => !Number.isSafeInteger(d))) return `its parameter '${name}' would have a size beyond 2^53`;
  }
  return expected;
}

/** Exact count of the values in `expected` (a hostile architecture may ask for more than 2^53). */
function valueCount(expected: Map<string, ExpectedParameter>): bigint {
  let count = 0n;
  for (const p of expected.values()) count += p.shape.reduce((a, d) => a * BigInt(d), 1n);
  return count;
}

/**
 * How many parameter values the named model of `config` holds (exact, as a BigInt), or null when
 * its feature maps would vanish. Computed from the model's layers without building them, so that
 * a config that asks for more than a file holds is refused before anything is allocated;
 * test/io/checkpoint.test.ts checks it against the built models.
 */
export function parameterCount(config: ModelConfig): bigint | null {
  const planned = plannedParameters(new Sequential(modelLayers(config)), [config.inChannels, config.imageSize, config.imageSize]);
  return typeof planned === 'string' ? null : valueCount(planned);
}

/** A whole number exactly, even beyond 2^53 (String(2 ** 60) rounds). */
const exact = (n: number) => (Number.isInteger(n) ? BigInt(n).toString() : String(n));

function describe(c: ModelConfig): string {
  return `${c.bayesian ? 'Bayesian ' : ''}${c.model} (${exact(c.inChannels)} input channels, ${exact(c.imageSize)}x${exact(c.imageSize)} images, ${exact(c.classes)} classes)`;
}

/** What a file describes: the parameters its model will hold, and how to build it once the file is known good. */
interface Plan {
  expected: Map<string, ExpectedParameter>;
  /** For messages: 'lenet', or 'model'. */
  name: string;
  build(ctx: Context): Sequential;
}

/** A named model (bayesgpu/1, or the files without metadata): refused before anything is built when larger than the file's parameter tensors. */
function namedPlan(op: string, config: ModelConfig, fileValues: number, fromFile: boolean, seed = 0, options: Omit<ModelOptions, 'inputShape' | 'seed'> = {}): Plan {
  const source = fromFile ? "the file's metadata 'config'" : 'the options';
  if (![config.inChannels, config.imageSize].every(Number.isSafeInteger)) {
    // Sizes beyond 2^53 are not exact as numbers: no file holds such a model, and its count is not computed.
    throw mismatch(op, `${source} describe ${describe(config)}, a model of more than ${Number.MAX_SAFE_INTEGER} parameter values, but the file's parameter tensors hold ${fileValues}`);
  }
  const planned = plannedParameters(new Sequential(modelLayers(config, seed)), [config.inChannels, config.imageSize, config.imageSize]);
  if (typeof planned === 'string') {
    throw new BayesError(fromFile ? 'BAD_FILE' : 'INVALID_ARGUMENT', `${op}: ${source} describe ${describe(config)}, whose feature maps vanish: the images are too small for ${config.model}`);
  }
  const count = valueCount(planned);
  if (count > BigInt(fileValues)) {
    throw mismatch(op, `${source} describe ${describe(config)}, a model of ${count} parameter values, but the file's parameter tensors hold ${fileValues}`);
  }
  return { expected: planned, name: config.model, build: (ctx) => new Model(ctx, config, seed, options) };
}

/** A 'bayesgpu/2' file: any network from its architecture, a named model checked against its own layers. */
function architecturePlan(op: string, metadata: Record<string, string>, fileValues: number): Plan {
  if (!has(metadata, 'architecture')) throw fileError(op, `the file is ${MODEL_FORMAT} but its metadata has no 'architecture'`);
  if (!has(metadata, 'modelOptions')) throw fileError(op, `the file is ${MODEL_FORMAT} but its metadata has no 'modelOptions'`);
  const options = modelOptionsFromFile(op, metadata);
  const root = readLayer(metadataJson(op, metadata, 'architecture'), { op, code: 'BAD_FILE', path: '' });
  if (root.constructor !== Sequential) throw fileError(op, `the architecture is a ${root.constructor.name}, expected a Sequential { type: 'Sequential', layers: [...] } at the top`);
  const network = root as Sequential;
  const planned = plannedParameters(network, options.inputShape);
  if (typeof planned === 'string') throw fileError(op, `the architecture does not fit its input shape ${shapeText(options.inputShape)}: ${planned}`);
  if (has(metadata, 'config')) {
    const config = configFromFile(op, metadata);
    const { inputShape, seed, ...rest } = options;
    const named = namedPlan(op, config, fileValues, true, seed ?? 0, rest);
    const want = JSON.stringify(configForInput(new Sequential(modelLayers(config, seed ?? 0)), [config.inChannels, config.imageSize, config.imageSize]));
    const got = JSON.stringify(configForInput(network, inputShape));
    if (want !== got || shapeText(inputShape) !== shapeText([config.inChannels, config.imageSize, config.imageSize])) {
      throw fileError(op, `the metadata 'config' describes ${describe(config)}, but the architecture and modelOptions describe another network`);
    }
    return named;
  }
  // A regression network comes back as a Regressor, so that its predict returns a RegressionPrediction.
  return { expected: planned, name: 'model', build: (ctx) => (options.task === 'regression' ? new Regressor(ctx, network.layers, options) : new Sequential(ctx, network.layers, options)) };
}

function planFromFile(op: string, metadata: Record<string, string>, shapes: Map<string, { shape: number[] }>, fileValues: number, options: LoadOptions | undefined): Plan {
  const format = metadata.format;
  if (format === MODEL_FORMAT) return architecturePlan(op, metadata, fileValues);
  if (typeof format === 'string' && format.startsWith('bayesgpu/') && format !== CHECKPOINT_FORMAT) {
    throw fileError(op, `the file's format ${preview(format)} is not one this version reads (${CHECKPOINT_FORMAT}, ${MODEL_FORMAT}); it was written by a newer bayesgpu`);
  }
  if (has(metadata, 'architecture') && format !== CHECKPOINT_FORMAT) throw fileError(op, `the metadata has an 'architecture' but its format is ${preview(format)}, not '${MODEL_FORMAT}'`);
  if (has(metadata, 'config')) return namedPlan(op, configFromFile(op, metadata), fileValues, true);
  if (options) return namedPlan(op, configFromOptions(op, options, shapes), fileValues, false);
  throw fileError(op, 'the file holds no architecture (no bayesgpu metadata: a state dict, e.g. saved by PyTorch-BayesianCNN?); build the model and load the tensors into it with loadStateDict(model, bytes)');
}

// ---------------------------------------------------------------------------------------------
// The tensors, before anything is written

/** Checks that `tensors` holds exactly the `expected` parameters with their shapes (and, with `allowPrefix`, other tensors under those prefixes); names the first offender. */
function checkNamesAndShapes(op: string, expected: ReadonlyMap<string, { shape: readonly number[] }>, tensors: Map<string, { shape: number[] }>, what: string, allowPrefix: string[] = []): void {
  for (const [name, p] of expected) {
    const t = tensors.get(name);
    if (!t) throw mismatch(op, `tensor '${name}' is missing from the file (the model expects shape ${shapeText(p.shape)})`);
    if (!Array.isArray(t.shape) || t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      // PyTorch stores num_batches_tracked as a 0-d tensor.
      const scalarOk = name.endsWith('num_batches_tracked') && Array.isArray(t.shape) && t.shape.length === 0 && p.shape.length === 1 && p.shape[0] === 1;
      if (!scalarOk) throw mismatch(op, `tensor '${name}' has shape ${Array.isArray(t.shape) ? shapeText(t.shape) : preview(t.shape)}, the model expects ${shapeText(p.shape)}`);
    }
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name) && !allowPrefix.some((p) => name.startsWith(p))) {
      throw mismatch(op, `tensor ${quoteName(name)} in the file is not a parameter of the model (${what}); expected only: ${[...expected.keys()].join(', ')}`);
    }
  }
}

/** Index of the first value that is not a finite number (NaN, ±Infinity, or no number at all), or -1. */
function firstNonFinite(data: ArrayLike<unknown>): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (!(v - v === 0) || typeof v !== 'number') return i; // v - v is NaN exactly for NaN and ±Infinity
  }
  return -1;
}

/** `[i, j, ...]`: the coordinates of flat index `index` in a row-major `shape`. */
function coordinates(index: number, shape: readonly number[]): string {
  const at: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return shapeText(at);
}

/** How the file stores a value that is not finite as float32: F16/BF16 bits, or an F64 that overflows float32. */
function storedAs(t: DecodedTensor | undefined, index: number): string {
  if (!t || !t.converted) return '';
  const v = rawValues(t)[index];
  if (t.dtype === 'F16' || t.dtype === 'BF16') return `; the file stores ${t.dtype} bits 0x${Number(v).toString(16).padStart(4, '0')}`;
  if (t.dtype === 'F64' && Number.isFinite(v)) return `; the file stores the F64 value ${v}, beyond float32's range`;
  return `; the file stores ${t.dtype} ${String(v)}`;
}

type StateTensor = { shape: number[]; data: ArrayLike<number> };

/**
 * Checks one tensor's values before anything is written: `size` of them, all
 * finite (and >= 0 for Adam's second moment). Names the tensor and the first bad index.
 */
function checkValues(op: string, name: string, t: StateTensor, size: number, decoded?: DecodedTensor, nonNegative = false): void {
  const data = t.data as ArrayLike<number> | undefined;
  const numeric = Array.isArray(data) || (ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array));
  if (!numeric) throw mismatch(op, `tensor ${quoteName(name)} has data ${preview(data?.constructor?.name ?? data)}, not an array of numbers`);
  if (data!.length !== size) throw mismatch(op, `tensor ${quoteName(name)} holds ${data!.length} values, its shape ${shapeText(t.shape)} needs ${size}`);
  const bad = firstNonFinite(data!);
  const where = (i: number) => `index ${i} (element ${coordinates(i, t.shape.length ? t.shape : [size])} of shape ${shapeText(t.shape)}${storedAs(decoded, i)})`;
  if (bad >= 0) {
    throw fileError(op, `tensor ${quoteName(name)} holds ${preview(data![bad])} at ${where(bad)}: a checkpoint's values must be finite`);
  }
  if (nonNegative) {
    for (let i = 0; i < size; i++) {
      if (data![i] < 0) throw fileError(op, `tensor ${quoteName(name)} holds ${data![i]} at ${where(i)}: Adam's second moment is never negative`);
    }
  }
  // A per-weight prior (toBayesian's MOPED priors) divides by its sigma in the KL: zero or less is no distribution.
  if (/(^|\.)prior_(W|bias)_sigma$/.test(name)) {
    for (let i = 0; i < size; i++) {
      if (!(data![i] > 0)) throw fileError(op, `tensor ${quoteName(name)} holds ${data![i]} at ${where(i)}: a prior's sigma must be > 0`);
    }
  }
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Optimizer tensors: only moments of trainable parameters, of their shapes, both of each (when the file has Adam state); values checked. */
function checkOptimizerTensors(op: string, expected: ReadonlyMap<string, ExpectedParameter>, optimizer: OptimizerState | null, tensors: Map<string, StateTensor>, decoded?: Map<string, DecodedTensor>): void {
  for (const [name, t] of tensors) {
    const prefix = name.startsWith(OPT_M) ? OPT_M : name.startsWith(OPT_V) ? OPT_V : null;
    if (!prefix) continue;
    if (!optimizer) throw mismatch(op, `tensor ${quoteName(name)} holds optimizer state, but the file's metadata has no 'optimizer' entry`);
    const p = expected.get(name.slice(prefix.length));
    if (!p || !p.trainable) throw mismatch(op, `tensor ${quoteName(name)} is optimizer state for ${quoteName(name.slice(prefix.length))}, which is not a trainable parameter of the model`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw mismatch(op, `tensor ${quoteName(name)} has shape ${shapeText(t.shape)}, its parameter has ${shapeText(p.shape)}`);
    }
    checkValues(op, name, t, sizeOf(p.shape), decoded?.get(name), prefix === OPT_V);
  }
  if (!optimizer) return;
  for (const [name, p] of expected) {
    if (!p.trainable) continue;
    for (const prefix of [OPT_M, OPT_V]) {
      if (!tensors.has(prefix + name)) throw mismatch(op, `the file has Adam state, but tensor '${prefix}${name}' is missing from it`);
    }
  }
}

/** The expected parameters of a built model. */
function parametersOf(model: Sequential): Map<string, ExpectedParameter> {
  return new Map([...model.namedParameters()].map(([name, p]) => [name, { shape: [...p.value.shape], trainable: p.trainable }]));
}

interface ReadFile {
  model: Sequential;
  metadata: Record<string, string>;
  optimizer: OptimizerState | null;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/**
 * Parses and validates a whole file, then builds its model and writes its parameters: the layout,
 * the metadata (format, architecture, options, Adam state), a model no larger than the file's
 * tensors, every tensor's name and shape, and every value (finite; parameters converted from F16,
 * BF16 or F64 are checked after conversion) are checked before anything is allocated.
 */
function readModelFile(op: string, ctx: Context, bytes: Uint8Array, options?: LoadOptions): ReadFile {
  const file = decodeSafetensors(bytes);
  const shapes = new Map<string, { shape: number[] }>();
  let parameterValues = 0;
  for (const [name, t] of file.tensors) {
    shapes.set(name, { shape: [...t.shape] });
    if (!name.startsWith(OPT_M) && !name.startsWith(OPT_V)) parameterValues += sizeOf(t.shape);
  }
  const metadata = file.metadata;
  const plan = planFromFile(op, metadata, shapes, parameterValues, options);
  const optimizer = optimizerFromFile(op, metadata);
  checkNamesAndShapes(op, plan.expected, shapes, plan.name, [OPT_M, OPT_V]);
  // Only now, with names and shapes known good (so sizes bounded by the model), convert to float32.
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of file.tensors) tensors.set(name, { shape: [...t.shape], data: t.data });
  for (const [name, p] of plan.expected) checkValues(op, name, tensors.get(name)!, sizeOf(p.shape), file.tensors.get(name));
  checkOptimizerTensors(op, plan.expected, optimizer, tensors, file.tensors);

  const model = plan.build(ctx);
  try {
    // A registered layer whose build holds other parameters than its probe said: refused, nothing kept.
    checkNamesAndShapes(op, parametersOf(model), new Map([...plan.expected].map(([n, p]) => [n, { shape: p.shape }])), plan.name);
    for (const [name, p] of model.namedParameters()) ctx.write(p.value, tensors.get(name)!.data);
    return { model, metadata, optimizer, tensors };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Rebuilds the model saved in `bytes` on `ctx` and loads its parameters: any network of registered
 * layers (a user's own layers once registered with registerLayer, Residual blocks included), as a
 * Model of the same name for the named models, with its options (input shape, task, class names,
 * preprocessing). Files of the first format ('bayesgpu/1') load too. The whole file is validated
 * before anything is allocated: a refused file is a BayesError (BAD_FILE or CHECKPOINT_MISMATCH)
 * and leaves nothing behind. The optimizer state, if any, is read by loadOptimizer.
 */
export function loadModel(ctx: Context, bytes: Uint8Array): Sequential {
  const op = 'loadModel';
  if (!ctx || typeof (ctx as Context).tensor !== 'function') throw argumentError(op, 'ctx', 'a Context', ctx);
  if (!(bytes instanceof Uint8Array)) throw argumentError(op, 'bytes', 'the file as a Uint8Array', bytes);
  return readModelFile(op, ctx, bytes).model;
}

/**
 * The Adam optimizer saved with a model (its moments, step and settings), rebuilt on the model's
 * context for the model's parameters, or null when the file has none. `model` is the model loaded
 * from the same file (or one of the same architecture). Every moment is checked (shape, finite,
 * second moments >= 0) before anything is allocated.
 */
export function loadOptimizer(model: Sequential, bytes: Uint8Array): Adam | null {
  const op = 'loadOptimizer';
  if (!(model instanceof Sequential) || !model.isModel) throw argumentError(op, 'model', 'a model (the one loadModel returned for this file)', model);
  if (!(bytes instanceof Uint8Array)) throw argumentError(op, 'bytes', 'the file as a Uint8Array', bytes);
  const file = decodeSafetensors(bytes);
  const optimizer = optimizerFromFile(op, file.metadata);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of file.tensors) if (name.startsWith(OPT_M) || name.startsWith(OPT_V)) tensors.set(name, { shape: [...t.shape], data: t.data });
  checkOptimizerTensors(op, parametersOf(model), optimizer, tensors, file.tensors);
  return optimizer ? adamWith(model, optimizer, tensors) : null;
}

function adamWith(model: Sequential, o: OptimizerState, tensors: Map<string, { data: Float32Array }>): Adam {
  const adam = new Adam(model.namedParameters(), o);
  for (const [name, s] of adam.state) {
    model.ctx.write(s.m, tensors.get(OPT_M + name)!.data);
    model.ctx.write(s.v, tensors.get(OPT_V + name)!.data);
  }
  adam.step = o.step;
  return adam;
}

/** The caller's own metadata saved with a model (saveModel's `metadata`; the library's own entries left out). */
export function modelMetadata(bytes: Uint8Array): Record<string, string> {
  if (!(bytes instanceof Uint8Array)) throw argumentError('modelMetadata', 'bytes', 'the file as a Uint8Array', bytes);
  const metadata = decodeSafetensors(bytes).metadata;
  // The first format wrote only these three; its callers' own entries may use the newer names.
  const reserved = metadata.format === MODEL_FORMAT ? RESERVED : ['format', 'config', 'optimizer'];
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) if (!reserved.includes(key)) out[key] = value;
  return out;
}

/**
 * Writes a state dict into a built model's parameters: a safetensors file's bytes (e.g. saved by
 * PyTorch-BayesianCNN with `save_file(model.state_dict(), path)`) or tensors by state-dict name.
 * Everything is checked first (names, shapes, value counts, every value finite), so a refused load
 * leaves the model as it was. Adam moments in the file (optimizer.m.* / optimizer.v.*) are ignored.
 */
export function loadStateDict(model: Sequential, tensors: Uint8Array | Map<string, { shape: number[]; data: ArrayLike<number> }>): void {
  const op = 'loadStateDict';
  if (!(model instanceof Sequential) || !model.isModel) throw argumentError(op, 'model', 'a model (a Sequential built on a context)', model);
  let decoded: Map<string, DecodedTensor> | undefined;
  if (tensors instanceof Uint8Array) {
    decoded = decodeSafetensors(tensors).tensors;
    tensors = new Map([...decoded].map(([name, t]) => [name, { shape: [...t.shape], data: t.data }]));
  } else if (!(tensors instanceof Map)) throw argumentError(op, 'tensors', "a safetensors file's bytes or a Map of { shape, data } by state-dict name", tensors);
  const map = tensors as Map<string, StateTensor>;
  const expected = parametersOf(model);
  checkNamesAndShapes(op, expected, map, model instanceof Model ? model.config.model : 'model', [OPT_M, OPT_V]);
  for (const [name, p] of expected) checkValues(op, name, map.get(name)!, sizeOf(p.shape), decoded?.get(name));
  for (const [name, p] of model.namedParameters()) model.ctx.write(p.value, map.get(name)!.data);
}

// ---------------------------------------------------------------------------------------------
// The first API, kept internal for its tests (test/io/hostile.test.ts, fuzz.test.ts) and callers not yet moved

export interface LoadedCheckpoint {
  model: Model;
  metadata: Record<string, string>;
  /** Present when the file carries Adam state: call `restoreOptimizer`. */
  optimizer: OptimizerState | null;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/** @internal loadModel for the named models, with the file's metadata, Adam state and tensors; for files without metadata, `options` names the model. */
export function loadCheckpoint(ctx: Context, bytes: Uint8Array, options: LoadOptions = {}): LoadedCheckpoint {
  if (!isPlainObject(options)) throw argumentError('loadCheckpoint', 'options', 'an object of LoadOptions', options);
  const loaded = readModelFile('loadCheckpoint', ctx, bytes, options);
  if (!(loaded.model instanceof Model)) {
    loaded.model.dispose();
    throw new BayesError('INVALID_ARGUMENT', 'loadCheckpoint: the file holds a network of its own, not a named model (BBBLeNet, ...); load it with loadModel');
  }
  return loaded as LoadedCheckpoint;
}

/** @internal Rebuilds the Adam optimizer (moments and step count) of a loadCheckpoint result. */
export function restoreOptimizer(_ctx: Context, loaded: LoadedCheckpoint): Adam | null {
  const o = loaded.optimizer;
  if (!o) return null;
  // Check every moment before the optimizer allocates anything.
  for (const [name, p] of loaded.model.namedParameters()) {
    if (!p.trainable) continue;
    for (const prefix of [OPT_M, OPT_V]) {
      const t = loaded.tensors.get(prefix + name);
      if (!t) throw mismatch('loadCheckpoint', `optimizer state for '${name}' is missing from the file`);
      checkValues('loadCheckpoint', prefix + name, t, p.value.size, undefined, prefix === OPT_V);
    }
  }
  return adamWith(loaded.model, o, loaded.tensors);
}
