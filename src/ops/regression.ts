/**
 * The Gaussian likelihood head of regression networks (shaders/regression.wgsl):
 * split a [N, 2] output into its mean and log-variance columns, merge their
 * gradients back, append a shared log variance to a mean column, and reduce T
 * Monte Carlo samples to the predictive mean and the epistemic / aleatoric
 * variances per point.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { checkInt, shapeError } from '../errors.js';
import { checkF32, contextOf, optionsOf } from './check.js';

const SHADER = 'regression.wgsl';
const WG = 64;


/** Checks a [N, 2] head output and returns N. */
function checkHead(ctx: Context, op: string, argument: string, pred: Tensor): number {
  checkF32(ctx, op, argument, pred);
  if (pred.shape.length !== 2 || pred.shape[1] !== 2) throw shapeError(op, argument, '[N, 2] (mean and log variance per row)', pred.shape);
  return pred.shape[0];
}

/** Checks a column [N] (or [N, 1]) and returns N. */
function checkColumn(ctx: Context, op: string, argument: string, t: Tensor, rows?: number): number {
  checkF32(ctx, op, argument, t);
  const ok = (t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1)) && (rows === undefined || t.shape[0] === rows);
  if (!ok) throw shapeError(op, argument, rows === undefined ? '[N] or [N, 1]' : `[${rows}] or [${rows}, 1]`, t.shape);
  return t.shape[0];
}

function run(ctx: Context, entry: string, rows: number, samples: number, bindings: Record<string, Tensor>): void {
  ctx.dispatch({ shader: SHADER, entry, constants: { WG }, uniforms: { rows, samples }, bindings, workgroups: grid(Math.ceil(rows / WG)) });
}

/** pred [N, 2] -> { mu [N], logVar [N] }: column 0 and column 1. */
export function splitHead(pred: Tensor): { mu: Tensor; logVar: Tensor } {
  const ctx = contextOf('splitHead', { pred });
  const n = checkHead(ctx, 'splitHead', 'pred', pred);
  const mu = ctx.empty([n]);
  const logVar = ctx.empty([n]);
  run(ctx, 'split_head', n, 0, { pred, mu, log_var: logVar });
  return { mu, logVar };
}

/** dMu [N], dLogVar [N] -> dPred [N, 2]: the gradient of splitHead's input. */
export function mergeHead(dMu: Tensor, dLogVar: Tensor): Tensor<'f32'> {
  const ctx = contextOf('mergeHead', { dMu, dLogVar });
  const op = 'mergeHead';
  const n = checkColumn(ctx, op, 'dMu', dMu);
  checkColumn(ctx, op, 'dLogVar', dLogVar, n);
  const out = ctx.empty([n, 2]);
  run(ctx, 'merge_head', n, 0, { d_mu: dMu, d_log_var: dLogVar, out });
  return out;
}

/** x [N, 1] (the predicted means), logVar [1] -> [N, 2] with logVar in every row's second column. */
export function appendLogVar(x: Tensor, logVar: Tensor): Tensor<'f32'> {
  const ctx = contextOf('appendLogVar', { x, logVar });
  const op = 'appendLogVar';
  const n = checkColumn(ctx, op, 'x', x);
  checkF32(ctx, op, 'logVar', logVar);
  if (logVar.size !== 1) throw shapeError(op, 'logVar', '[1] (one shared log variance)', logVar.shape);
  const out = ctx.empty([n, 2]);
  run(ctx, 'append_log_var', n, 0, { x, noise: logVar, out });
  return out;
}

/**
 * pred [T * B, 2] (row t * B + b is sample t of point b) -> [B, 4] with per point
 * (predictive mean, epistemic variance, aleatoric variance, predictive std); see the shader header.
 */
export function predictiveMoments(pred: Tensor, options: { samples: number }): Tensor<'f32'> {
  const ctx = contextOf('predictiveMoments', { pred });
  const { samples } = optionsOf('predictiveMoments', options);
  const op = 'predictiveMoments';
  const rows = checkHead(ctx, op, 'pred', pred);
  checkInt(op, 'samples', samples, 1);
  if (rows % samples !== 0) throw shapeError(op, 'pred', `[${samples} * B, 2] (rows a multiple of the ${samples} samples)`, pred.shape);
  const points = rows / samples;
  const out = ctx.empty([points, 4]);
  run(ctx, 'predictive_moments', points, samples, { pred, out });
  return out;
}
