import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { BBBConv2d, BBBLinear, type LayerType } from '../../src/nn/bayes.js';
import { Dropout, Flatten, Linear, Softplus } from '../../src/nn/layers.js';
import { Sequential, type ForwardOptions } from '../../src/nn/sequential.js';
import { type Prediction, predict, predictDataset, predictiveDistribution, readPrediction } from '../../src/uncertainty/predict.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { type Method, decompose, predictiveReference } from '../reference/uncertainty.js';

/** Runs the kernel on logits [T * B, C] and reads everything back. */
async function gpuPredictive(ctx: Context, logits: ArrayLike<number>, T: number, B: number, C: number, method: Method): Promise<Prediction> {
  const t = predictiveDistribution(ctx.tensor(logits, [T * B, C]), { samples: T, method });
  return readPrediction(t, T, method);
}

/** Logits whose softmax is exactly `probs` (log p; a zero probability becomes -1e30, whose exp is 0). */
function logitsOf(probs: ArrayLike<number>): Float32Array {
  return Float32Array.from(probs as ArrayLike<number>, (p) => (p > 0 ? Math.log(p) : -1e30));
}

function compareAll(got: Prediction, want: ReturnType<typeof predictiveReference>, rtol: number, what: string): void {
  expectClose(got.probs, want.probs, rtol, `${what} probs`);
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
        expect([got.samples, got.batch, got.classes, got.method]).toEqual([T, B, C, method]);
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

/**
 * Whether Sequential takes ForwardOptions.sampleOffset (the patch proposed with this module: the
 * noise of a pass starts at its first sample's position in a T-sample batch).
 */
function supportsSampleOffset(model: Sequential): boolean {
  return (model.makePass({ sampleOffset: 1 } as ForwardOptions) as { sampleOffset?: number }).sampleOffset === 1;
}

/** Logits of one model.run, read back. */
async function runLogits(ctx: Context, model: Sequential, x: ReturnType<Context['tensor']>, o: ForwardOptions): Promise<Float32Array> {
  return ctx.scope(async () => (await model.run(x, { ...o, kl: false }).logits.read()) as Float32Array);
}

describe('predict (T samples batched on the GPU)', () => {
  const B = 3;
  const images = () => Float32Array.from(randomArray(B * 36, 5, 0, 1));

  for (const layerType of ['lrt', 'bbb'] as const) {
    it(`${layerType}: predict equals the float64 decomposition of the model's own T-batched logits`, async () => {
      const ctx = await context();
      const model = smallBayesModel(ctx, layerType);
      const x = ctx.tensor(images(), [B, 1, 6, 6]);
      const T = 6;
      model.eval();
      const logits = await runLogits(ctx, model, x, { samples: T, sample: true, seed: 3, step: 9 });
      model.train(); // predict switches to eval mode and restores the training mode
      for (const method of ['softmax', 'normalized'] as const) {
        const got = await predict(ctx, model, x, { samples: T, method, seed: 3, step: 9 });
        // Tolerance 2e-5: f32 exp/log in the reduction (the logits themselves are identical).
        compareAll(got, predictiveReference(logits, T, B, 4, method), 2e-5, `${layerType} ${method}`);
      }
      expect(model.training).toBe(true);
      // The samples really differ (the posterior is sampled), and sample: false makes them agree.
      const sampled = await predict(ctx, model, x, { samples: T, seed: 3, step: 9 });
      expect(Math.max(...sampled.epistemic)).toBeGreaterThan(1e-6);
      const meanWeights = await predict(ctx, model, x, { samples: T, sample: false });
      expect(Math.max(...meanWeights.epistemic)).toBeLessThan(1e-12);
      model.dispose();
    });

    it(`${layerType}: sample t of a T-batched run equals a single pass with the same seed and step (t = 0) ` +
      'and with sample offset t (t > 0)', async () => {
      const ctx = await context();
      const model = smallBayesModel(ctx, layerType).eval();
      const x = ctx.tensor(images(), [B, 1, 6, 6]);
      const T = 4;
      const key = { sample: true, seed: 21, step: 4 };
      const batched = await predict(ctx, model, x, { samples: T, ...key });
      const perSample = B * 4;
      // Sample 0: the noise of output element i is drawn at index i in both runs.
      const single0 = await predict(ctx, model, x, { samples: 1, ...key });
      // Tolerance 1e-6: the same draws and the same summation order; only the batch size differs.
      expectClose(single0.probs, batched.probs.subarray(0, perSample), 1e-6, 'sample 0');
      // Samples t > 0 draw at indices shifted by t times one sample's elements (the LRT noise is keyed by the
      // output index in the T * B batch, the BBB weights by t * weights + i): a single pass reproduces them only
      // when told its sample offset (ForwardOptions.sampleOffset, see the report's patch).
      if (!supportsSampleOffset(model)) {
        const single1 = await predict(ctx, model, x, { samples: 1, seed: 21, step: 4 });
        // Without an offset, sample 1 of the batch is not what a single pass draws.
        expect(Math.max(...single1.probs.map((p, i) => Math.abs(p - batched.probs[perSample + i])))).toBeGreaterThan(1e-4);
        return;
      }
      for (let t = 1; t < T; t++) {
        const logits = await runLogits(ctx, model, x, { samples: 1, ...key, sampleOffset: t } as ForwardOptions);
        const single = predictiveReference(logits, 1, B, 4, 'softmax');
        expectClose(batched.probs.subarray(t * perSample, (t + 1) * perSample), single.probs, 1e-5, `sample ${t}`);
      }
      model.dispose();
    });
  }

  it('MC dropout: samples differ with mcDropout and agree without it; sample t is a single pass with offset t', async () => {
    const ctx = await context();
    const model = new Sequential(ctx, { flatten: new Flatten(), fc1: new Linear(null, 8, { seed: 2 }), drop: new Dropout(0.5), fc2: new Linear(null, 3, { seed: 3 }) }, { inputShape: [1, 6, 6] });
    const x = ctx.tensor(images(), [B, 1, 6, 6]);
    const on = await predict(ctx, model, x, { samples: 8, mcDropout: true, seed: 1 });
    const off = await predict(ctx, model, x, { samples: 8 });
    expect(Math.max(...on.mutualInformation)).toBeGreaterThan(1e-4);
    expect(Math.max(...off.epistemic)).toBeLessThan(1e-12);
    if (supportsSampleOffset(model)) {
      for (const t of [0, 3, 7]) {
        const logits = await runLogits(ctx, model, x, { samples: 1, mcDropout: true, seed: 1, sampleOffset: t } as ForwardOptions);
        // Tolerance 1e-5: the same dropout mask and weights; only the batch size differs.
        expectClose(on.probs.subarray(t * B * 3, (t + 1) * B * 3), predictiveReference(logits, 1, B, 3, 'softmax').probs, 1e-5, `dropout sample ${t}`);
      }
    }
    model.dispose();
  });

  it('predictDataset: batches are predict() calls keyed by step + first index; labels come along', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const N = 11;
    const data = { x: Float32Array.from(randomArray(N * 36, 8, 0, 1)), count: N, shape: [1, 6, 6] as [number, number, number], labels: Uint8Array.from({ length: N }, (_, i) => i % 4), classes: 4 };
    const got = await predictDataset(ctx, model, data, { samples: 5, batchSize: 4, seed: 7, step: 100 });
    expect(got.count).toBe(N);
    expect(Array.from(got.labels!)).toEqual(Array.from(data.labels));
    for (let from = 0; from < N; from += 4) {
      const n = Math.min(4, N - from);
      const x = ctx.tensor(data.x.subarray(from * 36, (from + n) * 36), [n, 1, 6, 6]);
      const want = await predict(ctx, model, x, { samples: 5, seed: 7, step: 100 + from });
      // Tolerance 1e-6: the same computation on the same batch.
      expectClose(got.mean.subarray(from * 4, (from + n) * 4), want.mean, 1e-6, `mean of batch at ${from}`);
      expectClose(got.predictiveEntropy.subarray(from, from + n), want.predictiveEntropy, 1e-6, 'entropy');
      expectClose(got.mutualInformation.subarray(from, from + n), want.mutualInformation, 1e-6, 'mutual information');
      expectClose(got.maxProb.subarray(from, from + n), want.maxProb, 1e-6, 'max prob');
      for (let i = 0; i < n; i++) {
        const row = Array.from(want.mean.subarray(i * 4, i * 4 + 4));
        expect(got.predicted[from + i]).toBe(row.indexOf(Math.max(...row)));
      }
      x.dispose();
    }
    model.dispose();
  });

  it('rejects bad input, naming the argument, before GPU work', async () => {
    const ctx = await context();
    const model = smallBayesModel(ctx, 'lrt');
    const x = ctx.tensor(images(), [B, 1, 6, 6]);
    await expect(predict(ctx, model, x, { samples: 0 })).rejects.toThrow(/predict: argument 'samples' expected an integer >= 1, got 0/);
    await expect(predict(ctx, model, x, { samples: 2.5 })).rejects.toThrow(/predict: argument 'samples' expected an integer >= 1, got 2.5/);
    await expect(predict(ctx, model, x, { samples: 2, method: 'probit' as Method })).rejects.toThrow(/predict: argument 'method'/);
    await expect(predict(ctx, model, x, { samples: 2, seed: -1 })).rejects.toThrow(/predict: argument 'seed'/);
    await expect(predict(ctx, model, x.reshape([B, 1, 3, 12]), { samples: 2 })).rejects.toThrow(/predict: argument 'x' expected shape \[B, 1, 6, 6\], got \[3, 1, 3, 12\]/);
    const data = { x: new Float32Array(2 * 36), count: 2, shape: [1, 6, 6], labels: [0, 1, 2] };
    await expect(predictDataset(ctx, model, data, { samples: 2 })).rejects.toThrow(/predictDataset: argument 'data.labels' expected 2 labels \(one per image\), got 3/);
    await expect(predictDataset(ctx, model, { ...data, labels: undefined, shape: [1, 5, 5] }, { samples: 2 })).rejects.toThrow(/predictDataset: argument 'data' has images of shape \[1,5,5\] but the model expects \[1, 6, 6\]/);
    await expect(predictDataset(ctx, model, { ...data, labels: undefined }, { samples: 2, batchSize: 0 })).rejects.toThrow(/predictDataset: argument 'batchSize' expected an integer >= 1/);
    x.dispose();
    await expect(predict(ctx, model, x, { samples: 2 })).rejects.toThrow(/predict: argument 'x' is a disposed tensor/);
    model.dispose();
  });
});
