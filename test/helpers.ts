/**
 * Shared test plumbing: one context per test file, destroyed afterwards so that
 * dawn.node lets the process exit; comparison helpers with stated tolerances.
 */
import { afterAll, expect } from 'vitest';
import { createContext, type Context } from '../src/node.js';
import { BayesError } from '../src/errors.js';

let ctx: Promise<Context> | undefined;

export function context(): Promise<Context> {
  if (!ctx) {
    ctx = createContext();
    afterAll(async () => (await ctx!).destroy());
  }
  return ctx;
}

// Deterministic test inputs (mulberry32): one copy, shared with the page and Deno harnesses.
export { randomArray, rng } from './browser/random.js';

/**
 * Asserts |got - want| <= rtol * max(|want|, scale) elementwise, where `scale`
 * is the largest |want| (so tiny entries are judged against the tensor's magnitude).
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what = 'value'): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / Math.max(scale, 1e-30);
    if (!(err <= worst) || Number.isNaN(got[i])) {
      worst = Number.isNaN(got[i]) ? Infinity : err;
      worstAt = i;
    }
  }
  if (worst > rtol) {
    throw new Error(`${what}: max relative error ${worst.toExponential(3)} > ${rtol} at index ${worstAt} (got ${got[worstAt]}, want ${want[worstAt]}, scale ${scale})`);
  }
}

/** Central finite difference of f at x along every coordinate (float64). */
export function numericGradient(f: (x: Float64Array) => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + h;
    const fp = f(x);
    x[i] = old - h;
    const fm = f(x);
    x[i] = old;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/**
 * Central differences with a step relative to each coordinate, h = rel * max(1, |x_i|), for parameters
 * of any scale: x is changed in place and restored, `loss` reads it.
 */
export function relativeNumericGradient(loss: () => number, x: { length: number; [i: number]: number }, rel = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    const h = rel * Math.max(1, Math.abs(old));
    x[i] = old + h;
    const up = loss();
    x[i] = old - h;
    const down = loss();
    x[i] = old;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/** Sum of a[i] * b[i]: the scalar loss L = <y, dy> whose gradient backward passes compute. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// ------------------------------------------------------------------ GEMM variants

import { GEMM_VARIANTS } from '../src/gpu/gemm_variants.js';

/** Every tiling of the GEMM core: each GEMM-based op is tested once under each. */
export const GEMM_VARIANT_NAMES: readonly string[] = GEMM_VARIANTS.map((v) => v.name);

const forced = new Map<string, Promise<Context>>();

/** A context of this test file whose every GEMM op runs `variant` (destroyed after the file). */
export function variantContext(variant: string): Promise<Context> {
  let c = forced.get(variant);
  if (!c) {
    c = createContext({ gemm: { variant } });
    forced.set(variant, c);
    const made = c;
    afterAll(async () => (await made).destroy());
  }
  return c;
}

/** Runs `f` and checks that it throws a BayesError whose message matches `pattern`. */
export function expectError(f: () => unknown, pattern: RegExp) {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(error, `expected a BayesError matching ${pattern}`).toBeInstanceOf(BayesError);
  expect((error as Error).message).toMatch(pattern);
}
