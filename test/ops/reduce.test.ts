import { describe, expect, it } from 'vitest';
import {
  SUM_PER_INVOCATION, SUM_SPLIT_ABOVE, type SumAxes, sum, sumAxes, sumAxesInto, sumInto, sumRoundingDepth,
} from '../../src/ops/reduce.js';
import { context, rng } from '../helpers.js';
import { sumAxesRef } from '../reference/reduce.js';

const U = 2 ** -24;

/** f32 inputs in [-1, 1) (or [0, 1) with `positive`: no cancellation, so the bound is nearly tight in relative terms). */
function randomF32(n: number, seed: number, positive = false): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (positive ? r() : 2 * r() - 1));
}

/**
 * Rounding bound of the GPU sums (shaders/reduce.wgsl header): every result within
 * gamma_D * |scale| * sum |x| of its float64 value, D = sumRoundingDepth(axes),
 * gamma_D = D u / (1 - D u) (Higham 2002, eq. 4.4). The float64 reference adds its own error of
 * about n * 2^-53 * sum |x|, 5e-10 relative for n = 4.2e6: negligible.
 */
function gamma(depth: number): number {
  return (depth * U) / (1 - depth * U);
}

/** Checks every result of a sum against the float64 reference and its rounding bound. */
function expectWithinBound(got: ArrayLike<number>, xs: Float32Array, axes: SumAxes, scale = 1, what = JSON.stringify(axes)): void {
  const want = sumAxesRef(xs, axes, scale);
  const g = gamma(sumRoundingDepth(axes, { scale }));
  expect(got.length, `${what}: length`).toBe(want.sum.length);
  for (let j = 0; j < want.sum.length; j++) {
    const bound = g * Math.abs(scale) * want.abs[j];
    const err = Math.abs(got[j] - want.sum[j]);
    if (!(err <= bound)) expect.fail(`${what}: output ${j} got ${got[j]}, want ${want.sum[j]}, error ${err} > bound ${bound}`);
  }
}

describe('sum (full sums, in levels)', () => {
  // Around the four-per-trip loop (3..5), the workgroup (31..33), the split threshold and several levels.
  const sizes = [1, 3, 4, 5, 31, 32, 33, 255, SUM_SPLIT_ABOVE, SUM_SPLIT_ABOVE + 1, 65537, 1_000_000];
  for (const n of sizes) {
    it(`matches the float64 sum within the rounding bound, n=${n}`, async () => {
      const ctx = await context();
      const xs = randomF32(n, n);
      expectWithinBound(await sum(ctx.tensor(xs, [n])).read(), xs, { reduceA: n }, 1, `n=${n}`);
    });
  }

  it(`reduces in three levels past SUM_SPLIT_ABOVE * SUM_PER_INVOCATION = ${SUM_SPLIT_ABOVE * SUM_PER_INVOCATION} elements`, async () => {
    const ctx = await context();
    const n = SUM_SPLIT_ABOVE * SUM_PER_INVOCATION + 3;
    const xs = randomF32(n, 11, true);
    const x = ctx.tensor(xs, [n]);
    expectWithinBound(await sum(x).read(), xs, { reduceA: n }, 1, `n=${n}`);
    x.dispose();
  });

  it('the bound is a useful one: D stays small for a million elements', () => {
    // 1e6: 977 invocations of 1024 rows (depth 257), then one of 977 (depth 246).
    expect(sumRoundingDepth({ reduceA: 1_000_000 })).toBe(257 + 246);
    expect(sumRoundingDepth({ reduceA: 1 })).toBe(2);
    expect(sumRoundingDepth({ reduceA: 8 }, { scale: 0.5 })).toBe(4);
  });

  it('a sum of ones is exact (every partial is an integer below 2^24)', async () => {
    const ctx = await context();
    const n = 3 * SUM_SPLIT_ABOVE + 17;
    const got = await sum(ctx.tensor(new Float32Array(n).fill(1), [n])).read();
    expect(got[0]).toBe(n);
  });

  it('scale multiplies the result (a mean in one pass)', async () => {
    const ctx = await context();
    const xs = randomF32(10_000, 3);
    expectWithinBound(await sum(ctx.tensor(xs, [10_000]), { scale: 1 / 10_000 }).read(), xs, { reduceA: 10_000 }, 1 / 10_000, 'mean');
  });

  it('sumInto writes out[index] only, for single- and multi-level sums', async () => {
    const ctx = await context();
    const out = ctx.tensor([10, 20, 30, 40], [4]);
    const a = randomF32(5, 1);
    const b = randomF32(SUM_SPLIT_ABOVE * 3 + 5, 2);
    sumInto(ctx.tensor(a, [5]), out, { index: 1 });
    sumInto(ctx.tensor(b, [b.length]), out, { scale: -2, index: 3 });
    const got = await out.read();
    expect(got[0]).toBe(10);
    expect(got[2]).toBe(30);
    expectWithinBound([got[1]], a, { reduceA: 5 });
    expectWithinBound([got[3]], b, { reduceA: b.length }, -2);
  });

  it('frees its intermediate partial sums', async () => {
    const ctx = await context();
    const n = SUM_SPLIT_ABOVE * SUM_PER_INVOCATION + 2; // three levels, a multiple of 3
    const x = ctx.tensor(new Float32Array(n), [n]);
    const before = ctx.memory().liveTensors;
    const s = sum(x);
    const t = sumAxes(x, { axes: { outer: 3, reduceA: n / 3 } });
    expect(ctx.memory().liveTensors).toBe(before + 2);
    expect((await s.read())[0]).toBe(0);
    expect([...(await t.read())]).toEqual([0, 0, 0]);
    x.dispose();
  });
});

describe('sumAxes (x viewed as [outer, reduceA, kept, reduceB], summed over reduceA and reduceB)', () => {
  const cases: [string, SumAxes, number[]][] = [
    // the shapes the layers sum
    ['linear bias gradient dy [256, 84] -> [84]', { reduceA: 256, kept: 84 }, [84]],
    ['linear bias gradient per sample dy [4, 64, 120] -> [4, 120]', { outer: 4, reduceA: 64, kept: 120 }, [4, 120]],
    ['chunk sums [1, 32, 2400] -> [2400]', { reduceA: 32, kept: 2400 }, [2400]],
    ['chunk sums [3, 5, 7] -> [3, 7]', { outer: 3, reduceA: 5, kept: 7 }, [3, 7]],
    ['conv bias gradient dy [256, 6, 28, 28] -> [6]', { reduceA: 256, kept: 6, reduceB: 784 }, [6]],
    ['conv bias gradient dy [256, 16, 10, 10] -> [16]', { reduceA: 256, kept: 16, reduceB: 100 }, [16]],
    ['conv bias gradient per sample dy [2, 3, 5, 7, 7] -> [2, 5]', { outer: 2, reduceA: 3, kept: 5, reduceB: 49 }, [2, 5]],
    // non-multiples of 4 and of the workgroup, every row tail (reduceB % 4 = 1, 2, 3), rows < 4
    ['[1, 5, 33, 1]', { reduceA: 5, kept: 33 }, [33]],
    ['[3, 7, 5, 2]', { outer: 3, reduceA: 7, kept: 5, reduceB: 2 }, [3, 5]],
    ['[2, 3, 4, 3]', { outer: 2, reduceA: 3, kept: 4, reduceB: 3 }, [2, 4]],
    ['[1, 2, 3, 5]', { reduceA: 2, kept: 3, reduceB: 5 }, [3]],
    ['[1, 1, 3, 4]', { kept: 3, reduceB: 4 }, [3]],
    // folded views: kept = 1 (contiguous per output), reduceA = 1 (rows of reduceB), and splits of each
    ['[7, 3000, 1, 3] (kept = 1, split, 7 outputs)', { outer: 7, reduceA: 3000, reduceB: 3 }, [7]],
    ['[3, 1, 4, 5000] (reduceA = 1, split)', { outer: 3, kept: 4, reduceB: 5000 }, [3, 4]],
    ['[1, 64, 3, 300] (split rows of 300)', { reduceA: 64, kept: 3, reduceB: 300 }, [3]],
    ['[2, 9000, 70, 1] (split, 140 outputs)', { outer: 2, reduceA: 9000, kept: 70 }, [2, 70]],
    // one element, one output; nothing reduced
    ['one element', {}, [1]],
    ['[1, 1, 1, 1] explicitly', { outer: 1, reduceA: 1, kept: 1, reduceB: 1 }, [1]],
    ['nothing reduced [6, 1, 5, 1]', { outer: 6, kept: 5 }, [6, 5]],
  ];
  cases.forEach(([name, axes, shape], i) => {
    it(`matches float64 within the rounding bound: ${name}`, async () => {
      const ctx = await context();
      const { outer = 1, reduceA = 1, kept = 1, reduceB = 1 } = axes;
      const n = outer * reduceA * kept * reduceB;
      const xs = randomF32(n, 100 + i);
      const x = ctx.tensor(xs, [n]);
      const out = sumAxes(x, { shape, axes });
      expect(out.shape).toEqual(shape);
      expectWithinBound(await out.read(), xs, axes, 1, name);
      x.dispose();
    });
  });

  it('the default shape drops the axes of 1: [kept], [outer] or [outer, kept]', async () => {
    const ctx = await context();
    const x = ctx.tensor(randomF32(60, 5), [3, 4, 5]);
    expect(sumAxes(x, { axes: { reduceA: 3, kept: 20 } }).shape).toEqual([20]);
    expect(sumAxes(x, { axes: { outer: 3, reduceA: 20 } }).shape).toEqual([3]);
    expect(sumAxes(x, { axes: { outer: 3, reduceA: 4, kept: 5 } }).shape).toEqual([3, 5]);
    expect(sumAxes(x, { axes: { reduceA: 60 } }).shape).toEqual([1]);
  });

  it('sumAxesInto writes scale * the sums at out[offset ..] and leaves the rest, for one and several levels', async () => {
    const ctx = await context();
    const out = ctx.tensor(Array.from({ length: 12 }, (_, i) => 100 + i), [12]);
    const small = { outer: 2, reduceA: 3, kept: 2, reduceB: 5 };
    const long = { reduceA: 300, kept: 3, reduceB: 20 };
    const a = randomF32(60, 7);
    const b = randomF32(18_000, 8);
    sumAxesInto(ctx.tensor(a, [60]), out, { offset: 1, axes: small });
    sumAxesInto(ctx.tensor(b, [18_000]), out, { offset: 9, scale: 1 / 300, axes: long });
    const got = await out.read();
    expect([got[0], got[5], got[6], got[7], got[8]]).toEqual([100, 105, 106, 107, 108]);
    expectWithinBound(got.slice(1, 5), a, small);
    expectWithinBound(got.slice(9, 12), b, long, 1 / 300);
  });

  it('rejects bad input before GPU work, naming the argument, the expectation and the value', async () => {
    const ctx = await context();
    const x = ctx.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const out = ctx.zeros([4]);
    const before = ctx.memory().liveTensors;
    expect(() => sumAxes(x, { axes: { outer: 2, reduceA: 2 } })).toThrow(/sumAxes: argument 'axes' expected outer \* reduceA \* kept \* reduceB = 6 \(the size of x \[2, 3\]\), got 2 \* 2 \* 1 \* 1 = 4/);
    expect(() => sumAxes(x, { axes: { outer: 2, reduceA: 1.5 } })).toThrow(/sumAxes: argument 'axes.reduceA' expected an integer >= 1, got 1.5/);
    expect(() => sumAxes(x, { axes: { outer: 0, reduceA: 6 } })).toThrow(/sumAxes: argument 'axes.outer' expected an integer >= 1, got 0/);
    expect(() => sumAxes(x, { axes: { reduce: 6 } as SumAxes })).toThrow(/sumAxes: argument 'axes' expected only the keys outer, reduceA, kept, reduceB, got "a key 'reduce'"/);
    expect(() => sumAxes(x, { axes: null as never })).toThrow(/sumAxes: argument 'axes' expected \{ outer\?, reduceA\?, kept\?, reduceB\? \}, got null/);
    expect(() => sumAxes(x, { scale: Number.NaN, axes: { reduceA: 6 } })).toThrow(/sumAxes: argument 'options.scale' expected a finite number, got NaN/);
    expect(() => sumAxes(x, { shape: [2, 2], axes: { reduceA: 2, kept: 3 } })).toThrow(/sumAxes: argument 'options.shape' expected an array of positive integers with 3 elements \(outer \* kept\), got \[2, 2\]/);
    expect(() => sumAxes(x, 7 as never)).toThrow(/sumAxes: argument 'options' expected an options object, got 7/);
    expect(() => sumAxesInto(x, out, { offset: 2, axes: { outer: 3, reduceA: 2 } })).toThrow(/sumAxesInto: argument 'options.offset' expected an integer <= 1 \(out has 4 elements, the sums 3\), got 2/);
    expect(() => sumAxesInto(x, out, { offset: -1, axes: { outer: 3, reduceA: 2 } })).toThrow(/sumAxesInto: argument 'options.offset' expected an integer >= 0, got -1/);
    expect(() => sumAxesInto(x, x.reshape([6]), { axes: { outer: 6 } })).toThrow(/sumAxesInto: argument 'out' expected a tensor that does not share x's buffer/);
    expect(() => sumAxes(ctx.tensor([1, 2], [2], 'u32'), { axes: { reduceA: 2 } })).toThrow(/sumAxes: argument 'x' expected a tensor of dtype 'f32', got "u32"/);
    expect(() => sumInto(x, out, { index: 4 })).toThrow(/sumInto: argument 'index' expected an integer < 4 \(the size of out\), got 4/);
    expect(() => sumInto(x, out, { index: -1 })).toThrow(/sumInto: argument 'index' expected an integer >= 0/);
    expect(() => sumInto(x, out, { index: 0.5 })).toThrow(/sumInto: argument 'index'/);
    expect(() => sumInto(x, x.reshape([6]), { index: 0 })).toThrow(/sumInto: argument 'out' expected a tensor that does not share x's buffer/);
    expect(() => sum(x, { scale: '2' as never })).toThrow(/sum: argument 'options.scale' expected a finite number, got "2"/);
    expect(() => sum(null as never)).toThrow(/sum: argument 'x' expected a Tensor/);
    // The reshapes and the u32 tensor above are the only tensors made; no sum allocated anything.
    expect(ctx.memory().liveTensors).toBe(before + 3);
    x.dispose();
    expect(() => sum(x)).toThrow(/sum: argument 'x' is a disposed tensor/);
    expect(() => sumAxes(x, { axes: { reduceA: 6 } })).toThrow(/sumAxes: argument 'x' is a disposed tensor/);
    expect(() => sumInto(x, out, { index: 0 })).toThrow(/sumInto: argument 'x' is a disposed tensor/);
  });
});
