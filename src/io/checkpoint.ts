/**
 * Checkpoints in safetensors format. Tensor names follow the seed's
 * state_dict (conv1.W_mu, conv1.W_rho, conv1.bias_mu, fc1.W_mu, ...), so a
 * model saved by PyTorch-BayesianCNN with `save_file(model.state_dict(), path)`
 * loads with no metadata, given the model name and layer type. Files written
 * here add the model config, priors and the Adam state in `__metadata__` and
 * `optimizer.m.*` / `optimizer.v.*` tensors.
 *
 * Loading validates every tensor (missing, extra, wrong shape) before writing
 * anything to the GPU, so a failed load changes nothing.
 */
import type { Context } from '../gpu/context.js';
import { BayesError } from '../errors.js';
import { type ModelConfig, type ModelName, MODEL_NAMES, Model, buildModel } from '../nn/models.js';
import type { Sequential } from '../nn/sequential.js';
import type { LayerType } from '../nn/bayes.js';
import { Adam } from '../train/adam.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

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

export interface LoadedCheckpoint {
  model: Model;
  metadata: Record<string, string>;
  /** Present when the file carries Adam state: call `restoreOptimizer`. */
  optimizer: { step: number; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number } | null;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

function configFrom(metadata: Record<string, string>, names: string[], o: LoadOptions): ModelConfig {
  if (metadata.config) {
    try {
      return JSON.parse(metadata.config) as ModelConfig;
    } catch {
      throw new BayesError('BAD_FILE', `loadCheckpoint: the metadata 'config' is not valid JSON`);
    }
  }
  if (!o.model || !MODEL_NAMES.includes(o.model)) {
    throw new BayesError('INVALID_ARGUMENT', `loadCheckpoint: the file has no bayesgpu metadata, so argument 'model' must name the architecture (one of ${MODEL_NAMES.join(', ')}), got ${JSON.stringify(o.model)}`);
  }
  const bayesian = names.some((n) => n.endsWith('.W_mu'));
  // Infer channels and classes from the tensors the seed wrote when not given.
  return {
    model: o.model,
    bayesian,
    layerType: o.layerType ?? 'lrt',
    activation: o.activation ?? (bayesian ? 'softplus' : 'relu'),
    inChannels: o.inChannels ?? 1,
    classes: o.classes ?? 10,
    imageSize: o.imageSize ?? 32,
  };
}

/** For files without metadata: input channels and classes from the first conv and the last layer, unless given. */
function inferFromTensors(config: ModelConfig, tensors: Map<string, { shape: number[] }>, o: LoadOptions): ModelConfig {
  const suffix = config.bayesian ? ['W_mu', 'bias_mu'] : ['weight', 'bias'];
  const first = tensors.get(`conv1.${suffix[0]}`);
  const last = tensors.get(`${config.model === 'alexnet' ? 'classifier' : 'fc3'}.${suffix[1]}`);
  return {
    ...config,
    inChannels: o.inChannels ?? (first?.shape.length === 4 ? first.shape[1] : config.inChannels),
    classes: o.classes ?? (last?.shape.length === 1 ? last.shape[0] : config.classes),
  };
}

/** Checks that `tensors` holds exactly the model's parameters with the right shapes; throws naming the first offender. */
export function checkStateDict(model: Sequential, tensors: Map<string, { shape: number[] }>, allowPrefix: string[] = []): void {
  const params = model.namedParameters();
  for (const [name, p] of params) {
    const t = tensors.get(name);
    if (!t) throw new BayesError('CHECKPOINT_MISMATCH', `loadCheckpoint: tensor '${name}' is missing from the file (the model expects shape ${shapeText(p.value.shape)})`);
    if (t.shape.length !== p.value.shape.length || t.shape.some((d, i) => d !== p.value.shape[i])) {
      // PyTorch stores num_batches_tracked as a 0-d tensor.
      const scalarOk = name.endsWith('num_batches_tracked') && t.shape.length === 0 && p.value.size === 1;
      if (!scalarOk) throw new BayesError('CHECKPOINT_MISMATCH', `loadCheckpoint: tensor '${name}' has shape ${shapeText(t.shape)}, the model expects ${shapeText(p.value.shape)}`);
    }
  }
  for (const name of tensors.keys()) {
    if (!params.has(name) && !allowPrefix.some((p) => name.startsWith(p))) {
      throw new BayesError('CHECKPOINT_MISMATCH', `loadCheckpoint: tensor '${name}' in the file is not a parameter of the model (${model instanceof Model ? model.config.model : 'model'}); expected only: ${[...params.keys()].join(', ')}`);
    }
  }
}

/** Writes validated tensors into the model's parameters. */
export function loadStateDict(ctx: Context, model: Sequential, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  checkStateDict(model, tensors, [OPT_M, OPT_V]);
  for (const [name, p] of model.namedParameters()) ctx.write(p.value, tensors.get(name)!.data);
}

/** Parses a checkpoint and builds its model (the file is validated completely before any GPU work). */
export function loadCheckpoint(ctx: Context, bytes: Uint8Array, options: LoadOptions = {}): LoadedCheckpoint {
  const file = decodeSafetensors(bytes);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of file.tensors) tensors.set(name, { shape: [...t.shape], data: t.data });
  const metadata = file.metadata ?? {};
  let config = configFrom(metadata, [...tensors.keys()], options);
  if (!metadata.config) config = inferFromTensors(config, tensors, options);
  const model = buildModel(ctx, config);
  try {
    loadStateDict(ctx, model, tensors);
  } catch (e) {
    model.dispose();
    throw e;
  }
  let optimizer: LoadedCheckpoint['optimizer'] = null;
  if (metadata.optimizer) optimizer = JSON.parse(metadata.optimizer);
  return { model, metadata, optimizer, tensors };
}

/** Rebuilds the Adam optimizer (moments and step count) saved with a checkpoint. */
export function restoreOptimizer(ctx: Context, loaded: LoadedCheckpoint): Adam | null {
  const o = loaded.optimizer;
  if (!o) return null;
  const adam = new Adam(ctx, loaded.model.namedParameters(), o);
  for (const [name, s] of adam.state) {
    const m = loaded.tensors.get(OPT_M + name);
    const v = loaded.tensors.get(OPT_V + name);
    if (!m || !v) {
      adam.dispose();
      throw new BayesError('CHECKPOINT_MISMATCH', `loadCheckpoint: optimizer state for '${name}' is missing from the file`);
    }
    ctx.write(s.m, m.data);
    ctx.write(s.v, v.data);
  }
  adam.step = o.step;
  return adam;
}
