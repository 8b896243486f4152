/** Argument checks shared by the op wrappers: each throws before any GPU work, naming the op and the argument. */
import type { Context } from '../gpu/context.js';
import { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, shapeError } from '../errors.js';

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

/**
 * The context an op runs on: that of its tensor operands, which must all be live tensors of one
 * context (null entries are optional operands left out). Checked before any GPU work.
 */
export function contextOf(op: string, operands: Record<string, Tensor | null | undefined>): Context {
  let ctx: Context | null = null;
  let first = '';
  for (const [name, t] of Object.entries(operands)) {
    if (t === null || t === undefined) continue;
    if (!(t instanceof Tensor)) throw argumentError(op, name, 'a Tensor', t);
    t.check(op, name);
    if (ctx === null) {
      ctx = t.ctx;
      first = name;
    } else if (t.ctx !== ctx) {
      throw new BayesError('WRONG_DEVICE', `${op}: argument '${name}' is a tensor from another device/context than argument '${first}' (${t.ctx.adapterName}); create it on the same context, or move a model with model.to(ctx)`);
    }
  }
  if (ctx === null) throw argumentError(op, Object.keys(operands)[0] ?? 'x', 'a Tensor', undefined);
  return ctx;
}

/** An op's options object: a plain object (its members are checked by the op). */
export function optionsOf<T>(op: string, options: T): T {
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', 'an options object', options);
  return options;
}

/** Which gradients a backward computes besides the weights' (default: both). */
export interface GradientNeeds {
  /** Compute dx (false for a network's first layer: nobody needs the gradient of the data). Default true. */
  needInput?: boolean;
  /** Compute the bias gradient (false for a layer without bias). Default true. */
  needBias?: boolean;
}

export function checkNeed(op: string, options: GradientNeeds): { input: boolean; bias: boolean } {
  const flag = (name: 'needInput' | 'needBias'): boolean => {
    const v = options[name];
    if (v !== undefined && typeof v !== 'boolean') throw argumentError(op, `options.${name}`, 'a boolean or undefined', v);
    return v ?? true;
  };
  return { input: flag('needInput'), bias: flag('needBias') };
}
