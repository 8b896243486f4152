/**
 * Kernel checks that run in any runtime with a Context: in the browser page
 * (test/browser/page.ts, bundled with the shaders inlined) and in Deno
 * (test/deno/smoke.ts). Each check runs ops on the GPU, computes the float64
 * reference from test/reference/ in the same runtime, and returns the
 * comparisons; the vitest side (browser.test.ts, deno.test.ts) asserts them.
 *
 * This file must stay runtime-neutral: no vitest, no Node built-ins, no DOM.
 *
 * To add a check: write `async (ctx) => [compare(...), ...]` below and give it
 * a name `family.what` in `checks`. The page and the Deno smoke pick it up by
 * name, and both tests run every check in the registry.
 */
import type { Context } from '../../src/index.js';
import { activationBackward, activationForward } from '../../src/ops/activation.js';
import { reluBackwardRef, reluRef, softplusBackwardRef, softplusRef } from '../reference/activation.js';
import { randomArray } from './determinism.js';

export interface Comparison {
  what: string;
  /** max |got - want| / max(|want|): relative to the tensor's magnitude, as test/helpers.ts expectClose. */
  maxError: number;
  tolerance: number;
  /** Where the worst error is, for the failure message. */
  worst: { index: number; got: number; want: number } | null;
}

export type Check = (ctx: Context) => Promise<Comparison[]>;

export interface CheckResult {
  name: string;
  ok: boolean;
  comparisons: Comparison[];
  /** Set when the check threw (an op error, a GPU validation error, ...). */
  error?: string;
  ms: number;
}

/** True when a comparison is within its tolerance; also safe after JSON (where Infinity became null). */
export function passes(c: Comparison): boolean {
  return typeof c.maxError === 'number' && c.maxError <= c.tolerance;
}

/** Compares `got` with `want` the way expectClose does, without asserting. */
export function compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number): Comparison {
  if (got.length !== want.length) {
    return { what: `${what} (length ${got.length}, want ${want.length})`, maxError: Infinity, tolerance, worst: null };
  }
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let maxError = 0;
  let worst: Comparison['worst'] = null;
  for (let i = 0; i < want.length; i++) {
    const err = Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - want[i]) / Math.max(scale, 1e-30);
    if (err > maxError || (worst === null && err === maxError)) {
      maxError = err;
      worst = { index: i, got: got[i], want: want[i] };
    }
  }
  return { what, maxError, tolerance, worst };
}

// ------------------------------------------------------------- activations

/** Sizes: a single element, one partial workgroup, several workgroups. */
const ACTIVATION_SIZES = [1, 7, 1000, 4099];

const activationForwardCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const out: Comparison[] = [];
    for (const n of ACTIVATION_SIZES) {
      const xs = randomArray(n, n, -25, 25);
      const x = ctx.tensor(xs, [n]);
      // Tolerance 1e-6: f32 rounding of exp/log, as test/ops/activation.test.ts.
      out.push(compare(`relu n=${n}`, await activationForward(ctx, 'relu', x).read(), reluRef(xs), 1e-6));
      out.push(compare(`softplus n=${n}`, await activationForward(ctx, 'softplus', x).read(), softplusRef(xs), 1e-6));
    }
    return out;
  });

const activationBackwardCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const out: Comparison[] = [];
    for (const n of ACTIVATION_SIZES) {
      const xs = randomArray(n, n, -25, 25);
      const dys = randomArray(n, n + 1);
      const x = ctx.tensor(xs, [n]);
      const dy = ctx.tensor(dys, [n]);
      // Tolerance 1e-6: f32 rounding of the sigmoid, as test/ops/activation.test.ts.
      out.push(compare(`relu backward n=${n}`, await activationBackward(ctx, 'relu', x, dy).read(), reluBackwardRef(xs, dys), 1e-6));
      out.push(compare(`softplus backward n=${n}`, await activationBackward(ctx, 'softplus', x, dy).read(), softplusBackwardRef(xs, dys), 1e-6));
    }
    return out;
  });

/** sigma = softplus(rho) for very negative rho must stay relatively accurate (not flush to 0). */
const softplusSmallCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const rho = [-20, -16, -15.5, -30];
    const got = await activationForward(ctx, 'softplus', ctx.tensor(rho, [rho.length])).read();
    const want = softplusRef(rho);
    // Each entry judged against itself (not the tensor's magnitude): 1e-5 relative, f32 exp near its subnormal-free range.
    return rho.map((r, i) => compare(`softplus(${r}) relative`, [got[i] / want[i]], [1], 1e-5));
  });

/** Every check by name; the page and the Deno smoke run these. */
export const checks: Record<string, Check> = {
  'activation.forward': activationForwardCheck,
  'activation.backward': activationBackwardCheck,
  'activation.softplus_small': softplusSmallCheck,
};

/** Runs the named checks (all when `names` is omitted) one after the other; never throws. */
export async function runChecks(ctx: Context, registry: Record<string, Check> = checks, names: readonly string[] = Object.keys(registry)): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const name of names) {
    const check = registry[name];
    const started = performance.now();
    if (!check) {
      results.push({ name, ok: false, comparisons: [], error: `no check named '${name}' (have: ${Object.keys(registry).join(', ')})`, ms: 0 });
      continue;
    }
    try {
      const comparisons = await check(ctx);
      await ctx.sync(); // surfaces a validation error of work the check recorded but never read
      const ok = comparisons.length > 0 && comparisons.every(passes);
      results.push({ name, ok, comparisons, ms: performance.now() - started });
    } catch (e) {
      results.push({ name, ok: false, comparisons: [], error: String((e as Error)?.stack ?? e), ms: performance.now() - started });
    }
  }
  return results;
}

/** One readable line per failed comparison or error, for assertion messages. */
export function describeFailures(results: readonly CheckResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.error) lines.push(`${r.name}: threw ${r.error}`);
    else if (r.comparisons.length === 0) lines.push(`${r.name}: made no comparison`);
    for (const c of r.comparisons) {
      if (!passes(c)) {
        const at = c.worst ? ` at index ${c.worst.index} (got ${c.worst.got}, want ${c.worst.want})` : '';
        lines.push(`${r.name} / ${c.what}: max relative error ${typeof c.maxError === 'number' ? c.maxError.toExponential(3) : 'Infinity'} > ${c.tolerance}${at}`);
      }
    }
  }
  return lines;
}
