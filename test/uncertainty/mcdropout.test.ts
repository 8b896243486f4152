import { describe, expect, it } from 'vitest';
import { Dropout, Linear, ReLU } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import { Adam } from '../../src/train/adam.js';
import { trainStep } from '../../src/train/step.js';
import { checkMcDropout, dropoutLayers, mcDropoutMLP } from '../../src/uncertainty/mcdropout.js';
import { Prng } from '../../src/util/prng.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { dropoutRef } from '../reference/dropout.js';
import { linearRef } from '../reference/linear.js';
import { uniformRef } from '../reference/sample.js';

describe('MC dropout', () => {
  it('with mcDropout the T samples differ and the epistemic uncertainty is > 0; without, they are identical', async () => {
    const ctx = await context();
    const model = mcDropoutMLP(ctx, { features: 3, hidden: [16], outputs: 4, dropout: 0.5, seed: 1 });
    const T = 6;
    const B = 2;
    const x = ctx.tensor(randomArray(B * 3, 5), [B, 3]);
    const on = await model.predict(x, { samples: T, mcDropout: true, seed: 3, keepSamples: true });
    const off = await model.predict(x, { samples: T, seed: 3, keepSamples: true });
    const row = (p: Float32Array, t: number, b: number) => Array.from(p.subarray((t * B + b) * 4, (t * B + b + 1) * 4));
    // Without dropout the network is deterministic: its T samples would be equal, so it runs once.
    expect(off.samples).toBe(1);
    expect(off.probs!.length).toBe(B * 4);
    for (let b = 0; b < B; b++) {
      for (let t = 1; t < T; t++) expect(row(on.probs!, t, b)).not.toEqual(row(on.probs!, 0, b));
      expect(on.mutualInformation[b]).toBeGreaterThan(0);
      expect(Math.abs(off.mutualInformation[b])).toBeLessThan(1e-6);
    }
    expect(on.epistemic.reduce((a, v) => a + v, 0)).toBeGreaterThan(0);
    expect(off.epistemic.reduce((a, v) => a + v, 0)).toBe(0);
    expect(model.training).toBe(true); // the mode is restored
    // predict's samples are the eval-mode T-sample pass with dropout on: identical logits for the same key.
    model.eval();
    const logits = await ctx.scope(() => model.run(x, { samples: T, mcDropout: true, seed: 3, kl: false }).logits.read());
    model.train();
    const probs = Float64Array.from({ length: T * B * 4 }, (_, i) => i);
    for (let r = 0; r < T * B; r++) {
      const z = Array.from(logits.subarray(4 * r, 4 * r + 4));
      const m = Math.max(...z);
      const s = z.reduce((a, v) => a + Math.exp(v - m), 0);
      for (let c = 0; c < 4; c++) probs[4 * r + c] = Math.exp(z[c] - m) / s;
    }
    // Tolerance 1e-6: f32 softmax on the GPU against float64 on the same logits.
    expectClose(on.probs!, probs, 1e-6, 'probs of the T-sample pass');
  });

  it('T-batched masks follow the index contract: row t * B + b, element j uses uniform(key, (t * B + b) * F + j, stream)', async () => {
    const ctx = await context();
    const model = new Sequential(ctx, { fc1: new Linear(3, 5, { seed: 1 }), drop: new Dropout(0.4), fc2: new Linear(5, 2, { seed: 2 }) }, { inputShape: [3] });
    const T = 3;
    const B = 2;
    const xs = randomArray(B * 3, 7);
    model.eval(); // dropout stays on through mcDropout, as predict runs it
    const got = await ctx.scope(() => model.run(ctx.tensor(xs, [B, 3]), { samples: T, mcDropout: true, seed: 11, step: 4, kl: false }).logits.read());
    const params = model.namedParameters();
    const w1 = await params.get('fc1.weight')!.value.read();
    const b1 = await params.get('fc1.bias')!.value.read();
    const w2 = await params.get('fc2.weight')!.value.read();
    const b2 = await params.get('fc2.bias')!.value.read();
    const rows = T * B;
    const tiled = Float64Array.from({ length: rows * 3 }, (_, i) => xs[i % (B * 3)]);
    const hidden = linearRef(tiled, w1, b1, { rows, inF: 3, outF: 5, samples: 1 });
    // The dropout layer is the model's second layer: stream base 1 * 8.
    const u = Float64Array.from({ length: rows * 5 }, (_, i) => uniformRef(11, 4, i, 8));
    const want = linearRef(dropoutRef(hidden, 0.4, u), w2, b2, { rows, inF: 5, outF: 2, samples: 1 });
    // Tolerance 1e-6: two f32 matmuls of width <= 5 against float64; the masks are exact (24-bit uniforms).
    expectClose(got, want, 1e-6, 'MC dropout outputs');
  });

  it('a trained dropout MLP has higher mutual information far from its training data than on it', async () => {
    const ctx = await context();
    // Two classes: Gaussian blobs at (-2, 0) and (2, 0), std 0.5, 64 points each.
    const n = 128;
    const prng = new Prng(4);
    const xs = new Float32Array(2 * n);
    const labels = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 2;
      xs[2 * i] = (labels[i] === 0 ? -2 : 2) + 0.5 * prng.normal();
      xs[2 * i + 1] = 0.5 * prng.normal();
    }
    const model = mcDropoutMLP(ctx, { features: 2, hidden: [32, 32], outputs: 2, dropout: 0.3, seed: 2 });
    const adam = new Adam(model, { lr: 0.01 });
    const x = ctx.tensor(xs, [n, 2]);
    const y = ctx.tensor(labels, [n], 'u32');
    const started = performance.now();
    // 150 steps keyed (1, 0) .. (1, 149) by the optimizer's update count.
    for (let step = 0; step < 150; step++) trainStep(model, adam, x, y, { samples: 1, beta: 0, trainSize: n, seed: 1 });
    const train = await model.predict(x, { samples: 64, mcDropout: true, seed: 5 });
    // Far away: a ring of radius 8 around the data (8 directions).
    const far = Float32Array.from({ length: 16 }, (_, i) => 8 * (i % 2 === 0 ? Math.cos((Math.PI * (i >> 1)) / 4) : Math.sin((Math.PI * (i >> 1)) / 4)));
    const away = await model.predict({ data: far, shape: [8, 2] }, { samples: 64, mcDropout: true, seed: 5 });
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const accuracy = labels.reduce((s, l, i) => s + (train.mean[2 * i + l] > 0.5 ? 1 : 0), 0) / n;
    console.log(`MC dropout MLP: 150 steps in ${((performance.now() - started) / 1000).toFixed(1)} s, accuracy ${accuracy}; mean MI: training points ${mean(train.mutualInformation).toFixed(4)}, ring of radius 8 ${mean(away.mutualInformation).toFixed(4)}`);
    expect(accuracy).toBeGreaterThan(0.95);
    expect(mean(away.mutualInformation)).toBeGreaterThan(3 * mean(train.mutualInformation));
  });

  it('regression: predict with mcDropout has epistemic variance > 0, and 0 without', async () => {
    const ctx = await context();
    const model = mcDropoutMLP(ctx, { features: 1, hidden: [16], outputs: 2, dropout: 0.2, seed: 3, task: 'regression' });
    const homoscedastic = mcDropoutMLP(ctx, { features: 1, hidden: [16], outputs: 1, dropout: 0.2, noise: { std: 0.3, learn: false }, seed: 3 });
    const xs = Float32Array.from([-2, 0, 1, 5]);
    for (const m of [model, homoscedastic]) {
      const points = { data: xs, shape: [xs.length, 1] };
      const on = await m.predict(points, { samples: 32, mcDropout: true, seed: 1 });
      const off = await m.predict(points, { samples: 32, seed: 1 });
      expect([on.samples, off.samples]).toEqual([32, 1]);
      for (let i = 0; i < xs.length; i++) {
        expect(on.epistemicVar[i]).toBeGreaterThan(0);
        expect(off.epistemicVar[i]).toBeLessThan(1e-10);
      }
    }
    // The fixed homoscedastic noise is the aleatoric part: 0.3^2 at every point.
    const p = await homoscedastic.predict({ data: xs, shape: [xs.length, 1] }, { samples: 4, mcDropout: true });
    for (const v of p.aleatoricVar) expect(v).toBeCloseTo(0.09, 6);
  });

  it('rejects models without dropout and bad options before GPU work', async () => {
    const ctx = await context();
    const plain = new Sequential(ctx, { fc1: new Linear(2, 3), act: new ReLU(), drop: new Dropout(0) }, { inputShape: [2] });
    const x = ctx.tensor([1, 2], [1, 2]);
    expect(dropoutLayers(plain)).toEqual([]);
    expect(() => checkMcDropout('test', plain)).toThrow(/test: argument 'model' expected a model with a Dropout layer of p > 0 .*layers: fc1, act, drop/);
    await expect(plain.predict(x, { samples: 4, mcDropout: true })).rejects.toThrow(/predict: argument 'model' expected a model with a Dropout layer of p > 0 .*layers: fc1, act, drop/);
    const model = mcDropoutMLP(ctx, { features: 2, hidden: [3], outputs: 2 });
    expect(dropoutLayers(model).map(([name]) => name)).toEqual(['drop1']);
    await expect(model.predict(x, { samples: 0, mcDropout: true })).rejects.toThrow(/predict: argument 'samples' expected an integer >= 1, got 0/);
    await expect(model.predict(ctx.tensor([1, 2, 3], [1, 3]), { samples: 2, mcDropout: true })).rejects.toThrow(/predict: argument 'input' expected shape \[B, 2\] \(or \[2\] for one example\), got \[1, 3\]/);
    expect(() => mcDropoutMLP(ctx, { features: 2, outputs: 2, dropout: 1 })).toThrow(/mcDropoutMLP: argument 'dropout' expected a probability in \[0, 1\), got 1/);
    expect(() => mcDropoutMLP(ctx, { features: 2, outputs: 0 })).toThrow(/argument 'outputs' expected an integer >= 1, got 0/);
    expect(() => mcDropoutMLP(ctx, { features: 1, outputs: 2, noise: {} })).toThrow(/argument 'outputs' expected 1 with a homoscedastic noise head/);
  });
});
