/**
 * Cross-runtime determinism: the same computation, from the same seed and the
 * same fixed weights, run in Node (Dawn), in the browser page and in Deno
 * (wgpu), must give the same outputs within 1e-5 (relative to each output's
 * magnitude). The computations return plain number arrays so that they cross
 * page.evaluate and a Deno child's stdout as JSON without loss (JSON
 * round-trips every float64, so every float32 too).
 *
 * This file must stay runtime-neutral: no vitest, no Node built-ins, no DOM.
 *
 * To add a computation (the sampled LRT forward, a training step, MC
 * predictions): derive every input from `seed` with randomArray (never
 * Math.random), use RandomKey { seed, step, stream } for GPU draws, read back
 * what should agree, and add it to `computations`. browser.test.ts and
 * deno.test.ts compare every entry with the Node run.
 */
import type { Context } from '../../src/index.js';
import { activationBackward, activationForward } from '../../src/ops/activation.js';
import { drawNormal, sampleWeights } from '../../src/ops/sample.js';

/** Named outputs of one computation, each a flat array of numbers. */
export type Outputs = Record<string, number[]>;

export interface Computation {
  describe: string;
  run(ctx: Context, seed: number): Promise<Outputs>;
}

/** The seed the tests pass everywhere. */
export const DETERMINISM_SEED = 20240611;

/** Relative tolerance between runtimes (f32 transcendental functions may differ in the last bits between Dawn and wgpu backends). */
export const CROSS_RUNTIME_TOLERANCE = 1e-5;

/** mulberry32, as rng in test/helpers.ts (which imports vitest and so cannot run in a page or Deno). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Same values as randomArray in test/helpers.ts for the same arguments. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

const plain = (a: ArrayLike<number>) => Array.from(a);

/** relu and softplus, forward and backward, on inputs spanning both branches of softplus. */
const activation: Computation = {
  describe: 'relu/softplus forward and backward of 257 values in [-6, 6]',
  run: (ctx, seed) =>
    ctx.scope(async () => {
      const n = 257;
      const x = ctx.tensor(randomArray(n, seed, -6, 6), [n]);
      const dy = ctx.tensor(randomArray(n, seed + 1), [n]);
      return {
        relu: plain(await activationForward(ctx, 'relu', x).read()),
        softplus: plain(await activationForward(ctx, 'softplus', x).read()),
        relu_backward: plain(await activationBackward(ctx, 'relu', x, dy).read()),
        softplus_backward: plain(await activationBackward(ctx, 'softplus', x, dy).read()),
      };
    }),
};

/**
 * Raw standard-normal draws of the counter-based generator: a pure function of
 * (seed, step, stream, index), so every runtime must produce the same values.
 */
const normalDraws: Computation = {
  describe: 'drawNormal of 1031 values for key (seed, step 3, stream 7)',
  run: (ctx, seed) =>
    ctx.scope(async () => ({
      eps: plain(await drawNormal(ctx, [1031], { seed, step: 3, stream: 7 }).read()),
    })),
};

/**
 * Reparameterized weights w = mu + softplus(rho) * eps (Blundell et al. 2015,
 * section 3.2) from fixed mu and rho: the first step of every Bayesian layer's
 * sampled forward pass.
 */
const weightSamples: Computation = {
  describe: 'sampleWeights: 3 samples of a [5, 3, 3, 3] kernel with fixed mu, rho',
  run: (ctx, seed) =>
    ctx.scope(async () => {
      const shape = [5, 3, 3, 3];
      const n = 5 * 27;
      const mu = ctx.tensor(randomArray(n, seed + 2, -0.5, 0.5), shape);
      const rho = ctx.tensor(randomArray(n, seed + 3, -6, -2), shape);
      return { w: plain(await sampleWeights(ctx, mu, rho, { seed, step: 11, stream: 2 }, 3).read()) };
    }),
};

/** Every computation by name; each test compares all of them across runtimes. */
export const computations: Record<string, Computation> = {
  activation,
  drawNormal: normalDraws,
  sampleWeights: weightSamples,
};

/** Runs the named computations (all when omitted) with one seed. Throws on the first failure. */
export async function runComputations(ctx: Context, seed: number, names: readonly string[] = Object.keys(computations)): Promise<Record<string, Outputs>> {
  const out: Record<string, Outputs> = {};
  for (const name of names) {
    const c = computations[name];
    if (!c) throw new Error(`runComputations: no computation named '${name}' (have: ${Object.keys(computations).join(', ')})`);
    out[name] = await c.run(ctx, seed);
  }
  return out;
}

/**
 * Differences between two runs of the same computations: one line per output
 * that is missing, has another length, or differs by more than `tolerance`
 * relative to the larger magnitude of the reference output. Empty when equal.
 */
export function compareOutputs(got: Record<string, Outputs>, want: Record<string, Outputs>, tolerance = CROSS_RUNTIME_TOLERANCE): string[] {
  const problems: string[] = [];
  for (const [name, outputs] of Object.entries(want)) {
    for (const [key, w] of Object.entries(outputs)) {
      const g = got[name]?.[key];
      if (!g) {
        problems.push(`${name}.${key}: missing`);
        continue;
      }
      if (g.length !== w.length) {
        problems.push(`${name}.${key}: length ${g.length}, want ${w.length}`);
        continue;
      }
      let scale = 0;
      for (const v of w) scale = Math.max(scale, Math.abs(v));
      let worst = 0;
      let at = -1;
      for (let i = 0; i < w.length; i++) {
        const err = typeof g[i] === 'number' && !Number.isNaN(g[i]) ? Math.abs(g[i] - w[i]) / Math.max(scale, 1e-30) : Infinity;
        if (err > worst) {
          worst = err;
          at = i;
        }
      }
      if (worst > tolerance) problems.push(`${name}.${key}: max relative difference ${worst.toExponential(3)} > ${tolerance} at index ${at} (got ${g[at]}, want ${w[at]})`);
    }
  }
  for (const name of Object.keys(got)) if (!(name in want)) problems.push(`${name}: not in the reference run`);
  return problems;
}
