import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { BBBConv2d, BBBLinear, type LayerType } from '../../src/nn/bayes.js';
import { imagesToTensor } from '../../src/nn/image_input.js';
import { Dropout, Flatten, HomoscedasticNoise, Linear, Softplus } from '../../src/nn/layers.js';
import type { ModelInput } from '../../src/nn/input.js';
import type { Prediction, PredictOptions, RegressionPrediction } from '../../src/nn/predict.js';
import { Regressor, Sequential, type ForwardOptions } from '../../src/nn/sequential.js';
import { predictiveDistribution } from '../../src/ops/uncertainty.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { type Method, decompose, predictiveReference } from '../reference/uncertainty.js';

/** What the kernel computes, read back: the fields of a Prediction that the float64 reference has. */
type KernelResult = Pick<Prediction, 'mean' | 'epistemic' | 'aleatoric' | 'predictiveEntropy' | 'expectedEntropy' | 'mutualInformation' | 'maxProb'> & { probs: Float32Array };

/** Runs the kernel on logits [T * B, C] and reads everything back. */
async function gpuPredictive(ctx: Context, logits: ArrayLike<number>, T: number, B: number, C: number, method: Method): Promise<KernelResult> {
  const input = ctx.tensor(logits, [T * B, C]);
  const t = predictiveDistribution(input, { samples: T, method });
  expect(t.probs.shape).toEqual([T * B, C]);
  expect(t.moments.shape).toEqual([3, B, C]);
  expect(t.information.shape).toEqual([4, B]);
  const [probs, moments, info] = (await ctx.readMany([t.probs, t.moments, t.information])) as Float32Array[];
  for (const x of [input, t.probs, t.moments, t.information]) x.dispose();
  const n = B * C;
  return {
    probs, mean: moments.subarray(0, n), epistemic: moments.subarray(n, 2 * n), aleatoric: moments.subarray(2 * n, 3 * n),
    predictiveEntropy: info.subarray(0, B), expectedEntropy: info.subarray(B, 2 * B), mutualInformation: info.subarray(2 * B, 3 * B), maxProb: info.subarray(3 * B, 4 * B),
  };
}

/** Logits whose softmax is exactly `probs` (log p; a zero probability becomes -1e30, whose exp is 0). */
function logitsOf(probs: ArrayLike<number>): Float32Array {
  return Float32Array.from(probs as ArrayLike<number>, (p) => (p > 0 ? Math.log(p) : -1e30));
}

function compareAll(got: KernelResult | Prediction, want: ReturnType<typeof predictiveReference>, rtol: number, what: string): void {
  expect(got.probs, `${what}: probs kept`).not.toBeNull();
  expectClose(got.probs!, want.probs, rtol, `${what} probs`);
  expectClose(got.mean, want.mean, rtol, `${what} mean`);
  expectClose(got.epistemic, want.epistemic, rtol, `${what} epistemic`);
  expectClose(got.aleatoric, want.aleatoric, rtol, `${what} aleatoric`);
  expectClose(got.predictiveEntropy, want.predictiveEntropy, rtol, `${what} predictive entropy`);
  expectClose(got.expectedEntropy, want.expectedEntropy, rtol, `${what} expected entropy`);
  expectClose(got.mutualInformation, want.mutualInformation, rtol, `${what} mutual information`);
  expectClose(got.maxProb, want.maxProb, rtol, `${what} max probability`);
}

describe('predictive distribution kernel (uncertainty.wgsl)', () => {
  // [T, B, C]: single sample and class pair, odd sizes, B above one workgroup (64), 100 classes.
  const shapes: [number, number, number][] = [[1, 1, 2], [5, 3, 10], [7, 70, 3], [3, 2, 100], [25, 4, 10]];
  for (const method of ['softmax', 'normalized'] as const) {
    for (const [T, B, C] of shapes) {
      it(`${method} matches float64, T=${T} B=${B} C=${C}`, async () => {
        const ctx = await context();
        const logits = Float32Array.from(randomArray(T * B * C, T * 1000 + B * 10 + C, -6, 6));
        const got = await gpuPredictive(ctx, logits, T, B, C, method);
        // Tolerance 2e-5 relative to each tensor's magnitude: f32 exp/log and sums of up to 100 terms;
        // the mutual information is a difference of two entropies of similar size.
        compareAll(got, predictiveReference(logits, T, B, C, method), 2e-5, `${method} [${T},${B},${C}]`);
      });
    }
  }

  it('matches float64 on fixed probability tensors (softmax of log p is p)', async () => {
    const ctx = await context();
    // T = 3 samples of B = 2 examples over C = 4 classes, hand-picked, with exact zeros.
    const probs = Float64Array.from([
      0.7, 0.1, 0.1, 0.1, /* t0 b0 */ 0.25, 0.25, 0.25, 0.25, // t0 b1
      0.5, 0.5, 0, 0, /* t1 b0 */ 0.1, 0.2, 0.3, 0.4, // t1 b1
      0.4, 0.3, 0.2, 0.1, /* t2 b0 */ 0, 0, 0, 1, // t2 b1
    ]);
    const got = await gpuPredictive(ctx, logitsOf(probs), 3, 2, 4, 'softmax');
    // Tolerance 1e-6: only f32 rounding of log/exp of the inputs.
    compareAll(got, decompose(probs, 3, 2, 4), 1e-6, 'fixed probabilities');
  });

  it('hand-computed: identical one-hot samples have zero uncertainty; uniform ones have entropy log C', async () => {
    const ctx = await context();
    const T = 4;
    const C = 5;
    // Example 0: every sample is the one-hot vector e_2. Example 1: every sample is uniform.
    const probs = new Float64Array(T * 2 * C);
    for (let t = 0; t < T; t++) {
      probs[(t * 2 + 0) * C + 2] = 1;
      for (let c = 0; c < C; c++) probs[(t * 2 + 1) * C + c] = 1 / C;
    }
    for (const method of ['softmax', 'normalized'] as const) {
      // normalized: softplus(0) / (C softplus(0)) = 1/C for equal logits; one-hot needs softmax's log p.
      const logits = method === 'softmax' ? logitsOf(probs) : Float32Array.from(probs, (p) => (p === 1 ? 1e4 : p > 0 ? 0 : -1e4));
      const got = await gpuPredictive(ctx, logits, T, 2, C, method);
      if (method === 'softmax') {
        expect(Array.from(got.mean.subarray(0, C))).toEqual([0, 0, 1, 0, 0]);
        expect(Array.from(got.epistemic.subarray(0, C))).toEqual([0, 0, 0, 0, 0]);
        expect(Array.from(got.aleatoric.subarray(0, C))).toEqual([0, 0, 0, 0, 0]);
        expect([got.predictiveEntropy[0], got.expectedEntropy[0], got.mutualInformation[0], got.maxProb[0]]).toEqual([0, 0, 0, 1]);
      }
      // Uniform: H = log C for p_bar and every p_t, MI = 0, epistemic 0, aleatoric 1/C - 1/C^2 = 0.16.
      expect(got.predictiveEntropy[1]).toBeCloseTo(Math.log(C), 6);
      expect(got.expectedEntropy[1]).toBeCloseTo(Math.log(C), 6);
      expect(Math.abs(got.mutualInformation[1])).toBeLessThan(1e-6);
      for (let c = 0; c < C; c++) {
        expect(got.epistemic[C + c]).toBeLessThan(1e-12);
        expect(got.aleatoric[C + c]).toBeCloseTo(1 / C - 1 / (C * C), 6);
      }
    }
  });

  it('hand-computed: two confident samples that disagree are all epistemic (MI = log 2)', async () => {
    const ctx = await context();
    // Samples [1, 0] and [0, 1]: p_bar = [1/2, 1/2], H[p_bar] = log 2, each H[p_t] = 0, so MI = log 2;
    // epistemic = ((1 - 1/2)^2 + (0 - 1/2)^2) / 2 = 1/4 per class; aleatoric = mean of p - p^2 = 0.
    const got = await gpuPredictive(ctx, logitsOf([1, 0, 0, 1]), 2, 1, 2, 'softmax');
    expect(Array.from(got.mean)).toEqual([0.5, 0.5]);
    expect(Array.from(got.epistemic)).toEqual([0.25, 0.25]);
    expect(Array.from(got.aleatoric)).toEqual([0, 0]);
    expect(got.predictiveEntropy[0]).toBeCloseTo(Math.LN2, 6);
    expect(got.expectedEntropy[0]).toBe(0);
    expect(got.mutualInformation[0]).toBeCloseTo(Math.LN2, 6);
  });

  it('normalized: very negative logits (softplus underflows to 0) fall back to the softmax limit', async () => {
    const ctx = await context();
    const logits = [-200, -201, -203];
    const got = await gpuPredictive(ctx, logits, 1, 1, 3, 'normalized');
    const want = predictiveReference(logits, 1, 1, 3, 'softmax'); // softplus(z) ~ e^z for z << 0
    expectClose(got.mean, want.mean, 1e-6, 'limit');
  });

  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const logits = ctx.tensor(new Float32Array(12), [6, 2]);
    expect(() => predictiveDistribution(logits, { samples: 0 })).toThrow(/predictiveDistribution: argument 'samples' expected an integer >= 1, got 0/);
    expect(() => predictiveDistribution(logits, { samples: 4 })).toThrow(/argument 'logits' expected shape \[T \* B, C\] with rows a multiple of samples T = 4, got \[6, 2\]/);
    expect(() => predictiveDistribution(logits, { samples: 2, method: 'probit' as Method })).toThrow(/argument 'method' expected one of 'softmax' \| 'normalized', got "probit"/);
    expect(() => predictiveDistribution(logits.reshape([12]), { samples: 1 })).toThrow(/argument 'logits' expected shape \[T \* B, C\], got \[12\]/);
    logits.dispose();
    expect(() => predictiveDistribution(logits, { samples: 1 })).toThrow(/argument 'logits' is a disposed tensor/);
  });
});


/** A small Bayesian CNN on 1 x 6 x 6 images: BBBConv2d -> softplus -> flatten -> BBBLinear (4 classes). */
function smallBayesModel(ctx: Context, layerType: LayerType): Sequential {
  return new Sequential(ctx, {
    conv1: new BBBConv2d(1, 3, 3, { layerType, seed: 11, priors: { posterior_rho_initial: [-1, 0.1] } }),
    act1: new Softplus(),
    flatten: new Flatten(),
    fc1: new BBBLinear(null, 4, { layerType, seed: 12, priors: { posterior_rho_initial: [-1, 0.1] } }),
  }, { inputShape: [1, 6, 6] });
}

/** A frequentist MLP with dropout on 1 x 6 x 6 inputs (3 classes). */
function dropoutModel(ctx: Context): Sequential {
  return new Sequential(ctx, { flatten: new Flatten(), fc1: new Linear(null, 8, { seed: 2 }), drop: new Dropout(0.5), fc2: new Linear(null, 3, { seed: 3 }) }, { inputShape: [1, 6, 6] });
}

/** Logits of one model.run, read back. */
async function runLogits(ctx: Context, model: Sequential, x: Tensor, o: ForwardOptions): Promise<Float32Array> {
  return ctx.scope(async () => (await model.run(x, { ...o, kl: false }).logits.read()) as Float32Array);
}

/** Every per-example array of a prediction, for comparing two predictions. */
function arraysOf(p: Prediction): Record<string, ArrayLike<number> | null> {
  const { mean, epistemic, aleatoric, predictiveEntropy, expectedEntropy, mutualInformation, maxProb, predicted, labels, probs } = p;
  return { mean, epistemic, aleatoric, predictiveEntropy, expectedEntropy, mutualInformation, maxProb, predicted, labels, probs };
}

/** Bit-for-bit equality of two predictions (same kernels, same batches, same keys). */
function expectSamePrediction(got: Prediction, want: Prediction, what: string): void {
  expect([got.count, got.classes, got.samples, got.method], `${what}: sizes`).toEqual([want.count, want.classes, want.samples, want.method]);
  const a = arraysOf(got);
  const b = arraysOf(want);
  for (const key of Object.keys(b)) expect(a[key] === null ? null : Array.from(a[key]!), `${what}: ${key}`).toEqual(b[key] === null ? null : Array.from(b[key]!));
}

describe('model.predict (T samples batched on the GPU)', () => {
  const B = 3;
  const images = () => Float32Array.from(randomArray(B * 36, 5, 0, 1));

  for (const layerType of ['lrt', 'bbb'] as const) {
    it(`${layerType}: equals the float64 decomposition of the model's own T-batched logits; the mode is restored`, async () => {
      const ctx = await context();
      const model = smallBayesModel(ctx, layerType);
      const x = ctx.tensor(images(), [B, 1, 6, 6]);
      const T = 6;
      model.eval();
      const logits = await runLogits(ctx, model, x, { samples: T, sample: true, seed: 3, step: 9 });
      model.train(); // predict switches to eval mode and restores the training mode
      for (const method of ['softmax', 'normalized'] as const) {
        const got = await model.predict(x, { samples: T, method, seed: 3, step: 9, keepSamples: true });
        // Tolerance 2e-5: f32 exp/log in the reduction (the logits themselves are identical).
        compareAll(got, predictiveReference(logits, T, B, 4, method), 2e-5, `${layerType} ${method}`);
        expect([got.count, got.classes, got.samples, got.method, got.labels]).toEqual([B, 4, T, method, null]);
        for (let i = 0; i < B; i++) {
          const row = Array.from(got.mean.subarray(i * 4, i * 4 + 4));
          expect(got.predicted[i]).toBe(row.indexOf(Math.max(...row)));
        }
      }
      expect(model.training).toBe(true);
      // The samples really differ (the posterior is sampled), and sample: false makes them agree.
      const sampled = await model.predict(x, { samples: T, seed: 3, step: 9 });
      expect(sampled.probs).toBeNull(); // only with keepSamples
      expect(Math.max(...sampled.epistemic)).toBeGreaterThan(1e-6);
      const meanWeights = await model.predict(x, { samples: T, sample: false });
      expect(meanWeights.samples).toBe(1); // a deterministic network runs once
      expect(Math.max(...meanWeights.epistemic)).toBe(0);
      model.eval();
      await model.predict(x);
      expect(model.training).toBe(false); // eval mode stays eval mode
      x.dispose();
      model.dispose();
    });

    it(`${layerType}: sample t of a T-batched run equals a single pass with sample offset t`, async () => {
      const ctx = await context();
      const model = smallBayesModel(ctx, layerType).eval();
      const x = ctx.tensor(images(), [B, 1, 6, 6]);
      const T = 4;
      const key = { sample: true, seed: 21, step: 4 };
      const batched = await model.predict(x, { samples: T, ...key, keepSamples: true });
      const perSample = B * 4;
      // Sample 0 draws at the indices a single pass draws at.
      const single0 = await model.predict(x, { samples: 1, ...key, keepSamples: true });
      // Tolerance 1e-6: the same draws and the same summation order; only the batch size differs.
      expectClose(single0.probs!, batched.probs!.subarray(0, perSample), 1e-6, 'sample 0');
      for (let t = 1; t < T; t++) {
        const logits = await runLogits(ctx, model, x, { samples: 1, ...key, sampleOffset: t });
        const single = predictiveReference(logits, 1, B, 4, 'softmax');
        expectClose(batched.probs!.subarray(t * perSample, (t + 1) * perSample), single.probs, 1e-5, `sample ${t}`);
      }
      x.dispose();
      model.dispose();
    });
  }

  it('MC dropout: samples differ with mcDropout; without it the network is deterministic and runs once', async () => {
    const ctx = await context();
    const model = dropoutModel(ctx);
    const x = ctx.tensor(images(), [B, 1, 6, 6]);
    const on = await model.predict(x, { samples: 8, mcDropout: true, seed: 1, keepSamples: true });
    const off = await model.predict(x, { samples: 8, keepSamples: true });
    expect(on.samples).toBe(8);
    expect(Math.max(...on.mutualInformation)).toBeGreaterThan(1e-4);
    expect(off.samples).toBe(1);
    expect(off.probs!.length).toBe(B * 3);
    expect(Math.max(...off.epistemic)).toBe(0);
    for (const t of [0, 3, 7]) {
      const logits = await runLogits(ctx, model, x, { samples: 1, mcDropout: true, seed: 1, sampleOffset: t });
      // Tolerance 1e-5: the same dropout mask and weights; only the batch size differs.
      expectClose(on.probs!.subarray(t * B * 3, (t + 1) * B * 3), predictiveReference(logits, 1, B, 3, 'softmax').probs, 1e-5, `dropout sample ${t}`);
    }
    x.dispose();
    model.dispose();
  });

  it('default samples: 10 for a Bayesian model or with mcDropout, 1 for a deterministic network', async () => {
    const ctx = await context();
    const bayes = smallBayesModel(ctx, 'lrt');
    const dropout = dropoutModel(ctx);
    const x = ctx.tensor(images(), [B, 1, 6, 6]);
    expect((await bayes.predict(x)).samples).toBe(10);
    expect((await bayes.predict(x, { sample: false })).samples).toBe(1);
    expect((await dropout.predict(x)).samples).toBe(1);
    expect((await dropout.predict(x, { mcDropout: true })).samples).toBe(10);
    // The default is the explicit 10 with the default key (0, 0).
    expectSamePrediction(await bayes.predict(x), await bayes.predict(x, { samples: 10, seed: 0, step: 0 }), 'default samples');
    x.dispose();
    bayes.dispose();
    dropout.dispose();
  });

  it('a Tensor, values { data, shape } (typed array or number[]) and a data set give identical results, batched or not', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const N = 11;
    const xs = Float32Array.from(randomArray(N * 36, 8, 0, 1));
    const labels = Uint8Array.from({ length: N }, (_, i) => i % 4);
    const x = ctx.tensor(xs, [N, 1, 6, 6]);
    const live = ctx.memory().liveTensors;
    for (const batchSize of [256, 4]) {
      const o: PredictOptions = { samples: 5, seed: 7, step: 100, batchSize, keepSamples: true };
      const fromTensor = await model.predict(x, o);
      expectSamePrediction(await model.predict({ data: xs, shape: [N, 1, 6, 6] }, o), fromTensor, `Float32Array values, batch ${batchSize}`);
      expectSamePrediction(await model.predict({ data: Float64Array.from(xs), shape: [N, 1, 6, 6] }, o), fromTensor, `Float64Array values, batch ${batchSize}`);
      expectSamePrediction(await model.predict({ data: Array.from(xs), shape: [N, 1, 6, 6] }, o), fromTensor, `number[] values, batch ${batchSize}`);
      const fromSet = await model.predict({ x: xs, count: N, shape: [1, 6, 6], labels }, o);
      expect(Array.from(fromSet.labels!)).toEqual(Array.from(labels));
      expectSamePrediction({ ...fromSet, labels: null }, fromTensor, `data set, batch ${batchSize}`);
    }
    expect(ctx.memory().liveTensors).toBe(live); // every input copy and result tensor is freed; the caller's x is not
    expect(x.disposed).toBe(false);
    x.dispose();
    model.dispose();
  });

  it('one example: [...inputShape] as a Tensor or as values is a batch of one', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'bbb');
    const one = Float32Array.from(randomArray(36, 12, 0, 1));
    const o = { samples: 4, seed: 2, step: 5 };
    const batchOfOne = await model.predict({ data: one, shape: [1, 1, 6, 6] }, o);
    expect([batchOfOne.count, batchOfOne.mean.length, batchOfOne.maxProb.length]).toEqual([1, 4, 1]);
    const x = ctx.tensor(one, [1, 6, 6]);
    const live = ctx.memory().liveTensors;
    expectSamePrediction(await model.predict(x, o), batchOfOne, 'Tensor [1, 6, 6]');
    expect(ctx.memory().liveTensors).toBe(live); // the [1, 1, 6, 6] view is freed, the tensor kept
    expect(x.disposed).toBe(false);
    expectSamePrediction(await model.predict({ data: Array.from(one), shape: [1, 6, 6] }, o), batchOfOne, 'values [1, 6, 6]');
    x.dispose();
    model.dispose();
  });

  it('batches: onProgress after each; batch k is its own prediction keyed by step + first index; without sampling it equals one batch', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const N = 11;
    const xs = Float32Array.from(randomArray(N * 36, 9, 0, 1));
    const data = { x: xs, count: N, shape: [1, 6, 6] as const };
    const progress: [number, number][] = [];
    const got = await model.predict(data, { samples: 5, batchSize: 4, seed: 7, step: 100, keepSamples: true, onProgress: ({ done, total }) => void progress.push([done, total]) });
    expect(progress).toEqual([[4, 11], [8, 11], [11, 11]]);
    for (let from = 0; from < N; from += 4) {
      const n = Math.min(4, N - from);
      const part = await model.predict({ data: xs.subarray(from * 36, (from + n) * 36), shape: [n, 1, 6, 6] }, { samples: 5, seed: 7, step: 100 + from, keepSamples: true });
      const rows = (a: Float32Array, width: number) => a.subarray(from * width, (from + n) * width);
      expect(Array.from(rows(got.mean, 4)), `mean of batch at ${from}`).toEqual(Array.from(part.mean));
      expect(Array.from(rows(got.epistemic, 4))).toEqual(Array.from(part.epistemic));
      expect(Array.from(rows(got.mutualInformation, 1))).toEqual(Array.from(part.mutualInformation));
      expect(Array.from(got.predicted.subarray(from, from + n))).toEqual(Array.from(part.predicted));
      // probs is [T, N, C]: sample t of this batch sits at rows t * N + from ..
      for (let t = 0; t < 5; t++) expect(Array.from(got.probs!.subarray((t * N + from) * 4, (t * N + from + n) * 4)), `probs t=${t} from=${from}`).toEqual(Array.from(part.probs!.subarray(t * n * 4, (t + 1) * n * 4)));
    }
    // Posterior means: nothing random, so batching changes nothing but the GEMM's batch size.
    const batched = await model.predict(data, { sample: false, batchSize: 4 });
    const whole = await model.predict(data, { sample: false });
    // Tolerance 1e-6: the same sums; a kernel variant chosen per batch size may round differently.
    expectClose(batched.mean, whole.mean, 1e-6, 'batched mean');
    expectClose(batched.predictiveEntropy, whole.predictiveEntropy, 1e-6, 'batched entropy');
    model.dispose();
  });

  it('predictions running at once do not see each other: the model is in eval mode only while a batch is recorded', async () => {
    const ctx = await context();
    const model = dropoutModel(ctx); // training mode: dropout on; eval mode without mcDropout: deterministic
    const data = { x: Float32Array.from(randomArray(6 * 36, 6, 0, 1)), count: 6, shape: [1, 6, 6] };
    const alone = await model.predict(data, { batchSize: 2 });
    const pending = [model.predict(data, { batchSize: 2 }), model.predict(data, { batchSize: 2 })];
    expect(model.training).toBe(true); // between batches the model is in its own mode
    for (const p of await Promise.all(pending)) expectSamePrediction(p, alone, 'concurrent prediction');
    expect(model.training).toBe(true);
    model.dispose();
  });

  it('an error in onProgress rejects the call, restores the mode and frees everything', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const data = { x: Float32Array.from(randomArray(5 * 36, 3, 0, 1)), count: 5, shape: [1, 6, 6] };
    const live = ctx.memory().liveTensors;
    await expect(model.predict(data, { batchSize: 2, onProgress: () => { throw new Error('stop here'); } })).rejects.toThrow('stop here');
    expect(model.training).toBe(true);
    expect(ctx.memory().liveTensors).toBe(live);
    model.dispose();
  });

  it('image sources: a decoded image predicts as the tensor imagesToTensor makes of it', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const pixels = Uint8Array.from(randomArray(36, 4, 0, 255), (v) => Math.round(v));
    const raw = { data: pixels, width: 6, height: 6, channels: 1 as const };
    const x = await imagesToTensor(model, [raw, raw]);
    const want = await model.predict(x, { samples: 3 });
    x.dispose();
    const live = ctx.memory().liveTensors;
    expectSamePrediction(await model.predict([raw, raw], { samples: 3 }), want, 'two images');
    const one = await model.predict(raw, { samples: 3 });
    expect(one.count).toBe(1);
    expect(ctx.memory().liveTensors).toBe(live);
    model.dispose();
  });

  it('rejects bad input and options with one message, before anything is allocated', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const x = ctx.tensor(images(), [B, 1, 6, 6]);
    const u32 = ctx.tensor([1, 2, 3], [3], 'u32');
    const wide = x.reshape([B, 1, 3, 12]);
    const flat = x.reshape([B * 36]);
    let live = ctx.memory().liveTensors;
    const rejects = async (input: unknown, options: unknown, message: RegExp) => {
      await expect(model.predict(input as ModelInput, options as PredictOptions)).rejects.toThrow(message);
      expect(ctx.memory().liveTensors).toBe(live);
      expect(model.training).toBe(true);
    };
    // Options.
    await rejects(x, { samples: 0 }, /predict: argument 'samples' expected an integer >= 1, got 0/);
    await rejects(x, { samples: 2.5 }, /predict: argument 'samples' expected an integer >= 1, got 2.5/);
    await rejects(x, { method: 'probit' }, /predict: argument 'method' expected one of 'softmax' \| 'normalized', got "probit"/);
    await rejects(x, { seed: -1 }, /predict: argument 'seed' expected an integer >= 0, got -1/);
    await rejects(x, { seed: 2 ** 32 }, /predict: argument 'seed' expected an integer <= 2\^32 - 1, got 4294967296/);
    await rejects(x, { step: 2 ** 32 - 2 }, /predict: argument 'step' expected at most 4294967293 \(the batch keys are step \+ first index\)/);
    await rejects(x, { batchSize: 0 }, /predict: argument 'batchSize' expected an integer >= 1, got 0/);
    await rejects(x, { sampels: 4 }, /predict: argument 'options' expected only the keys samples, method, .*, got "unknown key 'sampels'"/);
    await rejects(x, { keepSamples: 'yes' }, /predict: argument 'keepSamples' expected true or false, got "yes"/);
    await rejects(x, { onProgress: 3 }, /predict: argument 'onProgress' expected a function/);
    await rejects(x, null, /predict: argument 'options' expected an options object/);
    await rejects(x, { mcDropout: true }, /predict: argument 'model' expected a model with a Dropout layer of p > 0 for MC dropout .*layers: conv1, act1, flatten, fc1/);
    // Tensors.
    await rejects(wide, {}, /predict: argument 'input' expected shape \[B, 1, 6, 6\] \(or \[1, 6, 6\] for one example\), got \[3, 1, 3, 12\]/);
    await rejects(flat, {}, /predict: argument 'input' expected shape \[B, 1, 6, 6\] .*, got \[108\]/);
    await rejects(u32, {}, /predict: argument 'input' expected a tensor of dtype 'f32', got "u32"/);
    // Values and data sets.
    await rejects({ data: new Float32Array(70), shape: [2, 1, 6, 6] }, {}, /predict: argument 'input.data' expected 72 values for shape \[2, 1, 6, 6\], got 70/);
    await rejects({ data: new Float32Array(72), shape: [2, 36] }, {}, /predict: argument 'input.shape' expected shape \[B, 1, 6, 6\] .*, got \[2, 36\]/);
    await rejects({ data: 'pixels', shape: [1, 6, 6] }, {}, /predict: argument 'input.data' expected a typed array or an array of numbers, got "pixels"/);
    await rejects({ data: [0, 'a', ...new Array(34).fill(0)], shape: [1, 6, 6] }, {}, /predict: argument 'input.data\[1\]' expected a number, got "a"/);
    const set = { x: new Float32Array(2 * 36), count: 2, shape: [1, 6, 6] };
    await rejects({ ...set, labels: [0, 1, 2] }, {}, /predict: argument 'input.labels' expected 2 labels \(one per example\), got 3/);
    await rejects({ ...set, labels: [0, -1] }, {}, /predict: argument 'input.labels\[1\]' expected a class index \(an integer >= 0\), got -1/);
    await rejects({ ...set, shape: [1, 5, 5] }, {}, /predict: argument 'input.shape' \(one example's shape in a data set\) expected \[1, 6, 6\], got \[1, 5, 5\]/);
    await rejects({ ...set, count: 3 }, {}, /predict: argument 'input.x' expected a Float32Array of 108 values \(3 examples of \[1, 6, 6\]\), got 72 values/);
    await rejects({ ...set, count: 0 }, {}, /predict: argument 'input.count' expected an integer >= 1, got 0/);
    // Wrong kinds.
    await rejects(new Float32Array(36), {}, /predict: argument 'input' expected a Tensor \[B, 1, 6, 6\] .* got Float32Array \(give the values their shape: \{ data, shape: \[B, 1, 6, 6\] \}\)/);
    await rejects([0.5, 0.5], {}, /predict: argument 'input' expected a Tensor .* got an array of 2 \(first: number 0.5\) \(give the values their shape/);
    await rejects('digit.png', {}, /predict: argument 'input' expected a Tensor .*, got string digit.png/);
    await rejects(null, {}, /predict: argument 'input' expected a Tensor .*, got null/);
    await rejects([], {}, /predict: argument 'input' expected a Tensor .*, got an empty array/);
    x.dispose();
    live = ctx.memory().liveTensors;
    await rejects(x, {}, /predict: argument 'input' is a disposed tensor/);
    for (const t of [u32, wide, flat]) t.dispose();
    model.dispose();
  });
});

describe('Regressor.predict', () => {
  /** A heteroscedastic or homoscedastic Bayesian MLP, 2 features -> 3 -> (mean, log variance). */
  const regressor = (ctx: Context, head: 'heteroscedastic' | 'homoscedastic') => new Regressor(ctx, head === 'heteroscedastic'
    ? { fc1: new BBBLinear(2, 3, { seed: 1, priors: { posterior_rho_initial: [-1, 0.1] } }), act1: new Softplus(), out: new BBBLinear(3, 2, { seed: 2, priors: { posterior_rho_initial: [-1, 0.1] } }) }
    : { fc1: new BBBLinear(2, 3, { seed: 1, priors: { posterior_rho_initial: [-1, 0.1] } }), act1: new Softplus(), out: new BBBLinear(3, 1, { seed: 2 }), noise: new HomoscedasticNoise({ std: 0.3 }) }, { inputShape: [2] });

  for (const head of ['heteroscedastic', 'homoscedastic'] as const) {
    it(`${head}: the moments are the float64 moments of the model's own per-sample outputs, batch by batch`, async () => {
      const ctx = await context();
      const model = regressor(ctx, head);
      expect(model.task).toBe('regression');
      const N = 5;
      const T = 6;
      const xs = Float32Array.from(randomArray(N * 2, 13, -2, 2));
      const progress: number[] = [];
      const got: RegressionPrediction = await model.predict({ data: xs, shape: [N, 2] }, { samples: T, seed: 9, step: 2, batchSize: 2, keepSamples: true, onProgress: ({ done }) => void progress.push(done) });
      expect(progress).toEqual([2, 4, 5]);
      expect([got.count, got.samples]).toEqual([N, T]);
      model.eval();
      for (let from = 0; from < N; from += 2) {
        const n = Math.min(2, N - from);
        const x = ctx.tensor(xs.subarray(from * 2, (from + n) * 2), [n, 2]);
        const out = await runLogits(ctx, model, x, { samples: T, sample: true, seed: 9, step: 2 + from }); // [T * n, 2]
        x.dispose();
        for (let b = 0; b < n; b++) {
          // Kendall & Gal 2017, eq. 9, in float64: mean_t mu_t, var_t mu_t (population), mean_t sigma^2_t.
          const mu = Array.from({ length: T }, (_, t) => out[2 * (t * n + b)]);
          const sigma2 = Array.from({ length: T }, (_, t) => Math.exp(out[2 * (t * n + b) + 1]));
          const mean = mu.reduce((a, v) => a + v, 0) / T;
          const epistemic = mu.reduce((a, v) => a + (v - mean) ** 2, 0) / T;
          const aleatoric = sigma2.reduce((a, v) => a + v, 0) / T;
          // Tolerance 2e-6: the f32 reduction of T = 6 values against float64.
          expectClose([got.mean[from + b], got.epistemicVar[from + b], got.aleatoricVar[from + b], got.std[from + b]], [mean, epistemic, aleatoric, Math.sqrt(epistemic + aleatoric)], 2e-6, `point ${from + b}`);
          for (let t = 0; t < T; t++) expect([got.outputs![2 * (t * N + from + b)], got.outputs![2 * (t * N + from + b) + 1]]).toEqual([out[2 * (t * n + b)], out[2 * (t * n + b) + 1]]);
        }
      }
      expect(Math.min(...got.epistemicVar)).toBeGreaterThan(0);
      if (head === 'homoscedastic') for (const v of got.aleatoricVar) expect(v).toBeCloseTo(0.09, 6);
      model.dispose();
    });
  }

  it('posterior means run once: zero epistemic variance; inputs given every way agree; frees everything and restores the mode', async () => {
    const ctx = await context();
    const model = regressor(ctx, 'heteroscedastic');
    const xs = Float32Array.from(randomArray(8, 3));
    const live = ctx.memory().liveTensors;
    const p = await model.predict({ data: xs, shape: [4, 2] }, { samples: 5, sample: false, batchSize: 3 });
    expect(p.samples).toBe(1);
    expect(p.outputs).toBeNull();
    for (const v of p.epistemicVar) expect(v).toBe(0);
    expect(ctx.memory().liveTensors).toBe(live);
    expect(model.training).toBe(true);
    const x = ctx.tensor(xs, [4, 2]);
    const o = { samples: 7, seed: 4, batchSize: 3 };
    const fromTensor = await model.predict(x, o);
    const fromArray = await model.predict({ data: Array.from(xs), shape: [4, 2] }, o);
    const fromSet = await model.predict({ x: xs, count: 4, shape: [2] }, o);
    for (const q of [fromArray, fromSet]) for (const k of ['mean', 'std', 'epistemicVar', 'aleatoricVar'] as const) expect(Array.from(q[k])).toEqual(Array.from(fromTensor[k]));
    const single = await model.predict(ctx.tensor(xs.subarray(0, 2), [2]), { samples: 7, seed: 4 });
    expect(single.count).toBe(1);
    x.dispose();
    model.dispose();
  });

  it('types: a Regressor predicts a RegressionPrediction, any other model a Prediction', async () => {
    const ctx = await context();
    const model = regressor(ctx, 'heteroscedastic');
    const asRegression: RegressionPrediction = await model.predict({ data: [0, 1], shape: [2] });
    expect(asRegression.std).toBeInstanceOf(Float32Array);
    const classifier = smallBayesModel(ctx, 'lrt');
    const asClasses: Prediction = await classifier.predict({ data: new Float32Array(36), shape: [1, 6, 6] });
    expect(asClasses.predicted).toBeInstanceOf(Uint32Array);
    // @ts-expect-error a classifier's prediction is not a RegressionPrediction
    const wrong: RegressionPrediction = await classifier.predict({ data: new Float32Array(36), shape: [1, 6, 6] });
    expect(wrong).toBeDefined();
    const asSequential: Sequential = model; // a Regressor is a Sequential (fit, saveModel take it)
    expect(asSequential.task).toBe('regression');
    model.dispose();
    classifier.dispose();
  });

  it('rejects a Regressor without the (mean, log variance) head, and options only a classifier has', async () => {
    const ctx = await context();
    const live = ctx.memory().liveTensors;
    expect(() => new Regressor(ctx, { fc1: new Linear(2, 3) }, { inputShape: [2] })).toThrow(/Regressor: argument 'layers' expected a network with outputs \[2\] per example .*, got \[3\]/);
    expect(() => new Regressor(ctx, { fc1: new Linear(2, 2) }, { inputShape: [2], task: 'classification' })).toThrow(/Regressor: argument 'options.task' expected 'regression' or nothing, got "classification"/);
    expect(ctx.memory().liveTensors).toBe(live);
    const model = regressor(ctx, 'homoscedastic');
    const before = ctx.memory().liveTensors;
    await expect(model.predict({ data: [0, 1], shape: [2] }, { method: 'softmax' })).rejects.toThrow(/predict: argument 'method' expected nothing for a regression model/);
    await expect(model.predict({ data: [0, 1, 2], shape: [3] })).rejects.toThrow(/predict: argument 'input.shape' expected shape \[B, 2\] \(or \[2\] for one example\), got \[3\]/);
    await expect(model.predict({ data: [0, 1], shape: [2] }, { mcDropout: true })).rejects.toThrow(/predict: argument 'model' expected a model with a Dropout layer of p > 0/);
    expect(ctx.memory().liveTensors).toBe(before);
    model.dispose();
  });
});
