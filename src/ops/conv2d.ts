/**
 * conv2d forward and backward, plain and with the local reparameterization
 * trick (shaders/conv2d.wgsl). NCHW cross-correlation as PyTorch's conv2d.
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
import { type RandomKey, keyOffset, keyUniforms } from './random.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
}

const SHADER = 'conv2d.wgsl';

/** Invocations per workgroup (override WG of conv2d.wgsl). */
const WG = 64;

/**
 * Register tile of the implicit-GEMM entries: blocks of 4 channels x blocks of 4
 * columns (output positions, input positions or weight entries) per invocation.
 * Two blocks each (8 x 8) ran about twice as fast as 4 x 4 on SwiftShader for
 * LeNet's conv2 (bench/kernels.ts); a dimension at most 4 wide takes one block,
 * since a second would be pure padding. Each choice compiles one pipeline.
 */
interface TileShape {
  CHANNEL_BLOCKS: number;
  POSITION_BLOCKS: number;
}

const blocks = (size: number) => (size <= 4 ? 1 : 2);
const tileShape = (channels: number, columns: number): TileShape => ({ CHANNEL_BLOCKS: blocks(channels), POSITION_BLOCKS: blocks(columns) });

/** Workgroups for `major` (images or chunks) x `channels` x `columns` split into tiles. */
function tileGroups(tile: TileShape, major: number, channels: number, columns: number): [number, number] {
  return groups(major * Math.ceil(channels / (4 * tile.CHANNEL_BLOCKS)) * Math.ceil(columns / (4 * tile.POSITION_BLOCKS)));
}

/**
 * The backward-weight pass splits each sample's images into chunks until about
 * this many invocations run (LeNet's [16, 6, 5, 5] weight is only 38 tiles of
 * 8x8), then adds the per-chunk partial sums. The partial sums then hold at most
 * about 64 values per invocation (2 MiB).
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

function checkNeed(op: string, need: unknown): { input: boolean; bias: boolean } {
  if (need === null || typeof need !== 'object') throw argumentError(op, 'need', 'an object { input?: boolean, bias?: boolean }', need);
  const n = need as { input?: unknown; bias?: unknown };
  for (const key of ['input', 'bias'] as const) {
    if (n[key] !== undefined && typeof n[key] !== 'boolean') throw argumentError(op, `need.${key}`, 'a boolean or undefined', n[key]);
  }
  return { input: n.input === true, bias: n.bias === true };
}

/** Every member of the shader's `params`; entries read the ones they need. */
function uniforms(g: Geometry, extra: Partial<Record<'images_per_chunk' | 'chunks_per_sample' | 'has_bias' | 'has_bias_sigma2' | 'stream' | 'count' | 'offset', number>> & { key?: [number, number] } = {}) {
  return {
    batch: g.batch,
    cin: g.cin,
    height: g.height,
    width: g.width,
    cout: g.cout,
    kernel_h: g.kernelH,
    kernel_w: g.kernelW,
    out_h: g.outH,
    out_w: g.outW,
    images_per_sample: g.batch / g.samples,
    images_per_chunk: 1,
    chunks_per_sample: 1,
    stride: g.stride,
    pad: g.padding,
    dilation: g.dilation,
    has_bias: 0,
    has_bias_sigma2: 0,
    key: [0, 0] as [number, number],
    stream: 0,
    offset: 0,
    count: 0,
    ...extra,
  };
}

function groups(invocations: number): [number, number] {
  return grid(Math.ceil(invocations / WG));
}

/** Constants and workgroups of a forward entry (tiles over Cout x OH*OW per image). */
function forwardDispatch(g: Geometry) {
  const tile = tileShape(g.cout, g.outH * g.outW);
  return { constants: { WG, ...tile }, workgroups: tileGroups(tile, g.batch, g.cout, g.outH * g.outW) };
}

/** Constants and workgroups of a backward-input entry (tiles over Cin x H*W per image). */
function inputGradDispatch(g: Geometry) {
  const tile = tileShape(g.cin, g.height * g.width);
  return { constants: { WG, ...tile }, workgroups: tileGroups(tile, g.batch, g.cin, g.height * g.width) };
}

// ------------------------------------------------------------------------------------ forward

/**
 * The weights in tap-major order [S, Cin*KH*KW, 4*ceil(Cout/4)] (padding channels 0), which the
 * forward entries read as one vec4 per 4 channels and tap instead of 4 strided loads.
 */
function tapMajor(ctx: Context, g: Geometry, w: Tensor): Tensor {
  const count = g.samples * kernelSize(g) * 4 * Math.ceil(g.cout / 4);
  const taps = ctx.empty([count]);
  ctx.dispatch({
    shader: SHADER, entry: 'tap_major_weights', constants: { WG },
    uniforms: uniforms(g, { count }), bindings: { w, tap_major: taps }, workgroups: groups(count),
  });
  return taps;
}

/** y = conv2d(x, w) + bias: x [N, Cin, H, W] -> y [N, Cout, OH, OW]. */
export function conv2dForward(ctx: Context, x: Tensor, w: Tensor, bias: Tensor | null, opts?: Conv2dOptions): Tensor {
  const op = 'conv2dForward';
  bias = bias ?? null;
  own(ctx, op, { x, w, bias });
  const g = geometry(op, x.shape, w.shape, opts);
  if (bias) checkBias(op, 'bias', bias, g, w.shape.length === 5);
  const y = ctx.empty(outputShape(g));
  const wTaps = tapMajor(ctx, g, w);
  ctx.dispatch({
    shader: SHADER, entry: 'forward', ...forwardDispatch(g),
    uniforms: uniforms(g, { has_bias: bias ? 1 : 0 }),
    // Without a bias the entry still declares the binding; w stands in (read-only, never read when has_bias = 0).
    bindings: { input: x, w_taps: wTaps, bias: bias ?? w, y },
  });
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
export function lrtConv2dForward(ctx: Context, x: Tensor, wMu: Tensor, wSigma2: Tensor, bMu: Tensor | null, bSigma2: Tensor | null, opts: Conv2dOptions | undefined, key: RandomKey): { y: Tensor; std: Tensor } {
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
  ctx.dispatch({
    shader: SHADER, entry: 'lrt_forward', ...forwardDispatch(g),
    uniforms: uniforms(g, { has_bias: bMu ? 1 : 0, has_bias_sigma2: bSigma2 ? 1 : 0, key: seedStep, stream, offset }),
    // Absent biases: the weights stand in for the read-only bindings, which are then never read.
    bindings: { input: x, w_taps: muTaps, w_sigma2_taps: sigma2Taps, bias: bMu ?? wMu, bias_sigma2: bSigma2 ?? wSigma2, y, stddev: std },
  });
  muTaps.dispose();
  sigma2Taps.dispose();
  return { y, std };
}

// ----------------------------------------------------------------------------------- backward

/** Backward-weight tiles cover Cout x Cin*KH*KW. */
const weightTile = (g: Geometry) => tileShape(g.cout, kernelSize(g));

/** How backward-weight splits each sample's images so that enough invocations run. */
function weightChunks(g: Geometry): { imagesPerChunk: number; chunksPerSample: number } {
  const imagesPerSample = g.batch / g.samples;
  const tile = weightTile(g);
  const tiles = g.samples * Math.ceil(g.cout / (4 * tile.CHANNEL_BLOCKS)) * Math.ceil(kernelSize(g) / (4 * tile.POSITION_BLOCKS));
  const wanted = Math.min(imagesPerSample, Math.max(1, Math.ceil(WEIGHT_GRAD_INVOCATIONS / tiles)));
  const imagesPerChunk = Math.ceil(imagesPerSample / wanted);
  return { imagesPerChunk, chunksPerSample: Math.ceil(imagesPerSample / imagesPerChunk) };
}

/**
 * Runs a backward-weight entry (`outputs` are the binding names it writes, each
 * shaped like the weights) and, when the images were split into chunks, adds
 * the per-chunk partial sums.
 */
function weightGrad(ctx: Context, g: Geometry, wShape: readonly number[], entry: 'backward_weight' | 'lrt_backward_weight', inputs: Record<string, Tensor>, outputs: readonly string[]): Tensor[] {
  const { imagesPerChunk, chunksPerSample } = weightChunks(g);
  const chunks = g.samples * chunksPerSample;
  const ksize = kernelSize(g);
  const direct = chunksPerSample === 1;
  const targets = outputs.map(() => (direct ? ctx.empty(wShape) : ctx.empty([chunks, g.cout, ksize])));
  const bindings: Record<string, Tensor> = { ...inputs };
  outputs.forEach((name, i) => (bindings[name] = targets[i]));
  ctx.dispatch({
    shader: SHADER, entry, constants: { WG, ...weightTile(g) },
    uniforms: uniforms(g, { images_per_chunk: imagesPerChunk, chunks_per_sample: chunksPerSample }),
    bindings,
    workgroups: tileGroups(weightTile(g), chunks, g.cout, ksize),
  });
  if (direct) return targets;
  return targets.map((partial) => {
    const total = ctx.empty(wShape);
    const count = g.samples * g.cout * ksize;
    ctx.dispatch({
      shader: SHADER, entry: 'sum_chunks', constants: { WG },
      uniforms: uniforms(g, { chunks_per_sample: chunksPerSample, count }),
      bindings: { partial, total },
      workgroups: groups(count),
    });
    // Recorded work runs in order, so the pooled buffer may be reused by later dispatches.
    partial.dispose();
    return total;
  });
}

/** db[s, co] = sum of `grad` over the images of sample s and all positions ([Cout] when S = 1 and the weights are 4-D). */
function biasGrad(ctx: Context, g: Geometry, perSample: boolean, grad: Tensor): Tensor {
  const db = ctx.empty(perSample ? [g.samples, g.cout] : [g.cout]);
  ctx.dispatch({
    shader: SHADER, entry: 'bias_grad', constants: { WG },
    uniforms: uniforms(g),
    bindings: { dy: grad, db },
    workgroups: grid(g.samples * g.cout),
  });
  return db;
}

/**
 * Gradients of L = <y, dy> for y = conv2dForward(x, w, bias, opts):
 * dx = convT(dy, w) (when need.input), dw = corr(x, dy) with w's shape,
 * db = sum of dy over N, OH, OW (when need.bias).
 */
export function conv2dBackward(ctx: Context, x: Tensor, w: Tensor, dy: Tensor, opts: Conv2dOptions | undefined, need: { input?: boolean; bias?: boolean }): { dx: Tensor | null; dw: Tensor; db: Tensor | null } {
  const op = 'conv2dBackward';
  own(ctx, op, { x, w, dy });
  const g = geometry(op, x.shape, w.shape, opts);
  checkSameShape(op, 'dy', dy, outputShape(g), 'the output shape');
  const wants = checkNeed(op, need);
  let dx: Tensor | null = null;
  if (wants.input) {
    dx = ctx.empty(x.shape);
    ctx.dispatch({
      shader: SHADER, entry: 'backward_input', ...inputGradDispatch(g),
      uniforms: uniforms(g), bindings: { dy, w, dx },
    });
  }
  const [dw] = weightGrad(ctx, g, w.shape, 'backward_weight', { input: x, dy }, ['dw']);
  const db = wants.bias ? biasGrad(ctx, g, w.shape.length === 5, dy) : null;
  return { dx, dw, db };
}

/**
 * Gradients of L = <y, dy> for y = lrtConv2dForward(...) with the same key
 * (eps is regenerated, not stored): dMean = dy, dVar = dy * eps / (2 std);
 * dx = convT(dy, wMu) + 2x * convT(dVar, wSigma2), dwMu = corr(x, dy),
 * dwSigma2 = corr(x^2, dVar), dbMu = sum dy, dbSigma2 = sum dVar.
 * The gradient with respect to rho (wSigma2 = softplus(rho)^2) is the caller's chain rule.
 */
export function lrtConv2dBackward(ctx: Context, x: Tensor, dy: Tensor, std: Tensor, wMu: Tensor, wSigma2: Tensor, opts: Conv2dOptions | undefined, key: RandomKey, need: { input?: boolean; bias?: boolean }): { dx: Tensor | null; dwMu: Tensor; dwSigma2: Tensor; dbMu: Tensor | null; dbSigma2: Tensor | null } {
  const op = 'lrtConv2dBackward';
  own(ctx, op, { x, dy, std, wMu, wSigma2 });
  const g = geometry(op, x.shape, wMu.shape, opts);
  checkSameShape(op, 'wSigma2', wSigma2, wMu.shape, 'the shape of wMu');
  checkSameShape(op, 'dy', dy, outputShape(g), 'the output shape');
  checkSameShape(op, 'std', std, outputShape(g), 'the output shape');
  const wants = checkNeed(op, need);
  const { key: seedStep, stream } = keyUniforms(op, key);
  const offset = keyOffset(op, key, dy.size);

  const dvar = ctx.empty(outputShape(g));
  ctx.dispatch({
    shader: SHADER, entry: 'lrt_dvar', constants: { WG },
    uniforms: uniforms(g, { key: seedStep, stream, count: dy.size, offset }),
    bindings: { dy, stddev: std, dvar },
    workgroups: groups(dy.size),
  });
  let dx: Tensor | null = null;
  if (wants.input) {
    dx = ctx.empty(x.shape);
    ctx.dispatch({
      shader: SHADER, entry: 'lrt_backward_input', ...inputGradDispatch(g),
      uniforms: uniforms(g), bindings: { input: x, dy, dvar, w: wMu, w_sigma2: wSigma2, dx },
    });
  }
  const [dwMu, dwSigma2] = weightGrad(ctx, g, wMu.shape, 'lrt_backward_weight', { input: x, dy, dvar }, ['dw', 'dw_sigma2']);
  const perSample = wMu.shape.length === 5;
  const dbMu = wants.bias ? biasGrad(ctx, g, perSample, dy) : null;
  const dbSigma2 = wants.bias ? biasGrad(ctx, g, perSample, dvar) : null;
  dvar.dispose();
  return { dx, dwMu, dwSigma2, dbMu, dbSigma2 };
}
