import { describe, expect, it } from 'vitest';
import { appendLogVar, mergeHead, predictiveMoments, splitHead } from '../../src/ops/regression.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { predictiveMomentsRef } from '../reference/regression.js';

describe('regression head kernels', () => {
  for (const n of [1, 5, 130]) {
    it(`splitHead, mergeHead and appendLogVar move values exactly, N=${n}`, async () => {
      const ctx = await context();
      const values = Float32Array.from(randomArray(2 * n, n, -3, 3));
      const pred = ctx.tensor(values, [n, 2]);
      const { mu, logVar } = splitHead(pred);
      const mus = await mu.read();
      const logVars = await logVar.read();
      for (let r = 0; r < n; r++) {
        expect(mus[r]).toBe(values[2 * r]);
        expect(logVars[r]).toBe(values[2 * r + 1]);
      }
      // Copies only: exact equality.
      expect(Array.from(await mergeHead(mu, logVar).read())).toEqual(Array.from(values));
      const appended = await appendLogVar(mu.reshape([n, 1]), ctx.tensor([-1.25], [1])).read();
      for (let r = 0; r < n; r++) {
        expect(appended[2 * r]).toBe(values[2 * r]);
        expect(appended[2 * r + 1]).toBe(-1.25);
      }
    });
  }

  for (const [T, B] of [[1, 4], [7, 5], [100, 3], [3, 70]] as const) {
    it(`predictiveMoments equals the float64 law of total variance, T=${T}, B=${B}`, async () => {
      const ctx = await context();
      // Means around 2 with spread ~1 (epistemic), log variances in [-5, 1] (aleatoric from 0.007 to 2.7).
      const pred = new Float32Array(2 * T * B);
      const mus = randomArray(T * B, 11 * T + B, 1, 3);
      const logVars = randomArray(T * B, 13 * T + B, -5, 1);
      for (let r = 0; r < T * B; r++) {
        pred[2 * r] = mus[r];
        pred[2 * r + 1] = logVars[r];
      }
      const got = await predictiveMoments(ctx.tensor(pred, [T * B, 2]), { samples: T }).read();
      const want = predictiveMomentsRef(pred, T);
      const column = (k: number) => Float64Array.from({ length: B }, (_, b) => got[4 * b + k]);
      // Tolerance 1e-5 relative: f32 sums of at most 100 terms and one exp per term (float64 reference).
      expectClose(column(0), want.mean, 1e-5, 'mean');
      expectClose(column(2), want.aleatoric, 1e-5, 'aleatoric');
      expectClose(column(3), want.std, 1e-5, 'std');
      // The variance of values ~2 with spread ~0.6: 1e-4 of the largest variance allows the f32 rounding of the
      // deviations (~1e-7 * 2 each) that the two-pass sum leaves.
      if (T > 1) expectClose(column(1), want.epistemic, 1e-4, 'epistemic');
      else expect(Array.from(column(1))).toEqual(new Array(B).fill(0));
    });
  }

  it('predictiveMoments: identical samples give zero epistemic variance, up to the rounding of their mean', async () => {
    const ctx = await context();
    const T = 6;
    const pred = new Float32Array(2 * T).map((_, i) => (i % 2 === 0 ? 0.1 : Math.log(0.04)));
    const m = await predictiveMoments(ctx.tensor(pred, [T, 2]), { samples: T }).read();
    // Tolerance: the mean of six copies of 0.1 may differ from 0.1 by an f32 ulp, so var <= ulp^2.
    expect(m[1]).toBeLessThan(1e-14);
    expect(m[2]).toBeCloseTo(0.04, 7);
  });

  it('rejects bad shapes, sample counts and disposed tensors before GPU work', async () => {
    const ctx = await context();
    const pred = ctx.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    expect(() => splitHead(ctx.tensor([1, 2, 3], [3, 1]))).toThrow(/splitHead: argument 'pred' expected shape \[N, 2\]/);
    expect(() => mergeHead(ctx.tensor([1, 2], [2]), ctx.tensor([1, 2, 3], [3]))).toThrow(/mergeHead: argument 'dLogVar' expected shape \[2\] or \[2, 1\], got \[3\]/);
    expect(() => appendLogVar(ctx.tensor([1, 2], [2, 1]), ctx.tensor([1, 2], [2]))).toThrow(/appendLogVar: argument 'logVar' expected shape \[1\]/);
    expect(() => predictiveMoments(pred, { samples: 2 })).toThrow(/predictiveMoments: argument 'pred' expected shape \[2 \* B, 2\]/);
    expect(() => predictiveMoments(pred, { samples: 0 })).toThrow(/predictiveMoments: argument 'samples' expected an integer >= 1, got 0/);
    expect(() => predictiveMoments(pred, { samples: 1.5 })).toThrow(/argument 'samples' expected an integer >= 1, got 1.5/);
    pred.dispose();
    expect(() => predictiveMoments(pred, { samples: 1 })).toThrow(/predictiveMoments: argument 'pred' is a disposed tensor/);
  });
});
