/** relu and softplus, forward and backward (shaders/activation.wgsl). */
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { checkOneOf, shapeError } from '../errors.js';
import { contextOf, optionsOf } from './check.js';

const WG = 64;
export type Activation = 'relu' | 'softplus';

export interface ActivationOptions {
  kind: Activation;
}

export function activationForward(x: Tensor, options: ActivationOptions): Tensor<'f32'> {
  const kind = checkOneOf('activationForward', 'options.kind', optionsOf('activationForward', options).kind, ['relu', 'softplus'] as const);
  const op = `${kind}Forward`;
  const ctx = contextOf(op, { x });
  const y = ctx.empty(x.shape);
  ctx.dispatch({
    shader: 'activation.wgsl', entry: `${kind}_forward`, constants: { WG },
    uniforms: { n: x.size }, bindings: { x, y }, workgroups: grid(Math.ceil(x.size / WG)),
  });
  return y;
}

/** dx = dy * activation'(x); `x` is the forward input. */
export function activationBackward(dy: Tensor, x: Tensor, options: ActivationOptions): Tensor<'f32'> {
  const kind = checkOneOf('activationBackward', 'options.kind', optionsOf('activationBackward', options).kind, ['relu', 'softplus'] as const);
  const op = `${kind}Backward`;
  const ctx = contextOf(op, { dy, x });
  if (dy.size !== x.size) throw shapeError(op, 'dy', `[${x.shape.join(', ')}] (the shape of x)`, dy.shape);
  const dx = ctx.empty(x.shape);
  ctx.dispatch({
    shader: 'activation.wgsl', entry: `${kind}_backward`, constants: { WG },
    uniforms: { n: x.size }, bindings: { x, dy, dx }, workgroups: grid(Math.ceil(x.size / WG)),
  });
  return dx;
}
