/**
 * Temperature scaling (Guo et al. 2017): the tempered predictive kernel, the NLL / d NLL / d log tau
 * reduction, fitTemperature against a float64 brute-force search, model.temperature in predict and in
 * checkpoints, and the named errors. References: test/reference/calibration.ts, test/reference/uncertainty.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { loadModel, saveModel } from '../../src/io/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { BBBLinear } from '../../src/nn/bayes.js';
import { Linear } from '../../src/nn/layers.js';
import { LeNet, Model } from '../../src/nn/models.js';
import { Regressor, Sequential } from '../../src/nn/sequential.js';
import { placeSamples, predictiveDistribution, temperatureNll } from '../../src/ops/uncertainty.js';
import { fitTemperature } from '../../src/uncertainty/calibration.js';
import { nll } from '../../src/uncertainty/metrics.js';
import { context, expectClose, randomArray, rng } from '../helpers.js';
import { bruteForceTemperature, tempered, temperatureNllReference } from '../reference/calibration.js';
import { type Method, calibrationBrute, predictiveReference } from '../reference/uncertainty.js';

const METHODS: Method[] = ['softmax', 'normalized'];

/** Labels drawn from softmax(z / k) of logits [N, C] (k = 1: calibrated; the model's logits z are then over-confident by k). */
function drawLabels(z: ArrayLike<number>, N: number, C: number, k: number, seed: number): Uint32Array {
  const r = rng(seed);
  const labels = new Uint32Array(N);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, z[n * C + c] / k);
    const e = Array.from({ length: C }, (_, c) => Math.exp(z[n * C + c] / k - m));
    const total = e.reduce((a, b) => a + b, 0);
    let u = r() * total;
    let y = C - 1;
    for (let c = 0; c < C; c++) {
      u -= e[c];
      if (u < 0) {
        y = c;
        break;
      }
    }
    labels[n] = y;
  }
  return labels;
}

async function runKernel(ctx: Context, logits: Float32Array, S: number, N: number, C: number, tau: number | undefined, method: Method) {
  const input = ctx.tensor(logits, [S * N, C]);
  const t = predictiveDistribution(input, tau === undefined ? { samples: S, method } : { samples: S, method, temperature: tau });
  const [probs, moments, info] = (await ctx.readMany([t.probs, t.moments, t.information])) as Float32Array[];
  for (const x of [input, t.probs, t.moments, t.information]) x.dispose();
  return { probs, moments, info };
}

async function runNll(ctx: Context, logits: Float32Array, labels: Uint32Array, S: number, C: number, tau: number, method: Method): Promise<[number, number]> {
  const z = ctx.tensor(logits, [S * labels.length, C]);
  const y = ctx.tensor(labels, [labels.length], 'u32');
  const sums = temperatureNll(z, y, { samples: S, temperature: tau, method });
  expect(sums.shape).toEqual([2]);
  const v = (await sums.read()) as Float32Array;
  for (const x of [z, y, sums]) x.dispose();
  return [v[0], v[1]];
}

describe('tempered predictive kernel (uncertainty.wgsl)', () => {
  const [S, N, C] = [5, 70, 10];
  for (const method of METHODS) {
    for (const tau of [0.5, 2.3]) {
      it(`${method}, tau = ${tau}, matches float64 softmax(z / tau)`, async () => {
        const ctx = await context();
        const logits = Float32Array.from(randomArray(S * N * C, 31 + tau * 10, -8, 8));
        const got = await runKernel(ctx, logits, S, N, C, tau, method);
        const want = predictiveReference(tempered(logits, tau), S, N, C, method);
        // 2e-5 relative to each tensor's magnitude, as the untempered kernel's test: f32 exp/log, sums of 10 terms.
        expectClose(got.probs, want.probs, 2e-5, 'probs');
        expectClose(got.moments.subarray(0, N * C), want.mean, 2e-5, 'mean');
        expectClose(got.moments.subarray(N * C, 2 * N * C), want.epistemic, 2e-5, 'epistemic');
        expectClose(got.info.subarray(0, N), want.predictiveEntropy, 2e-5, 'predictive entropy');
        expectClose(got.info.subarray(2 * N, 3 * N), want.mutualInformation, 2e-5, 'mutual information');
      });
    }
    it(`${method}: tau = 2^k is bit for bit the untempered kernel on z * 2^-k, and tau = 1 is the default`, async () => {
      const ctx = await context();
      const logits = Float32Array.from(randomArray(S * N * C, 77, -30, 30));
      const plain = await runKernel(ctx, logits, S, N, C, undefined, method);
      const one = await runKernel(ctx, logits, S, N, C, 1, method);
      for (const key of ['probs', 'moments', 'info'] as const) expect(one[key], key).toEqual(plain[key]);
      for (const k of [1, -1, 3]) {
        // z / 2^k is exact in f32, so the tempered kernel must see exactly these logits.
        const scaled = await runKernel(ctx, logits.map((z) => z * 2 ** -k), S, N, C, undefined, method);
        const tempered2 = await runKernel(ctx, logits, S, N, C, 2 ** k, method);
        for (const key of ['probs', 'moments', 'info'] as const) expect(tempered2[key], `${key} at tau = 2^${k}`).toEqual(scaled[key]);
      }
    });
  }
});

describe('temperature NLL reduction (temperature.wgsl)', () => {
  const [S, N, C] = [6, 90, 7];
  for (const method of METHODS) {
    for (const tau of [0.4, 1, 2.3]) {
      it(`${method}, tau = ${tau}: sum NLL and d/dlog tau match float64, and the derivative matches finite differences`, async () => {
        const ctx = await context();
        const logits = Float32Array.from(randomArray(S * N * C, 5 + tau * 100, -6, 6));
        const labels = Uint32Array.from(randomArray(N, 9, 0, C), Math.floor);
        const [gotNll, gotSlope] = await runNll(ctx, logits, labels, S, C, tau, method);
        const want = temperatureNllReference(logits, labels, S, N, C, tau, method);
        // Scale of the sums: the sum of |terms|; f32 rounding of ~S * C operations per term and of the N-term sum.
        const scale = want.terms.reduce((a, b) => a + Math.abs(b), 0);
        expect(Math.abs(gotNll - want.nll), `nll ${gotNll} vs ${want.nll}`).toBeLessThan(2e-6 * scale);
        expect(Math.abs(gotSlope - want.slope), `slope ${gotSlope} vs ${want.slope}`).toBeLessThan(2e-6 * scale);
        // The reference's analytic derivative against a central difference of its own NLL in lambda = log tau.
        const h = 1e-5;
        const fd = (temperatureNllReference(logits, labels, S, N, C, tau * Math.exp(h), method).nll - temperatureNllReference(logits, labels, S, N, C, tau * Math.exp(-h), method).nll) / (2 * h);
        expect(Math.abs(fd - want.slope)).toBeLessThan(1e-6 * scale);
      });
    }
  }

  it('stays finite and accurate where f32 probabilities underflow (logit gaps of 120, labels every sample gets wrong)', async () => {
    const ctx = await context();
    const [S2, N2, C2] = [4, 3, 3];
    // Example 0: every sample puts the label 100-140 below the top; example 1: one sample agrees; example 2: confident and right.
    const logits = new Float32Array(S2 * N2 * C2);
    for (let s = 0; s < S2; s++) {
      logits.set([120 + 10 * s, 0, 1], (s * N2 + 0) * C2);
      logits.set(s === 2 ? [0, 3, 1] : [0, -110, 5], (s * N2 + 1) * C2);
      logits.set([-20, 40, 0], (s * N2 + 2) * C2);
    }
    const labels = Uint32Array.from([1, 1, 1]);
    for (const tau of [1, 0.5]) {
      const [gotNll, gotSlope] = await runNll(ctx, logits, labels, S2, C2, tau, 'softmax');
      const want = temperatureNllReference(logits, labels, S2, N2, C2, tau, 'softmax');
      expect(Number.isFinite(gotNll) && Number.isFinite(gotSlope)).toBe(true);
      expect(Math.abs(gotNll - want.nll) / want.nll).toBeLessThan(1e-6);
      expect(Math.abs(gotSlope - want.slope) / Math.abs(want.slope)).toBeLessThan(1e-5);
    }
  });

  it('placeSamples gathers batches [T * n, C] into [T * N, C] at rows t * N + offset + b', async () => {
    const ctx = await context();
    const [T, Nall, Cc] = [3, 7, 2];
    const all = ctx.zeros([T * Nall, Cc]);
    const want = new Float32Array(T * Nall * Cc);
    for (const [from, n] of [[0, 4], [4, 3]]) {
      const batch = Float32Array.from(randomArray(T * n * Cc, from + 1));
      for (let t = 0; t < T; t++) for (let b = 0; b < n; b++) for (let c = 0; c < Cc; c++) want[((t * Nall) + from + b) * Cc + c] = batch[(t * n + b) * Cc + c];
      const bt = ctx.tensor(batch, [T * n, Cc]);
      placeSamples(bt, all, { samples: T, offset: from });
      bt.dispose();
    }
    expect(await all.read()).toEqual(want);
    expect(() => placeSamples(all, all, { samples: T, offset: 0 })).toThrow(/placeSamples: argument 'into'/);
    all.dispose();
  });
});

/** A one-layer Bayesian classifier on 8 features, 4 classes, with its weight means scaled up (confident logits). */
async function bayesClassifier(ctx: Context): Promise<Sequential> {
  const model = new Sequential(ctx, { fc1: new BBBLinear(8, 4, { layerType: 'lrt', seed: 21, priors: { posterior_rho_initial: [-2.5, 0.1] } }) }, { inputShape: [8] });
  const mu = model.namedParameters().get('fc1.W_mu')!.value;
  ctx.write(mu, ((await mu.read()) as Float32Array).map((v) => v * 8));
  return model;
}

/** The model's logits as predict draws them: batches of `batchSize` keyed with step + from, gathered into [T, N, C]. */
async function drawnLogits(ctx: Context, model: Sequential, x: Float32Array, N: number, o: { samples: number; seed: number; step: number; batchSize: number }): Promise<Float32Array> {
  const F = model.inputShape[0];
  const C = model.outputShapeOf[0];
  const out = new Float32Array(o.samples * N * C);
  const wasTraining = model.training;
  model.eval();
  for (let from = 0; from < N; from += o.batchSize) {
    const n = Math.min(o.batchSize, N - from);
    const xt = ctx.tensor(x.subarray(from * F, (from + n) * F), [n, F]);
    // In a scope: the tiled input and the layers' intermediates are freed, only the logits kept.
    const logits = ctx.scope(() => model.run(xt, { samples: o.samples, sample: true, seed: o.seed, step: o.step + from, kl: false }).logits);
    const z = (await logits.read()) as Float32Array;
    for (let t = 0; t < o.samples; t++) out.set(z.subarray(t * n * C, (t + 1) * n * C), (t * N + from) * C);
    xt.dispose();
    logits.dispose();
  }
  if (wasTraining) model.train();
  return out;
}

describe('fitTemperature', () => {
  const N = 300;
  const sampling = { samples: 6, seed: 3, step: 11, batchSize: 64 }; // 4 full batches and one of 44

  it('matches a float64 brute-force search over tau on the same per-sample logits; nllAfter <= nllBefore; ECE before and after', async () => {
    const ctx = await context();
    const model = await bayesClassifier(ctx);
    const x = Float32Array.from(randomArray(N * 8, 41));
    // Labels from the posterior-mean logits at temperature 2: the sampled model is over-confident.
    model.eval();
    const xt = ctx.tensor(x, [N, 8]);
    const { logits: meanLogits } = model.run(xt, { sample: false, kl: false });
    const labels = drawLabels((await meanLogits.read()) as Float32Array, N, 4, 2, 5);
    xt.dispose();
    meanLogits.dispose();
    model.train();
    const data = { x, labels, count: N, shape: [8] };
    const live = ctx.memory().liveTensors;
    for (const method of METHODS) {
      const fit = await fitTemperature(model, data, { ...sampling, method });
      expect(model.training, 'mode restored').toBe(true);
      expect(model.temperature, 'the model is not changed').toBe(1);
      expect(ctx.memory().liveTensors, 'every tensor freed').toBe(live);
      const z = await drawnLogits(ctx, model, x, N, sampling);
      const want = bruteForceTemperature(z, labels, sampling.samples, N, 4, method);
      // The fit stops at |dNLL/dlog tau| <= 1e-6 per example or a bracket of 1e-6 on log tau; the
      // curvature here is ~0.1 per example, so tau is within ~1e-5 relative; 1e-4 leaves room for f32 sums.
      expect(Math.abs(fit.temperature / want - 1), `${method}: tau ${fit.temperature} vs brute force ${want}`).toBeLessThan(1e-4);
      expect(fit.temperature).toBeGreaterThan(1.2);
      const refBefore = temperatureNllReference(z, labels, sampling.samples, N, 4, 1, method).nll / N;
      const refAfter = temperatureNllReference(z, labels, sampling.samples, N, 4, fit.temperature, method).nll / N;
      expect(Math.abs(fit.nllBefore - refBefore) / refBefore).toBeLessThan(1e-5);
      expect(Math.abs(fit.nllAfter - refAfter) / refAfter).toBeLessThan(1e-5);
      expect(fit.nllAfter).toBeLessThan(fit.nllBefore);
      const pBar = (tau: number) => predictiveReference(tempered(z, tau), sampling.samples, N, 4, method).mean;
      expect(fit.eceBefore).toBeCloseTo(calibrationBrute(pBar(1), labels, 4, 15).ece, 5);
      expect(fit.eceAfter).toBeCloseTo(calibrationBrute(pBar(fit.temperature), labels, 4, 15).ece, 5);
      expect(fit.count).toBe(N);
      expect(fit.samples).toBe(sampling.samples);

      // predict with the fitted temperature reproduces nllAfter (its p_bar, through metrics.nll).
      const p = await model.predict(data, { ...sampling, method, temperature: fit.temperature });
      expect(Math.abs(nll(p.mean, labels, 4) - fit.nllAfter) / fit.nllAfter).toBeLessThan(1e-5);
      // fit.probabilities is that p_bar, from the samples the fit drew, and the float64 one at tau.
      expect(fit.probabilities).toHaveLength(N * 4);
      const ref = pBar(fit.temperature);
      let far = 0;
      let farRef = 0;
      for (let i = 0; i < N * 4; i++) {
        far = Math.max(far, Math.abs(fit.probabilities[i] - p.mean[i]));
        farRef = Math.max(farRef, Math.abs(fit.probabilities[i] - ref[i]));
      }
      expect(far, `${method}: fit.probabilities against predict's mean`).toBeLessThan(1e-6);
      expect(farRef, `${method}: fit.probabilities against float64`).toBeLessThan(1e-5);
    }
    model.dispose();
  });

  it('an over-confident deterministic model (logits 3x the calibrated ones) gets tau near 3; the fitted model.temperature is predict\'s default and survives saveModel/loadModel', async () => {
    const ctx = await context();
    const count = 3000;
    const model = new Sequential(ctx, { fc1: new Linear(6, 5, { seed: 4 }) }, { inputShape: [6] });
    const w = model.namedParameters().get('fc1.weight')!.value;
    ctx.write(w, ((await w.read()) as Float32Array).map((v) => v * 6));
    const x = Float32Array.from(randomArray(count * 6, 8));
    const xt = ctx.tensor(x, [count, 6]);
    const { logits } = model.run(xt, { kl: false });
    const z = (await logits.read()) as Float32Array;
    xt.dispose();
    logits.dispose();
    const labels = drawLabels(z, count, 5, 3, 12);
    const data = { x, labels, count, shape: [6] };
    const fit = await fitTemperature(model, data);
    expect(fit.samples).toBe(1);
    // The maximum-likelihood tau of 3000 labels drawn at tau = 3: its standard error is a few percent.
    expect(fit.temperature).toBeGreaterThan(2.6);
    expect(fit.temperature).toBeLessThan(3.4);
    expect(fit.temperature).toBeCloseTo(bruteForceTemperature(z, labels, 1, count, 5, 'softmax'), 3);
    expect(fit.nllAfter).toBeLessThan(fit.nllBefore);
    expect(fit.eceAfter).toBeLessThan(fit.eceBefore);

    const plain = await model.predict(data);
    model.temperature = fit.temperature;
    const byDefault = await model.predict(data);
    const explicit = await model.predict(data, { temperature: fit.temperature });
    expect(byDefault.mean).toEqual(explicit.mean);
    expect(byDefault.mean).not.toEqual(plain.mean);
    expect(Math.abs(nll(byDefault.mean, labels, 5) - fit.nllAfter) / fit.nllAfter).toBeLessThan(1e-5);
    expect((await model.predict(data, { temperature: 1 })).mean).toEqual(plain.mean);

    const bytes = await saveModel(model);
    expect(JSON.parse(decodeSafetensors(bytes).metadata.modelOptions).temperature).toBe(fit.temperature);
    const again = loadModel(ctx, bytes);
    expect(again.temperature).toBe(fit.temperature);
    expect((await again.predict(data)).mean).toEqual(byDefault.mean);
    again.dispose();

    // Temperature 1 is not written, so untempered models save the bytes they always did.
    model.temperature = 1;
    expect('temperature' in JSON.parse(decodeSafetensors(await saveModel(model)).metadata.modelOptions)).toBe(false);
    model.dispose();
  });

  it('a named model keeps its temperature through saveModel/loadModel', async () => {
    const ctx = await context();
    const net = LeNet(ctx, { classes: 3 });
    net.temperature = 1.75;
    const again = loadModel(ctx, await saveModel(net));
    expect(again).toBeInstanceOf(Model);
    expect(again.temperature).toBe(1.75);
    net.dispose();
    again.dispose();
  });
});

describe('temperature: bad input', () => {
  const classifier = (ctx: Context) => new Sequential(ctx, { fc1: new Linear(3, 4, { seed: 1 }) }, { inputShape: [3] });
  const set = (labels?: number[]) => ({ x: Float32Array.from(randomArray(4 * 3, 2)), count: 4, shape: [3], ...(labels ? { labels } : {}) });

  it('fitTemperature names the problem before any GPU work and leaves the model as it was', async () => {
    const ctx = await context();
    const model = classifier(ctx);
    model.temperature = 1.5;
    const live = ctx.memory().liveTensors;
    const bad: [unknown, unknown, RegExp][] = [
      [set(), {}, /fitTemperature: argument 'data' expected a labelled held-out set .*, got "a set without labels"/],
      [set([0, 1, 7, 2]), {}, /fitTemperature: argument 'data.labels' expected class indices below the model's 4 classes, got a largest label of 7 \(a temperature fit on a set whose labels don't match the model's classes\)/],
      [{ ...set([0]), count: 0, x: new Float32Array(0), labels: [] }, {}, /fitTemperature: argument 'input.count' expected an integer >= 1, got 0/],
      [set([0, 1, 2, 3]), { bins: 0 }, /fitTemperature: argument 'bins' expected an integer >= 1, got 0/],
      [set([0, 1, 2, 3]), { temperature: 2 }, /fitTemperature: argument 'options' expected only the keys samples, seed, step, batchSize, method, sample, mcDropout, bins, got "unknown key 'temperature'"/],
      [set([0, 1, 2, 3]), { method: 'sigmoid' }, /fitTemperature: argument 'method' expected one of 'softmax' \| 'normalized'/],
      [set([0, 1, 2, 3]), { mcDropout: true }, /fitTemperature: argument 'model' expected a model with a Dropout layer/],
    ];
    for (const [data, options, message] of bad) {
      await expect(fitTemperature(model, data as never, options as never)).rejects.toThrow(message);
      expect(model.temperature).toBe(1.5);
      expect(ctx.memory().liveTensors).toBe(live);
    }
    const regressor = new Regressor(ctx, { fc1: new Linear(3, 2) }, { inputShape: [3] });
    await expect(fitTemperature(regressor, set([0, 1, 0, 1]))).rejects.toThrow(/fitTemperature: argument 'model' expected a classifier .*, got "a regression model"/);
    await expect(fitTemperature({} as never, set([0]))).rejects.toThrow(/fitTemperature: argument 'model' expected a classifier built on a context/);
    regressor.dispose();
    model.dispose();
  });

  it('predict, model.temperature, the Sequential option and the ops refuse temperatures that are not finite and > 0', async () => {
    const ctx = await context();
    const model = classifier(ctx);
    model.temperature = 2;
    for (const t of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '2', 1e-300]) {
      await expect(model.predict(set(), { temperature: t as never })).rejects.toThrow(/predict: argument 'temperature' expected a finite number > 0/);
      expect(() => {
        model.temperature = t as never;
      }).toThrow(/Sequential.temperature: argument 'temperature' expected a finite number > 0/);
      expect(model.temperature).toBe(2);
      expect(() => new Sequential(ctx, { fc1: new Linear(3, 4) }, { inputShape: [3], temperature: t as never })).toThrow(/Sequential: argument 'options.temperature' expected a finite number > 0/);
    }
    const z = ctx.tensor(new Float32Array(8), [2, 4]);
    expect(() => predictiveDistribution(z, { samples: 1, temperature: 0 })).toThrow(/predictiveDistribution: argument 'temperature' expected a finite number > 0/);
    const y = ctx.tensor([0, 1], [2], 'u32');
    expect(() => temperatureNll(z, y, { samples: 1, temperature: -2 })).toThrow(/temperatureNll: argument 'temperature'/);
    expect(() => temperatureNll(z, z, { samples: 1, temperature: 1 })).toThrow(/temperatureNll: argument 'labels' expected a tensor of dtype 'u32'/);
    z.dispose();
    y.dispose();
    const regressor = new Regressor(ctx, { fc1: new Linear(3, 2) }, { inputShape: [3] });
    await expect(regressor.predict(set(), { temperature: 2 })).rejects.toThrow(/predict: argument 'temperature' expected nothing for a regression model/);
    regressor.dispose();
    model.dispose();
  });

  it('loadModel refuses a file whose modelOptions temperature is not a finite number > 0', async () => {
    const ctx = await context();
    const model = classifier(ctx);
    model.temperature = 1.25;
    const file = decodeSafetensors(await saveModel(model));
    const tensors = Object.fromEntries([...file.tensors].map(([name, t]) => [name, { dtype: t.dtype, shape: t.shape, data: t.data }]));
    for (const bad of [0, -3, 'hot', null]) {
      const options = { ...JSON.parse(file.metadata.modelOptions), temperature: bad };
      const bytes = encodeSafetensors(tensors, { ...file.metadata, modelOptions: JSON.stringify(options) });
      expect(() => loadModel(ctx, bytes)).toThrow(/loadModel: the metadata 'modelOptions' has temperature .*, expected a finite number > 0/);
    }
    model.dispose();
  });
});
