/**
 * Checkpoints in safetensors format. Tensor names follow the seed's
 * state_dict (conv1.W_mu, conv1.W_rho, conv1.bias_mu, fc1.W_mu, ...), so a
 * model saved by PyTorch-BayesianCNN with `save_file(model.state_dict(), path)`
 * loads with no metadata, given the model name and layer type. Files written
 * here add the model config, priors and the Adam state in `__metadata__` and
 * `optimizer.m.*` / `optimizer.v.*` tensors.
 *
 * Loading validates the whole file (layout, metadata, every tensor's name,
 * shape and values, which must be finite) before writing anything to a
 * model, so a failed load changes nothing. test/io/fuzz.test.ts attacks it.
 */
import type { Context } from '../gpu/context.js';
import { BayesError, argumentError } from '../errors.js';
import { type ModelConfig, type ModelName, MODEL_NAMES, Model, buildModel, resolveConfig } from '../nn/models.js';
import type { Sequential } from '../nn/sequential.js';
import { type LayerType, resolvePriors } from '../nn/bayes.js';
import { Adam } from '../train/adam.js';
import { type DecodedTensor, decodeSafetensors, encodeSafetensors, quoteName, rawValues } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'bayesgpu/1';
const OPT_M = 'optimizer.m.';
const OPT_V = 'optimizer.v.';

export interface SaveOptions {
  optimizer?: Adam;
  /** Free-form string metadata (epoch, validation loss, ...). */
  extra?: Record<string, string>;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Serialises parameters (and optimizer state) to safetensors bytes. */
export async function saveCheckpoint(model: Sequential, options: SaveOptions = {}): Promise<Uint8Array> {
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, p] of model.namedParameters()) {
    tensors[name] = { dtype: 'F32', shape: [...p.value.shape], data: (await p.value.read()) as Float32Array };
  }
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, ...(options.extra ?? {}) };
  if (model instanceof Model) metadata.config = JSON.stringify(model.config);
  const opt = options.optimizer;
  if (opt) {
    metadata.optimizer = JSON.stringify({ kind: 'adam', step: opt.step, lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay });
    for (const [name, s] of opt.state) {
      tensors[OPT_M + name] = { dtype: 'F32', shape: [...s.m.shape], data: (await s.m.read()) as Float32Array };
      tensors[OPT_V + name] = { dtype: 'F32', shape: [...s.v.shape], data: (await s.v.read()) as Float32Array };
    }
  }
  return encodeSafetensors(tensors, metadata);
}

export interface LoadOptions {
  /** For files without bayesgpu metadata (e.g. saved by PyTorch-BayesianCNN): which model. */
  model?: ModelName;
  layerType?: LayerType;
  activation?: 'softplus' | 'relu';
  inChannels?: number;
  classes?: number;
  imageSize?: number;
}

export interface OptimizerState {
  step: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface LoadedCheckpoint {
  model: Model;
  metadata: Record<string, string>;
  /** Present when the file carries Adam state: call `restoreOptimizer`. */
  optimizer: OptimizerState | null;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

const fileError = (message: string) => new BayesError('BAD_FILE', `loadCheckpoint: ${message}`);
const mismatch = (message: string) => new BayesError('CHECKPOINT_MISMATCH', `loadCheckpoint: ${message}`);
const has = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

/** A value from the file for a message, cut short. */
function preview(value: unknown): string {
  const text = value === undefined || typeof value === 'number' ? String(value) : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function metadataJson(metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key]);
  } catch (err) {
    throw fileError(`the metadata '${key}' is not valid JSON (${(err as Error).message.slice(0, 120)})`);
  }
}

/** The model config stored by saveCheckpoint, validated as the model constructors validate their options. */
function configFromFile(metadata: Record<string, string>): ModelConfig {
  const where = "metadata 'config'";
  const c = metadataJson(metadata, 'config');
  if (!isPlainObject(c)) throw fileError(`the ${where} is ${preview(c)}, not an object { model, bayesian, layerType, ... }`);
  if (typeof c.bayesian !== 'boolean') throw fileError(`the ${where} has bayesian ${preview(c.bayesian)}, not true or false`);
  if (c.dropout !== undefined && typeof c.dropout !== 'number') throw fileError(`the ${where} has dropout ${preview(c.dropout)}, not a number`);
  try {
    const config = resolveConfig(where, c.model as string, c.bayesian, c);
    if (config.bayesian && config.priors !== undefined) {
      if (!isPlainObject(config.priors)) throw argumentError(where, 'priors', 'an object', config.priors);
      resolvePriors(where, config.priors);
    }
    return config;
  } catch (err) {
    if (!(err instanceof BayesError)) throw err;
    throw fileError(err.message.length > 300 ? `${err.message.slice(0, 300)}…` : err.message);
  }
}

/** For files without metadata: the architecture from the options; channels and classes from the first and last layers unless given. */
function configFromOptions(o: LoadOptions, tensors: Map<string, { shape: number[] }>): ModelConfig {
  if (!o.model || !MODEL_NAMES.includes(o.model)) {
    throw new BayesError('INVALID_ARGUMENT', `loadCheckpoint: the file has no bayesgpu metadata, so argument 'model' must name the architecture (one of ${MODEL_NAMES.join(', ')}), got ${JSON.stringify(o.model)}`);
  }
  const bayesian = [...tensors.keys()].some((n) => n.endsWith('.W_mu'));
  const suffix = bayesian ? ['W_mu', 'bias_mu'] : ['weight', 'bias'];
  const first = tensors.get(`conv1.${suffix[0]}`);
  const last = tensors.get(`${o.model === 'alexnet' ? 'classifier' : 'fc3'}.${suffix[1]}`);
  // Inferred only when usable; otherwise the default stays and the shape check names the tensor.
  const usable = (d: number | undefined) => (d !== undefined && d >= 1 ? d : undefined);
  return resolveConfig('loadCheckpoint', o.model, bayesian, {
    layerType: o.layerType,
    activation: o.activation,
    inChannels: o.inChannels ?? usable(first?.shape.length === 4 ? first.shape[1] : undefined),
    classes: o.classes ?? usable(last?.shape.length === 1 ? last.shape[0] : undefined),
    imageSize: o.imageSize,
  });
}

/** The layers of each model (nn/models.ts) as far as their parameter counts go. */
const ARCHITECTURES: Record<ModelName, { convs: { out: number; k: number; stride?: number; pad?: number; pool?: [number, number] }[]; fcs: number[] }> = {
  lenet: { convs: [{ out: 6, k: 5, pool: [2, 2] }, { out: 16, k: 5, pool: [2, 2] }], fcs: [120, 84] },
  alexnet: {
    convs: [
      { out: 64, k: 11, stride: 4, pad: 5, pool: [2, 2] }, { out: 192, k: 5, pad: 2, pool: [2, 2] },
      { out: 384, k: 3, pad: 1 }, { out: 256, k: 3, pad: 1 }, { out: 128, k: 3, pad: 1, pool: [2, 2] },
    ],
    fcs: [],
  },
  '3conv3fc': { convs: [{ out: 32, k: 5, pad: 2, pool: [3, 2] }, { out: 64, k: 5, pad: 2, pool: [3, 2] }, { out: 128, k: 5, pad: 1, pool: [3, 2] }], fcs: [1000, 1000] },
};

/**
 * How many parameter values the model of `config` holds (exact, as a BigInt:
 * a hostile config may ask for more than 2^53), or null when its feature maps
 * would vanish. Computed without building it, so that a config that asks for
 * more than the file holds is refused before anything is allocated;
 * test/io/checkpoint.test.ts checks it against the built models.
 */
export function parameterCount(config: ModelConfig): bigint | null {
  const arch = ARCHITECTURES[config.model];
  const size = (s: bigint, k: number, stride: number, pad: number) => (s + 2n * BigInt(pad) < BigInt(k) ? 0n : (s + 2n * BigInt(pad) - BigInt(k)) / BigInt(stride) + 1n);
  let spatial = BigInt(config.imageSize);
  let channels = BigInt(config.inChannels);
  let count = 0n;
  for (const c of arch.convs) {
    const out = BigInt(c.out);
    count += out * channels * BigInt(c.k * c.k) + out;
    spatial = size(spatial, c.k, c.stride ?? 1, c.pad ?? 0);
    if (c.pool) spatial = size(spatial, c.pool[0], c.pool[1], 0);
    if (spatial < 1n) return null;
    channels = out;
  }
  let features = channels * spatial * spatial;
  for (const out of [...arch.fcs.map(BigInt), BigInt(config.classes)]) {
    count += out * features + out;
    features = out;
  }
  return config.bayesian ? 2n * count : count; // mu and rho for every weight and bias
}

function describe(c: ModelConfig): string {
  return `${c.bayesian ? 'Bayesian ' : ''}${c.model} (${c.inChannels} input channels, ${c.imageSize}x${c.imageSize} images, ${c.classes} classes)`;
}

/** Refuses, before anything is built, a model larger than the file's parameter tensors. */
function checkModelSize(config: ModelConfig, fileValues: number, fromFile: boolean): void {
  const count = parameterCount(config);
  const source = fromFile ? "the file's metadata 'config'" : 'the options';
  if (count === null) {
    throw new BayesError(fromFile ? 'BAD_FILE' : 'INVALID_ARGUMENT', `loadCheckpoint: ${source} describe ${describe(config)}, whose feature maps vanish: the images are too small for ${config.model}`);
  }
  if (count > BigInt(fileValues)) {
    throw mismatch(`${source} describe ${describe(config)}, a model of ${count} parameter values, but the file's parameter tensors hold ${fileValues}`);
  }
}

function optimizerFromFile(metadata: Record<string, string>): OptimizerState | null {
  if (!has(metadata, 'optimizer')) return null;
  const o = metadataJson(metadata, 'optimizer');
  const where = "the metadata 'optimizer'";
  if (!isPlainObject(o)) throw fileError(`${where} is ${preview(o)}, not an object { kind, step, lr, ... }`);
  if (o.kind !== undefined && o.kind !== 'adam') throw fileError(`${where} has kind ${preview(o.kind)}; only 'adam' is supported`);
  const field = (key: keyof OptimizerState, fallback: number | undefined, ok: (v: number) => boolean, expected: string): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== 'number' || !ok(v)) throw fileError(`${where} has ${key} ${preview(o[key])}, expected ${expected}`);
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

/** Checks that `tensors` holds exactly the model's parameters with the right shapes; throws naming the first offender. */
export function checkStateDict(model: Sequential, tensors: Map<string, { shape: number[] }>, allowPrefix: string[] = []): void {
  const params = model.namedParameters();
  for (const [name, p] of params) {
    const t = tensors.get(name);
    if (!t) throw mismatch(`tensor '${name}' is missing from the file (the model expects shape ${shapeText(p.value.shape)})`);
    if (!Array.isArray(t.shape) || t.shape.length !== p.value.shape.length || t.shape.some((d, i) => d !== p.value.shape[i])) {
      // PyTorch stores num_batches_tracked as a 0-d tensor.
      const scalarOk = name.endsWith('num_batches_tracked') && Array.isArray(t.shape) && t.shape.length === 0 && p.value.size === 1;
      if (!scalarOk) throw mismatch(`tensor '${name}' has shape ${Array.isArray(t.shape) ? shapeText(t.shape) : preview(t.shape)}, the model expects ${shapeText(p.value.shape)}`);
    }
  }
  for (const name of tensors.keys()) {
    if (!params.has(name) && !allowPrefix.some((p) => name.startsWith(p))) {
      throw mismatch(`tensor ${quoteName(name)} in the file is not a parameter of the model (${model instanceof Model ? model.config.model : 'model'}); expected only: ${[...params.keys()].join(', ')}`);
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
function checkValues(name: string, t: StateTensor, size: number, decoded?: DecodedTensor, nonNegative = false): void {
  const data = t.data as ArrayLike<number> | undefined;
  const numeric = Array.isArray(data) || (ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array));
  if (!numeric) throw mismatch(`tensor ${quoteName(name)} has data ${preview(data?.constructor?.name ?? data)}, not an array of numbers`);
  if (data!.length !== size) throw mismatch(`tensor ${quoteName(name)} holds ${data!.length} values, its shape ${shapeText(t.shape)} needs ${size}`);
  const bad = firstNonFinite(data!);
  const where = (i: number) => `index ${i} (element ${coordinates(i, t.shape.length ? t.shape : [size])} of shape ${shapeText(t.shape)}${storedAs(decoded, i)})`;
  if (bad >= 0) {
    throw fileError(`tensor ${quoteName(name)} holds ${preview(data![bad])} at ${where(bad)}: a checkpoint's values must be finite`);
  }
  if (nonNegative) {
    for (let i = 0; i < size; i++) {
      if (data![i] < 0) throw fileError(`tensor ${quoteName(name)} holds ${data![i]} at ${where(i)}: Adam's second moment is never negative`);
    }
  }
}

function checkParameterValues(model: Sequential, tensors: Map<string, StateTensor>, decoded?: Map<string, DecodedTensor>): void {
  for (const [name, p] of model.namedParameters()) checkValues(name, tensors.get(name)!, p.value.size, decoded?.get(name));
}

/**
 * Writes validated tensors into the model's parameters. Everything is checked
 * first (names, shapes, value counts, every value finite), so a refused load
 * leaves the model as it was.
 */
export function loadStateDict(ctx: Context, model: Sequential, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  checkStateDict(model, tensors, [OPT_M, OPT_V]);
  checkParameterValues(model, tensors);
  for (const [name, p] of model.namedParameters()) ctx.write(p.value, tensors.get(name)!.data);
}

/** Optimizer tensors: only moments of trainable parameters, of their shapes, both of each (when the file has Adam state); values checked. */
function checkOptimizerTensors(model: Sequential, optimizer: OptimizerState | null, tensors: Map<string, StateTensor>, decoded: Map<string, DecodedTensor>): void {
  const params = model.namedParameters();
  for (const [name, t] of tensors) {
    const prefix = name.startsWith(OPT_M) ? OPT_M : name.startsWith(OPT_V) ? OPT_V : null;
    if (!prefix) continue;
    if (!optimizer) throw mismatch(`tensor ${quoteName(name)} holds optimizer state, but the file's metadata has no 'optimizer' entry`);
    const p = params.get(name.slice(prefix.length));
    if (!p || !p.trainable) throw mismatch(`tensor ${quoteName(name)} is optimizer state for ${quoteName(name.slice(prefix.length))}, which is not a trainable parameter of the model`);
    if (t.shape.length !== p.value.shape.length || t.shape.some((d, i) => d !== p.value.shape[i])) {
      throw mismatch(`tensor ${quoteName(name)} has shape ${shapeText(t.shape)}, its parameter has ${shapeText(p.value.shape)}`);
    }
    checkValues(name, t, p.value.size, decoded.get(name), prefix === OPT_V);
  }
  if (!optimizer) return;
  for (const [name, p] of params) {
    if (!p.trainable) continue;
    for (const prefix of [OPT_M, OPT_V]) {
      if (!tensors.has(prefix + name)) throw mismatch(`the file has Adam state, but tensor '${prefix}${name}' is missing from it`);
    }
  }
}

/**
 * Parses a checkpoint and builds its model. The file is validated completely
 * before anything is written to the model: the safetensors layout, the
 * metadata (config and Adam state), a model size no larger than the file's
 * tensors (checked before the model is built), every tensor's name and shape,
 * and every value (finite; parameters converted from F16, BF16 or F64 are
 * checked after conversion). A refused file is a BayesError (BAD_FILE or
 * CHECKPOINT_MISMATCH, or INVALID_ARGUMENT for bad options) and leaves nothing behind.
 */
export function loadCheckpoint(ctx: Context, bytes: Uint8Array, options: LoadOptions = {}): LoadedCheckpoint {
  if (!isPlainObject(options)) throw argumentError('loadCheckpoint', 'options', 'an object of LoadOptions', options);
  const file = decodeSafetensors(bytes);
  const shapes = new Map<string, { shape: number[] }>();
  let parameterValues = 0;
  for (const [name, t] of file.tensors) {
    shapes.set(name, { shape: [...t.shape] });
    if (!name.startsWith(OPT_M) && !name.startsWith(OPT_V)) parameterValues += t.shape.reduce((a, b) => a * b, 1);
  }
  const metadata = file.metadata;
  const fromFile = has(metadata, 'config');
  const config = fromFile ? configFromFile(metadata) : configFromOptions(options, shapes);
  const optimizer = optimizerFromFile(metadata);
  checkModelSize(config, parameterValues, fromFile);

  const model = buildModel(ctx, config);
  try {
    checkStateDict(model, shapes, [OPT_M, OPT_V]);
    // Only now, with names and shapes known good (so sizes bounded by the model), convert to float32.
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of file.tensors) tensors.set(name, { shape: [...t.shape], data: t.data });
    checkParameterValues(model, tensors, file.tensors);
    checkOptimizerTensors(model, optimizer, tensors, file.tensors);
    for (const [name, p] of model.namedParameters()) ctx.write(p.value, tensors.get(name)!.data);
    return { model, metadata, optimizer, tensors };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Rebuilds the Adam optimizer (moments and step count) saved with a checkpoint. */
export function restoreOptimizer(ctx: Context, loaded: LoadedCheckpoint): Adam | null {
  const o = loaded.optimizer;
  if (!o) return null;
  // Check every moment before the optimizer allocates anything.
  for (const [name, p] of loaded.model.namedParameters()) {
    if (!p.trainable) continue;
    for (const prefix of [OPT_M, OPT_V]) {
      const t = loaded.tensors.get(prefix + name);
      if (!t) throw mismatch(`optimizer state for '${name}' is missing from the file`);
      checkValues(prefix + name, t, p.value.size, undefined, prefix === OPT_V);
    }
  }
  const adam = new Adam(ctx, loaded.model.namedParameters(), o);
  for (const [name, s] of adam.state) {
    ctx.write(s.m, loaded.tensors.get(OPT_M + name)!.data);
    ctx.write(s.v, loaded.tensors.get(OPT_V + name)!.data);
  }
  adam.step = o.step;
  return adam;
}
