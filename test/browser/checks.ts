/**
 * Checks that run in any runtime with a Context: in the browser page
 * (test/browser/page.ts, bundled with the shaders inlined) and in Deno
 * (test/deno/smoke.ts). Each check runs ops on the GPU, computes the float64
 * reference from test/reference/ in the same runtime, and returns the
 * comparisons; the vitest side (browser.test.ts, deno.test.ts) asserts them.
 *
 * They cover a representative subset of the kernel tests (activations, conv2d
 * forward and backward, the LRT linear forward and its noise statistics, the
 * closed-form KL, softmax/NLL) and the tiny Bayesian CNN of tiny_model.ts as a
 * whole: a sampled forward pass, a full training step (ELBO loss, gradients,
 * Adam) and `predict` with its uncertainty decomposition. Tolerances are those
 * of the matching Node tests, with the same reasons.
 *
 * This file must stay runtime-neutral: no vitest, no Node built-ins, no DOM.
 *
 * To add a check: write `async (ctx) => [compare(...), ...]` below and give it
 * a name `family.what` in `checks`. The page and the Deno smoke pick it up by
 * name, and both tests run every check in the registry.
 */
import type { Context } from '../../src/index.js';
import type { LayerType } from '../../src/nn/bayes.js';
import { activationBackward, activationForward } from '../../src/ops/activation.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward } from '../../src/ops/conv2d.js';
import { type GaussianPrior, klGaussian, klGaussianBackwardInto } from '../../src/ops/kl.js';
import { lrtLinearForward } from '../../src/ops/linear.js';
import { logMeanExp, logSoftmax, logSoftmaxBackward, nllLoss, nllLossBackward } from '../../src/ops/loss.js';
import { sumRoundingDepth } from '../../src/ops/reduce.js';
import { drawNormal } from '../../src/ops/sample.js';
import { Adam } from '../../src/train/adam.js';
import { trainStep } from '../../src/train/step.js';
import { reluBackwardRef, reluRef, softplusBackwardRef, softplusRef } from '../reference/activation.js';
import { adamStepRef } from '../reference/adam.js';
import { type ConvShape, conv2dBackwardRef, conv2dRef, geometryRef } from '../reference/conv2d.js';
import { klGaussianBackwardRef, klGaussianRef } from '../reference/kl.js';
import { lrtForwardRef, lrtMomentsRef } from '../reference/linear.js';
import { logMeanExpRef, logSoftmaxBackwardRef, logSoftmaxRef, nllBackwardRef, nllRef } from '../reference/loss.js';
import { type TinyParams, tinyLossRef } from '../reference/model.js';
import { predictiveReference } from '../reference/uncertainty.js';
import { randomArray, roundToF32 } from './random.js';
import { TINY, TINY_INPUT_SHAPE, TINY_LABELS, TINY_PRIOR, tinyLogitsRef, tinyModel, tinyNoise } from './tiny_model.js';

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
      out.push(compare(`relu n=${n}`, await activationForward(x, { kind: 'relu' }).read(), reluRef(xs), 1e-6));
      out.push(compare(`softplus n=${n}`, await activationForward(x, { kind: 'softplus' }).read(), softplusRef(xs), 1e-6));
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
      out.push(compare(`relu backward n=${n}`, await activationBackward(dy, x, { kind: 'relu' }).read(), reluBackwardRef(xs, dys), 1e-6));
      out.push(compare(`softplus backward n=${n}`, await activationBackward(dy, x, { kind: 'softplus' }).read(), softplusBackwardRef(xs, dys), 1e-6));
    }
    return out;
  });

/** sigma = softplus(rho) for very negative rho must stay relatively accurate (not flush to 0). */
const softplusSmallCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const rho = [-20, -16, -15.5, -30];
    const got = await activationForward(ctx.tensor(rho, [rho.length]), { kind: 'softplus' }).read();
    const want = softplusRef(rho);
    // Each entry judged against itself (not the tensor's magnitude): 1e-5 relative, f32 exp near its subnormal-free range.
    return rho.map((r, i) => compare(`softplus(${r}) relative`, [got[i] / want[i]], [1], 1e-5));
  });

// ------------------------------------------------------------- helpers

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A scalar whose error is judged against a scale of its own (a condition number), not against itself. */
function scaled(what: string, got: number, want: number, scale: number, tolerance: number): Comparison {
  const maxError = Number.isNaN(got) ? Infinity : Math.abs(got - want) / scale;
  return { what, maxError, tolerance, worst: { index: 0, got, want } };
}

/** A statistic within an absolute distance of its expected value. */
function within(what: string, got: number, want: number, distance: number): Comparison {
  return scaled(`${what} (absolute)`, got, want, 1, distance);
}

// ------------------------------------------------------------------ conv2d

interface ConvCase { name: string; x: number[]; w: number[]; bias: boolean; opts?: Conv2dOptions }

/** Two small shapes of test/ops/conv2d.test.ts's kind: odd sizes, channels not a multiple of 4, stride/padding/dilation. */
const CONV_CASES: ConvCase[] = [
  { name: 'batch 2, 3 -> 5 channels, 7x6, padding 1, bias', x: [2, 3, 7, 6], w: [5, 3, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'batch 1, 2 -> 3 channels, 3x2 kernel, stride 2, padding 2, dilation 2', x: [1, 2, 9, 7], w: [3, 2, 3, 2], bias: false, opts: { stride: 2, padding: 2, dilation: 2 } },
];

const conv2dCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const out: Comparison[] = [];
    for (const [i, c] of CONV_CASES.entries()) {
      const s: ConvShape = { x: c.x, w: c.w, ...c.opts };
      const g = geometryRef(s);
      const xs = roundToF32(randomArray(sizeOf(c.x), 31 + 10 * i));
      const ws = roundToF32(randomArray(sizeOf(c.w), 32 + 10 * i));
      const bs = c.bias ? roundToF32(randomArray(c.w[0], 33 + 10 * i)) : null;
      const dys = roundToF32(randomArray(g.n * g.cout * g.oh * g.ow, 34 + 10 * i));
      const x = ctx.tensor(xs, c.x);
      const w = ctx.tensor(ws, c.w);
      const y = conv2dForward(x, w, bs ? ctx.tensor(bs, [c.w[0]]) : null, c.opts);
      // Tolerance 1e-5 of max |y|: f32 sums of at most 27 products of values in [-1, 1], as conv2d.test.ts.
      out.push(compare(`forward: ${c.name}`, await y.read(), conv2dRef(s, xs, ws, bs), 1e-5));
      const want = conv2dBackwardRef(s, xs, ws, dys);
      const got = conv2dBackward(ctx.tensor(dys, [g.n, g.cout, g.oh, g.ow]), x, w, { ...c.opts, needInput: true, needBias: true });
      // Tolerance 1e-5 of each gradient's max |value|: f32 sums of at most a few hundred products in [-1, 1].
      out.push(compare(`dx: ${c.name}`, await got.dx!.read(), want.dx, 1e-5));
      out.push(compare(`dw: ${c.name}`, await got.dWeight.read(), want.dWeight, 1e-5));
      out.push(compare(`db: ${c.name}`, await got.dBias!.read(), want.dBias, 1e-5));
    }
    return out;
  });

// -------------------------------------------------------------- LRT linear

/**
 * The LRT linear forward (Kingma et al. 2015, eq. 6): std against the float64
 * moments, y against mean + std * eps with the generator's own eps (drawNormal
 * under the same key draws output element i at index i), and the statistics of
 * eps recovered from y: 2112 draws must look like N(0, 1).
 */
const lrtLinearCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const [rows, inF, outF] = [64, 9, 33];
    const key = { seed: 1234, step: 7, stream: 3 };
    const xs = roundToF32(randomArray(rows * inF, 60));
    const wMu = roundToF32(randomArray(outF * inF, 61));
    // sigma^2 in [0.05, 0.5]: std comparable to the mean, so eps is recoverable from f32 y.
    const wSigma2 = roundToF32(randomArray(outF * inF, 62, 0.05, 0.5));
    const bMu = roundToF32(randomArray(outF, 63));
    const bSigma2 = roundToF32(randomArray(outF, 64, 0.05, 0.5));
    const { y, std } = lrtLinearForward(ctx.tensor(xs, [rows, inF]), ctx.tensor(wMu, [outF, inF]), ctx.tensor(wSigma2, [outF, inF]), ctx.tensor(bMu, [outF]), ctx.tensor(bSigma2, [outF]), { key });
    const moments = lrtMomentsRef(xs, wMu, wSigma2, bMu, bSigma2, rows, inF, outF);
    const gotY = await y.read();
    const eps = await drawNormal(ctx, [rows * outF], { key }).read();
    const out: Comparison[] = [];
    // Tolerance 1e-5: f32 sums of 9 terms and a square root, as linear.test.ts.
    out.push(compare('std = sqrt(x^2 sigma_w^2 + sigma_b^2 + 1e-16)', await std.read(), moments.std, 1e-5));
    out.push(compare("y = mean + std * eps with the generator's eps", gotY, lrtForwardRef(xs, wMu, wSigma2, bMu, bSigma2, eps, rows, inF, outF), 1e-5));
    const recovered = Float64Array.from(gotY, (v, i) => (v - moments.mean[i]) / moments.std[i]);
    const n = recovered.length;
    const mean = recovered.reduce((a, v) => a + v, 0) / n;
    const variance = recovered.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
    const within1 = recovered.filter((v) => Math.abs(v) < 1).length / n;
    // 2112 draws: standard errors 0.022 (mean), 0.031 (variance), 0.010 (P(|eps| < 1)); about five of each.
    out.push(within('mean of the recovered eps', mean, 0, 0.11));
    out.push(within('variance of the recovered eps', variance, 1, 0.16));
    out.push(within('P(|eps| < 1)', within1, 0.6827, 0.05));
    return out;
  });

// ---------------------------------------------------------------------- KL

const KL_PRIOR: GaussianPrior = { mu: 0.05, sigma: 0.1 };
const U = 2 ** -24;

/** Rounding bound of the GPU sum of n terms relative to sum |term| (as kl.test.ts and reduce.test.ts). */
function reductionBound(n: number): number {
  return sumRoundingDepth({ reduceA: n }) * U;
}

/** Closed-form KL(q || p) of a Gaussian posterior against a Gaussian prior, and its gradient. */
const klCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const out: Comparison[] = [];
    for (const n of [7, 1000, 5000]) {
      // rho in [-4, 1], where common.wgsl's softplus is accurate to 2.2e-6 relative (see kl.test.ts).
      const mus = roundToF32(randomArray(n, 70 + n, -0.3, 0.3));
      const rhos = roundToF32(randomArray(n, 71 + n, -4, 1));
      const mu = ctx.tensor(mus, [n]);
      const rho = ctx.tensor(rhos, [n]);
      const got = (await klGaussian(mu, rho, { prior: KL_PRIOR }).read())[0];
      const sigma = softplusRef(rhos);
      let scale = 0;
      for (let i = 0; i < n; i++) scale += Math.abs(Math.log(KL_PRIOR.sigma / sigma[i])) + (sigma[i] ** 2 + (mus[i] - KL_PRIOR.mu) ** 2) / (2 * KL_PRIOR.sigma ** 2) + 0.5;
      // Relative to the sum of the terms' parts: f32 softplus (2.2e-6, doubled in sigma^2), a few ulp, and the reduction.
      out.push(scaled(`KL n=${n}, error / sum of the parts' magnitudes`, got, klGaussianRef(mus, rhos, KL_PRIOR), scale, 5e-6 + 8 * U + reductionBound(n)));
      const dMu = ctx.zeros([n]);
      const dRho = ctx.zeros([n]);
      klGaussianBackwardInto(mu, rho, dMu, dRho, { prior: KL_PRIOR, scale: 0.37 });
      const want = klGaussianBackwardRef(mus, rhos, KL_PRIOR);
      // dMu 1e-6: a few f32 roundings. dRho 5e-6: f32 softplus enters sigma / sigma_p^2 and 1 / sigma (as kl.test.ts).
      out.push(compare(`dKL/dmu n=${n}`, await dMu.read(), Float64Array.from(want.dMu, (v) => 0.37 * v), 1e-6));
      out.push(compare(`dKL/drho n=${n}`, await dRho.read(), Float64Array.from(want.dRho, (v) => 0.37 * v), 5e-6));
    }
    return out;
  });

// ------------------------------------------------------------ softmax/NLL

/** log-softmax, NLL and their backward, and log-mean-exp over Monte Carlo samples (the ELBO's data term). */
const lossCheck: Check = (ctx) =>
  ctx.scope(async () => {
    const [T, B, C] = [3, 2, 10];
    const N = T * B;
    const xs = roundToF32(randomArray(N * C, 80, -8, 8));
    const labels = [3, 0, 9, 1, 4, 7];
    const gs = roundToF32(randomArray(N * C, 81));
    const logits = ctx.tensor(xs, [N, C]);
    const labelTensor = ctx.tensor(labels, [N], 'u32');
    const logp = logSoftmax(logits);
    const gotLogp = await logp.read();
    const wantLogp = logSoftmaxRef(xs, N, C);
    const out: Comparison[] = [];
    // Tolerances as loss.test.ts: 1e-6 for f32 exp/log and a row sum; 1e-7 for one rounding of -scale/N.
    out.push(compare('log softmax', gotLogp, wantLogp, 1e-6));
    out.push(compare('log softmax backward', await logSoftmaxBackward(ctx.tensor(gs, [N, C]), logp).read(), logSoftmaxBackwardRef(xs, gs, N, C), 1e-6));
    out.push(compare('NLL', await nllLoss(logp, labelTensor).read(), [nllRef(wantLogp, labels, C)], 1e-6));
    out.push(compare('NLL backward', await nllLossBackward(logp, labelTensor, { scale: 0.75 }).read(), nllBackwardRef(labels, C, 0.75), 1e-7));
    // log-mean-exp of the GPU's own logp over T samples: 1e-6 for f32 exp/log over T terms.
    out.push(compare(`log-mean-exp over T=${T}`, await logMeanExp(logp, { samples: T }).read(), logMeanExpRef(gotLogp, T), 1e-6));
    return out;
  });

// ------------------------------------------------- a small Bayesian model

const LAYER_TYPES: readonly LayerType[] = ['lrt', 'bbb'];

/** KL(q || p) of every Bayesian tensor of the tiny model, in float64. */
function tinyKlRef(p: TinyParams): number {
  let kl = 0;
  for (const layer of ['conv1', 'fc1'] as const) {
    kl += klGaussianRef(p[`${layer}.W_mu`], p[`${layer}.W_rho`], TINY_PRIOR) + klGaussianRef(p[`${layer}.bias_mu`], p[`${layer}.bias_rho`], TINY_PRIOR);
  }
  return kl;
}

/** A sampled forward pass (2 MC samples batched) of the tiny model: logits and KL against float64. */
const forwardCheck: Check = async (ctx) => {
  const out: Comparison[] = [];
  const key = { seed: 11, step: 5 };
  for (const layerType of LAYER_TYPES) {
    const tiny = tinyModel(ctx, layerType, 100);
    try {
      await ctx.scope(async () => {
        const { logits, kl } = tiny.model.run(ctx.tensor(tiny.xs, TINY_INPUT_SHAPE), { samples: TINY.samples, ...key });
        const noise = await tinyNoise(ctx, tiny, layerType, key, TINY.samples);
        // Tolerance 1e-5 of max |logit|: f32 sums of at most 18 products through two layers, softplus and max-pool.
        out.push(compare(`${layerType} logits [T*B, C]`, await logits.read(), tinyLogitsRef(layerType, tiny.params, noise, tiny.xs, TINY.samples), 1e-5));
        // Tolerance 1e-5: a sum of 218 positive-dominated terms with f32 softplus (2.2e-6) inside.
        out.push(compare(`${layerType} KL`, await kl!.read(), [tinyKlRef(tiny.params)], 1e-5));
      });
    } finally {
      tiny.dispose();
    }
  }
  return out;
};

/**
 * One full training step (forward, ELBO, backward, Adam) of the tiny model,
 * as test/nn/training_step.test.ts: the loss against the float64 model of
 * test/reference/model.ts with the GPU's own eps, every gradient against
 * central differences of that loss, and every parameter after the Adam update
 * against the float64 Adam applied to the GPU's gradient.
 */
const trainingStepCheck: Check = async (ctx) => {
  const out: Comparison[] = [];
  // The step's key is (seed, the optimizer's update count): step 0 for a new optimizer.
  const o = { samples: TINY.samples, beta: 0.7, trainSize: 10, seed: 11, step: 0 };
  const adamConfig = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  for (const layerType of LAYER_TYPES) {
    const tiny = tinyModel(ctx, layerType, 100);
    const adam = new Adam(tiny.model, adamConfig);
    try {
      await ctx.scope(async () => {
        const labels = ctx.tensor(TINY_LABELS, [TINY.batch], 'u32');
        const result = trainStep(tiny.model, adam, ctx.tensor(tiny.xs, TINY_INPUT_SHAPE), labels, { samples: o.samples, beta: o.beta, trainSize: o.trainSize, seed: o.seed });
        const noise = await tinyNoise(ctx, tiny, layerType, o, o.samples);
        const loss = (p: TinyParams) => tinyLossRef(TINY, layerType, p, noise, tiny.xs, TINY_LABELS, { beta: o.beta, trainSize: o.trainSize, prior: TINY_PRIOR });
        const params = tiny.params;
        // Tolerance 1e-5: f32 rounding through two layers and a log.
        out.push(compare(`${layerType} ELBO loss`, [(await result.read()).loss], [loss(params)], 1e-5));
        for (const [name, p] of tiny.model.namedParameters()) {
          const v = params[name as keyof TinyParams];
          const before = Float64Array.from(v);
          const fd = new Float64Array(v.length);
          for (let i = 0; i < v.length; i++) {
            const h = 1e-6 * Math.max(1, Math.abs(before[i]));
            v[i] = before[i] + h;
            const up = loss(params);
            v[i] = before[i] - h;
            const down = loss(params);
            v[i] = before[i];
            fd[i] = (up - down) / (2 * h);
          }
          const grad = await p.grad!.read();
          // Tolerance 2e-4 of the largest gradient: f32 accumulation in the backward (loss scaled by
          // trainSize) against O(h^2) + rounding / h ~ 1e-8 in the differences (as training_step.test.ts).
          out.push(compare(`${layerType} gradient of ${name}`, grad, fd, 2e-4));
          const state = { param: before, m: new Float64Array(v.length), v: new Float64Array(v.length) };
          adamStepRef(state, grad, 1, adamConfig);
          // Tolerance 1e-6 of max |parameter|: the step is ~lr = 0.01, computed to a few f32 ulp.
          out.push(compare(`${layerType} ${name} after one Adam step`, await p.value.read(), state.param, 1e-6));
        }
      });
    } finally {
      adam.dispose();
      tiny.dispose();
    }
  }
  return out;
};

/**
 * 2e-5: the logits carry f32 rounding of the model (~1e-6 relative), then f32
 * exp/log in the reduction; the mutual information is a difference of two
 * entropies of similar size (as predict.test.ts).
 */
const PREDICT_RTOL = 2e-5;

/**
 * model.predict with T Monte Carlo samples (src/nn/predict.ts) against the
 * float64 decomposition (test/reference/uncertainty.ts) of the float64 model's
 * logits under the GPU's own eps.
 */
const predictCheck: Check = async (ctx) => {
  const out: Comparison[] = [];
  const T = 6;
  const key = { seed: 3, step: 9 };
  const tiny = tinyModel(ctx, 'lrt', 200);
  try {
    await ctx.scope(async () => {
      const x = ctx.tensor(tiny.xs, TINY_INPUT_SHAPE);
      const noise = await tinyNoise(ctx, tiny, 'lrt', key, T);
      const logits = tinyLogitsRef('lrt', tiny.params, noise, tiny.xs, T);
      for (const method of ['softmax', 'normalized'] as const) {
        const got = await tiny.model.predict(x, { samples: T, method, ...key, keepSamples: true });
        const want = predictiveReference(logits, T, TINY.batch, TINY.classes, method);
        for (const what of ['probs', 'mean', 'epistemic', 'aleatoric', 'predictiveEntropy', 'expectedEntropy', 'mutualInformation', 'maxProb'] as const) {
          out.push(compare(`${method} ${what}`, got[what] ?? new Float32Array(0), want[what], PREDICT_RTOL));
        }
      }
      out.push(within('predict restores training mode', Number(tiny.model.training), 1, 0));
    });
  } finally {
    tiny.dispose();
  }
  return out;
};

/** Every check by name; the page and the Deno smoke run these. */
export const checks: Record<string, Check> = {
  'activation.forward': activationForwardCheck,
  'activation.backward': activationBackwardCheck,
  'activation.softplus_small': softplusSmallCheck,
  'conv2d.forward_backward': conv2dCheck,
  'linear.lrt_forward': lrtLinearCheck,
  'kl.gaussian': klCheck,
  'loss.softmax_nll': lossCheck,
  'nn.forward': forwardCheck,
  'train.step': trainingStepCheck,
  'uncertainty.predict': predictCheck,
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
