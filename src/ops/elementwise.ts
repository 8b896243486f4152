/**
 * Elementwise arithmetic (shaders/elementwise.wgsl): add, in-place scaled
 * accumulation, scale, square, fill and tile. Shapes must match exactly; there is
 * no broadcasting, so a shape slip is an error rather than a silent expansion.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, checkNumber, shapeError } from '../errors.js';
import { contextOf } from './check.js';

const WG = 64;
/** Elements per invocation (see the shader's header: fewer, longer invocations suit SwiftShader). */
const PER_THREAD = 8;
const SHADER = 'elementwise.wgsl';

const showShape = (t: Tensor) => `[${t.shape.join(', ')}]`;
const sameShape = (a: Tensor, b: Tensor) => a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);

function checkF32(op: string, argument: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw argumentError(op, argument, "a tensor of dtype 'f32'", `a tensor of dtype '${t.dtype}'`);
}

/** PER_THREAD elements per invocation; every entry takes the same uniform struct, unused members are 0. */
function run(ctx: Context, entry: string, n: number, bindings: Record<string, Tensor>, uniforms: { m?: number; alpha?: number; bits?: number } = {}): void {
  ctx.dispatch({
    shader: SHADER, entry, constants: { WG, PER_THREAD },
    uniforms: { n, m: uniforms.m ?? 0, alpha: uniforms.alpha ?? 0, bits: uniforms.bits ?? 0 },
    bindings, workgroups: grid(Math.ceil(n / (WG * PER_THREAD))),
  });
}

/** a + b, same shape. */
export function add(a: Tensor, b: Tensor): Tensor<'f32'> {
  const ctx = contextOf('add', { a, b });
  ctx.own('add', 'a', a);
  ctx.own('add', 'b', b);
  checkF32('add', 'a', a);
  checkF32('add', 'b', b);
  if (!sameShape(a, b)) throw shapeError('add', 'b', `${showShape(a)} (the shape of a)`, b.shape);
  const out = ctx.empty(a.shape);
  run(ctx, 'add', a.size, { a, b, out });
  return out;
}

/** target += alpha * x, in place (alpha defaults to 1). */
export function addInto(target: Tensor, x: Tensor, alpha = 1): void {
  const ctx = contextOf('addInto', { target, x });
  ctx.own('addInto', 'target', target);
  ctx.own('addInto', 'x', x);
  checkF32('addInto', 'target', target);
  checkF32('addInto', 'x', x);
  if (!sameShape(target, x)) throw shapeError('addInto', 'x', `${showShape(target)} (the shape of target)`, x.shape);
  checkNumber('addInto', 'alpha', alpha);
  // WebGPU forbids binding one buffer as writable and readable in one dispatch.
  if (target.buffer === x.buffer) throw argumentError('addInto', 'x', 'a tensor that does not share its buffer with target (use scale for target *= 1 + alpha)', 'the same buffer as target');
  run(ctx, 'add_into', target.size, { acc: target, a: x }, { alpha });
}

/** alpha * x. */
export function scale(x: Tensor, alpha: number): Tensor<'f32'> {
  const ctx = contextOf('scale', { x });
  ctx.own('scale', 'x', x);
  checkF32('scale', 'x', x);
  checkNumber('scale', 'alpha', alpha);
  const out = ctx.empty(x.shape);
  run(ctx, 'scale', x.size, { a: x, out }, { alpha });
  return out;
}

/** x * x, elementwise. */
export function square(x: Tensor): Tensor<'f32'> {
  const ctx = contextOf('square', { x });
  ctx.own('square', 'x', x);
  checkF32('square', 'x', x);
  const out = ctx.empty(x.shape);
  run(ctx, 'square', x.size, { a: x, out });
  return out;
}

/** Sets every element of t to value (any dtype; u32/i32 tensors take an integer in their range). */
export function fill(t: Tensor, value: number): void {
  const ctx = contextOf('fill', { t });
  ctx.own('fill', 't', t);
  let bits: number;
  if (t.dtype === 'f32') {
    // Infinities are allowed (e.g. a -inf initialised maximum); NaN is not a fill value anyone means.
    checkNumber('fill', 'value', value, (v) => !Number.isNaN(v), 'a number (not NaN)');
    bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  } else if (t.dtype === 'u32') {
    checkNumber('fill', 'value', value, (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff, 'an integer in 0..4294967295 for a u32 tensor');
    bits = value >>> 0;
  } else {
    checkNumber('fill', 'value', value, (v) => Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff, 'an integer in the i32 range for an i32 tensor');
    bits = value >>> 0;
  }
  run(ctx, 'fill', t.size, { words: t }, { bits });
}

/** [times, ...x.shape]: `times` copies of the whole tensor, stacked along a new leading axis. */
export function tile(x: Tensor, times: number): Tensor<'f32'> {
  const ctx = contextOf('tile', { x });
  ctx.own('tile', 'x', x);
  checkF32('tile', 'x', x);
  checkInt('tile', 'times', times, 1);
  const out = ctx.empty([times, ...x.shape]);
  run(ctx, 'tile', out.size, { a: x, out }, { m: x.size });
  return out;
}
