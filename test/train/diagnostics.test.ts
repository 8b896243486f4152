/**
 * fit's diagnostics (src/train/diagnostics.ts): the NLL and beta * KL terms, the KL per weight, the
 * per-layer sigma statistics against a float64 reference from the parameters read back, and the
 * warnings of runs held at the prior or at chance (and of one that is neither).
 */
import { describe, expect, it } from 'vitest';
import { context } from '../helpers.js';
import { softplusRef } from '../reference/activation.js';
import { BBBLinear } from '../../src/nn/bayes.js';
import { Flatten, Linear, ReLU } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import { sumRoundingDepth } from '../../src/ops/reduce.js';
import { beta as betaAt } from '../../src/train/elbo.js';
import { type FitWarning, type LayerSigma, sigmaStatistics, variationalWeightCount } from '../../src/train/diagnostics.js';
import { type BatchProgress, type FitSnapshot, type FloatDataset, fit } from '../../src/train/fit.js';
import { Adam } from '../../src/train/adam.js';
import { restoreSnapshot } from '../../src/train/recovery.js';
import { tinyData, tinyModel } from './tiny.js';
import type { Context } from '../../src/gpu/context.js';

const U = 2 ** -24;

/**
 * A model whose fc1 has 16 * 300 = 4,800 weights (over SUM_SPLIT_ABOVE, so the sum and the max run
 * in two levels), a wide rho spread, and an fc2 without a bias.
 */
function wideModel(ctx: Context): Sequential {
  return new Sequential(ctx, {
    flatten: new Flatten(),
    fc1: new BBBLinear(16, 300, { seed: 1, priors: { posterior_rho_initial: [-3, 1.5] } }),
    relu: new ReLU(),
    fc2: new BBBLinear(300, 3, { seed: 2, bias: false, priors: { posterior_rho_initial: [-4, 0.5] } }),
  }, { inputShape: [1, 4, 4] });
}

/** The float64 statistics of sigma = softplus(rho) over a rho tensor read back, with the bound on the GPU's mean. */
function reference(rho: Float32Array): { mean: number; min: number; max: number; meanTolerance: number } {
  const sigma = softplusRef(rho);
  let total = 0;
  for (const s of sigma) total += s;
  // The GPU's sum: softplus to a few ulp each (common.wgsl, 8 u allowed) and the rounding of the
  // sum's levels (reduce.wgsl, Higham's gamma_D); sigma > 0, so sum |sigma| is the sum.
  const d = sumRoundingDepth({ reduceA: rho.length });
  const gamma = (d * U) / (1 - d * U);
  return { mean: total / rho.length, min: Math.min(...sigma), max: Math.max(...sigma), meanTolerance: ((gamma + 8 * U) * total * 1.01) / rho.length };
}

async function expectSigmaMatches(model: Sequential, sigma: LayerSigma[]): Promise<void> {
  const params = model.namedParameters();
  const layers = [...new Set([...params.keys()].filter((n) => n.endsWith('_rho')).map((n) => n.slice(0, n.lastIndexOf('.'))))];
  expect(sigma.map((l) => l.layer)).toEqual(layers);
  for (const l of sigma) {
    for (const [part, name] of [['weight', 'W_rho'], ['bias', 'bias_rho']] as const) {
      const p = params.get(`${l.layer}.${name}`);
      const got = l[part];
      if (!p) {
        expect(got, `${l.layer} ${part}`).toBeNull();
        continue;
      }
      const rho = (await p.value.read()) as Float32Array;
      const want = reference(rho);
      expect(got!.count).toBe(rho.length);
      expect(Math.abs(got!.mean - want.mean), `${l.layer} ${part} mean`).toBeLessThanOrEqual(want.meanTolerance);
      // min and max are one softplus each: a few ulp of the float64 value.
      expect(Math.abs(got!.min - want.min), `${l.layer} ${part} min`).toBeLessThanOrEqual(8 * U * want.min);
      expect(Math.abs(got!.max - want.max), `${l.layer} ${part} max`).toBeLessThanOrEqual(8 * U * want.max);
    }
  }
}

describe('fit diagnostics', () => {
  it('sigma statistics per layer match a float64 reference of the parameters read back (weights and bias apart)', async () => {
    const ctx = await context();
    const model = wideModel(ctx);
    try {
      // Before training: sigmaStatistics on its own.
      await expectSigmaMatches(model, await sigmaStatistics(model));
      const result = await fit(model, tinyData(60, 3), { epochs: 2, batchSize: 20, lr: 0.05, validFraction: 0.2, seed: 1, restoreBest: false });
      const sigma = result.history[1].sigma;
      expect(sigma.map((l) => [l.layer, l.weight !== null, l.bias !== null])).toEqual([['fc1', true, true], ['fc2', true, false]]);
      // The last epoch's figures are those of the parameters fit left (restoreBest false).
      await expectSigmaMatches(model, sigma);
      expect(await sigmaStatistics(model)).toEqual(sigma);
      // Training moved rho (lr 0.05): the epochs' figures differ.
      expect(result.history[0].sigma).not.toEqual(sigma);
    } finally {
      model.dispose();
    }
  }, 300_000);

  it('the NLL and beta*KL terms add up to the loss; KL per weight is KL over the weights with a posterior', async () => {
    const ctx = await context();
    const data = tinyData(90, 4);
    for (const beta of [0.5, 'blundell'] as const) {
      const model = tinyModel(ctx);
      const steps: BatchProgress['stepFigures'] = [];
      try {
        const result = await fit(model, data, {
          epochs: 2, batchSize: 16, lr: 0.01, beta, validFraction: 0.2, seed: 2, reportEvery: 1, reportSeconds: 0,
          onBatch: (p) => void steps.push(...p.stepFigures),
        });
        const trainSize = 72;
        const batches = Math.ceil(trainSize / 16);
        // 16 * 8 + 8 + 8 * 3 + 3 weights and biases with a posterior.
        expect(variationalWeightCount(model)).toBe(163);
        for (const e of result.history) {
          const own = steps.slice((e.epoch - 1) * batches, e.epoch * batches);
          expect(e.nllTerm).toBe(e.trainNll * trainSize);
          // beta * KL per step, with each step's beta, in float64.
          const klTerm = own.reduce((a, s, b) => a + betaAt(beta, b, batches, e.epoch - 1, 2) * s.kl, 0) / batches;
          expect(e.klTerm).toBeCloseTo(klTerm, 10);
          if (beta === 0.5) expect(e.klTerm).toBeCloseTo(0.5 * e.kl, 10);
          // Each step's loss is N * NLL + beta * KL in float32.
          expect(Math.abs(e.nllTerm + e.klTerm - e.trainLoss)).toBeLessThanOrEqual(1e-5 * e.trainLoss);
          expect(e.klPerWeight).toBe(e.kl / 163);
          expect(e.kl).toBeGreaterThan(0);
        }
      } finally {
        model.dispose();
      }
    }
    // A frequentist model: no posterior, so no KL per weight and no sigma.
    const plain = new Sequential(ctx, { flatten: new Flatten(), fc1: new Linear(16, 3) }, { inputShape: [1, 4, 4] });
    try {
      const r = await fit(plain, data, { epochs: 1, batchSize: 16, validFraction: 0.2 });
      expect(r.history[0]).toMatchObject({ kl: 0, klTerm: 0, sigma: [] });
      expect(r.history[0].klPerWeight).toBeNaN();
    } finally {
      plain.dispose();
    }
  }, 300_000);

  it('a run resumed from a CPU copy (mid-epoch, or at an epoch\'s last step) reports the same terms, sigma and warnings', async () => {
    const ctx = await context();
    const data = tinyData(30, 8);
    // 5 steps an epoch (validFraction 0): copies at steps 5 (an epoch's last) and 7 (mid-epoch).
    const options = { epochs: 3, batchSize: 6, validFraction: 0, seed: 5, beta: 'blundell' as const, chanceWarningSteps: 0 };
    const model = tinyModel(ctx);
    const optimizer = new Adam(model, { lr: 1e-3 });
    try {
      const copies: FitSnapshot[] = [];
      const whole = await fit(model, data, { ...options, optimizer, keepCpuCopyEvery: 1, onCpuCopy: (c) => void copies.push(c) });
      const same = (h: typeof whole.history) => h.map((e) => ({ ...e, seconds: 0, samplesPerSecond: 0 }));
      expect(whole.history[0].sigma).toHaveLength(2);
      // lr 1e-3 over 5 steps: still at chance after epoch 1, which the copy at step 7 carries (not warned of again).
      expect(whole.warnings.map((w) => [w.code, w.epoch])).toEqual([['chance-accuracy', 1]]);
      for (const step of [5, 7]) {
        const copy = copies.find((c) => c.step === step)!;
        restoreSnapshot(ctx, model, optimizer, copy);
        const resumed = await fit(model, data, { ...options, optimizer, resumeFrom: copy });
        expect(same(resumed.history), `from step ${step}`).toEqual(same(whole.history));
        expect(resumed.warnings, `from step ${step}`).toEqual(whole.warnings);
      }
    } finally {
      model.dispose();
      optimizer.dispose();
    }
  }, 300_000);

  it("warns 'kl-dominates' once when beta is huge, naming beta and the rho init", async () => {
    const ctx = await context();
    const model = tinyModel(ctx);
    const seen: FitWarning[] = [];
    try {
      const result = await fit(model, tinyData(90, 5), { epochs: 2, batchSize: 16, lr: 0.01, beta: 1e4, seed: 1, chanceWarningSteps: 1e6, onWarning: (w) => void seen.push(w) });
      const e = result.history[0];
      expect(e.klTerm).toBeGreaterThan(e.nllTerm);
      expect(result.warnings.map((w) => [w.code, w.epoch, w.step])).toEqual([['kl-dominates', 1, 5]]);
      expect(seen).toEqual(result.warnings);
      for (const words of ['--beta', 'posterior_rho_initial', '--posterior-rho-init', '--lr']) expect(result.warnings[0].message).toContain(words);
    } finally {
      model.dispose();
    }
  }, 300_000);

  it("warns 'chance-accuracy' once after chanceWarningSteps on constant inputs, naming the options", async () => {
    const ctx = await context();
    const model = tinyModel(ctx);
    const data = tinyData(90, 6);
    // Every image the same: no network can beat the most frequent class.
    const constant: FloatDataset = { ...data, x: new Float32Array(data.x.length).fill(0.5) };
    try {
      const result = await fit(model, constant, { epochs: 3, batchSize: 16, lr: 0.01, seed: 1, chanceWarningSteps: 10 });
      // 72 training images: 5 steps an epoch; the check starts at the end of epoch 2 (step 10), once.
      expect(result.warnings.map((w) => [w.code, w.epoch, w.step])).toEqual([['chance-accuracy', 2, 10]]);
      for (const words of ['--lr', '--posterior-rho-init', '--beta', '--activation relu']) expect(result.warnings[0].message).toContain(words);
    } finally {
      model.dispose();
    }
  }, 300_000);

  it('warns of neither when the data is learnable and beta moderate; bad chanceWarningSteps and onWarning are rejected', async () => {
    const ctx = await context();
    const model = tinyModel(ctx);
    try {
      const result = await fit(model, tinyData(240, 7), { epochs: 6, batchSize: 16, lr: 0.02, beta: 0.1, seed: 1, chanceWarningSteps: 30, onWarning: () => { throw new Error('no warning expected'); } });
      expect(result.warnings).toEqual([]);
      const last = result.history[result.history.length - 1];
      expect(last.trainAccuracy).toBeGreaterThan(0.6);
      for (const [name, value] of [['chanceWarningSteps', -1], ['chanceWarningSteps', 1.5], ['onWarning', 'print']] as const) {
        await expect(fit(model, tinyData(30, 1), { epochs: 1, batchSize: 8, [name]: value })).rejects.toThrow(`'${name}'`);
      }
    } finally {
      model.dispose();
    }
  }, 300_000);
});
