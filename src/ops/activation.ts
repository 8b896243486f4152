/** relu and softplus, forward and backward (shaders/activation.wgsl). */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { shapeError } from '../errors.js';

const WG = 64;
export type Activation = 'relu' | 'softplus';

export function activationForward(ctx: Context, kind: Activation, x: Tensor): Tensor {
  const op = `${kind}Forward`;
  ctx.own(op, 'x', x);
  const y = ctx.empty(x.shape);
  ctx.dispatch({
    shader: 'activation.wgsl', entry: `${kind}_forward`, constants: { WG },
    uniforms: { n: x.size }, bindings: { x, y }, workgroups: grid(Math.ceil(x.size / WG)),
  });
  return y;
}

/** dx = dy * activation'(x); `x` is the forward input. */
export function activationBackward(ctx: Context, kind: Activation, x: Tensor, dy: Tensor): Tensor {
  const op = `${kind}Backward`;
  ctx.own(op, 'x', x);
  ctx.own(op, 'dy', dy);
  if (dy.size !== x.size) throw shapeError(op, 'dy', `[${x.shape.join(', ')}] (the shape of x)`, dy.shape);
  const dx = ctx.empty(x.shape);
  ctx.dispatch({
    shader: 'activation.wgsl', entry: `${kind}_backward`, constants: { WG },
    uniforms: { n: x.size }, bindings: { x, dy, dx }, workgroups: grid(Math.ceil(x.size / WG)),
  });
  return dx;
}
