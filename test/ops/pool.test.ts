import { describe, expect, it } from 'vitest';
import { maxPool2dBackward, maxPool2dForward } from '../../src/ops/pool.js';
import { context, dot, expectClose, numericGradient, randomArray, rng } from '../helpers.js';
import { type PoolGeometry, maxPool2dBackwardRef, maxPool2dRef, poolOutputShape } from '../reference/pool.js';

/** Distinct values at least 0.01 apart in random order, so no window has a tie and finite differences stay inside one branch. */
function distinctValues(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const values = Float64Array.from({ length: n }, (_, i) => (i - n / 2) * 0.01);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [values[i], values[j]] = [values[j], values[i]];
  }
  return values;
}

const cases: { name: string; g: PoolGeometry; opts: Parameters<typeof maxPool2dForward>[1] }[] = [
  { name: 'kernel 2 stride 2, odd size, batch 2, channels 3', g: { shape: [2, 3, 7, 9], kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, opts: { kernel: 2 } },
  { name: 'kernel 3 stride 2 padding 1, batch 1, channels 5', g: { shape: [1, 5, 9, 8], kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, opts: { kernel: 3, stride: 2, padding: 1 } },
  { name: 'rectangular kernel [2, 3], stride [1, 2], padding [1, 0]', g: { shape: [3, 5, 6, 11], kernel: [2, 3], stride: [1, 2], padding: [1, 0] }, opts: { kernel: [2, 3], stride: [1, 2], padding: [1, 0] } },
  { name: 'rectangular kernel [3, 2] with default stride, batch 1, channels 3', g: { shape: [1, 3, 10, 7], kernel: [3, 2], stride: [3, 2], padding: [0, 0] }, opts: { kernel: [3, 2] } },
  { name: 'kernel 3 stride 1 padding 1 (heavily overlapping windows)', g: { shape: [2, 3, 5, 5], kernel: [3, 3], stride: [1, 1], padding: [1, 1] }, opts: { kernel: 3, stride: 1, padding: 1 } },
];

describe('maxPool2d', () => {
  for (const { name, g, opts } of cases) {
    it(`forward and backward match float64: ${name}`, async () => {
      const ctx = await context();
      const size = g.shape.reduce((p, d) => p * d, 1);
      const xs = distinctValues(size, size);
      const outShape = poolOutputShape(g);
      const dys = randomArray(outShape.reduce((p, d) => p * d, 1), 7);
      const x = ctx.tensor(xs, g.shape);
      const { y, argmax } = maxPool2dForward(x, opts);
      expect(y.shape).toEqual(outShape);
      const want = maxPool2dRef(xs, g);
      // Exact: max selects an input value, and the f32 upload keeps the order of values 0.01 apart.
      expectClose(await y.read(), Float32Array.from(want.y), 0, 'y');
      expect([...(await argmax.read())]).toEqual([...want.argmax]);
      const dx = maxPool2dBackward(ctx.tensor(dys, outShape), argmax, { inputShape: g.shape });
      expect(dx.shape).toEqual([...g.shape]);
      // Tolerance 1e-6: dx sums at most ceil(k/s)^2 f32 values of dy per element.
      expectClose(await dx.read(), maxPool2dBackwardRef(xs, dys, g), 1e-6, 'dx');
    });
  }

  it('reference backward equals central finite differences (no ties)', () => {
    for (const { g } of cases.slice(1, 3)) {
      const size = g.shape.reduce((p, d) => p * d, 1);
      const xs = distinctValues(size, 3);
      const dys = randomArray(poolOutputShape(g).reduce((p, d) => p * d, 1), 4);
      const fd = numericGradient((v) => dot(maxPool2dRef(v, g).y, dys), xs, 1e-4);
      // Tolerance 1e-9: max is piecewise linear, so central differences are exact up to float64 rounding.
      expectClose(maxPool2dBackwardRef(xs, dys, g), fd, 1e-9, 'fd');
    }
  });

  it('ties go to the first position of the window, and all-equal windows still route the gradient once', async () => {
    const ctx = await context();
    // Windows: all 1 | {3, 0, 0, 3} | all 0 | all 5.
    const xs = [1, 1, 3, 0, 1, 1, 0, 3, 0, 0, 5, 5, 0, 0, 5, 5];
    const { y, argmax } = maxPool2dForward(ctx.tensor(xs, [1, 1, 4, 4]), { kernel: 2 });
    expect([...(await y.read())]).toEqual([1, 3, 0, 5]);
    expect([...(await argmax.read())]).toEqual([0, 2, 8, 10]);
    const dx = maxPool2dBackward(ctx.tensor([1, 2, 3, 4], [1, 1, 2, 2]), argmax, { inputShape: [1, 1, 4, 4] });
    expect([...(await dx.read())]).toEqual([1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
  });

  it('a NaN in a window propagates to its output, as in PyTorch', async () => {
    const ctx = await context();
    // Windows {1, NaN, 2, 4} and {3, 0, 1, 1}.
    const { y, argmax } = maxPool2dForward(ctx.tensor([1, NaN, 3, 0, 2, 4, 1, 1], [1, 1, 2, 4]), { kernel: 2 });
    const got = await y.read();
    expect(Number.isNaN(got[0])).toBe(true);
    expect(got[1]).toBe(3);
    expect([...(await argmax.read())]).toEqual([1, 2]);
  });

  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const x = ctx.tensor(randomArray(2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
    expect(() => maxPool2dForward(x.reshape([6, 4, 4]), { kernel: 2 })).toThrow(/maxPool2dForward: argument 'x' expected shape \[N, C, H, W\], got \[6, 4, 4\]/);
    expect(() => maxPool2dForward(x, { kernel: 1.5 })).toThrow(/maxPool2dForward: argument 'kernel' expected an integer >= 1, got 1.5/);
    expect(() => maxPool2dForward(x, { kernel: 2, stride: [2, 0] })).toThrow(/argument 'stride\[1\]' expected an integer >= 1, got 0/);
    expect(() => maxPool2dForward(x, { kernel: 2, padding: -1 })).toThrow(/argument 'padding' expected an integer >= 0, got -1/);
    expect(() => maxPool2dForward(x, { kernel: 3, padding: 2 })).toThrow(/argument 'padding' expected at most half the kernel \[3, 3\], got \[2, 2\]/);
    expect(() => maxPool2dForward(x, { kernel: 5 })).toThrow(/argument 'kernel' expected a window that fits the padded input \[4, 4\], got \[5, 5\]/);
    expect(() => maxPool2dForward(x, {} as never)).toThrow(/argument 'kernel' expected an integer or a pair/);
    const { argmax } = maxPool2dForward(x, { kernel: 2 });
    const dy = ctx.tensor(randomArray(2 * 3 * 2 * 2, 2), [2, 3, 2, 2]);
    expect(() => maxPool2dBackward(dy, argmax, { inputShape: [2, 4, 4, 4] })).toThrow(/maxPool2dBackward: argument 'xShape' expected shape \[2, 3, H, W\]/);
    expect(() => maxPool2dBackward(dy, argmax, { inputShape: [2, 3, 4] })).toThrow(/argument 'xShape' expected four positive integers/);
    expect(() => maxPool2dBackward(dy, dy, { inputShape: [2, 3, 4, 4] })).toThrow(/argument 'argmax' expected a tensor of dtype 'u32'/);
    expect(() => maxPool2dBackward(dy.reshape([2, 3, 1, 4]), argmax, { inputShape: [2, 3, 4, 4] })).toThrow(/argument 'argmax' expected shape \[2, 3, 1, 4\]/);
    x.dispose();
    expect(() => maxPool2dForward(x, { kernel: 2 })).toThrow(/maxPool2dForward: argument 'x' is a disposed tensor/);
    argmax.dispose();
    expect(() => maxPool2dBackward(dy, argmax, { inputShape: [2, 3, 4, 4] })).toThrow(/maxPool2dBackward: argument 'argmax' is a disposed tensor/);
  });
});
