import { describe, expect, it } from 'vitest';
import { SUM_BLOCK, SUM_ITEMS, SUM_WORKGROUP, sum, sumInto } from '../../src/ops/reduce.js';
import { context, rng } from '../helpers.js';

/** f32 inputs in [-1, 1) and their exact-enough float64 sum and sum of magnitudes. */
function randomF32(n: number, seed: number): { xs: Float32Array; sum: number; abs: number } {
  const r = rng(seed);
  const xs = new Float32Array(n);
  let s = 0;
  let a = 0;
  for (let i = 0; i < n; i++) {
    xs[i] = 2 * r() - 1;
    s += xs[i];
    a += Math.abs(xs[i]);
  }
  return { xs, sum: s, abs: a };
}

/**
 * Rounding bound of the GPU tree (shaders/reduce.wgsl header): per level a value goes
 * through ITEMS/4 - 1 serial additions, 2 combining the four accumulators and log2(WG)
 * tree additions, so |error| <= gamma_D * sum|x| with D = levels * depth and
 * gamma_D = D u / (1 - D u), u = 2^-24 (Higham 2002, eq. 4.4). The float64 reference adds
 * its own error of about n * 2^-53 * sum|x|, 1e-10 relative for n = 1.7e7: negligible.
 */
function bound(n: number, abs: number): number {
  let levels = 1;
  for (let m = n; m > SUM_BLOCK; m = Math.ceil(m / SUM_BLOCK)) levels++;
  const d = levels * (SUM_ITEMS / 4 + 1 + Math.log2(SUM_WORKGROUP));
  const u = 2 ** -24;
  return ((d * u) / (1 - d * u)) * abs;
}

describe('sum (GPU tree reduction)', () => {
  const sizes = [1, 255, 256, 257, SUM_BLOCK - 1, SUM_BLOCK, SUM_BLOCK + 1, 65537, 1_000_000];
  for (const n of sizes) {
    it(`matches the float64 sum within the tree's rounding bound, n=${n}`, async () => {
      const ctx = await context();
      const { xs, sum: want, abs } = randomF32(n, n);
      const x = ctx.tensor(xs, [n]);
      const got = await sum(ctx, x).read();
      const err = Math.abs(got[0] - want);
      expect(err, `n=${n}: got ${got[0]}, want ${want}, bound ${bound(n, abs)}`).toBeLessThanOrEqual(bound(n, abs));
    });
  }

  it(`reduces in three levels past SUM_BLOCK^2 = ${SUM_BLOCK ** 2} elements`, async () => {
    const ctx = await context();
    const n = SUM_BLOCK * SUM_BLOCK + 3;
    const { xs, sum: want, abs } = randomF32(n, 11);
    const x = ctx.tensor(xs, [n]);
    const got = await sum(ctx, x).read();
    expect(Math.abs(got[0] - want)).toBeLessThanOrEqual(bound(n, abs));
    x.dispose();
  });

  it('a sum of ones is exact (every partial is an integer below 2^24)', async () => {
    const ctx = await context();
    const n = 3 * SUM_BLOCK + 17;
    const got = await sum(ctx, ctx.tensor(new Float32Array(n).fill(1), [n])).read();
    expect(got[0]).toBe(n);
  });

  it('sumInto writes out[index] only, for single- and multi-level sums', async () => {
    const ctx = await context();
    const out = ctx.tensor([10, 20, 30, 40], [4]);
    const a = randomF32(5, 1);
    const b = randomF32(SUM_BLOCK * 3 + 5, 2);
    sumInto(ctx, ctx.tensor(a.xs, [5]), out, 1);
    sumInto(ctx, ctx.tensor(b.xs, [b.xs.length]), out, 3);
    const got = await out.read();
    expect(got[0]).toBe(10);
    expect(got[2]).toBe(30);
    expect(Math.abs(got[1] - a.sum)).toBeLessThanOrEqual(bound(5, a.abs));
    expect(Math.abs(got[3] - b.sum)).toBeLessThanOrEqual(bound(b.xs.length, b.abs));
  });

  it('frees its intermediate partial sums', async () => {
    const ctx = await context();
    const x = ctx.tensor(new Float32Array(SUM_BLOCK * 5 + 1), [SUM_BLOCK * 5 + 1]);
    const before = ctx.memory().liveTensors;
    const s = sum(ctx, x);
    expect(ctx.memory().liveTensors).toBe(before + 1);
    expect((await s.read())[0]).toBe(0);
    x.dispose();
  });

  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const x = ctx.tensor([1, 2, 3], [3]);
    const out = ctx.zeros([2]);
    expect(() => sumInto(ctx, x, out, 2)).toThrow(/sumInto: argument 'index' expected an integer < 2/);
    expect(() => sumInto(ctx, x, out, -1)).toThrow(/sumInto: argument 'index' expected an integer >= 0/);
    expect(() => sumInto(ctx, x, out, 0.5)).toThrow(/sumInto: argument 'index'/);
    expect(() => sumInto(ctx, x, x.reshape([3]), 0)).toThrow(/sumInto: argument 'out' expected a tensor that does not share x's buffer/);
    expect(() => sum(ctx, ctx.tensor([1, 2], [2], 'u32'))).toThrow(/sum: argument 'x' expected a tensor of dtype 'f32', got "u32"/);
    expect(() => sum(ctx, null as never)).toThrow(/sum: argument 'x' expected a Tensor/);
    x.dispose();
    expect(() => sum(ctx, x)).toThrow(/sum: argument 'x' is a disposed tensor/);
    expect(() => sumInto(ctx, x, out, 0)).toThrow(/sumInto: argument 'x' is a disposed tensor/);
  });
});
