/**
 * BatchNorm2d over NCHW tensors (shaders/batchnorm.wgsl), per channel.
 * Training normalises with the batch statistics and updates the running ones
 * in place (momentum 0.1, unbiased variance, as PyTorch); eval normalises with
 * the running statistics. The forward pass saves the mean and 1/std it used,
 * and whether they were batch statistics, for the backward pass.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkNumber, shapeError } from '../errors.js';
import { contextOf } from './check.js';

const SHADER = 'batchnorm.wgsl';
/** Invocations per workgroup of the per-element kernels, and elements per invocation (see shaders/elementwise.wgsl). */
const WG = 64;
const PER_THREAD = 8;
const elementGroups = (t: Tensor) => grid(Math.ceil(t.size / (WG * PER_THREAD)));
/** Invocations of each channel's reducing workgroup (a power of two). */
const REDUCE_WG = 256;

export interface BatchNormOptions {
  training: boolean;
  /** Weight of the new batch statistics in the running ones, in [0, 1]; default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root, > 0; default 1e-5. */
  eps?: number;
}

/** What the backward pass needs: the statistics the forward pass normalised with. */
export interface BatchNormSaved {
  mean: Tensor;
  invStd: Tensor;
  /** True (the default) if mean and invStd were the batch's own statistics, which then depend on x. */
  training?: boolean;
}

interface Geometry { N: number; C: number; HW: number }

function checkInput(ctx: Context, op: string, argument: string, t: Tensor): Geometry {
  ctx.own(op, argument, t);
  if (t.dtype !== 'f32') throw argumentError(op, argument, "a tensor of dtype 'f32'", `a tensor of dtype '${t.dtype}'`);
  if (t.shape.length !== 4) throw shapeError(op, argument, '[N, C, H, W]', t.shape);
  const [N, C, H, W] = t.shape;
  if (C > 65535) throw argumentError(op, argument, 'at most 65535 channels (one workgroup per channel)', C);
  return { N, C, HW: H * W };
}

function checkChannelVectors(ctx: Context, op: string, C: number, vectors: Record<string, Tensor>): void {
  for (const [name, t] of Object.entries(vectors)) {
    ctx.own(op, name, t);
    if (t.dtype !== 'f32') throw argumentError(op, name, "a tensor of dtype 'f32'", `a tensor of dtype '${t.dtype}'`);
    if (t.shape.length !== 1 || t.shape[0] !== C) throw shapeError(op, name, `[${C}] (one value per channel of x)`, t.shape);
  }
}

function uniforms(g: Geometry, extra: { eps?: number; momentum?: number } = {}) {
  const count = g.N * g.HW;
  return {
    C: g.C, HW: g.HW, count, elements: count * g.C, eps: extra.eps ?? 0, momentum: extra.momentum ?? 0,
    unbias: count > 1 ? count / (count - 1) : 1, inv_count: 1 / count,
  };
}

/** y = gamma (x - mean) / sqrt(var + eps) + beta per channel; in training also updates runningMean and runningVar in place. */
export function batchNorm2dForward(x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNormOptions
): { y: Tensor; saved: BatchNormSaved } {
  const ctx = contextOf('batchNorm2dForward', { x, gamma, beta, runningMean, runningVar });
  const op = 'batchNorm2dForward';
  const g = checkInput(ctx, op, 'x', x);
  checkChannelVectors(ctx, op, g.C, { gamma, beta, runningMean, runningVar });
  if (opts === null || typeof opts !== 'object' || typeof opts.training !== 'boolean') throw argumentError(op, 'opts.training', 'a boolean', opts?.training);
  const momentum = checkNumber(op, 'opts.momentum', opts.momentum ?? 0.1, (m) => m >= 0 && m <= 1, 'a number in [0, 1]');
  const eps = checkNumber(op, 'opts.eps', opts.eps ?? 1e-5, (e) => Number.isFinite(e) && e > 0, 'a finite number > 0');
  if (opts.training && g.N * g.HW < 2) throw shapeError(op, 'x', 'more than one value per channel in training (N * H * W > 1)', x.shape);
  if (opts.training && runningMean.buffer === runningVar.buffer) throw argumentError(op, 'runningVar', 'a tensor with its own buffer (not shared with runningMean)', 'a shared buffer');

  const u = uniforms(g, { eps, momentum });
  const mean = ctx.empty([g.C]);
  const invStd = ctx.empty([g.C]);
  if (opts.training) {
    ctx.dispatch({
      shader: SHADER, entry: 'bn_train_stats', constants: { WG: REDUCE_WG }, uniforms: u,
      bindings: { x, mean, inv_std: invStd, running_mean: runningMean, running_var: runningVar }, workgroups: [g.C],
    });
  } else {
    ctx.dispatch({
      shader: SHADER, entry: 'bn_eval_stats', constants: { WG }, uniforms: u,
      bindings: { mean, inv_std: invStd, running_mean: runningMean, running_var: runningVar }, workgroups: [Math.ceil(g.C / WG)],
    });
  }
  const y = ctx.empty(x.shape);
  ctx.dispatch({
    shader: SHADER, entry: 'bn_normalize', constants: { WG, PER_THREAD }, uniforms: u,
    bindings: { x, gamma, beta, mean, inv_std: invStd, y }, workgroups: elementGroups(x),
  });
  return { y, saved: { mean, invStd, training: opts.training } };
}

/** Gradients with respect to x, gamma and beta; `saved` comes from the forward pass on the same x. */
export function batchNorm2dBackward(dy: Tensor, x: Tensor, gamma: Tensor, saved: BatchNormSaved): { dx: Tensor; dGamma: Tensor; dBeta: Tensor } {
  const ctx = contextOf('batchNorm2dBackward', { dy, x, gamma });
  const op = 'batchNorm2dBackward';
  const g = checkInput(ctx, op, 'x', x);
  ctx.own(op, 'dy', dy);
  if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== x.shape[i])) throw shapeError(op, 'dy', `[${x.shape.join(', ')}] (the shape of x)`, dy.shape);
  if (saved === null || typeof saved !== 'object') throw argumentError(op, 'saved', '{ mean, invStd } from batchNorm2dForward', saved);
  checkChannelVectors(ctx, op, g.C, { gamma, 'saved.mean': saved.mean, 'saved.invStd': saved.invStd });
  const training = saved.training ?? true;

  const u = uniforms(g);
  const dGamma = ctx.empty([g.C]);
  const dBeta = ctx.empty([g.C]);
  ctx.dispatch({
    shader: SHADER, entry: 'bn_backward_reduce', constants: { WG: REDUCE_WG }, uniforms: u,
    bindings: { x, dy, mean: saved.mean, inv_std: saved.invStd, d_gamma: dGamma, d_beta: dBeta }, workgroups: [g.C],
  });
  const dx = ctx.empty(x.shape);
  ctx.dispatch({
    shader: SHADER, entry: 'bn_backward_dx', constants: { WG, PER_THREAD, TRAINING: training }, uniforms: u,
    bindings: { x, dy, gamma, mean: saved.mean, inv_std: saved.invStd, d_gamma: dGamma, d_beta: dBeta, dx }, workgroups: elementGroups(x),
  });
  return { dx, dGamma, dBeta };
}
