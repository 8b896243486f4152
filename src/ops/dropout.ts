/**
 * Inverted dropout (shaders/dropout.wgsl): y = x / (1 - p) where rand_uniform(key, key.offset + i, stream) >= p,
 * else 0. The mask is a pure function of the key, so the backward pass regenerates it; pass the
 * forward's key. p is the drop probability, in [0, 1).
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkNumber } from '../errors.js';
import { type RandomKey, keyOffset, keyUniforms } from './random.js';
import { contextOf, optionsOf } from './check.js';

const WG = 64;

function run(ctx: Context, op: string, entry: 'dropout_forward' | 'dropout_backward', input: Tensor, p: number, key: RandomKey): Tensor<'f32'> {
  const argument = entry === 'dropout_forward' ? 'x' : 'dy';
  ctx.own(op, argument, input);
  if (input.dtype !== 'f32') throw argumentError(op, argument, "a tensor of dtype 'f32'", input.dtype);
  // p is compared in f32: a p that rounds to 1 there would drop everything and scale by 1 / (1 - p).
  checkNumber(op, 'p', p, (v) => v >= 0 && v < 1 && Math.fround(v) < 1, 'a number in [0, 1)');
  const k = keyUniforms(op, key);
  const offset = keyOffset(op, key, input.size);
  const output = ctx.empty(input.shape);
  const bindings: Record<string, Tensor> = entry === 'dropout_forward' ? { x: input, y: output } : { dy: input, dx: output };
  ctx.dispatch({
    shader: 'dropout.wgsl', entry, constants: { WG },
    uniforms: { n: input.size, ...k, offset, p, scale: 1 / (1 - p) }, bindings,
    // Each invocation masks four consecutive elements with one rand_uniform4.
    workgroups: grid(Math.ceil(input.size / 4 / WG)),
  });
  return output;
}

export function dropoutForward(x: Tensor, options: { p: number; key: RandomKey }): Tensor<'f32'> {
  const ctx = contextOf('dropoutForward', { x });
  const { p, key } = optionsOf('dropoutForward', options);
  return run(ctx, 'dropoutForward', 'dropout_forward', x, p, key);
}

/** dx = dy / (1 - p) where the forward kept the element, else 0 (the mask is regenerated from `key`). */
export function dropoutBackward(dy: Tensor, options: { p: number; key: RandomKey }): Tensor<'f32'> {
  const ctx = contextOf('dropoutBackward', { dy });
  const { p, key } = optionsOf('dropoutBackward', options);
  return run(ctx, 'dropoutBackward', 'dropout_backward', dy, p, key);
}
