/** Argument checks shared by the op wrappers: each throws before any GPU work, naming the op and the argument. */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, shapeError } from '../errors.js';

export const showShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** A live f32 tensor of ctx. */
export function checkF32(ctx: Context, op: string, argument: string, t: Tensor): void {
  ctx.own(op, argument, t);
  if (t.dtype !== 'f32') throw argumentError(op, argument, "a tensor of dtype 'f32'", t.dtype);
}

/** `t` has exactly the shape of `like` (named `likeName` in the message). */
export function checkSameShape(op: string, argument: string, t: Tensor, like: Tensor, likeName: string): void {
  if (t.shape.length !== like.shape.length || t.shape.some((d, k) => d !== like.shape[k])) {
    throw shapeError(op, argument, `${showShape(like.shape)} (the shape of ${likeName})`, t.shape);
  }
}
