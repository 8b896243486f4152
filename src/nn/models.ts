/**
 * The seed's models (PyTorch-BayesianCNN, models/BayesianModels and
 * models/NonBayesianModels), layer for layer, for 32x32 inputs. Layer names
 * match the seed's attributes so that state dicts carry over. Besides them, ResNet-20
 * (He et al. 2016, sec. 4.2), frequentist or with every conv and the fc Bayesian.
 */
import type { Context } from '../gpu/context.js';
import { argumentError, checkInt, checkOneOf } from '../errors.js';
import { type LayerType, type Priors, BBBConv2d, BBBLinear } from './bayes.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Softplus, ZeroPadShortcut } from './layers.js';
import type { Module } from './module.js';
import { type ModelOptions as SequentialOptions, type Preprocessing, Residual, Sequential } from './sequential.js';

export const MODEL_NAMES = ['lenet', 'alexnet', '3conv3fc', 'resnet20'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelOptions {
  /** Input channels (1 for MNIST, 3 for CIFAR). */
  inChannels?: number;
  /** Number of classes. */
  classes?: number;
  /** Input height and width (the seed uses 32). */
  imageSize?: number;
  activation?: 'softplus' | 'relu';
  /** Seed of the parameter initialisation. */
  seed?: number;
  /** Class names, one per output (saved with the model; predict's reports and the CLI show them). */
  classNames?: string[];
  /** How raw images become this model's input (model.predict on a canvas, an image file; see Preprocessing). */
  preprocessing?: Preprocessing;
}

export interface BayesModelOptions extends ModelOptions {
  layerType?: LayerType;
  priors?: Priors;
}

export interface FrequentistModelOptions extends ModelOptions {
  /** Dropout probability before each hidden fully connected layer (0: none; ResNet-20: before its fc). Used for MC dropout. */
  dropout?: number;
}

/** He et al. 2016's shortcuts where a stage changes the shape (sec. 3.3): 'A' zero padding, 'B' a 1x1 projection. */
export type ResNetShortcut = 'A' | 'B';

/** The settings of ResNet20 and BBBResNet20 besides the common ones. */
export interface ResNetOptions {
  /**
   * The shortcut of the first block of stages 2 and 3, where the map halves and the channels double:
   * 'A' (default, the paper's choice for CIFAR) subsamples and pads zero channels, no parameters;
   * 'B' is a 1x1 convolution of stride 2 and a BatchNorm2d. Elsewhere the shortcut is the identity.
   */
  shortcut?: ResNetShortcut;
  /** @internal The channels of stage 1 (16 in the paper; stages 2 and 3 have twice and four times as many). For small tests. */
  width?: number;
}

/** Everything needed to rebuild a named model: stored with it by saveModel (and by the old 'bayesgpu/1' checkpoints). */
export interface ModelConfig {
  model: ModelName;
  bayesian: boolean;
  layerType: LayerType;
  activation: 'softplus' | 'relu';
  inChannels: number;
  classes: number;
  imageSize: number;
  priors?: Priors;
  dropout?: number;
  /** resnet20 only: its shortcut option ('A' or 'B'). */
  shortcut?: ResNetShortcut;
  /** @internal resnet20 only, and only when not the paper's 16: the channels of stage 1. */
  width?: number;
}

interface Factory {
  conv(inC: number, outC: number, k: number, o?: { stride?: number; padding?: number; bias?: boolean }): Module;
  fc(inF: number | null, outF: number): Module;
  act(): Module;
}

function factory(config: ModelConfig, seed: number): Factory {
  let n = 0;
  const nextSeed = () => (seed * 1000003 + ++n * 7919) >>> 0;
  return config.bayesian
    ? {
        conv: (i, o, k, opt = {}) => new BBBConv2d(i, o, k, { ...opt, layerType: config.layerType, priors: config.priors, seed: nextSeed() }),
        fc: (i, o) => new BBBLinear(i, o, { layerType: config.layerType, priors: config.priors, seed: nextSeed() }),
        act: () => (config.activation === 'softplus' ? new Softplus() : new ReLU()),
      }
    : {
        conv: (i, o, k, opt = {}) => new Conv2d(i, o, k, { ...opt, seed: nextSeed() }),
        fc: (i, o) => new Linear(i, o, { seed: nextSeed() }),
        act: () => (config.activation === 'softplus' ? new Softplus() : new ReLU()),
      };
}

function lenetLayers(f: Factory, c: ModelConfig): [string, Module][] {
  const drop = (name: string): [string, Module][] => (c.dropout ? [[name, new Dropout(c.dropout)]] : []);
  return [
    ['conv1', f.conv(c.inChannels, 6, 5)],
    ['act1', f.act()],
    ['pool1', new MaxPool2d(2, { stride: 2 })],
    ['conv2', f.conv(6, 16, 5)],
    ['act2', f.act()],
    ['pool2', new MaxPool2d(2, { stride: 2 })],
    ['flatten', new Flatten()],
    ...drop('drop1'),
    ['fc1', f.fc(null, 120)],
    ['act3', f.act()],
    ...drop('drop2'),
    ['fc2', f.fc(120, 84)],
    ['act4', f.act()],
    ['fc3', f.fc(84, c.classes)],
  ];
}

function alexnetLayers(f: Factory, c: ModelConfig): [string, Module][] {
  return [
    ['conv1', f.conv(c.inChannels, 64, 11, { stride: 4, padding: 5 })],
    ['act1', f.act()],
    ['pool1', new MaxPool2d(2, { stride: 2 })],
    ['conv2', f.conv(64, 192, 5, { padding: 2 })],
    ['act2', f.act()],
    ['pool2', new MaxPool2d(2, { stride: 2 })],
    ['conv3', f.conv(192, 384, 3, { padding: 1 })],
    ['act3', f.act()],
    ['conv4', f.conv(384, 256, 3, { padding: 1 })],
    ['act4', f.act()],
    ['conv5', f.conv(256, 128, 3, { padding: 1 })],
    ['act5', f.act()],
    ['pool3', new MaxPool2d(2, { stride: 2 })],
    ['flatten', new Flatten()],
    ...(c.dropout ? ([['drop1', new Dropout(c.dropout)]] as [string, Module][]) : []),
    ['classifier', f.fc(null, c.classes)],
  ];
}

function threeConvLayers(f: Factory, c: ModelConfig): [string, Module][] {
  const drop = (name: string): [string, Module][] => (c.dropout ? [[name, new Dropout(c.dropout)]] : []);
  return [
    ['conv1', f.conv(c.inChannels, 32, 5, { padding: 2 })],
    ['act1', f.act()],
    ['pool1', new MaxPool2d(3, { stride: 2 })],
    ['conv2', f.conv(32, 64, 5, { padding: 2 })],
    ['act2', f.act()],
    ['pool2', new MaxPool2d(3, { stride: 2 })],
    ['conv3', f.conv(64, 128, 5, { padding: 1 })],
    ['act3', f.act()],
    ['pool3', new MaxPool2d(3, { stride: 2 })],
    ['flatten', new Flatten()],
    ...drop('drop1'),
    ['fc1', f.fc(null, 1000)],
    ['act4', f.act()],
    ...drop('drop2'),
    ['fc2', f.fc(1000, 1000)],
    ['act5', f.act()],
    ['fc3', f.fc(1000, c.classes)],
  ];
}

/** The channels of ResNet-20's stage 1 (He et al. 2016, sec. 4.2: 16, 32 and 64 in its three stages). */
export const RESNET_WIDTH = 16;

/**
 * ResNet-20 for CIFAR (He et al. 2016, sec. 4.2, n = 3): a 3x3 conv of 16 channels, three stages of 3
 * basic blocks of 16, 32 and 64 channels (the first block of stages 2 and 3 with stride 2), global
 * average pooling and a fully connected layer: 6n + 2 = 20 weighted layers. A basic block is
 * Residual(conv3x3 - BN - act - conv3x3 - BN, shortcut) followed by act (sec. 3.2, fig. 2). The
 * convolutions have no bias (a BatchNorm follows each); Bayesian models make every conv and the fc
 * variational and keep BatchNorm as it is. The identity shortcut where shapes match, option A or B
 * where they change (see ResNetOptions.shortcut).
 */
function resnet20Layers(f: Factory, c: ModelConfig): [string, Module][] {
  const width = c.width ?? RESNET_WIDTH;
  const conv3 = (inC: number, outC: number, stride: number) => f.conv(inC, outC, 3, { stride, padding: 1, bias: false });
  const stage = (inC: number, outC: number, stride: number): Sequential => {
    const blocks: [string, Module][] = [];
    for (let b = 1; b <= 3; b++) {
      const [i, s] = b === 1 ? [inC, stride] : [outC, 1];
      const body = new Sequential([
        ['conv1', conv3(i, outC, s)],
        ['bn1', new BatchNorm2d(outC)],
        ['act1', f.act()],
        ['conv2', conv3(outC, outC, 1)],
        ['bn2', new BatchNorm2d(outC)],
      ]);
      const projection = s !== 1 || i !== outC;
      const shortcut = !projection ? null
        : c.shortcut === 'B' ? new Sequential([['conv', f.conv(i, outC, 1, { stride: s, bias: false })], ['bn', new BatchNorm2d(outC)]])
          : new ZeroPadShortcut(i, outC, { stride: s });
      blocks.push([`block${b}`, new Residual(body, { shortcut })], [`act${b}`, f.act()]);
    }
    return new Sequential(blocks);
  };
  return [
    ['conv1', conv3(c.inChannels, width, 1)],
    ['bn1', new BatchNorm2d(width)],
    ['act1', f.act()],
    ['layer1', stage(width, width, 1)],
    ['layer2', stage(width, 2 * width, 2)],
    ['layer3', stage(2 * width, 4 * width, 2)],
    ['pool', new GlobalAvgPool2d()],
    ...(c.dropout ? ([['drop1', new Dropout(c.dropout)]] as [string, Module][]) : []),
    ['fc', f.fc(4 * width, c.classes)],
  ];
}

/** The layers of a named model, unbuilt (no context): what Model builds, and what loadModel checks a file against. */
export function modelLayers(config: ModelConfig, seed = 0): [string, Module][] {
  const f = factory(config, seed);
  switch (config.model) {
    case 'lenet': return lenetLayers(f, config);
    case 'alexnet': return alexnetLayers(f, config);
    case 'resnet20': return resnet20Layers(f, config);
    default: return threeConvLayers(f, config);
  }
}

/** The options of a named model besides its input shape and seed (which its config and seed fix). */
export type NamedModelOptions = Omit<SequentialOptions, 'inputShape' | 'seed'>;

/** A model plus the config that rebuilds it. */
export class Model extends Sequential {
  readonly config: ModelConfig;
  constructor(ctx: Context, config: ModelConfig, seed = 0, options: NamedModelOptions = {}) {
    super(ctx, modelLayers(config, seed), { ...options, inputShape: [config.inChannels, config.imageSize, config.imageSize], seed });
    this.config = config;
  }
}

/** The class names and preprocessing a named model's options may carry, checked. */
function namedOptions(op: string, o: ModelOptions): NamedModelOptions {
  const out: NamedModelOptions = {};
  if (o.classNames !== undefined) {
    if (!Array.isArray(o.classNames) || o.classNames.some((c) => typeof c !== 'string')) throw argumentError(op, 'classNames', 'an array of strings, one per class', o.classNames);
    out.classNames = [...o.classNames];
  }
  if (o.preprocessing !== undefined) {
    if (o.preprocessing === null || typeof o.preprocessing !== 'object') throw argumentError(op, 'preprocessing', 'an object { resize?, invert?, centerByMass?, mean?, std? }', o.preprocessing);
    out.preprocessing = { ...o.preprocessing };
  }
  return out;
}

export function resolveConfig(op: string, model: string, bayesian: boolean, o: BayesModelOptions & FrequentistModelOptions & ResNetOptions): ModelConfig {
  const name = checkOneOf(op, 'model', model, MODEL_NAMES);
  const config: ModelConfig = {
    model: name,
    bayesian,
    layerType: checkOneOf(op, 'layerType', o.layerType ?? 'lrt', ['lrt', 'bbb', 'flipout'] as const),
    // The seed's Bayesian models default to softplus; ResNets use ReLU (He et al. 2016) either way.
    activation: checkOneOf(op, 'activation', o.activation ?? (bayesian && name !== 'resnet20' ? 'softplus' : 'relu'), ['softplus', 'relu'] as const),
    inChannels: checkInt(op, 'inChannels', o.inChannels ?? 1, 1),
    classes: checkInt(op, 'classes', o.classes ?? 10, 1),
    imageSize: checkInt(op, 'imageSize', o.imageSize ?? 32, 1),
  };
  if (name === 'resnet20') {
    config.shortcut = checkOneOf(op, 'shortcut', o.shortcut ?? 'A', ['A', 'B'] as const);
    const width = checkInt(op, 'width', o.width ?? RESNET_WIDTH, 1);
    if (width !== RESNET_WIDTH) config.width = width;
  } else {
    for (const key of ['shortcut', 'width'] as const) {
      if (o[key] !== undefined) throw argumentError(op, key, `nothing: only resnet20 takes a '${key}', not ${name}`, o[key]);
    }
  }
  if (bayesian && o.priors) config.priors = o.priors;
  if (!bayesian && o.dropout !== undefined) {
    if (!(o.dropout >= 0 && o.dropout < 1)) throw argumentError(op, 'dropout', 'a probability in [0, 1)', o.dropout);
    if (o.dropout > 0) config.dropout = o.dropout;
  }
  return config;
}

/** Builds any of the named models from a config (used by checkpoints and the CLI). */
export function buildModel(ctx: Context, config: ModelConfig, seed = 0): Model {
  return new Model(ctx, config, seed);
}

export function BBBLeNet(ctx: Context, options: BayesModelOptions = {}): Model {
  return new Model(ctx, resolveConfig('BBBLeNet', 'lenet', true, options), options.seed, namedOptions('BBBLeNet', options));
}
export function BBBAlexNet(ctx: Context, options: BayesModelOptions = {}): Model {
  return new Model(ctx, resolveConfig('BBBAlexNet', 'alexnet', true, options), options.seed, namedOptions('BBBAlexNet', options));
}
export function BBB3Conv3FC(ctx: Context, options: BayesModelOptions = {}): Model {
  return new Model(ctx, resolveConfig('BBB3Conv3FC', '3conv3fc', true, options), options.seed, namedOptions('BBB3Conv3FC', options));
}
export function LeNet(ctx: Context, options: FrequentistModelOptions = {}): Model {
  return new Model(ctx, resolveConfig('LeNet', 'lenet', false, options), options.seed, namedOptions('LeNet', options));
}
export function AlexNet(ctx: Context, options: FrequentistModelOptions = {}): Model {
  return new Model(ctx, resolveConfig('AlexNet', 'alexnet', false, options), options.seed, namedOptions('AlexNet', options));
}
export function ThreeConvThreeFC(ctx: Context, options: FrequentistModelOptions = {}): Model {
  return new Model(ctx, resolveConfig('ThreeConvThreeFC', '3conv3fc', false, options), options.seed, namedOptions('ThreeConvThreeFC', options));
}

/** ResNet-20 (He et al. 2016, sec. 4.2) with every conv and the fc Bayesian (layerType 'lrt' or 'bbb'), BatchNorm point estimates. */
export function BBBResNet20(ctx: Context, options: BayesModelOptions & ResNetOptions = {}): Model {
  return new Model(ctx, resolveConfig('BBBResNet20', 'resnet20', true, options), options.seed, namedOptions('BBBResNet20', options));
}
/** ResNet-20 (He et al. 2016, sec. 4.2): about 0.27M parameters for 10 classes. */
export function ResNet20(ctx: Context, options: FrequentistModelOptions & ResNetOptions = {}): Model {
  return new Model(ctx, resolveConfig('ResNet20', 'resnet20', false, options), options.seed, namedOptions('ResNet20', options));
}
