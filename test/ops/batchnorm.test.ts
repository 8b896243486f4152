import { describe, expect, it } from 'vitest';
import { batchNorm2dBackward, batchNorm2dForward } from '../../src/ops/batchnorm.js';
import { context, dot, expectClose, numericGradient, randomArray } from '../helpers.js';
import { type BnShape, batchNormBackwardRef, batchNormRef, batchNormTrainRef, runningUpdateRef } from '../reference/batchnorm.js';

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

describe('batchNorm2d', () => {
  // Channel 3 and 5 (not multiples of 4), batch 1 and > 1, odd planes; [4, 3, 20, 17] has M = 1360 > 256
  // values per channel, so every invocation of the reducing workgroup loops several times.
  for (const shape of [[2, 3, 5, 7], [1, 5, 3, 3], [4, 3, 20, 17], [7, 2, 1, 1]] as const) {
    const [N, C, H, W] = shape;
    const s: BnShape = { N, C, HW: H * W };
    const size = N * C * H * W;

    it(`training forward, running stats and backward match float64, shape [${shape}]`, async () => {
      const ctx = await context();
      // An offset mean (3) and spread (2) per value, so centring matters.
      const xs = f32(randomArray(size, size, 1, 5));
      const gs = f32(randomArray(C, 2, 0.5, 1.5));
      const bs = f32(randomArray(C, 3));
      const rm = f32(randomArray(C, 4));
      const rv = f32(randomArray(C, 5, 0.5, 2));
      const dys = f32(randomArray(size, 6));
      const x = ctx.tensor(xs, shape);
      const gamma = ctx.tensor(gs, [C]);
      const runningMean = ctx.tensor(rm, [C]);
      const runningVar = ctx.tensor(rv, [C]);
      const { y, saved } = batchNorm2dForward(x, gamma, ctx.tensor(bs, [C]), runningMean, runningVar, { training: true, momentum: 0.2, eps: 1e-3 });
      // Tolerance 1e-5 of the largest |y|: f32 sums over M values and (x - mean) / std with std ~ 1.
      expectClose(await y.read(), batchNormTrainRef(xs, gs, bs, s, 1e-3), 1e-5, 'y');
      const running = runningUpdateRef(xs, s, rm, rv, 0.2);
      // Tolerance 1e-5: the same f32 sums, blended with the old values.
      expectClose(await runningMean.read(), running.mean, 1e-5, 'running mean');
      expectClose(await runningVar.read(), running.variance, 1e-5, 'running var');
      const { dx, dGamma, dBeta } = batchNorm2dBackward(ctx.tensor(dys, shape), x, gamma, saved);
      const want = batchNormBackwardRef(xs, dys, gs, s, 1e-3);
      // Tolerance 1e-5: f32 sums of M products; dx subtracts them, so its error is relative to |dy|.
      expectClose(await dBeta.read(), want.dBeta, 1e-5, 'dBeta');
      expectClose(await dGamma.read(), want.dGamma, 1e-5, 'dGamma');
      expectClose(await dx.read(), want.dx, 1e-5, 'dx');
    });

    it(`eval forward and backward use the running statistics, shape [${shape}]`, async () => {
      const ctx = await context();
      const xs = f32(randomArray(size, size + 1, -2, 2));
      const gs = f32(randomArray(C, 7, 0.5, 1.5));
      const bs = f32(randomArray(C, 8));
      const rm = f32(randomArray(C, 9));
      const rv = f32(randomArray(C, 10, 0.5, 2));
      const dys = f32(randomArray(size, 11));
      const x = ctx.tensor(xs, shape);
      const gamma = ctx.tensor(gs, [C]);
      const runningMean = ctx.tensor(rm, [C]);
      const runningVar = ctx.tensor(rv, [C]);
      const { y, saved } = batchNorm2dForward(x, gamma, ctx.tensor(bs, [C]), runningMean, runningVar, { training: false });
      // Tolerance 1e-6: a handful of f32 operations per element, no sums.
      expectClose(await y.read(), batchNormRef(xs, gs, bs, s, rm, rv, 1e-5), 1e-6, 'y');
      // Eval leaves the running statistics alone (exact).
      expect([...(await runningMean.read())]).toEqual([...Float32Array.from(rm)]);
      expect([...(await runningVar.read())]).toEqual([...Float32Array.from(rv)]);
      const { dx, dGamma, dBeta } = batchNorm2dBackward(ctx.tensor(dys, shape), x, gamma, saved);
      const want = batchNormBackwardRef(xs, dys, gs, s, 1e-5, { mean: rm, variance: rv });
      // Tolerance 1e-5 for the channel sums (f32 over M values), 1e-6 for the elementwise dx.
      expectClose(await dBeta.read(), want.dBeta, 1e-5, 'dBeta');
      expectClose(await dGamma.read(), want.dGamma, 1e-5, 'dGamma');
      expectClose(await dx.read(), want.dx, 1e-6, 'dx');
    });
  }

  it('reference backward equals central finite differences, training and eval', () => {
    const s: BnShape = { N: 3, C: 2, HW: 5 };
    const size = 30;
    const xs = randomArray(size, 1, -2, 2);
    const gs = randomArray(2, 2, 0.5, 1.5);
    const bs = randomArray(2, 3);
    const dys = randomArray(size, 4);
    const rm = randomArray(2, 5);
    const rv = randomArray(2, 6, 0.5, 2);
    const eps = 1e-3;
    for (const fixed of [undefined, { mean: rm, variance: rv }]) {
      const forward = (x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) =>
        fixed ? batchNormRef(x, g, b, s, rm, rv, eps) : batchNormTrainRef(x, g, b, s, eps);
      const want = batchNormBackwardRef(xs, dys, gs, s, eps, fixed);
      // Tolerance 1e-7: O(h^2) truncation with h = 1e-5 on functions of order 1, plus float64 rounding.
      expectClose(want.dx, numericGradient((v) => dot(forward(v, gs, bs), dys), Float64Array.from(xs)), 1e-7, 'dx fd');
      expectClose(want.dGamma, numericGradient((v) => dot(forward(xs, v, bs), dys), Float64Array.from(gs)), 1e-7, 'dGamma fd');
      expectClose(want.dBeta, numericGradient((v) => dot(forward(xs, gs, v), dys), Float64Array.from(bs)), 1e-7, 'dBeta fd');
    }
  });

  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const x = ctx.tensor(randomArray(2 * 3 * 4, 1), [2, 3, 2, 2]);
    const v3 = () => ctx.tensor([1, 1, 1], [3]);
    const [gamma, beta, rm, rv] = [v3(), v3(), v3(), v3()];
    const train = { training: true };
    expect(() => batchNorm2dForward(x.reshape([2, 3, 4]), gamma, beta, rm, rv, train)).toThrow(/batchNorm2dForward: argument 'x' expected shape \[N, C, H, W\], got \[2, 3, 4\]/);
    expect(() => batchNorm2dForward(x, ctx.zeros([4]), beta, rm, rv, train)).toThrow(/argument 'gamma' expected shape \[3\] \(one value per channel of x\), got \[4\]/);
    expect(() => batchNorm2dForward(x, gamma, beta, rm, ctx.zeros([3, 1]), train)).toThrow(/argument 'runningVar' expected shape \[3\]/);
    expect(() => batchNorm2dForward(x, gamma, beta, rm, rv, { training: true, momentum: 1.5 })).toThrow(/argument 'opts.momentum' expected a number in \[0, 1\], got 1.5/);
    expect(() => batchNorm2dForward(x, gamma, beta, rm, rv, { training: true, eps: 0 })).toThrow(/argument 'opts.eps' expected a finite number > 0, got 0/);
    expect(() => batchNorm2dForward(x, gamma, beta, rm, rv, {} as never)).toThrow(/argument 'opts.training' expected a boolean/);
    expect(() => batchNorm2dForward(x, gamma, beta, rm, rm, train)).toThrow(/argument 'runningVar' expected a tensor with its own buffer/);
    const single = ctx.tensor([1, 2, 3], [1, 3, 1, 1]);
    expect(() => batchNorm2dForward(single, gamma, beta, rm, rv, train)).toThrow(/argument 'x' expected shape more than one value per channel in training/);
    expect(() => batchNorm2dForward(single, gamma, beta, rm, rv, { training: false })).not.toThrow();
    const { saved } = batchNorm2dForward(x, gamma, beta, rm, rv, train);
    expect(() => batchNorm2dBackward(x.reshape([2, 3, 4, 1]), x, gamma, saved)).toThrow(/batchNorm2dBackward: argument 'dy' expected shape \[2, 3, 2, 2\] \(the shape of x\), got \[2, 3, 4, 1\]/);
    expect(() => batchNorm2dBackward(x, x, gamma, { mean: saved.mean, invStd: ctx.zeros([2]) })).toThrow(/argument 'saved.invStd' expected shape \[3\]/);
    saved.mean.dispose();
    expect(() => batchNorm2dBackward(x, x, gamma, saved)).toThrow(/batchNorm2dBackward: argument 'saved.mean' is a disposed tensor/);
    gamma.dispose();
    expect(() => batchNorm2dForward(x, gamma, beta, rm, rv, train)).toThrow(/batchNorm2dForward: argument 'gamma' is a disposed tensor/);
  });
});
