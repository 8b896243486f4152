/**
 * The zero-padding shortcut of He et al. 2016 (sec. 3.3, option A, used by its CIFAR-10 ResNets,
 * sec. 4.2), shaders/shortcut.wgsl: where a stage halves the feature map and widens it from Cin to
 * Cout channels, the shortcut keeps every S-th row and column of the input and adds Cout - Cin zero
 * channels, split in front and behind as the common CIFAR ResNet-20 reproduction does (akamaster's
 * pytorch_resnet_cifar10, `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))`): no
 * parameters, so the identity carries through the whole stage.
 *
 *   zeroPadShortcutForward(x [N, Cin, H, W], { outChannels, stride }) -> [N, Cout, ceil(H/S), ceil(W/S)]
 *   zeroPadShortcutBackward(dy, { inputShape, stride })              -> dx [N, Cin, H, W]
 */
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, shapeError } from '../errors.js';
import { checkF32, contextOf, optionsOf, showShape } from './check.js';

const SHADER = 'shortcut.wgsl';
const WG = 64;
/** Elements per invocation (see the shader's header). */
const PER_THREAD = 4;

export interface ZeroPadShortcutOptions {
  /** Channels of the output, at least the input's; the extra ones are zeros. */
  outChannels: number;
  /** Subsampling stride of both spatial axes (2 in He et al.'s stages); default 1. */
  stride?: number;
}

/** Zero channels in front of the input's: half the extra ones, rounded down (the rest go behind). */
export function zeroPadBefore(inChannels: number, outChannels: number): number {
  return Math.floor((outChannels - inChannels) / 2);
}

/** Output size of one spatial axis: ceil(size / stride), the rows and columns kept. */
export function subsampledSize(size: number, stride: number): number {
  return Math.ceil(size / stride);
}

/** y: x[:, :, ::S, ::S] with zero channels added around its channels (see the header). */
export function zeroPadShortcutForward(x: Tensor, options: ZeroPadShortcutOptions): Tensor<'f32'> {
  const op = 'zeroPadShortcutForward';
  const ctx = contextOf(op, { x });
  const o = optionsOf(op, options);
  checkF32(ctx, op, 'x', x);
  if (x.shape.length !== 4) throw shapeError(op, 'x', '[N, C, H, W]', x.shape);
  const [N, cin, H, W] = x.shape;
  const cout = checkInt(op, 'options.outChannels', o.outChannels, 1);
  if (cout < cin) throw argumentError(op, 'options.outChannels', `at least the ${cin} input channels of x ${showShape(x.shape)}`, cout);
  const stride = checkInt(op, 'options.stride', o.stride ?? 1, 1);
  const OH = subsampledSize(H, stride);
  const OW = subsampledSize(W, stride);
  const y = ctx.empty([N, cout, OH, OW]);
  ctx.dispatch({
    shader: SHADER, entry: 'zero_pad_shortcut_forward', constants: { WG, PER_THREAD },
    uniforms: { outputs: y.size, cin, cout, H, W, OH, OW, stride, before: zeroPadBefore(cin, cout) },
    bindings: { x, y }, workgroups: grid(Math.ceil(y.size / (WG * PER_THREAD))),
  });
  return y;
}

/** dx [inputShape]: the gradient of the kept positions and channels, zero at the skipped ones. */
export function zeroPadShortcutBackward(dy: Tensor, options: { inputShape: readonly number[]; stride?: number }): Tensor<'f32'> {
  const op = 'zeroPadShortcutBackward';
  const ctx = contextOf(op, { dy });
  const o = optionsOf(op, options);
  checkF32(ctx, op, 'dy', dy);
  if (dy.shape.length !== 4) throw shapeError(op, 'dy', '[N, C, H, W]', dy.shape);
  const xShape = o.inputShape;
  if (!Array.isArray(xShape) || xShape.length !== 4 || xShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw argumentError(op, 'options.inputShape', 'four positive integers [N, C, H, W]', xShape);
  }
  const stride = checkInt(op, 'options.stride', o.stride ?? 1, 1);
  const [N, cin, H, W] = xShape;
  const [, cout, OH, OW] = dy.shape;
  const want = [N, Math.max(cout, cin), subsampledSize(H, stride), subsampledSize(W, stride)];
  if (dy.shape[0] !== N || cout < cin || OH !== want[2] || OW !== want[3]) {
    throw shapeError(op, 'dy', `[${N}, Cout >= ${cin}, ${want[2]}, ${want[3]}] (inputShape ${showShape(xShape)} subsampled by stride ${stride})`, dy.shape);
  }
  const dx = ctx.empty([N, cin, H, W]);
  ctx.dispatch({
    shader: SHADER, entry: 'zero_pad_shortcut_backward', constants: { WG, PER_THREAD },
    uniforms: { outputs: dx.size, cin, cout, H, W, OH, OW, stride, before: zeroPadBefore(cin, cout) },
    bindings: { dy, dx }, workgroups: grid(Math.ceil(dx.size / (WG * PER_THREAD))),
  });
  return dx;
}
