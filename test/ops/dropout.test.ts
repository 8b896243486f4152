import { describe, expect, it } from 'vitest';
import { dropoutBackward, dropoutForward } from '../../src/ops/dropout.js';
import { drawUniform } from '../../src/ops/sample.js';
import { context, dot, expectClose, numericGradient, randomArray } from '../helpers.js';
import { dropoutBackwardRef, dropoutRef } from '../reference/dropout.js';
import { uniformRef } from '../reference/sample.js';

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

/** Values bounded away from 0, so that a zero in the output means "dropped". */
const nonZero = (n: number, seed: number) => f32(Array.from(randomArray(n, seed, 0.5, 2), (v, i) => (i % 2 ? v : -v)));

describe('dropout (inverted, mask from the counter-based generator)', () => {
  for (const [n, shape] of [[1, [1]], [7, [7]], [1000, [10, 10, 10]], [70001, [70001]]] as [number, number[]][]) {
    it(`forward and backward match float64 with the mask of drawUniform under the same key, shape [${shape}]`, async () => {
      const ctx = await context();
      const p = 0.3;
      const key = { seed: 17, step: n, stream: 9 };
      const xs = nonZero(n, n);
      const dys = nonZero(n, n + 1);
      const u = await drawUniform(ctx, [n], { key }).read();
      const y = dropoutForward(ctx.tensor(xs, shape), { p: p, key });
      expect(y.shape).toEqual(shape);
      // Tolerance 1e-6 relative to the largest |y|: f32 rounding of 1 / (1 - p) and of the product (2 ulp).
      expectClose(await y.read(), dropoutRef(xs, p, u), 1e-6, 'y');
      expectClose(await dropoutBackward(ctx.tensor(dys, shape), { p: p, key }).read(), dropoutBackwardRef(dys, p, u), 1e-6, 'dx');
    });
  }

  it('the mask is the BigInt Philox reference: kept where (word[j & 3] >> 8) / 2^24 >= p for counter (j >> 2, stream, 0, 0), j = offset + i', async () => {
    const ctx = await context();
    const n = 301;
    const p = 0.45;
    // Offsets that are not multiples of 4 make each invocation's four elements straddle two Philox calls.
    for (const offset of [0, 1, 2, 3, 1000]) {
      const key = { seed: 0xcafe, step: 3, stream: 11, offset };
      const y = await dropoutForward(ctx.tensor(new Float32Array(n).fill(1), [n]), { p: p, key }).read();
      const dx = await dropoutBackward(ctx.tensor(new Float32Array(n).fill(1), [n]), { p: p, key }).read();
      for (let i = 0; i < n; i++) {
        const kept = uniformRef(key.seed, key.step, offset + i, key.stream) >= Math.fround(p);
        expect(y[i] !== 0, `offset ${offset} element ${i}`).toBe(kept);
        expect(dx[i] !== 0, `backward: offset ${offset} element ${i}`).toBe(kept);
      }
    }
  });

  for (const p of [0.1, 0.5, 0.9]) {
    it(`keeps a fraction 1 - p of the elements within 5 binomial standard errors, p=${p}`, async () => {
      const ctx = await context();
      const n = 200_003;
      const y = await dropoutForward(ctx.tensor(new Float32Array(n).fill(1), [n]), { p: p, key: { seed: 5, step: 1, stream: 0 } }).read();
      let kept = 0;
      let worstScale = 0;
      for (const v of y) {
        if (v === 0) continue;
        kept++;
        worstScale = Math.max(worstScale, Math.abs(v * (1 - p) - 1));
      }
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      // Every kept element is scaled by 1 / (1 - p) (f32 rounding of the scale: half an ulp of 1 / (1 - p)).
      expect(worstScale).toBeLessThan(2 ** -23);
    });
  }

  it('backward uses the forward mask; another step gives another mask', async () => {
    const ctx = await context();
    const n = 4099;
    const p = 0.5;
    const key = { seed: 2, step: 40, stream: 1 };
    const y = await dropoutForward(ctx.tensor(nonZero(n, 1), [n]), { p: p, key }).read();
    const dx = await dropoutBackward(ctx.tensor(nonZero(n, 2), [n]), { p: p, key }).read();
    const dxOther = await dropoutBackward(ctx.tensor(nonZero(n, 2), [n]), { p: p, key: { ...key, step: 41 } }).read();
    let agree = 0;
    let agreeOther = 0;
    for (let i = 0; i < n; i++) {
      if ((y[i] !== 0) === (dx[i] !== 0)) agree++;
      if ((y[i] !== 0) === (dxOther[i] !== 0)) agreeOther++;
    }
    expect(agree).toBe(n);
    // Independent masks with p = 1/2 agree on half of the elements (binomial: 5 sd = 160).
    expect(Math.abs(agreeOther - n / 2)).toBeLessThan(5 * Math.sqrt(n / 4));
  });

  it('p = 0 is the identity, bit for bit', async () => {
    const ctx = await context();
    const xs = f32(randomArray(1001, 3));
    const key = { seed: 1, step: 1, stream: 1 };
    expect(await dropoutForward(ctx.tensor(xs, [1001]), { p: 0, key }).read()).toEqual(xs);
    expect(await dropoutBackward(ctx.tensor(xs, [1001]), { p: 0, key }).read()).toEqual(xs);
  });

  it('reference backward equals central finite differences of the reference forward', () => {
    const n = 16;
    const u = randomArray(n, 4, 0, 1);
    const xs = randomArray(n, 5);
    const dys = randomArray(n, 6);
    // Tolerance 1e-7: the map is linear, so central differences are exact up to rounding.
    expectClose(dropoutBackwardRef(dys, 0.4, u), numericGradient((x) => dot(dropoutRef(x, 0.4, u), dys), Float64Array.from(xs)), 1e-7, 'fd');
  });

  it('rejects a bad p, an invalid key, a disposed tensor or a non-f32 tensor before GPU work', async () => {
    const ctx = await context();
    const key = { seed: 1, step: 1, stream: 1 };
    const x = ctx.tensor([1, 2, 3], [3]);
    const before = ctx.memory().liveTensors;
    for (const p of [-0.1, 1, 1.5, NaN, Infinity, 1 - 1e-9]) {
      expect(() => dropoutForward(x, { p: p, key }), `p=${p}`).toThrow(/dropoutForward: argument 'p' expected a number in \[0, 1\)/);
      expect(() => dropoutBackward(x, { p: p, key }), `p=${p}`).toThrow(/dropoutBackward: argument 'p' expected a number in \[0, 1\)/);
    }
    expect(() => dropoutForward(x, { p: '0.5' as never, key })).toThrow(/dropoutForward: argument 'p'/);
    expect(() => dropoutForward(x, { p: 0.5, key: { seed: 1, step: -1, stream: 0 } })).toThrow(/dropoutForward: argument 'key.step' expected an integer >= 0/);
    expect(() => dropoutBackward(x, { p: 0.5, key: { seed: 1, step: 1 } as never })).toThrow(/dropoutBackward: argument 'key.stream'/);
    expect(() => dropoutForward(ctx.tensor([1], [1], 'u32'), { p: 0.5, key })).toThrow(/dropoutForward: argument 'x' expected a tensor of dtype 'f32', got "u32"/);
    expect(ctx.memory().liveTensors).toBe(before + 1);
    x.dispose();
    expect(() => dropoutForward(x, { p: 0.5, key })).toThrow(/dropoutForward: argument 'x' is a disposed tensor/);
    expect(() => dropoutBackward(x, { p: 0.5, key })).toThrow(/dropoutBackward: argument 'dy' is a disposed tensor/);
  });
});
