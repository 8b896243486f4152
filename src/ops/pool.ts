/**
 * 2-D max pooling over NCHW tensors (shaders/pool.wgsl). The forward pass
 * records the flat input index of each window's maximum; the backward pass
 * routes each output gradient to that index.
 *
 * Global average pooling, [N, C, H, W] -> [N, C] (the head of He et al. 2016's CIFAR ResNets,
 * sec. 4.2): its forward is reduce.wgsl's sumAxes with scale 1 / (H*W), its backward spreads
 * each dy[n, c] / (H*W) over its plane (pool.wgsl's global_avg_pool_backward).
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, pair, shapeError } from '../errors.js';
import { checkF32, contextOf, optionsOf } from './check.js';
import { sumAxes } from './reduce.js';

const WG = 64;
/** Outputs per invocation of the forward kernel (see shaders/pool.wgsl). */
const PER_THREAD = 4;
const SHADER = 'pool.wgsl';

export interface MaxPool2dOptions {
  kernel: number | [number, number];
  /** Defaults to the kernel (non-overlapping windows). */
  stride?: number | [number, number];
  /** Implicit -inf border; at most half the kernel, as in PyTorch. Defaults to 0. */
  padding?: number | [number, number];
}

function check4d(op: string, argument: string, t: Tensor, dtype: 'f32' | 'u32'): void {
  if (t.shape.length !== 4) throw shapeError(op, argument, '[N, C, H, W]', t.shape);
  if (t.dtype !== dtype) throw argumentError(op, argument, `a tensor of dtype '${dtype}'`, `a tensor of dtype '${t.dtype}'`);
}

/** y = max over each window, argmax = flat index into x of each maximum (u32). Output size floor((H + 2p - k) / s) + 1. */
export function maxPool2dForward(x: Tensor, opts: MaxPool2dOptions): { y: Tensor; argmax: Tensor } {
  const ctx = contextOf('maxPool2dForward', { x });
  const op = 'maxPool2dForward';
  ctx.own(op, 'x', x);
  check4d(op, 'x', x, 'f32');
  if (opts === null || typeof opts !== 'object') throw argumentError(op, 'opts', '{ kernel, stride?, padding? }', opts);
  if (opts.kernel === undefined) throw argumentError(op, 'kernel', 'an integer or a pair [h, w]', undefined);
  const [KH, KW] = pair(op, 'kernel', opts.kernel, 1, 1);
  const [SH, SW] = opts.stride === undefined ? [KH, KW] : pair(op, 'stride', opts.stride, 1, 1);
  const [PH, PW] = pair(op, 'padding', opts.padding, 0, 0);
  if (PH > KH / 2 || PW > KW / 2) throw argumentError(op, 'padding', `at most half the kernel [${KH}, ${KW}]`, [PH, PW]);
  const [N, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  if (OH < 1 || OW < 1) throw argumentError(op, 'kernel', `a window that fits the padded input [${H + 2 * PH}, ${W + 2 * PW}]`, [KH, KW]);

  const y = ctx.empty([N, C, OH, OW]);
  const argmax = ctx.empty([N, C, OH, OW], 'u32');
  ctx.dispatch({
    shader: SHADER, entry: 'max_pool_forward', constants: { WG, PER_THREAD },
    uniforms: { outputs: y.size, planes: N * C, H, W, OH, OW, KH, KW, SH, SW, PH, PW },
    bindings: { x, y, argmax }, workgroups: grid(Math.ceil(y.size / (WG * PER_THREAD))),
  });
  return { y, argmax };
}

/** dx [xShape]: each dy element added at its argmax position, zero elsewhere. */
export function maxPool2dBackward(dy: Tensor, argmax: Tensor, options: { inputShape: readonly number[] }): Tensor<'f32'> {
  const ctx = contextOf('maxPool2dBackward', { dy, argmax });
  const xShape = optionsOf('maxPool2dBackward', options).inputShape;
  const op = 'maxPool2dBackward';
  ctx.own(op, 'dy', dy);
  ctx.own(op, 'argmax', argmax);
  check4d(op, 'dy', dy, 'f32');
  check4d(op, 'argmax', argmax, 'u32');
  if (!argmax.shape.every((d, i) => d === dy.shape[i])) throw shapeError(op, 'argmax', `[${dy.shape.join(', ')}] (the shape of dy)`, argmax.shape);
  if (!Array.isArray(xShape) || xShape.length !== 4 || xShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw argumentError(op, 'xShape', 'four positive integers [N, C, H, W]', xShape);
  }
  const [N, C, OH, OW] = dy.shape;
  if (xShape[0] !== N || xShape[1] !== C) throw shapeError(op, 'xShape', `[${N}, ${C}, H, W] (batch and channels of dy)`, xShape);

  const dx = ctx.zeros(xShape);
  ctx.dispatch({
    shader: SHADER, entry: 'max_pool_backward', constants: { WG },
    uniforms: { outputs: dy.size, planes: N * C, H: xShape[2], W: xShape[3], OH, OW, KH: 0, KW: 0, SH: 0, SW: 0, PH: 0, PW: 0 },
    bindings: { dy, argmax_in: argmax, dx }, workgroups: grid(Math.ceil((N * C) / WG)),
  });
  return dx;
}

/** y[n, c] = the mean of x[n, c, :, :] over the plane: [N, C, H, W] -> [N, C]. */
export function globalAvgPool2dForward(x: Tensor): Tensor<'f32'> {
  const op = 'globalAvgPool2dForward';
  const ctx = contextOf(op, { x });
  checkF32(ctx, op, 'x', x);
  if (x.shape.length !== 4) throw shapeError(op, 'x', '[N, C, H, W]', x.shape);
  const [N, C, H, W] = x.shape;
  // The sum of each plane times 1/(H*W), rounded to f32 once: the same factor as the backward's.
  return sumAxes(x, { axes: { outer: N * C, reduceA: H * W }, scale: 1 / (H * W), shape: [N, C] });
}

/** dx [N, C, H, W] = dy[n, c] / (H*W) at every position of plane (n, c); `inputShape` is x's shape. */
export function globalAvgPool2dBackward(dy: Tensor, options: { inputShape: readonly number[] }): Tensor<'f32'> {
  const op = 'globalAvgPool2dBackward';
  const ctx = contextOf(op, { dy });
  const xShape = optionsOf(op, options).inputShape;
  checkF32(ctx, op, 'dy', dy);
  if (dy.shape.length !== 2) throw shapeError(op, 'dy', '[N, C]', dy.shape);
  if (!Array.isArray(xShape) || xShape.length !== 4 || xShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw argumentError(op, 'options.inputShape', 'four positive integers [N, C, H, W]', xShape);
  }
  const [N, C, H, W] = xShape;
  if (dy.shape[0] !== N || dy.shape[1] !== C) throw shapeError(op, 'dy', `[${N}, ${C}] (batch and channels of inputShape)`, dy.shape);
  const dx = ctx.empty([N, C, H, W]);
  ctx.dispatch({
    shader: SHADER, entry: 'global_avg_pool_backward', constants: { WG, PER_THREAD },
    uniforms: { outputs: dx.size, H, W, scale: 1 / (H * W) },
    bindings: { dy, dx }, workgroups: grid(Math.ceil(dx.size / (WG * PER_THREAD))),
  });
  return dx;
}
