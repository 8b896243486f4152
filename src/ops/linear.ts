/**
 * Matrix products and dense (linear) layers, forward and backward, plain and
 * Bayesian (shaders/matmul.wgsl).
 *
 * Weights use PyTorch's layout [out, in]. A linear layer may carry S
 * Monte Carlo weight samples [S, out, in] (Bayes by Backprop, Blundell et al.
 * 2015): the batch of N rows is split into S equal groups and group s uses
 * sample s, all in one dispatch. The local reparameterization trick (Kingma et
 * al. 2015) samples the pre-activations instead of the weights.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, shapeError } from '../errors.js';
import { dispatchGemm } from './gemm.js';
import { lrtDvar } from './lrt.js';
import { type RandomKey, keyOffset, keyUniforms } from './random.js';
import { sumAxes } from './reduce.js';
import { type GradientNeeds, checkNeed, contextOf, optionsOf } from './check.js';

const SHADER = 'matmul.wgsl';
const MAX_GROUPS = 65535;

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}


/** Geometry of one batched product C = op(A) @ op(B); strides in elements. */
interface Product {
  m: number;
  n: number;
  k: number;
  batch?: number;
  batchA?: number;
  batchB?: number;
  batchC?: number;
  batchBias?: number;
  transposeA?: boolean;
  transposeB?: boolean;
}

/** matmul.wgsl's MODE: which product and epilogue (see the shader's header). */
const MODE = { plain: 0, lrtForward: 1, lrtBackwardInput: 2, lrtBackwardWeight: 3 } as const;
const MODE_OP = ['matmul', 'lrt_linear_forward', 'lrt_linear_backward_input', 'lrt_linear_backward_weight'] as const;
const ALL = ['a', 'b', 'c', 'bias', 'a2', 'b2', 'c2', 'bias2', 'layer_x'] as const;

/**
 * One product on the GEMM core. `extra` holds the uniforms beyond the shape (bias flags, noise
 * key); bindings the mode does not touch are bound to placeholders.
 */
function product(ctx: Context, mode: number, p: Product, bindings: Record<string, Tensor>, extra: Record<string, number | readonly number[]> = {}): void {
  const ta = p.transposeA ?? false;
  const tb = p.transposeB ?? false;
  dispatchGemm(ctx, {
    op: `${MODE_OP[mode]}${ta ? '_ta' : ''}${tb ? '_tb' : ''}`,
    shader: SHADER,
    problem: { m: p.m, n: p.n, k: p.k, batches: p.batch ?? 1 },
    constants: { MODE: mode, TRANS_A: ta, TRANS_B: tb, DUAL: mode !== MODE.plain },
    uniforms: {
      m: p.m, n: p.n, k: p.k, batches: p.batch ?? 1,
      batch_a: p.batchA ?? 0, batch_b: p.batchB ?? 0, batch_c: p.batchC ?? 0, batch_bias: p.batchBias ?? 0, ...extra,
    },
    bindings,
    unbound: ALL.filter((name) => !(name in bindings)),
  });
}

/** db[z, col] = sum of the rows of group z of `src` ([batch * rows, cols]). */
function sumRows(ctx: Context, src: Tensor, rows: number, cols: number, batch: number, shape: readonly number[]): Tensor<'f32'> {
  return sumAxes(src, { shape, axes: { outer: batch, reduceA: rows, kept: cols } });
}

function checkMatrix(ctx: Context, op: string, argument: string, t: Tensor, rank: number | readonly number[] = 2): void {
  ctx.own(op, argument, t);
  const ranks = typeof rank === 'number' ? [rank] : rank;
  if (!ranks.includes(t.shape.length)) throw shapeError(op, argument, `of rank ${ranks.join(' or ')}`, t.shape);
  if (t.dtype !== 'f32') throw argumentError(op, argument, "a tensor of dtype 'f32'", t.dtype);
}

function checkBool(op: string, argument: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw argumentError(op, argument, 'a boolean', value);
  return value;
}


function checkBatchGroups(op: string, samples: number): void {
  if (samples > MAX_GROUPS) throw new BayesError('ADAPTER_LIMIT', `${op}: ${samples} weight samples exceed the ${MAX_GROUPS} workgroups of one dispatch dimension`);
}

/**
 * C = op(A) @ op(B) for 2-D f32 tensors; op transposes when asked.
 * A is [M, K] (or [K, M] with transposeA), B is [K, N] (or [N, K] with transposeB); C is [M, N].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor<'f32'> {
  const ctx = contextOf('matmul', { a, b });
  const op = 'matmul';
  checkMatrix(ctx, op, 'a', a);
  checkMatrix(ctx, op, 'b', b);
  if (opts === null || typeof opts !== 'object') throw argumentError(op, 'opts', '{ transposeA?: boolean, transposeB?: boolean }', opts);
  const transposeA = checkBool(op, 'opts.transposeA', opts.transposeA);
  const transposeB = checkBool(op, 'opts.transposeB', opts.transposeB);
  const [m, k] = transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (kb !== k) {
    const expected = transposeB ? `[N, ${k}] (transposeB; inner dimension of op(a) is ${k})` : `[${k}, N] (inner dimension of op(a) is ${k})`;
    throw shapeError(op, 'b', expected, b.shape);
  }
  const out = ctx.empty([m, n]);
  product(ctx, MODE.plain, { m, n, k, transposeA, transposeB }, { a, b, c: out });
  return out;
}

/** Shape facts of a linear layer call: N rows, `inF` inputs, `outF` outputs, S weight samples. */
interface LinearShape {
  rows: number;
  inF: number;
  outF: number;
  samples: number;
  /** Rows per weight sample, N / S. */
  group: number;
}

function linearShape(ctx: Context, op: string, x: Tensor, w: Tensor): LinearShape {
  checkMatrix(ctx, op, 'x', x);
  checkMatrix(ctx, op, 'w', w, [2, 3]);
  const [rows, inF] = x.shape;
  const samples = w.shape.length === 3 ? w.shape[0] : 1;
  const outF = w.shape[w.shape.length - 2];
  if (w.shape[w.shape.length - 1] !== inF) {
    throw shapeError(op, 'w', w.shape.length === 3 ? `[S, out, ${inF}] (x has ${inF} features)` : `[out, ${inF}] (x has ${inF} features)`, w.shape);
  }
  if (rows % samples !== 0) {
    throw argumentError(op, 'x', `a row count divisible by the ${samples} weight samples of w [${w.shape.join(', ')}]`, `${rows} rows`);
  }
  checkBatchGroups(op, samples);
  return { rows, inF, outF, samples, group: rows / samples };
}

/**
 * y = x @ w^T + bias. x: [N, in]; w: [out, in], or per-sample weights [S, out, in] where rows
 * [s N/S, (s+1) N/S) use sample s. bias: [out] (with [out, in] weights), [S, out] (with per-sample
 * weights), or null. Returns [N, out].
 */
export function linearForward(x: Tensor, w: Tensor, bias: Tensor | null): Tensor<'f32'> {
  const ctx = contextOf('linearForward', { x, w, bias });
  const op = 'linearForward';
  const s = linearShape(ctx, op, x, w);
  const perSample = w.shape.length === 3;
  if (bias !== null) {
    checkMatrix(ctx, op, 'bias', bias, perSample ? 2 : 1);
    const want = perSample ? [s.samples, s.outF] : [s.outF];
    if (bias.shape.some((d, i) => d !== want[i])) throw shapeError(op, 'bias', `[${want.join(', ')}] (matching w [${w.shape.join(', ')}])`, bias.shape);
  }
  const y = ctx.empty([s.rows, s.outF]);
  const p: Product = {
    m: s.group, n: s.outF, k: s.inF, transposeB: true,
    batch: s.samples, batchA: s.group * s.inF, batchB: s.outF * s.inF, batchC: s.group * s.outF, batchBias: s.outF,
  };
  if (bias) product(ctx, MODE.plain, p, { a: x, b: w, bias, c: y }, { has_bias: 1 });
  else product(ctx, MODE.plain, p, { a: x, b: w, c: y });
  return y;
}

/**
 * Gradients of linearForward for the loss gradient dy [N, out]:
 * dx = dy @ w (per sample group), dw = dy^T @ x (w's shape), db = sum over the rows of dy
 * ([out], or [S, out] with per-sample weights). `need` chooses whether dx and db are computed.
 */
export function linearBackward(dy: Tensor, x: Tensor, w: Tensor, options: GradientNeeds = {}): { dx: Tensor | null; dWeight: Tensor; dBias: Tensor | null } {
  const ctx = contextOf('linearBackward', { dy, x, w });
  const opts = optionsOf('linearBackward', options);
  const op = 'linearBackward';
  const s = linearShape(ctx, op, x, w);
  checkMatrix(ctx, op, 'dy', dy);
  if (dy.shape[0] !== s.rows || dy.shape[1] !== s.outF) throw shapeError(op, 'dy', `[${s.rows}, ${s.outF}] (rows of x, outputs of w)`, dy.shape);
  const wants = checkNeed(op, opts);
  let dx: Tensor | null = null;
  if (wants.input) {
    dx = ctx.empty(x.shape);
    product(ctx, MODE.plain, {
      m: s.group, n: s.inF, k: s.outF,
      batch: s.samples, batchA: s.group * s.outF, batchB: s.outF * s.inF, batchC: s.group * s.inF,
    }, { a: dy, b: w, c: dx });
  }
  const dw = ctx.empty(w.shape);
  product(ctx, MODE.plain, {
    m: s.outF, n: s.inF, k: s.group, transposeA: true,
    batch: s.samples, batchA: s.group * s.outF, batchB: s.group * s.inF, batchC: s.outF * s.inF,
  }, { a: dy, b: x, c: dw });
  const db = wants.bias ? sumRows(ctx, dy, s.group, s.outF, s.samples, w.shape.length === 3 ? [s.samples, s.outF] : [s.outF]) : null;
  return { dx, dWeight: dw, dBias: db };
}

/** Checks the shared arguments of the LRT ops; returns [N, in, out]. */
function lrtShape(ctx: Context, op: string, x: Tensor, wMu: Tensor, wSigma2: Tensor): [number, number, number] {
  checkMatrix(ctx, op, 'x', x);
  checkMatrix(ctx, op, 'wMu', wMu);
  checkMatrix(ctx, op, 'wSigma2', wSigma2);
  const [rows, inF] = x.shape;
  const outF = wMu.shape[0];
  if (wMu.shape[1] !== inF) throw shapeError(op, 'wMu', `[out, ${inF}] (x has ${inF} features)`, wMu.shape);
  if (wSigma2.shape[0] !== outF || wSigma2.shape[1] !== inF) throw shapeError(op, 'wSigma2', `[${outF}, ${inF}] (the shape of wMu)`, wSigma2.shape);
  return [rows, inF, outF];
}

/**
 * Local reparameterization (Kingma et al. 2015, eq. 6): the pre-activations of a layer with
 * factorized Gaussian weights N(wMu, wSigma2) are Gaussian with
 *   mean = x @ wMu^T + bMu,  var = x^2 @ wSigma2^T + bSigma2,
 * sampled as y = mean + std * eps, std = sqrt(var + 1e-16), eps = rand_normal(key, key.offset + n * out + o, stream).
 * Both moments come from one pass over x. wSigma2 = softplus(rho)^2 is computed by the caller.
 * x: [N, in]; wMu, wSigma2: [out, in]; bMu, bSigma2: [out] or null (a null one counts as 0).
 * Returns y and std, both [N, out]; keep std and the key for lrtLinearBackward.
 */
export function lrtLinearForward(x: Tensor, wMu: Tensor, wSigma2: Tensor, bMu: Tensor | null, bSigma2: Tensor | null, options: { key: RandomKey }): { y: Tensor; std: Tensor } {
  const ctx = contextOf('lrtLinearForward', { x, wMu, wSigma2, bMu, bSigma2 });
  const { key } = optionsOf('lrtLinearForward', options);
  const op = 'lrtLinearForward';
  const [rows, inF, outF] = lrtShape(ctx, op, x, wMu, wSigma2);
  for (const [name, t] of [['bMu', bMu], ['bSigma2', bSigma2]] as const) {
    if (t === null) continue;
    checkMatrix(ctx, op, name, t, 1);
    if (t.shape[0] !== outF) throw shapeError(op, name, `[${outF}] (outputs of wMu)`, t.shape);
  }
  const random = { ...keyUniforms(op, key), offset: keyOffset(op, key, rows * outF) };
  const y = ctx.empty([rows, outF]);
  const std = ctx.empty([rows, outF]);
  const bindings: Record<string, Tensor> = { a: x, b: wMu, b2: wSigma2, c: y, c2: std };
  if (bMu) bindings.bias = bMu;
  if (bSigma2) bindings.bias2 = bSigma2;
  product(ctx, MODE.lrtForward, { m: rows, n: outF, k: inF, transposeB: true }, bindings, { ...random, has_bias: bMu ? 1 : 0, has_bias2: bSigma2 ? 1 : 0 });
  return { y, std };
}

/**
 * Gradients of lrtLinearForward for the loss gradient dy [N, out], given the forward's std and key
 * (eps is regenerated, never stored). With dMean = dy and dVar = dy * eps / (2 std):
 *   dx = dy @ wMu + 2 x * (dVar @ wSigma2),  dwMu = dy^T @ x,  dwSigma2 = dVar^T @ x^2,
 *   dbMu = sum_n dy,  dbSigma2 = sum_n dVar.
 * The chain rule through wSigma2 = softplus(rho)^2 is the caller's.
 */
export function lrtLinearBackward(dy: Tensor, x: Tensor, std: Tensor, wMu: Tensor, wSigma2: Tensor, options: { key: RandomKey; needInput?: boolean; needBias?: boolean }
): { dx: Tensor | null; dWeightMu: Tensor; dWeightSigma2: Tensor; dBiasMu: Tensor | null; dBiasSigma2: Tensor | null } {
  const ctx = contextOf('lrtLinearBackward', { dy, x, std, wMu, wSigma2 });
  const opts = optionsOf('lrtLinearBackward', options);
  const key = opts.key;
  const op = 'lrtLinearBackward';
  const [rows, inF, outF] = lrtShape(ctx, op, x, wMu, wSigma2);
  for (const [name, t] of [['dy', dy], ['std', std]] as const) {
    checkMatrix(ctx, op, name, t);
    if (t.shape[0] !== rows || t.shape[1] !== outF) throw shapeError(op, name, `[${rows}, ${outF}] (rows of x, outputs of wMu)`, t.shape);
  }
  const wants = checkNeed(op, opts);

  const dVar = lrtDvar(ctx, op, dy, std, key);
  let dx: Tensor | null = null;
  if (wants.input) {
    dx = ctx.empty([rows, inF]);
    product(ctx, MODE.lrtBackwardInput, { m: rows, n: inF, k: outF }, { a: dy, a2: dVar, b: wMu, b2: wSigma2, layer_x: x, c: dx });
  }
  const dwMu = ctx.empty([outF, inF]);
  const dwSigma2 = ctx.empty([outF, inF]);
  product(ctx, MODE.lrtBackwardWeight, { m: outF, n: inF, k: rows, transposeA: true }, { a: dy, a2: dVar, b: x, c: dwMu, c2: dwSigma2 });
  let dbMu: Tensor | null = null;
  let dbSigma2: Tensor | null = null;
  if (wants.bias) {
    dbMu = sumRows(ctx, dy, rows, outF, 1, [outF]);
    dbSigma2 = sumRows(ctx, dVar, rows, outF, 1, [outF]);
  }
  dVar.dispose();
  return { dx, dWeightMu: dwMu, dWeightSigma2: dwSigma2, dBiasMu: dbMu, dBiasSigma2: dbSigma2 };
}
