import { describe, expect, it } from 'vitest';
import {
  correctCount, gaussianNll, gaussianNllBackward, logMeanExp, logMeanExpBackward, logSoftmax, logSoftmaxBackward,
  mseLoss, mseLossBackward, nllLoss, nllLossBackward,
} from '../../src/ops/loss.js';
import { sumRoundingDepth } from '../../src/ops/reduce.js';
import { context, dot, expectClose, numericGradient, randomArray, rng } from '../helpers.js';
import {
  correctCountRef, gaussianNllBackwardRef, gaussianNllRef, logMeanExpBackwardRef, logMeanExpRef, logSoftmaxBackwardRef,
  logSoftmaxRef, mseBackwardRef, mseRef, nllBackwardRef, nllRef,
} from '../reference/loss.js';

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

/**
 * Relative rounding bound of the GPU mean of these terms (src/ops/reduce.ts, a sum with scale 1/n):
 * gamma_D * sum |t| / |sum t| with D = sumRoundingDepth (see reduce.test.ts).
 */
function meanBound(terms: ArrayLike<number>): number {
  const d = sumRoundingDepth({ reduceA: terms.length }, { scale: 1 / terms.length });
  let abs = 0;
  let total = 0;
  for (let i = 0; i < terms.length; i++) {
    abs += Math.abs(terms[i]);
    total += terms[i];
  }
  return ((d * 2 ** -24) / (1 - d * 2 ** -24)) * (abs / Math.abs(total));
}

/** Logits in [-5, 5], or (extreme) a mix of +-80 and values near them, the range where a naive softmax overflows. */
function makeLogits(n: number, seed: number, extreme: boolean): Float64Array {
  if (!extreme) return f32(randomArray(n, seed, -5, 5));
  const r = rng(seed);
  return f32(Float64Array.from({ length: n }, () => (r() < 0.5 ? -80 : 80) + (r() - 0.5) * 4));
}

function makeLabels(n: number, cols: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * cols));
}

describe('logSoftmax and NLL', () => {
  for (const [N, C, extreme] of [[1, 3, false], [7, 10, false], [1000, 5, false], [5000, 3, false], [9, 10, true]] as const) {
    it(`forward and backward match float64: N=${N}, C=${C}${extreme ? ', logits +-80' : ''}`, async () => {
      const ctx = await context();
      const xs = makeLogits(N * C, N + C, extreme);
      const labelValues = makeLabels(N, C, N);
      const gs = randomArray(N * C, 5);
      const logits = ctx.tensor(xs, [N, C]);
      const labels = ctx.tensor(labelValues, [N], 'u32');
      const logp = logSoftmax(logits);
      const wantLogp = logSoftmaxRef(xs, N, C);
      // Tolerance 1e-6 of the largest |logp|: f32 exp/log per element and an f32 sum over C.
      expectClose(await logp.read(), wantLogp, 1e-6, 'logp');
      // Tolerance 1e-6: the f32 exp of logp (whose own error is ~1e-7 |logp|) times an f32 row sum.
      expectClose(await logSoftmaxBackward(ctx.tensor(gs, [N, C]), logp).read(), logSoftmaxBackwardRef(xs, gs, N, C), 1e-6, 'dlogits');
      // Tolerance 1e-6 (logp's own error, ~1e-7 |logp|) plus the rounding bound of the mean of the N terms.
      const nllTerms = Float64Array.from(labelValues, (label, n) => -wantLogp[n * C + label]);
      expectClose(await nllLoss(logp, labels).read(), [nllRef(wantLogp, labelValues, C)], 1e-6 + meanBound(nllTerms), 'nll');
      // Tolerance 1e-7: one f32 rounding of -scale/N.
      expectClose(await nllLossBackward(logp, labels, { scale: 0.75 }).read(), nllBackwardRef(labelValues, C, 0.75), 1e-7, 'dnll');
    });
  }

  it('reference backward of logSoftmax and NLL equals central finite differences, also at +-80', () => {
    for (const extreme of [false, true]) {
      const [N, C] = [4, 6];
      const xs = makeLogits(N * C, 11, extreme);
      const gs = randomArray(N * C, 12);
      const fd = numericGradient((v) => dot(logSoftmaxRef(v, N, C), gs), Float64Array.from(xs));
      // Tolerance 1e-7: O(h^2) truncation with h = 1e-5 plus float64 rounding of |L| ~ 1e3 / h.
      expectClose(logSoftmaxBackwardRef(xs, gs, N, C), fd, 1e-7, 'dlogits fd');
      const labels = makeLabels(N, C, 13);
      const lp = logSoftmaxRef(xs, N, C);
      // Tolerance 1e-8: the NLL is linear in logp, so only float64 rounding of |L| ~ 30 (logp ~ -160) over h = 1e-5 remains.
      expectClose(nllBackwardRef(labels, C, 0.75), numericGradient((v) => 0.75 * nllRef(v, labels, C), lp), 1e-8, 'dnll fd');
    }
  });

  it('an out-of-range label makes the loss and its row of the gradient NaN and never counts as correct', async () => {
    const ctx = await context();
    const logp = logSoftmax(ctx.tensor([1, 2, 3, 3, 2, 1], [2, 3]));
    const labels = ctx.tensor([2, 3], [2], 'u32');
    expect(Number.isNaN((await nllLoss(logp, labels).read())[0])).toBe(true);
    const d = await nllLossBackward(logp, labels, { scale: 1 }).read();
    expect([...d.slice(0, 3)]).toEqual([0, 0, -0.5]);
    expect(d.slice(3).every(Number.isNaN)).toBe(true);
    expect([...(await correctCount(logp, labels).read())]).toEqual([1]);
  });
});

describe('correctCount', () => {
  for (const [N, C] of [[1, 2], [37, 10], [1000, 3], [5000, 3]] as const) {
    it(`counts argmax == label exactly, N=${N}, C=${C}`, async () => {
      const ctx = await context();
      const xs = makeLogits(N * C, 2 * N + C, false);
      const lp = logSoftmaxRef(xs, N, C);
      const labels = makeLabels(N, C, 3 * N);
      // Make about half the rows correct so the count is far from 0 and from N.
      for (let r = 0; r < N; r += 2) labels[r] = [...lp.slice(r * C, (r + 1) * C)].indexOf(Math.max(...lp.slice(r * C, (r + 1) * C)));
      const got = await correctCount(ctx.tensor(lp, [N, C]), ctx.tensor(labels, [N], 'u32')).read();
      expect([...got]).toEqual([correctCountRef(Float32Array.from(lp), labels, C)]);
    });
  }
});

describe('logMeanExp', () => {
  for (const [T, B, C, extreme] of [[1, 3, 4, false], [4, 5, 7, false], [10, 2, 3, true]] as const) {
    for (const stacked of [false, true]) {
      it(`forward and backward match float64: T=${T}, B=${B}, C=${C}, logp ${stacked ? '[T*B, C]' : '[T, B, C]'}${extreme ? ', logits +-80' : ''}`, async () => {
        const ctx = await context();
        const xs = makeLogits(T * B * C, T * B * C, extreme);
        const lpValues = f32(logSoftmaxRef(xs, T * B, C));
        const gs = randomArray(B * C, 3);
        const logp = ctx.tensor(lpValues, stacked ? [T * B, C] : [T, B, C]);
        const out = logMeanExp(logp, { samples: T });
        expect(out.shape).toEqual([B, C]);
        // Tolerance 1e-6 of the largest |out|: f32 exp/log over T terms.
        expectClose(await out.read(), logMeanExpRef(lpValues, T), 1e-6, 'lme');
        const d = logMeanExpBackward(ctx.tensor(gs, [B, C]), logp, out, { samples: T });
        expect(d.shape).toEqual(logp.shape);
        // Tolerance 1e-6: exp(logp - lme) with lme's own f32 error ~1e-7 |lme|.
        expectClose(await d.read(), logMeanExpBackwardRef(lpValues, gs, T), 1e-6, 'dlogp');
      });
    }
  }

  it('a class with probability 0 in every sample stays -inf instead of NaN', async () => {
    const ctx = await context();
    const out = await logMeanExp(ctx.tensor([-Infinity, 0, -Infinity, -1], [2, 1, 2]), { samples: 2 }).read();
    expect(out[0]).toBe(-Infinity);
    // Tolerance 1e-6: one f32 exp and log.
    expectClose([out[1]], [Math.log((1 + Math.exp(-1)) / 2)], 1e-6, 'finite column');
  });

  it('reference backward equals central finite differences, also at +-80', () => {
    for (const extreme of [false, true]) {
      const [T, B, C] = [3, 2, 4];
      const lp = logSoftmaxRef(makeLogits(T * B * C, 21, extreme), T * B, C);
      const gs = randomArray(B * C, 22);
      const fd = numericGradient((v) => dot(logMeanExpRef(v, T), gs), Float64Array.from(lp));
      // Tolerance 1e-7: O(h^2) truncation with h = 1e-5 plus float64 rounding of |L| ~ 1e3 / h.
      expectClose(logMeanExpBackwardRef(lp, gs, T), fd, 1e-7, 'fd');
    }
  });
});

describe('regression losses', () => {
  for (const shape of [[1], [37], [300, 3]]) {
    const n = shape.reduce((p, d) => p * d, 1);
    it(`MSE and Gaussian NLL forward and backward match float64, shape [${shape}]`, async () => {
      const ctx = await context();
      const mus = f32(randomArray(n, n, -2, 2));
      const ys = f32(randomArray(n, n + 1, -2, 2));
      const ss = f32(randomArray(n, n + 2, -3, 3));
      const [mu, y, s] = [ctx.tensor(mus, shape), ctx.tensor(ys, shape), ctx.tensor(ss, shape)];
      // Tolerance 1e-6 (a few f32 roundings per term) plus the rounding bound of the mean of the n terms.
      expectClose(await mseLoss(mu, y).read(), [mseRef(mus, ys)], 1e-6 + meanBound(Float64Array.from(mus, (m, i) => (m - ys[i]) ** 2)), 'mse');
      // Tolerance 1e-7: one f32 subtraction and multiply per element.
      expectClose(await mseLossBackward(mu, y, { scale: 3 }).read(), mseBackwardRef(mus, ys, 3), 1e-7, 'dmse');
      // Tolerance 1e-6: f32 exp per element, plus the rounding bound of the mean of the n terms.
      const nllTerms = Float64Array.from(mus, (m, i) => 0.5 * (Math.log(2 * Math.PI) + ss[i] + (ys[i] - m) ** 2 / Math.exp(ss[i])));
      expectClose(await gaussianNll(mu, s, y).read(), [gaussianNllRef(mus, ss, ys)], 1e-6 + meanBound(nllTerms), 'gaussian nll');
      const { dMean, dLogVar } = gaussianNllBackward(mu, s, y, { scale: 3 });
      const want = gaussianNllBackwardRef(mus, ss, ys, 3);
      // Tolerance 1e-6: f32 exp(-s) (|s| <= 3) times f32 products.
      expectClose(await dMean.read(), want.dMean, 1e-6, 'dMean');
      expectClose(await dLogVar.read(), want.dLogVar, 1e-6, 'dLogVar');
    });
  }

  it('reference backwards equal central finite differences', () => {
    const n = 12;
    const mus = randomArray(n, 1, -2, 2);
    const ys = randomArray(n, 2, -2, 2);
    const ss = randomArray(n, 3, -3, 3);
    // Tolerance 1e-8: smooth functions of order 1, h = 1e-5.
    expectClose(mseBackwardRef(mus, ys, 3), numericGradient((v) => 3 * mseRef(v, ys), Float64Array.from(mus)), 1e-8, 'dmse fd');
    const { dMean, dLogVar } = gaussianNllBackwardRef(mus, ss, ys, 3);
    expectClose(dMean, numericGradient((v) => 3 * gaussianNllRef(v, ss, ys), Float64Array.from(mus)), 1e-8, 'dMean fd');
    expectClose(dLogVar, numericGradient((v) => 3 * gaussianNllRef(mus, v, ys), Float64Array.from(ss)), 1e-8, 'dLogVar fd');
  });
});

describe('loss input checks', () => {
  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const logits = ctx.tensor(randomArray(12, 1), [4, 3]);
    const labels = ctx.tensor([0, 1, 2, 0], [4], 'u32');
    const short = ctx.tensor([0, 1, 2], [3], 'u32');
    expect(() => logSoftmax(logits.reshape([12]))).toThrow(/logSoftmax: argument 'logits' expected shape \[N, C\], got \[12\]/);
    expect(() => logSoftmax(labels.reshape([2, 2]))).toThrow(/logSoftmax: argument 'logits' expected a tensor of dtype 'f32'/);
    expect(() => logSoftmaxBackward(logits.reshape([3, 4]), logits)).toThrow(/logSoftmaxBackward: argument 'dLogp' expected shape \[4, 3\] \(the shape of logp\), got \[3, 4\]/);
    expect(() => nllLoss(logits, short)).toThrow(/nllLoss: argument 'labels' expected shape \[4\] \(one label per row of logp\), got \[3\]/);
    expect(() => nllLoss(logits, logits.reshape([12]))).toThrow(/nllLoss: argument 'labels' expected a tensor of dtype 'u32'/);
    expect(() => nllLossBackward(logits, labels, { scale: NaN })).toThrow(/nllLossBackward: argument 'scale' expected a finite number, got NaN/);
    expect(() => correctCount(logits, short)).toThrow(/correctCount: argument 'labels' expected shape \[4\]/);
    expect(() => logMeanExp(logits, { samples: 3 })).toThrow(/logMeanExp: argument 'logp' expected shape \[3, B, C\] or \[3 \* B, C\], got \[4, 3\]/);
    expect(() => logMeanExp(logits.reshape([2, 2, 3]), { samples: 4 })).toThrow(/logMeanExp: argument 'logp' expected shape \[4, B, C\] \(samples first\)/);
    expect(() => logMeanExp(logits, { samples: 1.5 })).toThrow(/logMeanExp: argument 'samples' expected an integer >= 1, got 1.5/);
    const lme = logMeanExp(logits, { samples: 2 });
    expect(() => logMeanExpBackward(logits, logits, lme, { samples: 2 })).toThrow(/logMeanExpBackward: argument 'dOut' expected shape \[2, 3\] \(the shape of out\), got \[4, 3\]/);
    expect(() => logMeanExpBackward(lme, logits, logits, { samples: 2 })).toThrow(/logMeanExpBackward: argument 'out' expected shape \[2, 3\] \(logMeanExp of logp\)/);
    expect(() => mseLoss(logits, logits.reshape([3, 4]))).toThrow(/mseLoss: argument 'target' expected shape \[4, 3\] \(the shape of pred\)/);
    expect(() => mseLossBackward(logits, logits, { scale: Infinity })).toThrow(/mseLossBackward: argument 'scale' expected a finite number/);
    expect(() => gaussianNll(logits, logits.reshape([12]), logits)).toThrow(/gaussianNll: argument 'logVar' expected shape \[4, 3\] \(the shape of mean\), got \[12\]/);
    expect(() => gaussianNllBackward(logits, logits, lme, { scale: 1 })).toThrow(/gaussianNllBackward: argument 'target' expected shape \[4, 3\]/);
    labels.dispose();
    expect(() => nllLoss(logits, labels)).toThrow(/nllLoss: argument 'labels' is a disposed tensor/);
    logits.dispose();
    expect(() => logSoftmax(logits)).toThrow(/logSoftmax: argument 'logits' is a disposed tensor/);
    expect(() => mseLoss(lme, logits)).toThrow(/mseLoss: argument 'target' is a disposed tensor/);
  });
});
