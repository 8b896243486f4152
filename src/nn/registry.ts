/**
 * The layer registry: every layer type by name, with the factory that rebuilds a layer from its
 * `getConfig()` (`{ type, ...settings }`). loadModel (src/io/checkpoint.ts) rebuilds any network
 * of registered layers this way, containers included: a factory for a container gets `build`,
 * which rebuilds the layers inside it (and names their place in the architecture in errors).
 *
 * A user's own layer class loads once it is registered:
 *
 *   registerLayer('Swish', (config) => new Swish(config.beta as number));
 *
 * `expectedParameters` lists the parameters (state-dict names, shapes, trainable) that a network
 * will hold once built, without allocating anything, so a file is checked against them first.
 */
import { BayesError, type BayesErrorCode } from '../errors.js';
import { type BuildState, type LayerConfig, type Parameter, Module } from './module.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, HomoscedasticNoise, Linear, MaxPool2d, ReLU, Softplus, ZeroPadShortcut } from './layers.js';
import { BBBConv2d, BBBLinear, type LayerType } from './bayes.js';
import { Residual, Sequential } from './sequential.js';
import type { Context } from '../gpu/context.js';

/** Rebuilds the layer inside a container from its config; `at` is its place relative to the container ('body', 'layers[2]'). */
export type BuildLayer = (config: unknown, at?: string) => Module;
/** Makes a layer (unbuilt: no context) from its config. */
export type LayerFactory = (config: LayerConfig, build: BuildLayer) => Module;

const factories = new Map<string, LayerFactory>();
const builtIns = new Set<string>();

/**
 * Registers a layer type: `fromConfig(config, build)` returns a new, unbuilt layer for a config
 * `{ type, ...settings }` (what the layer's getConfig returns). Validate the settings there (throw a
 * BayesError); a container rebuilds its children with `build(childConfig, 'name')`. Registering a
 * type again replaces its factory, except for the library's own types.
 */
export function registerLayer(type: string, fromConfig: LayerFactory): void {
  if (typeof type !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(type)) {
    throw new BayesError('INVALID_ARGUMENT', `registerLayer: argument 'type' expected a name of letters, digits, '_' and '.', got ${JSON.stringify(type)}`);
  }
  if (typeof fromConfig !== 'function') throw new BayesError('INVALID_ARGUMENT', `registerLayer: argument 'fromConfig' expected a function (config, build) => layer, got ${typeof fromConfig}`);
  if (builtIns.has(type)) throw new BayesError('INVALID_ARGUMENT', `registerLayer: '${type}' is a built-in layer type; register yours under another name`);
  factories.set(type, fromConfig);
}

/** The registered layer types, sorted. */
export function layerTypes(): string[] {
  return [...factories.keys()].sort();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value for a message, cut short. */
function preview(value: unknown): string {
  let text: string;
  try {
    text = value === undefined || typeof value === 'number' ? String(value) : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/** Where a layer config is being read: the op that reads it, the code of its errors, and the path of the entry. */
export interface Reading {
  op: string;
  code: BayesErrorCode;
  path: string;
  /** Containers around this entry. */
  depth?: number;
}

/** Containers nest at most this deep: a hostile file cannot exhaust the stack. */
export const MAX_NESTING = 100;

function at(r: Reading, type?: string): string {
  return `${r.op}: the layer at ${r.path || 'the top'}${type ? ` (${type})` : ''}`;
}

/**
 * Rebuilds an unbuilt layer (or a whole network) from its config, validating every entry: a known
 * type, settings of the right kind, no unknown settings. A bad entry is a BayesError naming its
 * path in the architecture, e.g. 'layers[3].body.layers[0]'.
 */
export function layerFromConfig(config: unknown): Module {
  return readLayer(config, { op: 'layerFromConfig', code: 'INVALID_ARGUMENT', path: '' });
}

/** @internal layerFromConfig for a given op and error code (loadModel: BAD_FILE). */
export function readLayer(config: unknown, r: Reading): Module {
  if (!isPlainObject(config)) throw new BayesError(r.code, `${at(r)}: expected a layer config { type, ...settings }, got ${preview(config)}`);
  const type = config.type;
  if (typeof type !== 'string') throw new BayesError(r.code, `${at(r)}: 'type' expected a layer type name, got ${preview(type)}`);
  const factory = factories.has(type) ? factories.get(type) : undefined;
  if (!factory) {
    throw new BayesError(r.code, `${at(r)}: unknown layer type ${preview(type)}; the known types are ${layerTypes().join(', ')} (register your own with registerLayer(type, fromConfig))`);
  }
  const depth = r.depth ?? 0;
  if (depth > MAX_NESTING) throw new BayesError(r.code, `${at(r, type)}: containers nested deeper than ${MAX_NESTING}`);
  const build: BuildLayer = (child, where) => readLayer(child, { ...r, depth: depth + 1, path: where ? (r.path ? `${r.path}.${where}` : where) : r.path });
  let layer: unknown;
  try {
    layer = factory(config as LayerConfig, build);
  } catch (e) {
    // Errors of the layers inside already name their own path.
    if (e instanceof BayesError && e.message.startsWith(`${r.op}: the layer at `)) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw new BayesError(r.code, `${at(r, type)}: ${message}`);
  }
  if (!(layer instanceof Module)) throw new BayesError(r.code, `${at(r, type)}: its registered factory returned ${preview(layer)}, not a layer`);
  return layer;
}

/** The kind each setting of a built-in layer must have (the constructors check the ranges). */
type Kind = 'int' | 'intOrNull' | 'intOrPair' | 'bool' | 'number' | 'layerType' | 'priors' | 'list';

const KIND_TEXT: Record<Kind, string> = {
  int: 'a whole number',
  intOrNull: 'a whole number or null',
  intOrPair: 'a whole number or a pair [h, w] of them',
  bool: 'true or false',
  number: 'a number',
  layerType: "'lrt', 'bbb' or 'flipout'",
  priors: 'an object (the priors dictionary: prior_mu, prior_sigma, mixture, posterior_mu_initial, posterior_rho_initial)',
  list: 'a non-empty array of [name, layer config] pairs',
};

function hasKind(kind: Kind, v: unknown): boolean {
  const int = (x: unknown) => typeof x === 'number' && Number.isInteger(x);
  switch (kind) {
    case 'int': return int(v);
    case 'intOrNull': return v === null || int(v);
    case 'intOrPair': return int(v) || (Array.isArray(v) && v.length === 2 && v.every(int));
    case 'bool': return typeof v === 'boolean';
    case 'number': return typeof v === 'number';
    case 'layerType': return v === 'lrt' || v === 'bbb' || v === 'flipout';
    case 'priors': return isPlainObject(v);
    case 'list': return Array.isArray(v) && v.length > 0;
  }
}

/**
 * Checks a built-in layer's settings: each required one present, each given one of its kind, no
 * other. `?` marks an optional setting.
 */
function settings(config: LayerConfig, schema: Record<string, Kind>): Record<string, unknown> {
  const known = new Set(['type', ...Object.keys(schema).map((k) => k.replace(/\?$/, ''))]);
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw new Error(`unknown setting ${preview(key)}; ${config.type} takes ${[...known].filter((k) => k !== 'type').join(', ') || 'no settings'}`);
  }
  for (const [spec, kind] of Object.entries(schema)) {
    const key = spec.replace(/\?$/, '');
    const v = config[key];
    if (v === undefined && spec.endsWith('?')) continue;
    if (!hasKind(kind, v)) throw new Error(`setting '${key}' expected ${KIND_TEXT[kind]}, got ${preview(v)}`);
  }
  return config;
}

type Pair = number | [number, number];
const conv = { inChannels: 'int', outChannels: 'int', kernel: 'intOrPair', 'stride?': 'intOrPair', 'padding?': 'intOrPair', 'dilation?': 'intOrPair', 'bias?': 'bool' } as const;
const bayes = { 'layerType?': 'layerType', 'priors?': 'priors', 'priorTensors?': 'bool' } as const;

function registerBuiltIn(type: string, factory: LayerFactory): void {
  factories.set(type, factory);
  builtIns.add(type);
}

registerBuiltIn('Conv2d', (c) => {
  const s = settings(c, conv);
  return new Conv2d(s.inChannels as number, s.outChannels as number, s.kernel as Pair, { stride: s.stride as Pair, padding: s.padding as Pair, dilation: s.dilation as Pair, bias: s.bias as boolean });
});
registerBuiltIn('Linear', (c) => {
  const s = settings(c, { inFeatures: 'intOrNull', outFeatures: 'int', 'bias?': 'bool' });
  return new Linear(s.inFeatures as number | null, s.outFeatures as number, { bias: s.bias as boolean });
});
registerBuiltIn('ReLU', (c) => (settings(c, {}), new ReLU()));
registerBuiltIn('Softplus', (c) => (settings(c, {}), new Softplus()));
registerBuiltIn('Flatten', (c) => (settings(c, {}), new Flatten()));
registerBuiltIn('MaxPool2d', (c) => {
  const s = settings(c, { kernel: 'intOrPair', 'stride?': 'intOrPair', 'padding?': 'intOrPair' });
  return new MaxPool2d(s.kernel as Pair, { stride: s.stride as Pair, padding: s.padding as Pair });
});
registerBuiltIn('Dropout', (c) => new Dropout(settings(c, { p: 'number' }).p as number));
registerBuiltIn('GlobalAvgPool2d', (c) => (settings(c, {}), new GlobalAvgPool2d()));
registerBuiltIn('ZeroPadShortcut', (c) => {
  const s = settings(c, { inChannels: 'int', outChannels: 'int', 'stride?': 'int' });
  return new ZeroPadShortcut(s.inChannels as number, s.outChannels as number, { stride: s.stride as number });
});
registerBuiltIn('BatchNorm2d', (c) => {
  const s = settings(c, { channels: 'int', 'momentum?': 'number', 'eps?': 'number' });
  return new BatchNorm2d(s.channels as number, { momentum: s.momentum as number, eps: s.eps as number });
});
registerBuiltIn('HomoscedasticNoise', (c) => {
  const s = settings(c, { 'std?': 'number', 'learn?': 'bool' });
  return new HomoscedasticNoise({ std: s.std as number, learn: s.learn as boolean });
});
registerBuiltIn('BBBConv2d', (c) => {
  const s = settings(c, { ...conv, ...bayes });
  return new BBBConv2d(s.inChannels as number, s.outChannels as number, s.kernel as Pair, {
    stride: s.stride as Pair, padding: s.padding as Pair, dilation: s.dilation as Pair, bias: s.bias as boolean,
    layerType: s.layerType as LayerType, priors: s.priors as object, priorTensors: s.priorTensors as boolean | undefined,
  });
});
registerBuiltIn('BBBLinear', (c) => {
  const s = settings(c, { inFeatures: 'intOrNull', outFeatures: 'int', 'bias?': 'bool', ...bayes });
  return new BBBLinear(s.inFeatures as number | null, s.outFeatures as number, { bias: s.bias as boolean, layerType: s.layerType as LayerType, priors: s.priors as object, priorTensors: s.priorTensors as boolean | undefined });
});
registerBuiltIn('Sequential', (c, build) => {
  const layers = settings(c, { layers: 'list' }).layers;
  return new Sequential(sequentialEntries(layers).map(([name, config], i) => [name, build(config, `layers[${i}]`)]));
});
registerBuiltIn('Residual', (c, build) => {
  for (const key of Object.keys(c)) if (key !== 'type' && key !== 'body' && key !== 'shortcut') throw new Error(`unknown setting ${preview(key)}; Residual takes body, shortcut`);
  const body = build(c.body, 'body');
  const shortcut = c.shortcut === undefined || c.shortcut === null ? null : build(c.shortcut, 'shortcut');
  return new Residual(body, { shortcut });
});

/** A Sequential's `layers` setting: a non-empty array of [name, config] pairs. */
function sequentialEntries(layers: unknown): [string, unknown][] {
  (layers as unknown[]).forEach((entry: unknown, i: number) => {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') throw new Error(`setting 'layers' entry ${i} expected a [name, layer config] pair, got ${preview(entry)}`);
  });
  return layers as [string, unknown][];
}

/** A parameter a network will hold once built: its shape and whether the optimizer updates it. */
export interface ExpectedParameter {
  shape: number[];
  trainable: boolean;
}

/**
 * The parameters `layer` holds once built for one example's `input` shape, by state-dict name, in
 * namedParameters() order, computed without allocating anything (the input shapes are propagated
 * with outputShape, which also validates the network). Layers of other types are probed by building
 * a fresh copy from their config on a shape-only context (as PyTorch's 'meta' device does): no GPU
 * memory, and no layer of the network itself is touched.
 */
export function expectedParameters(layer: Module, input: readonly number[]): Map<string, ExpectedParameter> {
  const out = new Map<string, ExpectedParameter>();
  collect(layer, input, '', out);
  return out;
}

function collect(layer: Module, input: readonly number[], prefix: string, out: Map<string, ExpectedParameter>): void {
  const add = (name: string, shape: number[], trainable = true) => out.set(prefix + name, { shape, trainable });
  // Exact classes only: a subclass may hold more, and is probed.
  const cls = layer.constructor;
  if (cls === Sequential) {
    let shape = input;
    for (const [name, child] of (layer as Sequential).layers) {
      collect(child, shape, `${prefix}${name}.`, out);
      shape = child.outputShape(shape);
    }
  } else if (cls === Residual) {
    const r = layer as Residual;
    layer.outputShape(input); // the body's and the shortcut's shapes agree
    collect(r.body, input, `${prefix}body.`, out);
    if (r.shortcut) collect(r.shortcut, input, `${prefix}shortcut.`, out);
  } else if (cls === Conv2d || cls === BBBConv2d) {
    const c = layer as Conv2d | BBBConv2d;
    c.outputShape(input);
    const w = [c.outChannels, c.inChannels, ...c.kernel];
    if (cls === Conv2d) {
      add('weight', w);
      if (c.hasBias) add('bias', [c.outChannels]);
    } else variational(add, w, [c.outChannels], c.hasBias, (c as BBBConv2d).hasPriorTensors);
  } else if (cls === Linear || cls === BBBLinear) {
    const l = layer as Linear | BBBLinear;
    l.outputShape(input);
    const w = [l.outFeatures, input[0]];
    if (cls === Linear) {
      add('weight', w);
      if (l.hasBias) add('bias', [l.outFeatures]);
    } else variational(add, w, [l.outFeatures], l.hasBias, (l as BBBLinear).hasPriorTensors);
  } else if (cls === BatchNorm2d) {
    const c = (layer as BatchNorm2d).channels;
    layer.outputShape(input);
    add('weight', [c]);
    add('bias', [c]);
    add('running_mean', [c], false);
    add('running_var', [c], false);
    add('num_batches_tracked', [1], false);
  } else if (cls === HomoscedasticNoise) {
    layer.outputShape(input);
    add('log_var', [1], (layer as HomoscedasticNoise).learn);
  } else if (cls === ReLU || cls === Softplus || cls === MaxPool2d || cls === Flatten || cls === Dropout || cls === GlobalAvgPool2d || cls === ZeroPadShortcut) {
    layer.outputShape(input);
  } else {
    for (const [name, p] of probe(layer, input)) add(name, [...p.value.shape], p.trainable);
  }
}

function variational(add: (name: string, shape: number[], trainable?: boolean) => void, w: number[], b: number[], bias: boolean, priorTensors: boolean): void {
  add('W_mu', w);
  add('W_rho', w);
  if (bias) {
    add('bias_mu', b);
    add('bias_rho', b);
  }
  // In BayesLayer.parameters() order: the per-weight priors (BayesOptions.priorTensors), not trainable.
  if (priorTensors) {
    add('prior_W_mu', w, false);
    add('prior_W_sigma', w, false);
    if (bias) {
      add('prior_bias_mu', b, false);
      add('prior_bias_sigma', b, false);
    }
  }
}

/** A layer of another type: a fresh copy from its config, built with shape-only tensors. */
function probe(layer: Module, input: readonly number[]): Map<string, Parameter> {
  layer.outputShape(input);
  const config = layer.getConfig();
  const copy = readLayer(config, { op: 'expectedParameters', code: 'INVALID_ARGUMENT', path: '' });
  const state: BuildState = { seed: 0, nextStream: 0, layers: 0 };
  copy.build(shapeOnlyContext(config.type), input, state);
  return copy.namedParameters();
}

/**
 * A stand-in for a Context whose tensors have a shape and nothing else: enough for a layer's build,
 * which makes its parameters with ctx.tensor / zeros / empty and keeps them.
 */
function shapeOnlyContext(type: string): Context {
  const fake = (shape: readonly number[]): unknown => {
    const t = {
      shape: Object.freeze([...shape]), dtype: 'f32', size: shape.reduce((a, b) => a * b, 1), ctx: null as unknown, disposed: false,
      dispose() {}, reshape: (s: readonly number[]) => fake(s),
    };
    t.ctx = ctx;
    return t;
  };
  const methods: Record<string, unknown> = {
    tensor: (_data: unknown, shape: readonly number[]) => fake(shape),
    zeros: (shape: readonly number[]) => fake(shape),
    empty: (shape: readonly number[]) => fake(shape),
    keep: <T>(t: T) => t,
    write: () => undefined,
  };
  const ctx: object = new Proxy(methods, {
    get(target, key) {
      if (typeof key === 'string' && key in target) return target[key];
      throw new BayesError('INVALID_ARGUMENT', `expectedParameters: layer type '${type}' uses ctx.${String(key)} in its build; only ctx.tensor, zeros, empty, keep and write can be probed without allocating`);
    },
  });
  return ctx as Context;
}

/**
 * `layer.getConfig()` as it will read once built for `input`: the sizes that lazy layers infer
 * (Linear and BBBLinear with inFeatures null) filled in. Used to check that a named model's file
 * describes that model's own layers.
 */
export function configForInput(layer: Module, input: readonly number[]): LayerConfig {
  const cls = layer.constructor;
  if (cls === Sequential) {
    let shape = input;
    const layers: [string, LayerConfig][] = [];
    for (const [name, child] of (layer as Sequential).layers) {
      layers.push([name, configForInput(child, shape)]);
      shape = child.outputShape(shape);
    }
    return { type: 'Sequential', layers };
  }
  if (cls === Residual) {
    const r = layer as Residual;
    return { type: 'Residual', body: configForInput(r.body, input), shortcut: r.shortcut ? configForInput(r.shortcut, input) : null };
  }
  const config = layer.getConfig();
  if ((cls === Linear || cls === BBBLinear) && config.inFeatures === null) return { ...config, inFeatures: input[0] };
  return config;
}
