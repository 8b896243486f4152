/**
 * A GPU-side non-finite check (shaders/finite.wgsl): a small u32 flag tensor records which steps met a
 * NaN or an infinity, in which tensor first, and of which kind, without reading anything back. A step
 * checks its loss and every gradient into it; adamStep's gate (src/ops/adam.ts) then holds the update
 * back on the GPU, and the CPU decodes the flags whenever it reads them (decodeNonFiniteFlags).
 *
 *   nonFiniteFlags(ctx, slots)                         -> u32 [3 + 2 slots], zeroed
 *   checkFiniteInto(ctx, xs, flags, slot, step)        flags the step (and slot + k) if xs[k] holds a NaN or +-Inf
 *   countNonFiniteStep(ctx, flags, step)               after the step's checks: counts it if it was flagged
 *   nonFiniteGate(flags, step, sticky)                 the gate of adamStep for this step
 *   flagsIntoF32(ctx, flags, out, offset)              the flags as 16-bit halves in an f32 tensor (exact)
 *   decodeNonFiniteFlags(words, slots)                 what the flags say, on the CPU
 *
 * A step's mark is step + 1, so steps run from 0 to 2^32 - 2.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt } from '../errors.js';
import type { AdamGate } from './adam.js';
import { checkF32, contextOf, optionsOf } from './check.js';

const SHADER = 'finite.wgsl';
const WG = 64;
/** Elements per invocation of check_finite (as elementwise.wgsl). */
const PER_THREAD = 8;
/** Tensors per check_finite dispatch (its bindings x0 .. x6). */
const PER_DISPATCH = 7;
/** Words before the first slot: GATE, COUNT, one unused. */
const HEADER = 3;
const MAX_STEP = 0xffffffff - 1;

/** Words of a flag tensor with `slots` slots. */
export const nonFiniteFlagWords = (slots: number): number => HEADER + 2 * slots;

function checkFlags(ctx: Context, op: string, flags: Tensor): number {
  ctx.own(op, 'flags', flags);
  if (flags.dtype !== 'u32' || flags.shape.length !== 1 || flags.size < HEADER + 2 || (flags.size - HEADER) % 2 !== 0) {
    throw argumentError(op, 'flags', 'a u32 tensor from nonFiniteFlags', flags);
  }
  return (flags.size - HEADER) / 2;
}

function checkStep(op: string, step: number): number {
  checkInt(op, 'step', step, 0);
  if (step > MAX_STEP) throw argumentError(op, 'step', `an integer <= ${MAX_STEP} (its mark step + 1 is a u32)`, step);
  return step;
}

/** A zeroed flag tensor with `slots` slots (for example 1 + the number of parameters: the loss, then each gradient). */
export function nonFiniteFlags(ctx: Context, slots: number): Tensor<'u32'> {
  checkInt('nonFiniteFlags', 'slots', slots, 1);
  return ctx.zeros([nonFiniteFlagWords(slots)], 'u32');
}

/**
 * If any element of `xs[k]` (f32) is NaN or +-Inf: marks `step` as non-finite and records it in slot
 * `slot + k` (its first step and what it held). Seven tensors per dispatch (a step's loss and the 20
 * gradients of a Bayesian LeNet take three).
 */
export function checkFiniteInto(xs: Tensor | readonly Tensor[], flags: Tensor<'u32'>, options: { slot: number; step: number }): void {
  const ctx = contextOf('checkFiniteInto', { flags });
  const { slot, step } = optionsOf('checkFiniteInto', options);
  const op = 'checkFiniteInto';
  const list = Array.isArray(xs) ? (xs as readonly Tensor[]) : [xs as Tensor];
  list.forEach((x, k) => checkF32(ctx, op, Array.isArray(xs) ? `xs[${k}]` : 'xs', x));
  const slots = checkFlags(ctx, op, flags);
  checkInt(op, 'slot', slot, 0);
  if (slot + list.length > slots) throw argumentError(op, 'slot', `an integer <= ${slots - list.length} (${list.length} tensor(s) from it, the flags have ${slots} slots)`, slot);
  checkStep(op, step);
  for (let from = 0; from < list.length; from += PER_DISPATCH) {
    const group = list.slice(from, from + PER_DISPATCH);
    const uniforms: Record<string, number> = { mark: step + 1 };
    const bindings: Record<string, Tensor> = { flags };
    const unbound: string[] = [];
    for (let k = 0; k < PER_DISPATCH; k++) {
      if (k < group.length) {
        bindings[`x${k}`] = group[k];
        uniforms[`n${k}`] = group[k].size;
        uniforms[`slot${k}`] = slot + from + k;
      } else {
        unbound.push(`x${k}`);
      }
    }
    const largest = Math.max(...group.map((x) => x.size));
    ctx.dispatch({ shader: SHADER, entry: 'check_finite', constants: { WG, PER_THREAD }, uniforms, bindings, unbound, workgroups: grid(Math.ceil(largest / (WG * PER_THREAD))) });
  }
}

/** After a step's checks: adds 1 to the count of non-finite steps if `step` was flagged. */
export function countNonFiniteStep(flags: Tensor<'u32'>, options: { step: number }): void {
  const ctx = contextOf('countNonFiniteStep', { flags });
  const { step } = optionsOf('countNonFiniteStep', options);
  const op = 'countNonFiniteStep';
  checkFlags(ctx, op, flags);
  checkStep(op, step);
  ctx.dispatch({ shader: SHADER, entry: 'count_step', uniforms: { mark: step + 1 }, bindings: { flags }, workgroups: [1] });
}

/**
 * The gate of adamStep for `step`: closed if this step was flagged, or (sticky) if any step so far
 * was, so that after the first non-finite step nothing more is applied.
 */
export function nonFiniteGate(flags: Tensor<'u32'>, step: number, sticky: boolean): AdamGate {
  checkStep('nonFiniteGate', step);
  return { flags, from: sticky ? 1 : step + 1 };
}

/** Writes the flags into out[offset .. offset + 2 words) as 16-bit halves (low, high), exact in f32. */
export function flagsIntoF32(flags: Tensor<'u32'>, out: Tensor, options: { offset: number }): void {
  const ctx = contextOf('flagsIntoF32', { flags, out });
  const { offset } = optionsOf('flagsIntoF32', options);
  const op = 'flagsIntoF32';
  checkFlags(ctx, op, flags);
  checkF32(ctx, op, 'out', out);
  checkInt(op, 'offset', offset, 0);
  if (offset + 2 * flags.size > out.size) throw argumentError(op, 'offset', `at most ${out.size - 2 * flags.size} (out holds ${out.size} values, the flags need ${2 * flags.size})`, offset);
  ctx.dispatch({ shader: SHADER, entry: 'flags_to_f32', constants: { WG }, uniforms: { words: flags.size, offset }, bindings: { flags, out }, workgroups: [Math.ceil(flags.size / WG)] });
}

/** The u32 words of flags from their 16-bit halves in an f32 array (as flagsIntoF32 wrote them at `offset`). */
export function flagWordsFromF32(values: ArrayLike<number>, offset: number, words: number): Uint32Array {
  return Uint32Array.from({ length: words }, (_, j) => (values[offset + 2 * j] + values[offset + 2 * j + 1] * 65536) >>> 0);
}

export interface NonFiniteKinds {
  nan: boolean;
  posInf: boolean;
  negInf: boolean;
}

export interface NonFiniteRecord {
  /** Steps found non-finite (each counted once, whichever tensors were). */
  count: number;
  /** The latest such step, or null. */
  latest: number | null;
  /** The earliest such step over all slots, or null. */
  first: number | null;
  /** Per slot: its first non-finite step and what it held then, or null if it never was. */
  slots: ({ step: number; kinds: NonFiniteKinds } | null)[];
}

/** What a flag tensor's words say. */
export function decodeNonFiniteFlags(words: ArrayLike<number>): NonFiniteRecord {
  const slots = (words.length - HEADER) / 2;
  const record: NonFiniteRecord = { count: words[1], latest: words[0] > 0 ? words[0] - 1 : null, first: null, slots: [] };
  for (let k = 0; k < slots; k++) {
    const code = words[HEADER + 2 * k];
    const bits = words[HEADER + 2 * k + 1];
    if (code === 0) {
      record.slots.push(null);
      continue;
    }
    const step = 0xffffffff - code;
    record.slots.push({ step, kinds: { nan: (bits & 1) !== 0, posInf: (bits & 2) !== 0, negInf: (bits & 4) !== 0 } });
    if (record.first === null || step < record.first) record.first = step;
  }
  return record;
}

/** 'NaN', '+Inf, -Inf', ...: what a slot held. */
export function describeKinds(k: NonFiniteKinds): string {
  return [k.nan && 'NaN', k.posInf && '+Inf', k.negInf && '-Inf'].filter(Boolean).join(', ');
}
