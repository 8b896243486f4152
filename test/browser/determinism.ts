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
 * To add a computation: derive every input from `seed` with randomArray (never
 * Math.random), use RandomKey { seed, step, stream } for GPU draws, read back
 * what should agree, and add it to `computations`. browser.test.ts and
 * deno.test.ts compare every entry with the Node run.
 */
import type { Context } from '../../src/index.js';
import { activationBackward, activationForward } from '../../src/ops/activation.js';
import { drawNormal, sampleWeights } from '../../src/ops/sample.js';
import { Adam } from '../../src/train/adam.js';
import { trainStep } from '../../src/train/step.js';
import { randomArray } from './random.js';
import { TINY, TINY_INPUT_SHAPE, TINY_LABELS, type TinyModel, tinyModel } from './tiny_model.js';

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

// The generator of every input, re-exported for the callers that import it from here.
export { randomArray, rng } from './random.js';

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
        relu: plain(await activationForward(x, { kind: 'relu' }).read()),
        softplus: plain(await activationForward(x, { kind: 'softplus' }).read()),
        relu_backward: plain(await activationBackward(dy, x, { kind: 'relu' }).read()),
        softplus_backward: plain(await activationBackward(dy, x, { kind: 'softplus' }).read()),
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
      eps: plain(await drawNormal(ctx, [1031], { key: { seed, step: 3, stream: 7 } }).read()),
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
      return { w: plain(await sampleWeights(mu, rho, { key: { seed, step: 11, stream: 2 }, samples: 3 }).read()) };
    }),
};

/** Runs `fn` on the tiny Bayesian CNN of tiny_model.ts (weights from `seed`, written with ctx.write), then frees it. */
async function withTinyModel(ctx: Context, seed: number, fn: (tiny: TinyModel) => Promise<Outputs>): Promise<Outputs> {
  const tiny = tinyModel(ctx, 'lrt', seed);
  try {
    return await ctx.scope(() => fn(tiny));
  } finally {
    tiny.dispose();
  }
}

/**
 * The sampled forward pass of BBBConv2d -> softplus -> max-pool -> BBBLinear
 * with the local reparameterization trick (Kingma et al. 2015, eq. 6): the
 * activations' noise comes from the generator, so the logits are a pure
 * function of the weights, the input and the key.
 */
const lrtForward: Computation = {
  describe: 'sampled LRT forward of the tiny Bayesian CNN (fixed weights), 2 MC samples batched: logits and KL',
  run: (ctx, seed) =>
    withTinyModel(ctx, seed, async ({ model, xs }) => {
      const { logits, kl } = model.run(ctx.tensor(xs, TINY_INPUT_SHAPE), { samples: TINY.samples, seed, step: 1 });
      return { logits: plain(await logits.read()), kl: plain(await kl!.read()) };
    }),
};

/** One training step (ELBO forward, backward, one Adam update): the loss and every parameter afterwards. */
const trainingStep: Computation = {
  describe: 'one trainStep of the tiny Bayesian CNN (2 MC samples, beta 0.7, Adam lr 0.01): loss and parameters after the update',
  run: (ctx, seed) =>
    withTinyModel(ctx, seed, async ({ model, xs }) => {
      const adam = new Adam(model, { lr: 0.01 });
      try {
        const labels = ctx.tensor(TINY_LABELS, [TINY.batch], 'u32');
        const result = trainStep(model, adam, ctx.tensor(xs, TINY_INPUT_SHAPE), labels, { samples: TINY.samples, beta: 0.7, trainSize: 10, seed });
        const out: Outputs = { loss: plain(await result.figures.read()).slice(0, 1) };
        for (const [name, p] of model.namedParameters()) out[name] = plain(await p.value.read());
        return out;
      } finally {
        adam.dispose();
      }
    }),
};

/** Monte Carlo prediction with 8 samples and its uncertainty decomposition (model.predict, src/nn/predict.ts). */
const mcPredictions: Computation = {
  describe: 'predict of the tiny Bayesian CNN with 8 MC samples: predictive distribution, epistemic/aleatoric parts, entropies, mutual information',
  run: (ctx, seed) =>
    withTinyModel(ctx, seed, async ({ model, xs }) => {
      const p = await model.predict(ctx.tensor(xs, TINY_INPUT_SHAPE), { samples: 8, seed, step: 3, keepSamples: true });
      return {
        probs: plain(p.probs!), mean: plain(p.mean), epistemic: plain(p.epistemic), aleatoric: plain(p.aleatoric),
        predictiveEntropy: plain(p.predictiveEntropy), expectedEntropy: plain(p.expectedEntropy), mutualInformation: plain(p.mutualInformation),
      };
    }),
};

/** Every computation by name; each test compares all of them across runtimes. */
export const computations: Record<string, Computation> = {
  activation,
  drawNormal: normalDraws,
  sampleWeights: weightSamples,
  lrtForward,
  trainStep: trainingStep,
  mcPredict: mcPredictions,
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

/** Largest |got - want| / max |want| of one output, and where; Infinity for a NaN or a non-number. */
function worstDifference(g: number[], w: number[]): { worst: number; at: number } {
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
  return { worst, at };
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
      const { worst, at } = worstDifference(g, w);
      if (worst > tolerance) problems.push(`${name}.${key}: max relative difference ${worst.toExponential(3)} > ${tolerance} at index ${at} (got ${g[at]}, want ${w[at]})`);
    }
  }
  for (const name of Object.keys(got)) if (!(name in want)) problems.push(`${name}: not in the reference run`);
  return problems;
}

/** One line: each computation's largest relative difference over its outputs (for the test log). */
export function summarizeDifferences(got: Record<string, Outputs>, want: Record<string, Outputs>): string {
  return Object.entries(want)
    .map(([name, outputs]) => {
      let worst = 0;
      for (const [key, w] of Object.entries(outputs)) {
        const g = got[name]?.[key];
        worst = Math.max(worst, g && g.length === w.length ? worstDifference(g, w).worst : Infinity);
      }
      return `${name} ${worst === 0 ? '0' : worst.toExponential(1)}`;
    })
    .join(', ');
}
