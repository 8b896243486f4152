/**
 * conv2d forward and backward, plain and with the local reparameterization
 * trick (shaders/conv2d_forward.wgsl, conv2d_backward_input.wgsl, conv2d_backward_weight.wgsl:
 * instances of the GEMM core, gemm.wgsl). NCHW cross-correlation as PyTorch's conv2d.
 *
 * Weights are [Cout, Cin, KH, KW], or per-sample [S, Cout, Cin, KH, KW] with
 * N % S == 0: images n in [s*N/S, (s+1)*N/S) use sample s, which batches S
 * Monte Carlo weight samples of Bayes by Backprop in one dispatch. Biases are
 * [Cout] or [S, Cout] to match.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import { type Tensor, sizeOf } from '../gpu/tensor.js';
import { BayesError, argumentError, pair, shapeError } from '../errors.js';
import { dispatchGemm } from './gemm.js';
import { lrtDvar } from './lrt.js';
import { type RandomKey, keyOffset, keyUniforms } from './random.js';
import { sumAxes } from './reduce.js';
import { type GradientNeeds, checkNeed, contextOf, optionsOf } from './check.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
}

/**
 * The backward-weight pass splits each sample's images into chunks until about this many
 * invocations' worth of 8 x 8 tiles run (LeNet's [16, 6, 5, 5] weight is only 38 such tiles), then
 * adds the per-chunk partial sums. The partial sums then hold at most about 64 values per
 * invocation (2 MiB).
 */
const WEIGHT_GRAD_INVOCATIONS = 8192;

interface Geometry {
  batch: number;
  cin: number;
  height: number;
  width: number;
  cout: number;
  kernelH: number;
  kernelW: number;
  /** Weight samples S (1 for [Cout, Cin, KH, KW] weights). */
  samples: number;
  outH: number;
  outW: number;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function checkShapeArray(op: string, argument: string, shape: unknown, expected: string, ranks: readonly number[]): readonly number[] {
  if (!Array.isArray(shape) || !ranks.includes(shape.length) || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw argumentError(op, argument, `a shape ${expected} of positive integers`, shape);
  }
  return shape;
}

/** Validates shapes and options and derives every size the kernels need. */
function geometry(op: string, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions | undefined): Geometry {
  checkShapeArray(op, 'x', xShape, '[N, Cin, H, W]', [4]);
  checkShapeArray(op, 'w', wShape, '[Cout, Cin, KH, KW] or [S, Cout, Cin, KH, KW]', [4, 5]);
  if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw argumentError(op, 'opts', 'an object { stride, padding, dilation } or undefined', opts);
  const [batch, cin, height, width] = xShape;
  const perSample = wShape.length === 5;
  const [samples, cout, wCin, kernelH, kernelW] = perSample ? wShape : [1, ...wShape];
  if (wCin !== cin) {
    const expected = perSample ? `[S, Cout, ${cin}, KH, KW]` : `[Cout, ${cin}, KH, KW]`;
    throw shapeError(op, 'w', `${expected} (Cin = x.shape[1] = ${cin})`, wShape);
  }
  if (batch % samples !== 0) {
    throw shapeError(op, 'w', `per-sample weights [S, Cout, Cin, KH, KW] with S dividing the batch N = ${batch}`, wShape);
  }
  const stride = pair(op, 'stride', opts?.stride, 1, 1);
  const padding = pair(op, 'padding', opts?.padding, 0, 0);
  const dilation = pair(op, 'dilation', opts?.dilation, 1, 1);
  const outH = Math.floor((height + 2 * padding[0] - dilation[0] * (kernelH - 1) - 1) / stride[0]) + 1;
  const outW = Math.floor((width + 2 * padding[1] - dilation[1] * (kernelW - 1) - 1) / stride[1]) + 1;
  if (outH < 1 || outW < 1) {
    const spanH = dilation[0] * (kernelH - 1) + 1;
    const spanW = dilation[1] * (kernelW - 1) + 1;
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'x' expected a padded input at least as large as the dilated kernel ${spanH}x${spanW}, got ${height}x${width} with padding ${show(padding)} (output would be ${outH}x${outW})`);
  }
  return { batch, cin, height, width, cout, kernelH, kernelW, samples, outH, outW, stride, padding, dilation };
}

/** [N, Cout, OH, OW] for input [N, Cin, H, W] and weights [(S,) Cout, Cin, KH, KW]; throws on invalid shapes or options. */
export function conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], opts?: Conv2dOptions): number[] {
  const g = geometry('conv2dOutputShape', xShape, wShape, opts);
  return outputShape(g);
}

const outputShape = (g: Geometry) => [g.batch, g.cout, g.outH, g.outW];
const kernelSize = (g: Geometry) => g.cin * g.kernelH * g.kernelW;

function checkF32(op: string, argument: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw argumentError(op, argument, "an 'f32' tensor", `a '${t.dtype}' tensor`);
}

/** Checks that every tensor is a live f32 tensor of ctx (before any shape logic, so messages name the real problem). */
function own(ctx: Context, op: string, tensors: Record<string, Tensor | null>): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (t === null) continue;
    ctx.own(op, name, t);
    checkF32(op, name, t);
  }
}

function checkBias(op: string, argument: string, b: Tensor, g: Geometry, perSample: boolean): void {
  const want = perSample ? [g.samples, g.cout] : [g.cout];
  if (b.shape.length !== want.length || b.shape.some((d, i) => d !== want[i])) throw shapeError(op, argument, show(want), b.shape);
}

function checkSameShape(op: string, argument: string, t: Tensor, want: readonly number[], what: string): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) throw shapeError(op, argument, `${show(want)} (${what})`, t.shape);
}


/** The uniforms every conv2d GEMM file reads: the shapes and the convolution's options. */
function shapeUniforms(g: Geometry) {
  return {
    batch: g.batch, cin: g.cin, height: g.height, width: g.width, cout: g.cout,
    kernel_h: g.kernelH, kernel_w: g.kernelW, out_h: g.outH, out_w: g.outW,
    images_per_sample: g.batch / g.samples, stride: g.stride, pad: g.padding, dilation: g.dilation,
  };
}

// ------------------------------------------------------------------------------------ forward

const FORWARD = 'conv2d_forward.wgsl';

/**
 * The weights in tap-major order [S, KH*KW*Cin, 4*ceil(Cout/4)] (padding channels 0), which the
 * forward reads as one vec4 per 4 channels and reduction index instead of 4 strided loads.
 */
function tapMajor(ctx: Context, g: Geometry, w: Tensor): Tensor<'f32'> {
  const count = g.samples * kernelSize(g) * 4 * Math.ceil(g.cout / 4);
  const taps = ctx.empty([count]);
  ctx.dispatch({
    shader: FORWARD, entry: 'tap_major_weights',
    uniforms: { ...shapeUniforms(g), count }, bindings: { w, tap_major: taps }, workgroups: grid(Math.ceil(count / 64)),
  });
  return taps;
}

function forwardGemm(ctx: Context, g: Geometry, lrt: boolean, uniforms: Record<string, number | readonly number[]>, bindings: Record<string, Tensor>): void {
  const all = ['input', 'w_taps', 'w_sigma2_taps', 'bias', 'bias_sigma2', 'y', 'stddev'];
  dispatchGemm(ctx, {
    op: lrt ? 'conv2d_forward_lrt' : 'conv2d_forward', shader: FORWARD,
    problem: { m: g.cout, n: g.outH * g.outW, k: kernelSize(g), batches: g.batch },
    constants: { DUAL: lrt },
    uniforms: { ...shapeUniforms(g), ...uniforms }, bindings,
    unbound: all.filter((name) => !(name in bindings)),
  });
}

/** y = conv2d(x, w) + bias: x [N, Cin, H, W] -> y [N, Cout, OH, OW]. */
export function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, opts?: Conv2dOptions): Tensor<'f32'> {
  const ctx = contextOf('conv2dForward', { x, w, bias });
  const op = 'conv2dForward';
  bias = bias ?? null;
  own(ctx, op, { x, w, bias });
  const g = geometry(op, x.shape, w.shape, opts);
  if (bias) checkBias(op, 'bias', bias, g, w.shape.length === 5);
  const y = ctx.empty(outputShape(g));
  const wTaps = tapMajor(ctx, g, w);
  const bindings: Record<string, Tensor> = { input: x, w_taps: wTaps, y };
  if (bias) bindings.bias = bias;
  forwardGemm(ctx, g, false, { has_bias: bias ? 1 : 0 }, bindings);
  // Recorded work runs in order, so the pooled buffer may be reused by later dispatches.
  wTaps.dispose();
  return y;
}

/**
 * Local reparameterization (Kingma et al. 2015, eq. 6): the pre-activations of
 * a layer with Gaussian weights N(mu, sigma^2) are Gaussian with
 * mean = conv(x, wMu) + bMu and var = conv(x^2, wSigma2) + bSigma2, so one
 * draw per output replaces one draw per weight:
 * y = mean + sqrt(var + 1e-16) * eps, eps = rand_normal(key, key.offset + index of y, key.stream).
 * Returns y and std = sqrt(var + 1e-16), which lrtConv2dBackward needs.
 */
export function lrtConv2dForward(x: Tensor, wMu: Tensor, wSigma2: Tensor, bMu: Tensor | null, bSigma2: Tensor | null, options: Conv2dOptions & { key: RandomKey }): { y: Tensor; std: Tensor } {
  const ctx = contextOf('lrtConv2dForward', { x, wMu, wSigma2, bMu, bSigma2 });
  const opts = optionsOf('lrtConv2dForward', options);
  const key = opts.key;
  const op = 'lrtConv2dForward';
  bMu = bMu ?? null;
  bSigma2 = bSigma2 ?? null;
  own(ctx, op, { x, wMu, wSigma2, bMu, bSigma2 });
  const g = geometry(op, x.shape, wMu.shape, opts);
  checkSameShape(op, 'wSigma2', wSigma2, wMu.shape, 'the shape of wMu');
  const perSample = wMu.shape.length === 5;
  if (bMu) checkBias(op, 'bMu', bMu, g, perSample);
  if (bSigma2) checkBias(op, 'bSigma2', bSigma2, g, perSample);
  const { key: seedStep, stream } = keyUniforms(op, key);
  const offset = keyOffset(op, key, sizeOf(outputShape(g)));
  const y = ctx.empty(outputShape(g));
  const std = ctx.empty(outputShape(g));
  const muTaps = tapMajor(ctx, g, wMu);
  const sigma2Taps = tapMajor(ctx, g, wSigma2);
  const bindings: Record<string, Tensor> = { input: x, w_taps: muTaps, w_sigma2_taps: sigma2Taps, y, stddev: std };
  if (bMu) bindings.bias = bMu;
  if (bSigma2) bindings.bias_sigma2 = bSigma2;
  forwardGemm(ctx, g, true, { has_bias: bMu ? 1 : 0, has_bias_sigma2: bSigma2 ? 1 : 0, key: seedStep, stream, offset }, bindings);
  muTaps.dispose();
  sigma2Taps.dispose();
  return { y, std };
}

// ----------------------------------------------------------------------------------- backward

const BACKWARD_INPUT = 'conv2d_backward_input.wgsl';
const BACKWARD_WEIGHT = 'conv2d_backward_weight.wgsl';

/**
 * dx as a gather over the input positions, split into stride phase classes (see
 * conv2d_backward_input.wgsl); dilation > 1 keeps one class and masks per tap.
 */
function inputGrad(ctx: Context, g: Geometry, lrt: boolean, bindings: Record<string, Tensor>): Tensor<'f32'> {
  const dilated = g.dilation[0] > 1 || g.dilation[1] > 1;
  const phases: [number, number] = dilated ? [1, 1] : [g.stride[0], g.stride[1]];
  const classSize: [number, number] = [Math.ceil(g.height / phases[0]), Math.ceil(g.width / phases[1])];
  const dx = ctx.empty([g.batch, g.cin, g.height, g.width]);
  const all = ['dy', 'dvar', 'w', 'w_sigma2', 'input', 'dx'];
  const given: Record<string, Tensor> = { ...bindings, dx };
  const taps = dilated ? g.kernelH * g.kernelW : Math.ceil(g.kernelH / phases[0]) * Math.ceil(g.kernelW / phases[1]);
  dispatchGemm(ctx, {
    op: lrt ? 'conv2d_backward_input_lrt' : 'conv2d_backward_input', shader: BACKWARD_INPUT,
    problem: { m: g.cin, n: classSize[0] * classSize[1], k: taps * g.cout, batches: g.batch * phases[0] * phases[1] },
    constants: { DUAL: lrt, DILATED: dilated },
    uniforms: { ...shapeUniforms(g), phases, class_size: classSize }, bindings: given,
    unbound: all.filter((name) => !(name in given)),
  });
  return dx;
}

/** How backward-weight splits each sample's images so that enough invocations run. */
function weightChunks(g: Geometry): { imagesPerChunk: number; chunksPerSample: number } {
  const imagesPerSample = g.batch / g.samples;
  const tiles = g.samples * Math.ceil(g.cout / 8) * Math.ceil(kernelSize(g) / 8);
  const wanted = Math.min(imagesPerSample, Math.max(1, Math.ceil(WEIGHT_GRAD_INVOCATIONS / tiles)));
  const imagesPerChunk = Math.ceil(imagesPerSample / wanted);
  return { imagesPerChunk, chunksPerSample: Math.ceil(imagesPerSample / imagesPerChunk) };
}

/**
 * dw (and for LRT dw_sigma2), each shaped like the weights: per-chunk partial sums on the GEMM
 * core, then the chunks of each sample added by the shared reduction.
 */
function weightGrad(ctx: Context, g: Geometry, wShape: readonly number[], lrt: boolean, inputs: Record<string, Tensor>): Tensor[] {
  const { imagesPerChunk, chunksPerSample } = weightChunks(g);
  const chunks = g.samples * chunksPerSample;
  const ksize = kernelSize(g);
  const direct = chunksPerSample === 1;
  const outputs = lrt ? ['dw', 'dw_sigma2'] : ['dw'];
  const targets = outputs.map(() => (direct ? ctx.empty(wShape) : ctx.empty([chunks, g.cout, ksize])));
  const bindings: Record<string, Tensor> = { ...inputs };
  outputs.forEach((name, i) => (bindings[name] = targets[i]));
  dispatchGemm(ctx, {
    op: lrt ? 'conv2d_backward_weight_lrt' : 'conv2d_backward_weight', shader: BACKWARD_WEIGHT,
    problem: { m: g.cout, n: ksize, k: imagesPerChunk * g.outH * g.outW, batches: chunks },
    constants: { DUAL: lrt },
    uniforms: { ...shapeUniforms(g), images_per_chunk: imagesPerChunk, chunks_per_sample: chunksPerSample },
    bindings, unbound: ['dvar', 'dw_sigma2'].filter((name) => !(name in bindings)),
  });
  if (direct) return targets;
  return targets.map((partial) => {
    const total = sumAxes(partial, { shape: wShape, axes: { outer: g.samples, reduceA: chunksPerSample, kept: g.cout * ksize } });
    // Recorded work runs in order, so the pooled buffer may be reused by later dispatches.
    partial.dispose();
    return total;
  });
}

/** db[s, co] = sum of `grad` over the images of sample s and all positions ([Cout] when S = 1 and the weights are 4-D). */
function biasGrad(ctx: Context, g: Geometry, perSample: boolean, grad: Tensor): Tensor<'f32'> {
  return sumAxes(grad, { shape: perSample ? [g.samples, g.cout] : [g.cout], axes: { outer: g.samples, reduceA: g.batch / g.samples, kept: g.cout, reduceB: g.outH * g.outW } });
}

/**
 * Gradients of L = <y, dy> for y = conv2dForward(x, w, bias, opts):
 * dx = convT(dy, w) (when need.input), dw = corr(x, dy) with w's shape,
 * db = sum of dy over N, OH, OW (when need.bias).
 */
export function conv2dBackward(dy: Tensor, x: Tensor, w: Tensor, options: Conv2dOptions & GradientNeeds = {}): { dx: Tensor | null; dWeight: Tensor; dBias: Tensor | null } {
  const ctx = contextOf('conv2dBackward', { dy, x, w });
  const opts = optionsOf('conv2dBackward', options);
  const op = 'conv2dBackward';
  own(ctx, op, { x, w, dy });
  const g = geometry(op, x.shape, w.shape, opts);
  checkSameShape(op, 'dy', dy, outputShape(g), 'the output shape');
  const wants = checkNeed(op, opts);
  const dx = wants.input ? inputGrad(ctx, g, false, { dy, w }) : null;
  const [dw] = weightGrad(ctx, g, w.shape, false, { input: x, dy });
  const db = wants.bias ? biasGrad(ctx, g, w.shape.length === 5, dy) : null;
  return { dx, dWeight: dw, dBias: db };
}

/**
 * Gradients of L = <y, dy> for y = lrtConv2dForward(...) with the same key
 * (eps is regenerated, not stored): dMean = dy, dVar = dy * eps / (2 std);
 * dx = convT(dy, wMu) + 2x * convT(dVar, wSigma2), dwMu = corr(x, dy),
 * dwSigma2 = corr(x^2, dVar), dbMu = sum dy, dbSigma2 = sum dVar.
 * The gradient with respect to rho (wSigma2 = softplus(rho)^2) is the caller's chain rule.
 */
export function lrtConv2dBackward(dy: Tensor, x: Tensor, std: Tensor, wMu: Tensor, wSigma2: Tensor, options: Conv2dOptions & { key: RandomKey; needInput?: boolean; needBias?: boolean }): { dx: Tensor | null; dWeightMu: Tensor; dWeightSigma2: Tensor; dBiasMu: Tensor | null; dBiasSigma2: Tensor | null } {
  const ctx = contextOf('lrtConv2dBackward', { dy, x, std, wMu, wSigma2 });
  const opts = optionsOf('lrtConv2dBackward', options);
  const key = opts.key;
  const op = 'lrtConv2dBackward';
  own(ctx, op, { x, dy, std, wMu, wSigma2 });
  const g = geometry(op, x.shape, wMu.shape, opts);
  checkSameShape(op, 'wSigma2', wSigma2, wMu.shape, 'the shape of wMu');
  checkSameShape(op, 'dy', dy, outputShape(g), 'the output shape');
  checkSameShape(op, 'std', std, outputShape(g), 'the output shape');
  const wants = checkNeed(op, opts);
  // lrtDvar checks the key before it allocates anything.
  const dvar = lrtDvar(ctx, op, dy, std, key);
  const dx = wants.input ? inputGrad(ctx, g, true, { dy, dvar, w: wMu, w_sigma2: wSigma2, input: x }) : null;
  const [dwMu, dwSigma2] = weightGrad(ctx, g, wMu.shape, true, { input: x, dy, dvar });
  const perSample = wMu.shape.length === 5;
  const dbMu = wants.bias ? biasGrad(ctx, g, perSample, dy) : null;
  const dbSigma2 = wants.bias ? biasGrad(ctx, g, perSample, dvar) : null;
  dvar.dispose();
  return { dx, dWeightMu: dwMu, dWeightSigma2: dwSigma2, dBiasMu: dbMu, dBiasSigma2: dbSigma2 };
}
