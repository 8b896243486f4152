/**
 * Sum of all elements on the GPU (shaders/reduce.wgsl): a tree reduction in
 * levels. Each level turns n values into ceil(n / SUM_BLOCK) workgroup partial
 * sums; levels repeat, each reading the previous level's partials, until one
 * value is left. All levels are recorded in one go: there is no readback
 * between them.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt } from '../errors.js';
import { checkF32 } from './check.js';

/** Invocations per workgroup (a power of two). */
export const SUM_WORKGROUP = 64;
/** Elements each invocation adds (into four accumulators) before the workgroup tree; a multiple of 4. */
export const SUM_ITEMS = 64;
/** Elements one workgroup reduces to one partial sum per level. */
export const SUM_BLOCK = SUM_WORKGROUP * SUM_ITEMS;


function level(ctx: Context, x: Tensor, partial: Tensor, offset: number): void {
  ctx.dispatch({
    shader: 'reduce.wgsl', entry: 'reduce_sum', constants: { WG: SUM_WORKGROUP, ITEMS: SUM_ITEMS },
    uniforms: { n: x.size, offset }, bindings: { x, partial }, workgroups: grid(Math.ceil(x.size / SUM_BLOCK)),
  });
}

/** Records the levels that reduce `x` into out[index]; `x` is validated by the caller. */
function reduceInto(ctx: Context, x: Tensor, out: Tensor, index: number): void {
  let current = x;
  while (current.size > SUM_BLOCK) {
    const partials = ctx.empty([Math.ceil(current.size / SUM_BLOCK)]);
    level(ctx, current, partials, 0);
    // Safe to release now: a pooled buffer handed out again is only written
    // by work recorded after this level (ctx.write flushes first).
    if (current !== x) current.dispose();
    current = partials;
  }
  level(ctx, current, out, index);
  if (current !== x) current.dispose();
}

/** Sum of all elements of `x`, as a [1] tensor. */
export function sum(ctx: Context, x: Tensor): Tensor {
  checkF32(ctx, 'sum', 'x', x);
  const out = ctx.empty([1]);
  reduceInto(ctx, x, out, 0);
  return out;
}

/** Writes sum(x) into out[index] and leaves the other elements of `out` as they are (gathers per-layer KL terms). */
export function sumInto(ctx: Context, x: Tensor, out: Tensor, index: number): void {
  const op = 'sumInto';
  checkF32(ctx, op, 'x', x);
  checkF32(ctx, op, 'out', out);
  checkInt(op, 'index', index, 0);
  if (index >= out.size) throw argumentError(op, 'index', `an integer < ${out.size} (the size of out)`, index);
  // One dispatch may not read and write the same buffer (reshape shares buffers).
  if (x.buffer === out.buffer) throw argumentError(op, 'out', "a tensor that does not share x's buffer", out);
  reduceInto(ctx, x, out, index);
}
