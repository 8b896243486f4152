import { describe, expect, it } from 'vitest';
import { drawNormal, sampleWeights, sampleWeightsBackward, sigmaSquared, sigmaSquaredBackward } from '../../src/ops/sample.js';
import { context, dot, expectClose, numericGradient, randomArray } from '../helpers.js';
import { softplusRef } from '../reference/activation.js';
import { normalRef, normalsRef, sampleWeightsBackwardRef, sampleWeightsRef, sigmaSquaredBackwardRef, sigmaSquaredRef } from '../reference/sample.js';

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

// Parameter shapes: a vector, a dense weight, a 4-D conv weight with odd sizes, one element.
const SHAPES = [[7], [3, 5], [4, 3, 3, 3], [1]];
/** WGSL's cos / sin accuracy (2^-11 on [-pi, pi]) times the largest Box-Muller radius 5.77 (see random.test.ts). */
const EPS_ERROR = 5.77 * 2 ** -11;

describe('sampleWeights (w = mu + softplus(rho) * eps)', () => {
  for (const shape of SHAPES) {
    for (const samples of [1, 3]) {
      it(`forward equals mu + softplus(rho) * eps with eps = drawNormal([S * n]) under the same key, shape [${shape}], S=${samples}`, async () => {
        const ctx = await context();
        const n = sizeOf(shape);
        const mus = f32(randomArray(n, n, -0.5, 0.5));
        const rhos = f32(randomArray(n, n + 1, -6, 2));
        const key = { seed: 31, step: n, stream: samples };
        const w = sampleWeights(ctx.tensor(mus, shape), ctx.tensor(rhos, shape), { key, samples });
        expect(w.shape).toEqual([samples, ...shape]);
        const eps = await drawNormal(ctx, [samples * n], { key }).read();
        // Tolerance 1e-6 of the largest |w|: f32 rounding of softplus (a few ulp), the product and the sum.
        expectClose(await w.read(), sampleWeightsRef(mus, rhos, eps), 1e-6, 'w');
      });
    }
  }

  for (const shape of SHAPES) {
    it(`backward sees exactly the forward's eps: GPU vs reference with eps = (w - mu) / sigma, shape [${shape}], S=3`, async () => {
      const ctx = await context();
      const n = sizeOf(shape);
      const samples = 3;
      const mus = f32(randomArray(n, 2 * n, -0.5, 0.5));
      const rhos = f32(randomArray(n, 2 * n + 1, -2, 1)); // sigma in [0.13, 1.31]
      const dws = f32(randomArray(samples * n, 2 * n + 2));
      const key = { seed: 8, step: 77, stream: 2 };
      const mu = ctx.tensor(mus, shape);
      const rho = ctx.tensor(rhos, shape);
      const w = await sampleWeights(mu, rho, { key, samples }).read();
      const sigma = softplusRef(rhos);
      const eps = Float64Array.from(w, (v, j) => (v - mus[j % n]) / sigma[j % n]);
      const { dMu, dRho } = sampleWeightsBackward(ctx.tensor(dws, [samples, ...shape]), mu, rho, { key });
      expect(dMu.shape).toEqual(shape);
      const want = sampleWeightsBackwardRef(rhos, dws, eps);
      // dMu: 1e-6 (f32 sum of S values). dRho: 1e-5, because eps recovered from the f32 w carries
      // |error| <= 2^-24 |w| / sigma <= 2^-24 * 8 / 0.13 = 4e-6 (relative to eps of order 1).
      expectClose(await dMu.read(), want.dMu, 1e-6, 'dMu');
      expectClose(await dRho.read(), want.dRho, 1e-5, 'dRho');
      // Another step draws other eps: the gradient must change (guards against a key that is ignored).
      const other = await sampleWeightsBackward(ctx.tensor(dws, [samples, ...shape]), mu, rho, { key: { ...key, step: 78 } }).dRho.read();
      expect(() => expectClose(other, want.dRho, 1e-3)).toThrow();
    });
  }

  it('reference backward equals central finite differences of the reference forward (eps fixed)', () => {
    const n = 6;
    const samples = 3;
    const mus = randomArray(n, 1);
    const rhos = randomArray(n, 2, -3, 2);
    const eps = randomArray(samples * n, 3, -2, 2);
    const dws = randomArray(samples * n, 4);
    const { dMu, dRho } = sampleWeightsBackwardRef(rhos, dws, eps);
    // Tolerance 1e-7: central differences with h = 1e-5 are accurate to O(h^2) = 1e-10 on this smooth loss.
    expectClose(dMu, numericGradient((m) => dot(sampleWeightsRef(m, rhos, eps), dws), Float64Array.from(mus)), 1e-7, 'dMu fd');
    expectClose(dRho, numericGradient((r) => dot(sampleWeightsRef(mus, r, eps), dws), Float64Array.from(rhos)), 1e-7, 'dRho fd');
  });

  // Four draws per invocation: an offset that is not a multiple of 4 takes the two-Philox path,
  // and n = 7 or 15 makes invocations straddle the boundary between samples.
  for (const [shape, offset] of [[[7], 3], [[3, 5], 6], [[4, 3, 3, 3], 1], [[1], 2]] as [number[], number][]) {
    it(`forward and backward follow the index contract at key.offset ${offset}, shape [${shape}], S=3`, async () => {
      const ctx = await context();
      const n = sizeOf(shape);
      const samples = 3;
      const mus = f32(randomArray(n, 3 * n, -0.5, 0.5));
      const rhos = f32(randomArray(n, 3 * n + 1, -2, 1));
      const dws = f32(randomArray(samples * n, 3 * n + 2));
      const key = { seed: 123, step: 45, stream: 6, offset };
      const eps = normalsRef(key.seed, key.step, key.stream, samples * n, offset);
      const mu = ctx.tensor(mus, shape);
      const rho = ctx.tensor(rhos, shape);
      // eps on the GPU is off the float64 Box-Muller by at most EPS_ERROR (see random.test.ts), so w by
      // sigma * EPS_ERROR and dRho by sum_s |dw| * EPS_ERROR * sigmoid; plus f32 rounding.
      const w = await sampleWeights(mu, rho, { key, samples }).read();
      const wantW = sampleWeightsRef(mus, rhos, eps);
      const sigma = softplusRef(rhos);
      for (let j = 0; j < w.length; j++) expect(Math.abs(w[j] - wantW[j]), `w[${j}]`).toBeLessThan(sigma[j % n] * EPS_ERROR + 1e-6);
      const { dMu, dRho } = sampleWeightsBackward(ctx.tensor(dws, [samples, ...shape]), mu, rho, { key });
      const want = sampleWeightsBackwardRef(rhos, dws, eps);
      expectClose(await dMu.read(), want.dMu, 1e-6, 'dMu');
      const dRhos = await dRho.read();
      for (let i = 0; i < n; i++) {
        let bound = 1e-6;
        for (let s = 0; s < samples; s++) bound += Math.abs(dws[s * n + i]) * EPS_ERROR;
        expect(Math.abs(dRhos[i] - want.dRho[i]), `dRho[${i}]`).toBeLessThan(bound);
      }
      // And exactly the eps of drawNormal under the same key, offset included.
      const gpuEps = await drawNormal(ctx, [samples * n], { key }).read();
      expectClose(await sampleWeights(mu, rho, { key, samples }).read(), sampleWeightsRef(mus, rhos, gpuEps), 1e-6, 'w vs drawNormal');
    });
  }

  it('follows the index contract past 65535 workgroups: w[s, i] = mu + sigma * normal(seed, step, s * n + i, stream)', async () => {
    const ctx = await context();
    const n = 1 << 20;
    const samples = 17; // 17.8M draws, four per invocation: 69632 workgroups, folded into an (x, y) grid
    const rhoOne = Math.log(Math.E - 1); // softplus(rho) = 1
    const mu = ctx.zeros([n]);
    const rho = ctx.tensor(new Float32Array(n).fill(rhoOne), [n]);
    const key = { seed: 3, step: 4, stream: 5 };
    const w = await sampleWeights(mu, rho, { key, samples }).read();
    for (const j of [0, 1, n - 1, n, 3 * n + 12345, 16 * n + 5, samples * n - 1]) {
      // EPS_ERROR: the generator against its float64 reference, plus f32 rounding of softplus(rho) = 1.
      expect(Math.abs(w[j] - normalRef(key.seed, key.step, j, key.stream)), `index ${j}`).toBeLessThan(EPS_ERROR + 1e-6);
    }
  });
});

describe('sigmaSquared (softplus(rho)^2)', () => {
  for (const n of [1, 7, 1000]) {
    it(`forward and backward match float64, n=${n}`, async () => {
      const ctx = await context();
      const rhos = f32(randomArray(n, n, -8, 6));
      const ds = f32(randomArray(n, n + 1));
      const rho = ctx.tensor(rhos, [n]);
      // Tolerance 1e-6 relative to the tensor's magnitude: f32 rounding of softplus, sigmoid and products.
      expectClose(await sigmaSquared(rho).read(), sigmaSquaredRef(rhos), 1e-6, 'sigma^2');
      expectClose(await sigmaSquaredBackward(ctx.tensor(ds, [n]), rho).read(), sigmaSquaredBackwardRef(rhos, ds), 1e-6, 'dRho');
    });
  }

  it('stays accurate for very negative rho (sigma^2 ~ 1e-17 is not flushed to 0)', async () => {
    const ctx = await context();
    const rhos = [-20, -18, -16, -15.5];
    const got = await sigmaSquared(ctx.tensor(rhos, [4])).read();
    const want = sigmaSquaredRef(rhos);
    // Tolerance 1e-5 relative per element: exp is a few ulp in f32.
    for (let i = 0; i < 4; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(1e-5);
  });

  it('reference backward equals central finite differences', () => {
    const rhos = randomArray(12, 5, -4, 4);
    const ds = randomArray(12, 6);
    // Tolerance 1e-7: O(h^2) central differences with h = 1e-5.
    expectClose(sigmaSquaredBackwardRef(rhos, ds), numericGradient((r) => dot(sigmaSquaredRef(r), ds), Float64Array.from(rhos)), 1e-7, 'fd');
  });
});

describe('sampling: bad input is rejected before GPU work', () => {
  it('shape mismatches, bad sample counts, dtypes, disposed tensors and invalid keys', async () => {
    const ctx = await context();
    const key = { seed: 1, step: 2, stream: 3 };
    const mu = ctx.zeros([2, 3]);
    const rho = ctx.zeros([2, 3]);
    const flatRho = ctx.zeros([6]);
    expect(() => sampleWeights(mu, flatRho, { key, samples: 1 })).toThrow(/sampleWeights: argument 'rho' expected shape \[2, 3\] \(the shape of mu\), got \[6\]/);
    expect(() => sampleWeights(mu, rho, { key, samples: 0 })).toThrow(/sampleWeights: argument 'samples' expected an integer >= 1, got 0/);
    expect(() => sampleWeights(mu, rho, { key, samples: 1.5 })).toThrow(/sampleWeights: argument 'samples'/);
    expect(() => sampleWeights(mu, rho, { key, samples: 2 ** 31 })).toThrow(/sampleWeights: argument 'samples' expected at most 715827882/);
    expect(() => sampleWeights(mu, rho, { key: { seed: 1, step: -2, stream: 3 }, samples: 1 })).toThrow(/sampleWeights: argument 'key.step' expected an integer >= 0/);
    expect(() => sampleWeights(mu, rho, { key: undefined as never, samples: 1 })).toThrow(/sampleWeights: argument 'key'/);
    expect(() => sampleWeights(ctx.zeros([2, 3], 'u32'), rho, { key, samples: 1 })).toThrow(/sampleWeights: argument 'mu' expected a tensor of dtype 'f32', got "u32"/);
    expect(() => sampleWeightsBackward(ctx.zeros([2, 3]), mu, rho, { key })).toThrow(/sampleWeightsBackward: argument 'dw' expected shape \[S, 2, 3\]/);
    expect(() => sampleWeightsBackward(ctx.zeros([4, 3, 2]), mu, rho, { key })).toThrow(/sampleWeightsBackward: argument 'dw' expected shape \[S, 2, 3\]/);
    expect(() => sampleWeightsBackward(ctx.zeros([4, 2, 3]), mu, rho, { key: { seed: 1.5, step: 0, stream: 0 } })).toThrow(/sampleWeightsBackward: argument 'key.seed'/);
    expect(() => sigmaSquaredBackward(flatRho, rho)).toThrow(/sigmaSquaredBackward: argument 'dSigma2' expected shape \[2, 3\] \(the shape of rho\), got \[6\]/);
    const dw = ctx.zeros([1, 2, 3]);
    const before = ctx.memory().liveTensors;
    rho.dispose();
    expect(() => sampleWeights(mu, rho, { key, samples: 1 })).toThrow(/sampleWeights: argument 'rho' is a disposed tensor/);
    expect(() => sampleWeightsBackward(dw, mu, rho, { key })).toThrow(/sampleWeightsBackward: argument 'rho' is a disposed tensor/);
    expect(() => sigmaSquared(rho)).toThrow(/sigmaSquared: argument 'rho' is a disposed tensor/);
    // The failed calls allocated nothing.
    expect(ctx.memory().liveTensors).toBe(before - 1);
  });
});
