/**
 * Losses and their gradients (shaders/loss.wgsl): log-softmax, the Monte Carlo
 * log-mean-exp over weight samples, negative log-likelihood with u32 labels,
 * the count of correct predictions, mean squared error and the heteroscedastic
 * Gaussian negative log-likelihood. Scalar results are [1] tensors that stay on
 * the GPU; read them when you need them. loss.wgsl computes the per-row or
 * per-element terms, and the sum of src/ops/reduce.ts adds them (times 1/N for
 * a mean) in the same recorded batch.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, checkNumber, shapeError } from '../errors.js';
import { sum } from './reduce.js';
import { contextOf, optionsOf } from './check.js';

const SHADER = 'loss.wgsl';
/** Invocations per workgroup. */
const WG = 64;

const showShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

interface Uniforms { rows?: number; cols?: number; n?: number; samples?: number; coef?: number }

function run(ctx: Context, entry: string, bindings: Record<string, Tensor>, u: Uniforms, invocations: number): void {
  ctx.dispatch({ shader: SHADER, entry, constants: { WG }, uniforms: { ...u }, bindings, workgroups: grid(Math.ceil(invocations / WG)) });
}

/** scale * the sum of the `count` terms that `entry` writes: a [1] tensor (the terms are freed). */
function sumOfTerms(ctx: Context, entry: string, bindings: Record<string, Tensor>, u: Uniforms, count: number, scale: number): Tensor<'f32'> {
  const terms = ctx.empty([count]);
  run(ctx, entry, { ...bindings, out: terms }, u, count);
  const total = sum(terms, { scale });
  // Recorded work runs in order, so the pooled buffer may be reused by later dispatches.
  terms.dispose();
  return total;
}

function checkTensor(ctx: Context, op: string, argument: string, t: Tensor, dtype: 'f32' | 'u32' = 'f32'): void {
  ctx.own(op, argument, t);
  if (t.dtype !== dtype) throw argumentError(op, argument, `a tensor of dtype '${dtype}'`, `a tensor of dtype '${t.dtype}'`);
}

function checkMatrix(ctx: Context, op: string, argument: string, t: Tensor): [number, number] {
  checkTensor(ctx, op, argument, t);
  if (t.shape.length !== 2) throw shapeError(op, argument, '[N, C]', t.shape);
  return [t.shape[0], t.shape[1]];
}

function checkLabels(ctx: Context, op: string, labels: Tensor, rows: number): void {
  checkTensor(ctx, op, 'labels', labels, 'u32');
  if (labels.shape.length !== 1 || labels.shape[0] !== rows) throw shapeError(op, 'labels', `[${rows}] (one label per row of logp)`, labels.shape);
}

function checkSameShape(ctx: Context, op: string, reference: [string, Tensor], others: [string, Tensor][]): void {
  checkTensor(ctx, op, reference[0], reference[1]);
  for (const [name, t] of others) {
    checkTensor(ctx, op, name, t);
    if (!sameShape(t.shape, reference[1].shape)) throw shapeError(op, name, `${showShape(reference[1].shape)} (the shape of ${reference[0]})`, t.shape);
  }
}

const checkScale = (op: string, scale: number) => checkNumber(op, 'scale', scale);

// ----------------------------------------------------------------- softmax

/** log softmax over the last axis of [N, C] logits, stable for any magnitude. */
export function logSoftmax(logits: Tensor): Tensor<'f32'> {
  const ctx = contextOf('logSoftmax', { logits });
  const [N, C] = checkMatrix(ctx, 'logSoftmax', 'logits', logits);
  const logp = ctx.empty([N, C]);
  run(ctx, 'log_softmax', { logits, out: logp }, { rows: N, cols: C }, N);
  return logp;
}

/** dlogits = dLogp - softmax * sum_c dLogp, from the forward output logp. */
export function logSoftmaxBackward(dLogp: Tensor, logp: Tensor): Tensor<'f32'> {
  const ctx = contextOf('logSoftmaxBackward', { dLogp, logp });
  const op = 'logSoftmaxBackward';
  const [N, C] = checkMatrix(ctx, op, 'logp', logp);
  checkSameShape(ctx, op, ['logp', logp], [['dLogp', dLogp]]);
  const dLogits = ctx.empty([N, C]);
  run(ctx, 'log_softmax_backward', { logp, grad: dLogp, out: dLogits }, { rows: N, cols: C }, N);
  return dLogits;
}

// ------------------------------------------------------- Monte Carlo mean

/** [T, B, C] or [T*B, C] (samples stacked as batch) -> [B, C]. */
function sampleGeometry(op: string, logp: Tensor, samples: number): { B: number; C: number } {
  checkInt(op, 'samples', samples, 1);
  if (logp.shape.length === 3) {
    if (logp.shape[0] !== samples) throw shapeError(op, 'logp', `[${samples}, B, C] (samples first)`, logp.shape);
    return { B: logp.shape[1], C: logp.shape[2] };
  }
  if (logp.shape.length === 2 && logp.shape[0] % samples === 0) return { B: logp.shape[0] / samples, C: logp.shape[1] };
  throw shapeError(op, 'logp', `[${samples}, B, C] or [${samples} * B, C]`, logp.shape);
}

/** log((1/T) sum_t exp(logp_t)) per (b, c): the predictive log-probability of T weight samples. */
export function logMeanExp(logp: Tensor, options: { samples: number }): Tensor<'f32'> {
  const ctx = contextOf('logMeanExp', { logp });
  const { samples } = optionsOf('logMeanExp', options);
  checkTensor(ctx, 'logMeanExp', 'logp', logp);
  const { B, C } = sampleGeometry('logMeanExp', logp, samples);
  const out = ctx.empty([B, C]);
  run(ctx, 'log_mean_exp', { logp, out }, { rows: B, cols: C, n: B * C, samples }, B * C);
  return out;
}

/** d logp [shape of logp] = dOut * exp(logp_t - out) / T, where out = logMeanExp(logp). */
export function logMeanExpBackward(dOut: Tensor, logp: Tensor, out: Tensor, options: { samples: number }): Tensor<'f32'> {
  const ctx = contextOf('logMeanExpBackward', { dOut, logp, out });
  const { samples } = optionsOf('logMeanExpBackward', options);
  const op = 'logMeanExpBackward';
  checkTensor(ctx, op, 'logp', logp);
  const { B, C } = sampleGeometry(op, logp, samples);
  checkTensor(ctx, op, 'out', out);
  if (!sameShape(out.shape, [B, C])) throw shapeError(op, 'out', `[${B}, ${C}] (logMeanExp of logp)`, out.shape);
  checkSameShape(ctx, op, ['out', out], [['dOut', dOut]]);
  const dLogp = ctx.empty(logp.shape);
  run(ctx, 'log_mean_exp_backward', { logp, lme: out, grad: dOut, out: dLogp }, { rows: B, cols: C, n: logp.size, samples, coef: 1 / samples }, logp.size);
  return dLogp;
}

// -------------------------------------------------------------------- NLL

/** Shape [1]: mean over rows of -logp[n, labels[n]]. A label >= C makes it NaN. */
export function nllLoss(logp: Tensor, labels: Tensor): Tensor<'f32'> {
  const ctx = contextOf('nllLoss', { logp, labels });
  const [N, C] = checkMatrix(ctx, 'nllLoss', 'logp', logp);
  checkLabels(ctx, 'nllLoss', labels, N);
  return sumOfTerms(ctx, 'nll_terms', { logp, labels }, { rows: N, cols: C }, N, 1 / N);
}

/** Shape [N, C]: scale * d(mean NLL)/d logp, i.e. -scale/N at each row's label and 0 elsewhere. */
export function nllLossBackward(logp: Tensor, labels: Tensor, options: { scale: number }): Tensor<'f32'> {
  const ctx = contextOf('nllLossBackward', { logp, labels });
  const { scale } = optionsOf('nllLossBackward', options);
  const [N, C] = checkMatrix(ctx, 'nllLossBackward', 'logp', logp);
  checkLabels(ctx, 'nllLossBackward', labels, N);
  checkScale('nllLossBackward', scale);
  const dLogp = ctx.empty([N, C]);
  run(ctx, 'nll_loss_backward', { labels, out: dLogp }, { rows: N, cols: C, n: N * C, coef: -scale / N }, N * C);
  return dLogp;
}

/** [1] f32: how many rows have argmax(logp) == label (the first maximum wins ties). */
export function correctCount(logp: Tensor, labels: Tensor): Tensor<'f32'> {
  const ctx = contextOf('correctCount', { logp, labels });
  const [N, C] = checkMatrix(ctx, 'correctCount', 'logp', logp);
  checkLabels(ctx, 'correctCount', labels, N);
  // Exact: every partial sum is an integer below 2^24.
  return sumOfTerms(ctx, 'correct_terms', { logp, labels }, { rows: N, cols: C }, N, 1);
}

// ------------------------------------------------------------- regression

/** Shape [1]: mean over all elements of (pred - target)^2. */
export function mseLoss(pred: Tensor, target: Tensor): Tensor<'f32'> {
  const ctx = contextOf('mseLoss', { pred, target });
  checkSameShape(ctx, 'mseLoss', ['pred', pred], [['target', target]]);
  return sumOfTerms(ctx, 'mse_terms', { mu: pred, targets: target }, { n: pred.size }, pred.size, 1 / pred.size);
}

/** scale * d(mean squared error)/d pred = scale * 2 (pred - target) / n. */
export function mseLossBackward(pred: Tensor, target: Tensor, options: { scale: number }): Tensor<'f32'> {
  const ctx = contextOf('mseLossBackward', { pred, target });
  const { scale } = optionsOf('mseLossBackward', options);
  checkSameShape(ctx, 'mseLossBackward', ['pred', pred], [['target', target]]);
  checkScale('mseLossBackward', scale);
  const dPred = ctx.empty(pred.shape);
  run(ctx, 'mse_loss_backward', { mu: pred, targets: target, out: dPred }, { n: pred.size, coef: (2 * scale) / pred.size }, pred.size);
  return dPred;
}

/** Shape [1]: mean over all elements of 0.5 (log 2 pi + logVar + (target - mean)^2 / exp(logVar)). */
export function gaussianNll(mean: Tensor, logVar: Tensor, target: Tensor): Tensor<'f32'> {
  const ctx = contextOf('gaussianNll', { mean, logVar, target });
  checkSameShape(ctx, 'gaussianNll', ['mean', mean], [['logVar', logVar], ['target', target]]);
  return sumOfTerms(ctx, 'gaussian_nll_terms', { mu: mean, log_var: logVar, targets: target }, { n: mean.size }, mean.size, 1 / mean.size);
}

/** scale * the gradients of the mean Gaussian NLL with respect to mean and logVar. */
export function gaussianNllBackward(mean: Tensor, logVar: Tensor, target: Tensor, options: { scale: number }): { dMean: Tensor; dLogVar: Tensor } {
  const ctx = contextOf('gaussianNllBackward', { mean, logVar, target });
  const { scale } = optionsOf('gaussianNllBackward', options);
  checkSameShape(ctx, 'gaussianNllBackward', ['mean', mean], [['logVar', logVar], ['target', target]]);
  checkScale('gaussianNllBackward', scale);
  const dMean = ctx.empty(mean.shape);
  const dLogVar = ctx.empty(mean.shape);
  run(ctx, 'gaussian_nll_backward', { mu: mean, log_var: logVar, targets: target, out: dMean, d_log_var: dLogVar }, { n: mean.size, coef: scale / mean.size }, mean.size);
  return { dMean, dLogVar };
}
