/**
 * The elementwise step shared by the LRT backward passes of linear and conv2d layers
 * (shaders/lrt.wgsl): dVar = dy * eps / (2 std), eps regenerated from the forward's key.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { type RandomKey, keyOffset, keyUniforms } from './random.js';

const WG = 64;

/** dVar for `dy` and `std` (same shape, validated by the caller) under the forward's `key`. */
export function lrtDvar(ctx: Context, op: string, dy: Tensor, std: Tensor, key: RandomKey): Tensor<'f32'> {
  const { key: seedStep, stream } = keyUniforms(op, key);
  const offset = keyOffset(op, key, dy.size);
  const dvar = ctx.empty(dy.shape);
  ctx.dispatch({
    shader: 'lrt.wgsl', entry: 'lrt_dvar', constants: { WG },
    uniforms: { count: dy.size, key: seedStep, stream, offset },
    bindings: { dy, stddev: std, dvar },
    workgroups: grid(Math.ceil(dy.size / (4 * WG))),
  });
  return dvar;
}
