/**
 * Every sum on the GPU (shaders/reduce.wgsl): bias gradients, row and chunk sums, KL and loss totals.
 *
 *   sumAxes(ctx, x, { outer, reduceA, kept, reduceB }, { shape?, scale? })  -> Tensor
 *   sumAxesInto(ctx, x, { outer, reduceA, kept, reduceB }, out, { offset?, scale? })
 *   sum(ctx, x, { scale? })                 -> [1]
 *   sumInto(ctx, x, out, index, { scale? })
 *   maxInto(x, out, { index })              out[index] = the largest element of x
 *
 * x is viewed as [outer, reduceA, kept, reduceB] (row-major; each axis defaults to 1, their product
 * is x.size) and summed over reduceA and reduceB:
 *   out[o, k] = scale * sum_a sum_b x[o, a, k, b],   out of shape [outer, kept]
 * (the default shape drops an axis of 1: [kept] when outer = 1, [outer] when kept = 1, [1] for a
 * full sum; `shape` gives any other of outer * kept elements). For example:
 *   full sum of n values                      { reduceA: n }
 *   linear bias gradient, dy [S, m, n] -> [S, n]   { outer: S, reduceA: m, kept: n }
 *   chunk sums [S, chunks, per] -> [S, per]        { outer: S, reduceA: chunks, kept: per }
 *   conv bias gradient, dy [S, N/S, Cout, OH*OW] -> [S, Cout]   { outer: S, reduceA: N/S, kept: Cout, reduceB: OH*OW }
 *   mean loss of N terms                      sum(ctx, terms, { scale: 1 / N })
 * The *Into forms write the outer * kept results at out[offset ..] (out[index] for sumInto) and leave
 * the other elements of out as they are (the per-layer KL terms gather into one tensor this way).
 *
 * Strategy (shaders/reduce.wgsl, one entry, no barriers): each output's sum runs in one invocation
 * while it has at most SUM_SPLIT_ABOVE values (bias gradients of linear layers, chunk sums); a longer
 * one is split over invocations of about SUM_PER_INVOCATION values each, whose partial sums a next
 * level adds (conv bias gradients, full sums: two levels up to 4M values). The last level writes into
 * the caller's tensor and applies scale. All levels are recorded in one go: nothing is read back.
 * Measured on SwiftShader (2 cores), against the kernels it replaces: 1e6 values 2-4 ms
 * (a workgroup tree: 22 ms), LeNet conv1's bias gradient at batch 256 2.5 ms (bias_grad: 8-14 ms).
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber } from '../errors.js';
import { checkF32, contextOf, optionsOf, showShape } from './check.js';

const SHADER = 'reduce.wgsl';
/** Invocations per workgroup. */
export const SUM_WORKGROUP = 32;
/** Sums of more values than this are split over several invocations per output (one more level)... */
export const SUM_SPLIT_ABOVE = 4096;
/** ...each adding about this many (whole rows of reduceB values, at least one). */
export const SUM_PER_INVOCATION = 1024;

export interface SumAxes {
  outer?: number;
  reduceA?: number;
  kept?: number;
  reduceB?: number;
}

export interface SumOptions {
  /** Factor of every result (1/N for a mean); default 1. */
  scale?: number;
}

export interface SumAxesOptions extends SumOptions {
  /** Shape of the result, outer * kept elements; default [outer, kept] without its axes of 1. */
  shape?: readonly number[];
}

export interface SumIntoOptions extends SumOptions {
  /** Index of out where output 0 goes; default 0. */
  offset?: number;
}

/** What one level sums: x viewed as [outputs / kept, reduceA, kept, reduceB], chunks invocations per output. */
interface Level {
  outputs: number;
  kept: number;
  reduceA: number;
  reduceB: number;
  chunks: number;
}

/**
 * The levels that sum x viewed as [outer, reduceA, kept, reduceB]. Contiguous sums are folded into
 * one axis first (kept = 1: each output's reduceA * reduceB values are adjacent; reduceA = 1: each
 * output's reduceB values are), so that the kernel walks them four per trip. A level that splits
 * its sums writes [chunks, outputs] partial sums, which the next level sums over its first axis.
 */
function plan(outer: number, reduceA: number, kept: number, reduceB: number): Level[] {
  let v = kept === 1 ? { outputs: outer, kept: 1, reduceA: reduceA * reduceB, reduceB: 1 }
    : reduceA === 1 ? { outputs: outer * kept, kept: 1, reduceA: reduceB, reduceB: 1 }
      : { outputs: outer * kept, kept, reduceA, reduceB };
  const levels: Level[] = [];
  for (;;) {
    const length = v.reduceA * v.reduceB;
    const rowsEach = Math.max(1, Math.floor(SUM_PER_INVOCATION / v.reduceB));
    const chunks = length <= SUM_SPLIT_ABOVE ? 1 : Math.ceil(v.reduceA / rowsEach);
    levels.push({ ...v, chunks });
    if (chunks === 1) return levels;
    v = v.outputs === 1 ? { outputs: 1, kept: 1, reduceA: chunks, reduceB: 1 } : { outputs: v.outputs, kept: v.outputs, reduceA: chunks, reduceB: 1 };
  }
}

/** Rounding depth of one level (see shaders/reduce.wgsl): the most additions a value passes through. */
function levelDepth(l: Level): number {
  const rows = Math.ceil(l.reduceA / l.chunks);
  return (l.reduceB === 1 ? Math.ceil(rows / 4) : rows * Math.ceil(l.reduceB / 4)) + 1;
}

/** Records the levels that write scale * the sums of x into out[offset ..]; arguments are checked by the caller. */
function record(ctx: Context, x: Tensor, levels: Level[], out: Tensor, offset: number, scale: number, entry: 'sum_axes' | 'max_axes' = 'sum_axes'): void {
  let current = x;
  levels.forEach((l, i) => {
    const last = i === levels.length - 1;
    const target = last ? out : ctx.empty([l.chunks * l.outputs]);
    ctx.dispatch({
      shader: SHADER, entry, constants: { WG: SUM_WORKGROUP },
      uniforms: { outputs: l.outputs, kept: l.kept, reduce_a: l.reduceA, reduce_b: l.reduceB, chunks: l.chunks, offset: last ? offset : 0, scale: last ? scale : 1 },
      bindings: { x: current, out: target },
      workgroups: grid(Math.ceil((l.chunks * l.outputs) / SUM_WORKGROUP)),
    });
    // Safe to release now: a pooled buffer handed out again is only written
    // by work recorded after this level (ctx.write flushes first).
    if (current !== x) current.dispose();
    current = target;
  });
}

/**
 * The rounding depth D of the sums of this view (see shaders/reduce.wgsl): each result is within
 * gamma_D * |scale| * sum |x| of the exact scaled sum (the sum of |x| over that result's values),
 * gamma_D = D u / (1 - D u), u = 2^-24.
 */
export function sumRoundingDepth(axes: SumAxes, options: SumOptions = {}): number {
  const { outer, reduceA, kept, reduceB } = checkAxes('sumRoundingDepth', axes);
  const scale = checkScale('sumRoundingDepth', options);
  return plan(outer, reduceA, kept, reduceB).reduce((d, l) => d + levelDepth(l), scale === 1 ? 0 : 1);
}

// ------------------------------------------------------------------ checks

const AXES = ['outer', 'reduceA', 'kept', 'reduceB'] as const;

function checkAxes(op: string, axes: SumAxes): Required<SumAxes> {
  if (axes === null || typeof axes !== 'object' || Array.isArray(axes)) throw argumentError(op, 'axes', '{ outer?, reduceA?, kept?, reduceB? }', axes);
  for (const key of Object.keys(axes)) {
    if (!(AXES as readonly string[]).includes(key)) throw argumentError(op, 'axes', `only the keys ${AXES.join(', ')}`, `a key '${key}'`);
  }
  const sizes = {} as Required<SumAxes>;
  for (const key of AXES) sizes[key] = axes[key] === undefined ? 1 : checkInt(op, `axes.${key}`, axes[key], 1);
  return sizes;
}

/** The axes, checked against x; a product other than x.size is an error naming both. */
function checkView(ctx: Context, op: string, x: Tensor, axes: SumAxes): Required<SumAxes> {
  checkF32(ctx, op, 'x', x);
  const a = checkAxes(op, axes);
  const product = a.outer * a.reduceA * a.kept * a.reduceB;
  if (product !== x.size) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'axes' expected outer * reduceA * kept * reduceB = ${x.size} (the size of x ${showShape(x.shape)}), got ${a.outer} * ${a.reduceA} * ${a.kept} * ${a.reduceB} = ${product}`);
  }
  return a;
}

function checkOptions(op: string, options: unknown): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw argumentError(op, 'options', 'an options object', options);
}

function checkScale(op: string, options: SumOptions): number {
  checkOptions(op, options);
  return options.scale === undefined ? 1 : checkNumber(op, 'options.scale', options.scale);
}

/** out[offset .. offset + count) exists and out does not share x's buffer. */
function checkTarget(ctx: Context, op: string, x: Tensor, out: Tensor, offsetName: string, offset: unknown, count: number): number {
  checkF32(ctx, op, 'out', out);
  const at = checkInt(op, offsetName, offset, 0);
  if (at + count > out.size) {
    throw argumentError(op, offsetName, count === 1 ? `an integer < ${out.size} (the size of out)` : `an integer <= ${out.size - count} (out has ${out.size} elements, the sums ${count})`, at);
  }
  // One dispatch may not read and write the same buffer (reshape shares buffers).
  if (x.buffer === out.buffer) throw argumentError(op, 'out', "a tensor that does not share x's buffer", out);
  return at;
}

// --------------------------------------------------------------------- ops

/** scale * the sums of x viewed as [outer, reduceA, kept, reduceB] over reduceA and reduceB: a tensor of outer * kept elements. */
export function sumAxes(x: Tensor, options: SumAxesOptions & { axes: SumAxes }): Tensor<'f32'> {
  const ctx = contextOf('sumAxes', { x });
  const axes = optionsOf('sumAxes', options).axes;
  const op = 'sumAxes';
  const { outer, reduceA, kept, reduceB } = checkView(ctx, op, x, axes);
  const scale = checkScale(op, options);
  const count = outer * kept;
  let shape: readonly number[] = outer === 1 ? [kept] : kept === 1 ? [outer] : [outer, kept];
  if (options.shape !== undefined) {
    const s = options.shape;
    if (!Array.isArray(s) || s.length === 0 || s.some((d) => !Number.isInteger(d) || d < 1) || s.reduce((p, d) => p * d, 1) !== count) {
      throw argumentError(op, 'options.shape', `an array of positive integers with ${count} elements (outer * kept)`, s);
    }
    shape = s;
  }
  const out = ctx.empty(shape);
  record(ctx, x, plan(outer, reduceA, kept, reduceB), out, 0, scale);
  return out;
}

/** Writes the outer * kept results of sumAxes into out[offset ..] and leaves the other elements of out as they are. */
export function sumAxesInto(x: Tensor, out: Tensor, options: SumIntoOptions & { axes: SumAxes }): void {
  const ctx = contextOf('sumAxesInto', { x, out });
  const axes = optionsOf('sumAxesInto', options).axes;
  const op = 'sumAxesInto';
  const { outer, reduceA, kept, reduceB } = checkView(ctx, op, x, axes);
  const scale = checkScale(op, options);
  const offset = checkTarget(ctx, op, x, out, 'options.offset', options.offset ?? 0, outer * kept);
  record(ctx, x, plan(outer, reduceA, kept, reduceB), out, offset, scale);
}

/** scale * the sum of all elements of `x`, as a [1] tensor. */
export function sum(x: Tensor, options: SumOptions = {}): Tensor<'f32'> {
  const ctx = contextOf('sum', { x });
  checkF32(ctx, 'sum', 'x', x);
  const scale = checkScale('sum', options);
  const out = ctx.empty([1]);
  record(ctx, x, plan(1, x.size, 1, 1), out, 0, scale);
  return out;
}

/** Writes scale * sum(x) into out[index] and leaves the other elements of `out` as they are (gathers per-layer KL terms). */
export function sumInto(x: Tensor, out: Tensor, options: SumOptions & { index: number }): void {
  const ctx = contextOf('sumInto', { x, out });
  const index = optionsOf('sumInto', options).index;
  const op = 'sumInto';
  checkF32(ctx, op, 'x', x);
  const at = checkTarget(ctx, op, x, out, 'index', index, 1);
  const scale = checkScale(op, options);
  record(ctx, x, plan(1, x.size, 1, 1), out, at, scale);
}

/**
 * Writes the largest element of x into out[index] and leaves the other elements of `out` as they are
 * (reduce.wgsl's max_axes, in the levels of a full sum; a max is exact). The smallest is
 * -maxInto(scale(x, -1)): fit's per-layer sigma range (src/train/diagnostics.ts).
 */
export function maxInto(x: Tensor, out: Tensor, options: { index: number }): void {
  const ctx = contextOf('maxInto', { x, out });
  const index = optionsOf('maxInto', options).index;
  const op = 'maxInto';
  checkF32(ctx, op, 'x', x);
  const at = checkTarget(ctx, op, x, out, 'index', index, 1);
  record(ctx, x, plan(1, x.size, 1, 1), out, at, 1, 'max_axes');
}
