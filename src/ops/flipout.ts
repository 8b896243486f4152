/**
 * Flipout (Wen et al. 2018, "Flipout: Efficient pseudo-independent weight perturbations on
 * mini-batches", eq. 3) for conv2d and linear layers (shaders/flipout.wgsl for the signs and the
 * perturbation, the GEMM core for the products):
 *
 *   y_n = op(x_n, wMu) + bMu + s_out,n * (op(x_n * s_in,n, wDelta) + bDelta)
 *
 * wDelta = softplus(rho) * eps is one weight perturbation per Monte Carlo sample, shared by the
 * examples of that sample (per-sample [S, ...] as Bayes by Backprop's weights: rows
 * [s N/S, (s+1) N/S) use sample s). s_in and s_out are Rademacher signs per row and channel
 * (input channel / feature, output channel / feature) from the counter-based generator: sign(r, c)
 * = +1 where rand_uniform(key, key.offset + r * C + c, key.stream) < 1/2, else -1, so the backward
 * pass regenerates them from the same keys and nothing per example is stored.
 *
 * The bias is the weight of a constant input 1: its perturbation bDelta = softplus(bias_rho) * eps
 * is drawn per Monte Carlo sample like the weights' and flipped by s_out with them (the sign of the
 * constant input is fixed at +1; s_out alone makes s_out * bDelta ~ N(0, sigma^2) independently of
 * the other examples' signs, which is what eq. 3 needs), as IntelLabs bayesian-torch's
 * Conv2dFlipout / LinearFlipout add delta_bias inside the flipped product. (bayesian-torch draws
 * s_in per input element; here, as TensorFlow Probability's Conv2DFlipout does, one sign per
 * example and input channel, broadcast over the H x W positions that share the channel's weights.)
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, shapeError } from '../errors.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward, conv2dOutputShape } from './conv2d.js';
import { linearBackward, linearForward } from './linear.js';
import { type RandomKey, keyOffset, keyUniforms } from './random.js';
import { type GradientNeeds, checkF32, checkNeed, checkSameShape, contextOf, optionsOf, showShape } from './check.js';

const WG = 64;
const SHADER = 'flipout.wgsl';
/** Draw indices are u32. */
const MAX_DRAWS = 2 ** 32 - 1;

/** The two sign keys of a Flipout product: one sign per row and input channel, one per row and output channel. */
export interface FlipoutKeys {
  signIn: RandomKey;
  signOut: RandomKey;
}

/** Rows, channels and elements per (row, channel) pair of a tensor [N, C, ...]. */
function signGeometry(op: string, argument: string, t: Tensor): { rows: number; channels: number; inner: number } {
  if (t.shape.length < 2) throw shapeError(op, argument, '[N, C, ...] (rows, then channels or features)', t.shape);
  return { rows: t.shape[0], channels: t.shape[1], inner: t.size / (t.shape[0] * t.shape[1]) };
}

/** The uniforms of a sign entry, the key checked for rows * channels draws. */
function signUniforms(op: string, argument: string, t: Tensor, key: RandomKey) {
  const g = signGeometry(op, argument, t);
  const k = keyUniforms(op, key);
  return { count: t.size, inner: g.inner, n: 0, ...k, offset: keyOffset(op, key, g.rows * g.channels) };
}

function dispatchSigns(ctx: Context, entry: 'flip_signs' | 'add_flipped', uniforms: ReturnType<typeof signUniforms>, bindings: Record<string, Tensor>): void {
  ctx.dispatch({ shader: SHADER, entry, constants: { WG }, uniforms, bindings, workgroups: grid(Math.ceil(uniforms.count / 4 / WG)) });
}

/**
 * x * s for x [N, C, ...]: every element of row n and channel c multiplied by the Rademacher sign
 * s[n, c] = +1 where rand_uniform(key, key.offset + n * C + c, key.stream) < 1/2, else -1.
 */
export function flipoutSigns(x: Tensor, options: { key: RandomKey }): Tensor<'f32'> {
  const op = 'flipoutSigns';
  const ctx = contextOf(op, { x });
  const { key } = optionsOf(op, options);
  checkF32(ctx, op, 'x', x);
  const uniforms = signUniforms(op, 'x', x, key);
  const out = ctx.empty(x.shape);
  dispatchSigns(ctx, 'flip_signs', uniforms, { src: x, out });
  return out;
}

/** base + s * x for base and x [N, C, ...] of one shape, with the signs of flipoutSigns under `key`. */
export function flipoutAdd(base: Tensor, x: Tensor, options: { key: RandomKey }): Tensor<'f32'> {
  const op = 'flipoutAdd';
  const ctx = contextOf(op, { base, x });
  const { key } = optionsOf(op, options);
  checkF32(ctx, op, 'base', base);
  checkF32(ctx, op, 'x', x);
  checkSameShape(op, 'x', x, base, 'base');
  const uniforms = signUniforms(op, 'x', x, key);
  const out = ctx.empty(x.shape);
  dispatchSigns(ctx, 'add_flipped', uniforms, { base, src: x, out });
  return out;
}

/**
 * `samples` weight perturbations softplus(rho) * eps, shape [samples, ...rho.shape]: sample s of
 * element i uses eps = rand_normal(key, key.offset + s * n + i, key.stream), the index contract of
 * sampleWeights, so the result is sampleWeights(mu, rho, same key) - mu. The gradient of rho is
 * sampleWeightsBackward's dRho for the gradient of the perturbation (its dMu is not used: the
 * perturbation does not depend on mu).
 */
export function flipoutPerturbation(rho: Tensor, options: { key: RandomKey; samples: number }): Tensor<'f32'> {
  const op = 'flipoutPerturbation';
  const ctx = contextOf(op, { rho });
  const { key, samples } = optionsOf(op, options);
  checkF32(ctx, op, 'rho', rho);
  const k = keyUniforms(op, key);
  checkInt(op, 'samples', samples, 1);
  if (samples * rho.size > MAX_DRAWS) throw argumentError(op, 'samples', `at most ${Math.floor(MAX_DRAWS / rho.size)} for ${rho.size} weights (draw indices are u32)`, samples);
  const count = samples * rho.size;
  const offset = keyOffset(op, key, count);
  const delta = ctx.empty([samples, ...rho.shape]);
  ctx.dispatch({
    shader: SHADER, entry: 'perturbation', constants: { WG },
    uniforms: { count, inner: 1, n: rho.size, ...k, offset }, bindings: { rho, delta }, workgroups: grid(Math.ceil(count / 4 / WG)),
  });
  return delta;
}

/** wDelta is [...wMu.shape] or per-sample [S, ...wMu.shape]; bDelta matches it ([Cout] or [S, Cout]). */
function checkPerturbation(op: string, wMu: Tensor, wDelta: Tensor, bMu: Tensor | null, bDelta: Tensor | null, outputs: number): void {
  const perSample = wDelta.shape.length === wMu.shape.length + 1;
  const tail = perSample ? wDelta.shape.slice(1) : wDelta.shape;
  if (tail.length !== wMu.shape.length || tail.some((d, i) => d !== wMu.shape[i])) {
    throw shapeError(op, 'wDelta', `${showShape(wMu.shape)} or [S, ${wMu.shape.join(', ')}] (the shape of wMu, per Monte Carlo sample)`, wDelta.shape);
  }
  if (bMu && (bMu.shape.length !== 1 || bMu.shape[0] !== outputs)) throw shapeError(op, 'bMu', `[${outputs}]`, bMu.shape);
  if (bDelta) {
    const want = perSample ? [wDelta.shape[0], outputs] : [outputs];
    if (bDelta.shape.length !== want.length || bDelta.shape.some((d, i) => d !== want[i])) throw shapeError(op, 'bDelta', `${showShape(want)} (matching wDelta ${showShape(wDelta.shape)})`, bDelta.shape);
  }
}

/** Checks both sign keys for a product with `rows` rows, `cin` inputs and `cout` outputs per row. */
function checkKeys(op: string, keys: FlipoutKeys, rows: number, cin: number, cout: number): void {
  keyUniforms(op, keys.signIn);
  keyOffset(op, keys.signIn, rows * cin);
  keyUniforms(op, keys.signOut);
  keyOffset(op, keys.signOut, rows * cout);
}

function ownAll(ctx: Context, op: string, tensors: Record<string, Tensor | null>): void {
  for (const [name, t] of Object.entries(tensors)) if (t) checkF32(ctx, op, name, t);
}

// ---------------------------------------------------------------------------------------- conv2d

/** Runs a shape check of another op, its errors renamed to this op. */
function named<T>(op: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof BayesError) throw new BayesError(e.code, e.message.replace(/^conv2dOutputShape:/, `${op}:`));
    throw e;
  }
}

/** Validates a Flipout conv2d call (before any GPU work); returns the output shape. */
function checkConv(op: string, ctx: Context, x: Tensor, wMu: Tensor, wDelta: Tensor, bMu: Tensor | null, bDelta: Tensor | null, o: Conv2dOptions & FlipoutKeys): number[] {
  ownAll(ctx, op, { x, wMu, wDelta, bMu, bDelta });
  if (wMu.shape.length !== 4) throw shapeError(op, 'wMu', '[Cout, Cin, KH, KW]', wMu.shape);
  const shape = named(op, () => conv2dOutputShape(x.shape, wMu.shape, o));
  checkPerturbation(op, wMu, wDelta, bMu, bDelta, wMu.shape[0]);
  named(op, () => conv2dOutputShape(x.shape, wDelta.shape, o)); // the samples of wDelta divide the batch
  checkKeys(op, o, x.shape[0], x.shape[1], wMu.shape[0]);
  return shape;
}

/**
 * Flipout conv2d forward: y = conv2d(x, wMu) + bMu + s_out * (conv2d(x * s_in, wDelta) + bDelta).
 * x [N, Cin, H, W]; wMu [Cout, Cin, KH, KW]; wDelta [Cout, Cin, KH, KW] or [S, Cout, Cin, KH, KW]
 * (S dividing N); bMu [Cout] or null; bDelta [Cout] / [S, Cout] or null. Returns y [N, Cout, OH, OW].
 */
export function flipoutConv2dForward(x: Tensor, wMu: Tensor, wDelta: Tensor, bMu: Tensor | null, bDelta: Tensor | null, options: Conv2dOptions & FlipoutKeys): Tensor<'f32'> {
  const op = 'flipoutConv2dForward';
  bMu = bMu ?? null;
  bDelta = bDelta ?? null;
  const ctx = contextOf(op, { x, wMu, wDelta, bMu, bDelta });
  const o = optionsOf(op, options);
  checkConv(op, ctx, x, wMu, wDelta, bMu, bDelta, o);
  const conv: Conv2dOptions = { stride: o.stride, padding: o.padding, dilation: o.dilation };
  const mean = conv2dForward(x, wMu, bMu, conv);
  const xs = flipoutSigns(x, { key: o.signIn });
  const perturbed = conv2dForward(xs, wDelta, bDelta, conv);
  const y = flipoutAdd(mean, perturbed, { key: o.signOut });
  // Recorded work runs in order, so the pooled buffers may be reused by later dispatches.
  for (const t of [mean, xs, perturbed]) t.dispose();
  return y;
}

/**
 * Gradients of L = <y, dy> for y = flipoutConv2dForward(x, wMu, wDelta, ..., same keys), the signs
 * regenerated: dWeightMu = corr(x, dy), dBiasMu = sum dy; with dyS = dy * s_out and xS = x * s_in,
 * dWeightDelta = corr(xS, dyS) (wDelta's shape), dBiasDelta = sum dyS (bDelta's shape);
 * dx = convT(dy, wMu) + s_in * convT(dyS, wDelta). The chain rule through wDelta = softplus(rho) * eps
 * is the caller's (sampleWeightsBackward's dRho).
 */
export function flipoutConv2dBackward(dy: Tensor, x: Tensor, wMu: Tensor, wDelta: Tensor, options: Conv2dOptions & FlipoutKeys & GradientNeeds): { dx: Tensor | null; dWeightMu: Tensor; dWeightDelta: Tensor; dBiasMu: Tensor | null; dBiasDelta: Tensor | null } {
  const op = 'flipoutConv2dBackward';
  const ctx = contextOf(op, { dy, x, wMu, wDelta });
  const o = optionsOf(op, options);
  const shape = checkConv(op, ctx, x, wMu, wDelta, null, null, o);
  checkF32(ctx, op, 'dy', dy);
  if (dy.shape.length !== shape.length || dy.shape.some((d, i) => d !== shape[i])) throw shapeError(op, 'dy', `${showShape(shape)} (the output shape)`, dy.shape);
  const wants = checkNeed(op, o);
  const conv: Conv2dOptions = { stride: o.stride, padding: o.padding, dilation: o.dilation };
  const mean = conv2dBackward(dy, x, wMu, { ...conv, needInput: wants.input, needBias: wants.bias });
  const dyS = flipoutSigns(dy, { key: o.signOut });
  const xS = flipoutSigns(x, { key: o.signIn });
  const perturbed = conv2dBackward(dyS, xS, wDelta, { ...conv, needInput: wants.input, needBias: wants.bias });
  const dx = wants.input ? flipoutAdd(mean.dx!, perturbed.dx!, { key: o.signIn }) : null;
  for (const t of [dyS, xS, mean.dx, perturbed.dx]) t?.dispose();
  return { dx, dWeightMu: mean.dWeight, dWeightDelta: perturbed.dWeight, dBiasMu: mean.dBias, dBiasDelta: perturbed.dBias };
}

// ---------------------------------------------------------------------------------------- linear

function checkLinear(op: string, ctx: Context, x: Tensor, wMu: Tensor, wDelta: Tensor, bMu: Tensor | null, bDelta: Tensor | null, keys: FlipoutKeys): [number, number] {
  ownAll(ctx, op, { x, wMu, wDelta, bMu, bDelta });
  if (x.shape.length !== 2) throw shapeError(op, 'x', '[N, in]', x.shape);
  if (wMu.shape.length !== 2 || wMu.shape[1] !== x.shape[1]) throw shapeError(op, 'wMu', `[out, ${x.shape[1]}] (x has ${x.shape[1]} features)`, wMu.shape);
  checkPerturbation(op, wMu, wDelta, bMu, bDelta, wMu.shape[0]);
  const samples = wDelta.shape.length === 3 ? wDelta.shape[0] : 1;
  if (x.shape[0] % samples !== 0) throw argumentError(op, 'x', `a row count divisible by the ${samples} samples of wDelta ${showShape(wDelta.shape)}`, `${x.shape[0]} rows`);
  checkKeys(op, keys, x.shape[0], x.shape[1], wMu.shape[0]);
  return [x.shape[0], wMu.shape[0]];
}

/**
 * Flipout linear forward: y = x wMu^T + bMu + s_out * ((x * s_in) wDelta^T + bDelta).
 * x [N, in]; wMu [out, in]; wDelta [out, in] or [S, out, in] (S dividing N); bMu [out] or null;
 * bDelta [out] / [S, out] or null. Returns y [N, out].
 */
export function flipoutLinearForward(x: Tensor, wMu: Tensor, wDelta: Tensor, bMu: Tensor | null, bDelta: Tensor | null, options: FlipoutKeys): Tensor<'f32'> {
  const op = 'flipoutLinearForward';
  bMu = bMu ?? null;
  bDelta = bDelta ?? null;
  const ctx = contextOf(op, { x, wMu, wDelta, bMu, bDelta });
  const o = optionsOf(op, options);
  checkLinear(op, ctx, x, wMu, wDelta, bMu, bDelta, o);
  const mean = linearForward(x, wMu, bMu);
  const xs = flipoutSigns(x, { key: o.signIn });
  const perturbed = linearForward(xs, wDelta, bDelta);
  const y = flipoutAdd(mean, perturbed, { key: o.signOut });
  for (const t of [mean, xs, perturbed]) t.dispose();
  return y;
}

/**
 * Gradients of L = <y, dy> for y = flipoutLinearForward(x, wMu, wDelta, ..., same keys):
 * dWeightMu = dy^T x, dBiasMu = sum_n dy; with dyS = dy * s_out and xS = x * s_in,
 * dWeightDelta = dyS^T xS per sample group (wDelta's shape), dBiasDelta = sum dyS (bDelta's shape);
 * dx = dy wMu + s_in * (dyS wDelta).
 */
export function flipoutLinearBackward(dy: Tensor, x: Tensor, wMu: Tensor, wDelta: Tensor, options: FlipoutKeys & GradientNeeds): { dx: Tensor | null; dWeightMu: Tensor; dWeightDelta: Tensor; dBiasMu: Tensor | null; dBiasDelta: Tensor | null } {
  const op = 'flipoutLinearBackward';
  const ctx = contextOf(op, { dy, x, wMu, wDelta });
  const o = optionsOf(op, options);
  const [rows, outF] = checkLinear(op, ctx, x, wMu, wDelta, null, null, o);
  checkF32(ctx, op, 'dy', dy);
  if (dy.shape.length !== 2 || dy.shape[0] !== rows || dy.shape[1] !== outF) throw shapeError(op, 'dy', `[${rows}, ${outF}] (rows of x, outputs of wMu)`, dy.shape);
  const wants = checkNeed(op, o);
  const mean = linearBackward(dy, x, wMu, { needInput: wants.input, needBias: wants.bias });
  const dyS = flipoutSigns(dy, { key: o.signOut });
  const xS = flipoutSigns(x, { key: o.signIn });
  const perturbed = linearBackward(dyS, xS, wDelta, { needInput: wants.input, needBias: wants.bias });
  const dx = wants.input ? flipoutAdd(mean.dx!, perturbed.dx!, { key: o.signIn }) : null;
  for (const t of [dyS, xS, mean.dx, perturbed.dx]) t?.dispose();
  return { dx, dWeightMu: mean.dWeight, dWeightDelta: perturbed.dWeight, dBiasMu: mean.dBias, dBiasDelta: perturbed.dBias };
}
