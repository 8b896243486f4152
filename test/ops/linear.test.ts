import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/node.js';
import type { Context } from '../../src/gpu/context.js';
import { linearBackward, linearForward, lrtLinearBackward, lrtLinearForward, matmul } from '../../src/ops/linear.js';
import type { RandomKey } from '../../src/ops/random.js';
import { GEMM_VARIANT_NAMES, context as sharedContext, dot, expectClose, numericGradient, randomArray, variantContext } from '../helpers.js';
import { type LinearDims, linearBackwardRef, linearRef, lrtBackwardRef, lrtForwardRef, lrtMomentsRef, matmulRef } from '../reference/linear.js';

/** Test inputs already rounded to f32, so the reference sees exactly what the GPU sees. */
const f32 = (n: number, seed: number, lo = -1, hi = 1) => Float32Array.from(randomArray(n, seed, lo, hi));

// f32 dot products of K <= 65 terms of magnitude <= 1: the rounding error grows like sqrt(K) * 2^-24
// relative to the output's magnitude (worst case K * 2^-24 ~ 4e-6), so 1e-5 of the largest |output|.
const SUM_RTOL = 1e-5;

for (const variant of GEMM_VARIANT_NAMES) {
const context = () => variantContext(variant);

describe(`matmul [${variant}]`, () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [5, 7, 3], [33, 17, 65], [64, 64, 64], [131, 70, 97]];
  for (const [m, k, n] of shapes) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        it(`C = op(A) @ op(B), M=${m} K=${k} N=${n}, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
          const ctx = await context();
          const av = f32(m * k, m * 100 + k);
          const bv = f32(k * n, n * 100 + k + 1);
          const a = ctx.tensor(av, transposeA ? [k, m] : [m, k]);
          const b = ctx.tensor(bv, transposeB ? [n, k] : [k, n]);
          const c = matmul(a, b, { transposeA, transposeB });
          expect(c.shape).toEqual([m, n]);
          expectClose(await c.read(), matmulRef(av, bv, m, k, n, transposeA, transposeB), SUM_RTOL, 'C');
          for (const t of [a, b, c]) t.dispose();
        });
      }
    }
  }
});

function linearCase(rows: number, inF: number, outF: number, samples: number, seed: number) {
  const d: LinearDims = { rows, inF, outF, samples };
  const x = f32(rows * inF, seed);
  const w = f32(samples * outF * inF, seed + 1);
  const bias = f32(samples * outF, seed + 2);
  const dy = f32(rows * outF, seed + 3);
  const wShape = samples === 1 ? [outF, inF] : [samples, outF, inF];
  const bShape = samples === 1 ? [outF] : [samples, outF];
  return { d, x, w, bias, dy, wShape, bShape };
}

describe(`linear [${variant}]`, () => {
  const cases: [number, number, number, number][] = [
    // rows, in, out, samples
    [1, 7, 3, 1],
    [5, 13, 10, 1],
    [5, 16, 8, 1],
    [6, 9, 5, 2],
    [9, 6, 11, 3],
  ];
  for (const [rows, inF, outF, samples] of cases) {
    it(`forward with and without bias matches float64, N=${rows} in=${inF} out=${outF} S=${samples}`, async () => {
      const ctx = await context();
      const c = linearCase(rows, inF, outF, samples, rows * 7 + inF);
      const x = ctx.tensor(c.x, [rows, inF]);
      const w = ctx.tensor(c.w, c.wShape);
      const bias = ctx.tensor(c.bias, c.bShape);
      expectClose(await linearForward(x, w, bias).read(), linearRef(c.x, c.w, c.bias, c.d), SUM_RTOL, 'y with bias');
      expectClose(await linearForward(x, w, null).read(), linearRef(c.x, c.w, null, c.d), SUM_RTOL, 'y without bias');
    });

    it(`backward dx, dw, db match float64, N=${rows} in=${inF} out=${outF} S=${samples}`, async () => {
      const ctx = await context();
      const c = linearCase(rows, inF, outF, samples, rows * 11 + outF);
      const x = ctx.tensor(c.x, [rows, inF]);
      const w = ctx.tensor(c.w, c.wShape);
      const dy = ctx.tensor(c.dy, [rows, outF]);
      const want = linearBackwardRef(c.x, c.w, c.dy, c.d);
      const got = linearBackward(dy, x, w, { needInput: true, needBias: true });
      expect(got.dWeight.shape).toEqual(c.wShape);
      expect(got.dBias!.shape).toEqual(c.bShape);
      expectClose(await got.dx!.read(), want.dx, SUM_RTOL, 'dx');
      expectClose(await got.dWeight.read(), want.dWeight, SUM_RTOL, 'dw');
      expectClose(await got.dBias!.read(), want.dBias, SUM_RTOL, 'db');
      const only = linearBackward(dy, x, w, { needInput: false, needBias: false });
      expect(only.dx).toBeNull();
      expect(only.dBias).toBeNull();
      expectClose(await only.dWeight.read(), want.dWeight, SUM_RTOL, 'dw alone');
    });
  }

  for (const samples of [1, 2]) {
    it(`reference backward equals central finite differences of the reference forward, S=${samples}`, () => {
      const c = linearCase(4, 5, 3, samples, 40 + samples);
      const x = Float64Array.from(c.x);
      const w = Float64Array.from(c.w);
      const bias = Float64Array.from(c.bias);
      const want = linearBackwardRef(x, w, c.dy, c.d);
      // Tolerance: the loss is bilinear, so central differences are exact up to float64 rounding (~1e-10).
      expectClose(want.dx, numericGradient((v) => dot(linearRef(v, w, bias, c.d), c.dy), x), 1e-8, 'dx');
      expectClose(want.dWeight, numericGradient((v) => dot(linearRef(x, v, bias, c.d), c.dy), w), 1e-8, 'dw');
      expectClose(want.dBias, numericGradient((v) => dot(linearRef(x, w, v, c.d), c.dy), bias), 1e-8, 'db');
    });
  }

  it('a new batch size reuses the compiled pipelines (shapes are uniforms)', async () => {
    const ctx = await context();
    const w = ctx.tensor(f32(6 * 10, 1), [6, 10]);
    const run = async (rows: number) => {
      const x = ctx.tensor(f32(rows * 10, rows), [rows, 10]);
      const dy = ctx.tensor(f32(rows * 6, rows + 1), [rows, 6]);
      const y = linearForward(x, w, null);
      const g = linearBackward(dy, x, w, { needInput: true, needBias: true });
      await y.read();
      for (const t of [x, dy, y, g.dx!, g.dWeight, g.dBias!]) t.dispose();
    };
    // 3 rows sum the bias gradient serially, 128 in a workgroup tree (src/ops/reduce.ts); compile both.
    await run(3);
    await run(128);
    const compiled = ctx.pipelineCount;
    await run(17);
    await run(100);
    expect(ctx.pipelineCount).toBe(compiled);
  });
});

describe(`local reparameterization (LRT) [${variant}]`, () => {
  const key: RandomKey = { seed: 1234, step: 7, stream: 3 };

  function lrtCase(rows: number, inF: number, outF: number, seed: number) {
    return {
      x: f32(rows * inF, seed),
      wMu: f32(outF * inF, seed + 1, -0.5, 0.5),
      // Variances comparable to the means' spread keep std well away from 0 (so eps is recoverable).
      wSigma2: f32(outF * inF, seed + 2, 0.05, 0.5),
      bMu: f32(outF, seed + 3),
      bSigma2: f32(outF, seed + 4, 0.05, 0.5),
      dy: f32(rows * outF, seed + 5),
    };
  }

  /** eps = (y - mean) / std with the moments in float64 (Kingma et al. 2015, eq. 6 solved for eps). */
  function recoverEps(y: ArrayLike<number>, mean: ArrayLike<number>, std: ArrayLike<number>): Float64Array {
    return Float64Array.from(y, (v, i) => (v - mean[i]) / std[i]);
  }

  it('with wSigma2 = 0 and bSigma2 = 0 equals linearForward with wMu', async () => {
    const ctx = await context();
    const [rows, inF, outF] = [5, 13, 7];
    const c = lrtCase(rows, inF, outF, 50);
    const x = ctx.tensor(c.x, [rows, inF]);
    const wMu = ctx.tensor(c.wMu, [outF, inF]);
    const bMu = ctx.tensor(c.bMu, [outF]);
    const zeroW = ctx.zeros([outF, inF]);
    const zeroB = ctx.zeros([outF]);
    const plain = await linearForward(x, wMu, bMu).read();
    const { y, std } = lrtLinearForward(x, wMu, zeroW, bMu, zeroB, { key });
    // Tolerance: y differs from the mean only by 1e-8 * eps (std = sqrt(0 + 1e-16)), below f32 rounding of the sums.
    expectClose(await y.read(), plain, 1e-6, 'y');
    expectClose(await std.read(), new Float64Array(rows * outF).fill(1e-8), 1e-6, 'std');
  });

  it('samples eps ~ N(0, 1) and std = sqrt(var + 1e-16), for every bias combination', async () => {
    const ctx = await context();
    const [rows, inF, outF] = [64, 9, 33];
    const c = lrtCase(rows, inF, outF, 60);
    const x = ctx.tensor(c.x, [rows, inF]);
    const wMu = ctx.tensor(c.wMu, [outF, inF]);
    const wSigma2 = ctx.tensor(c.wSigma2, [outF, inF]);
    const bMu = ctx.tensor(c.bMu, [outF]);
    const bSigma2 = ctx.tensor(c.bSigma2, [outF]);
    for (const [withMu, withSigma2] of [[true, true], [false, false], [true, false], [false, true]]) {
      const what = `bMu ${withMu ? 'given' : 'null'}, bSigma2 ${withSigma2 ? 'given' : 'null'}`;
      const ref = lrtMomentsRef(c.x, c.wMu, c.wSigma2, withMu ? c.bMu : null, withSigma2 ? c.bSigma2 : null, rows, inF, outF);
      const out = lrtLinearForward(x, wMu, wSigma2, withMu ? bMu : null, withSigma2 ? bSigma2 : null, { key });
      // Tolerance: f32 sums of 9 terms.
      expectClose(await out.std.read(), ref.std, SUM_RTOL, `std (${what})`);
      const eps = recoverEps(await out.y.read(), ref.mean, ref.std);
      const n = eps.length;
      const mean = eps.reduce((s, v) => s + v, 0) / n;
      const variance = eps.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
      // 2112 draws: standard errors 0.022 (mean) and 0.031 (variance); allow 5 of them.
      expect(Math.abs(mean), `eps mean (${what})`).toBeLessThan(0.11);
      expect(Math.abs(variance - 1), `eps variance (${what})`).toBeLessThan(0.16);
      const within1 = eps.filter((v) => Math.abs(v) < 1).length / n;
      expect(Math.abs(within1 - 0.6827), `P(|eps| < 1) (${what})`).toBeLessThan(0.05);
      out.y.dispose();
      out.std.dispose();
    }
  });

  it('the same key gives bitwise identical samples; another step or stream gives others', async () => {
    const ctx = await context();
    const [rows, inF, outF] = [6, 5, 7];
    const c = lrtCase(rows, inF, outF, 70);
    const x = ctx.tensor(c.x, [rows, inF]);
    const wMu = ctx.tensor(c.wMu, [outF, inF]);
    const wSigma2 = ctx.tensor(c.wSigma2, [outF, inF]);
    const sample = (k: RandomKey) => lrtLinearForward(x, wMu, wSigma2, null, null, { key: k }).y.read();
    const first = await sample(key);
    const again = await sample({ ...key });
    expect(Array.from(again)).toEqual(Array.from(first));
    const nextStep = await sample({ ...key, step: key.step + 1 });
    const otherStream = await sample({ ...key, stream: key.stream + 1 });
    for (const other of [nextStep, otherStream]) {
      const differing = first.filter((v, i) => v !== other[i]).length;
      expect(differing).toBe(first.length);
    }
  });

  for (const [rows, inF, outF] of [[5, 13, 7], [8, 4, 10], [1, 3, 2]] as [number, number, number][]) {
    it(`backward matches the float64 reference given the forward's eps, N=${rows} in=${inF} out=${outF}`, async () => {
      const ctx = await context();
      const c = lrtCase(rows, inF, outF, 80 + rows);
      const x = ctx.tensor(c.x, [rows, inF]);
      const wMu = ctx.tensor(c.wMu, [outF, inF]);
      const wSigma2 = ctx.tensor(c.wSigma2, [outF, inF]);
      const bMu = ctx.tensor(c.bMu, [outF]);
      const bSigma2 = ctx.tensor(c.bSigma2, [outF]);
      const dy = ctx.tensor(c.dy, [rows, outF]);
      const { y, std } = lrtLinearForward(x, wMu, wSigma2, bMu, bSigma2, { key });
      const ref = lrtMomentsRef(c.x, c.wMu, c.wSigma2, c.bMu, c.bSigma2, rows, inF, outF);
      const eps = recoverEps(await y.read(), ref.mean, ref.std);
      const want = lrtBackwardRef(c.x, c.wMu, c.wSigma2, c.bMu, c.bSigma2, eps, c.dy, rows, inF, outF);
      const got = lrtLinearBackward(dy, x, std, wMu, wSigma2, { key, needInput: true, needBias: true });
      // Tolerance: f32 sums of <= 13 terms, and eps recovered from f32 y carries ~2^-24 (|mean| / std + |eps|) error.
      const rtol = 2e-5;
      expectClose(await got.dx!.read(), want.dx, rtol, 'dx');
      expectClose(await got.dWeightMu.read(), want.dWeightMu, rtol, 'dwMu');
      expectClose(await got.dWeightSigma2.read(), want.dWeightSigma2, rtol, 'dwSigma2');
      expectClose(await got.dBiasMu!.read(), want.dBiasMu, rtol, 'dbMu');
      expectClose(await got.dBiasSigma2!.read(), want.dBiasSigma2, rtol, 'dbSigma2');
      const lean = lrtLinearBackward(dy, x, std, wMu, wSigma2, { key, needInput: false, needBias: false });
      expect(lean.dx).toBeNull();
      expect(lean.dBiasMu).toBeNull();
      expect(lean.dBiasSigma2).toBeNull();
      expectClose(await lean.dWeightSigma2.read(), want.dWeightSigma2, rtol, 'dwSigma2 alone');
    });
  }

  it('reference backward equals central finite differences with eps held fixed', () => {
    const [rows, inF, outF] = [3, 4, 5];
    const c = lrtCase(rows, inF, outF, 90);
    const eps = randomArray(rows * outF, 91, -2, 2);
    const v: Record<'x' | 'wMu' | 'wSigma2' | 'bMu' | 'bSigma2', Float64Array> = {
      x: Float64Array.from(c.x), wMu: Float64Array.from(c.wMu), wSigma2: Float64Array.from(c.wSigma2),
      bMu: Float64Array.from(c.bMu), bSigma2: Float64Array.from(c.bSigma2),
    };
    const loss = (o: typeof v) => dot(lrtForwardRef(o.x, o.wMu, o.wSigma2, o.bMu, o.bSigma2, eps, rows, inF, outF), c.dy);
    const want = lrtBackwardRef(v.x, v.wMu, v.wSigma2, v.bMu, v.bSigma2, eps, c.dy, rows, inF, outF);
    // Tolerance: sqrt is smooth at var >= 0.05; central differences with h = 1e-5 err by O(h^2) ~ 1e-9.
    const rtol = 1e-7;
    expectClose(want.dx, numericGradient((t) => loss({ ...v, x: t }), v.x), rtol, 'dx');
    expectClose(want.dWeightMu, numericGradient((t) => loss({ ...v, wMu: t }), v.wMu), rtol, 'dwMu');
    expectClose(want.dWeightSigma2, numericGradient((t) => loss({ ...v, wSigma2: t }), v.wSigma2), rtol, 'dwSigma2');
    expectClose(want.dBiasMu, numericGradient((t) => loss({ ...v, bMu: t }), v.bMu), rtol, 'dbMu');
    expectClose(want.dBiasSigma2, numericGradient((t) => loss({ ...v, bSigma2: t }), v.bSigma2), rtol, 'dbSigma2');
  });
});

}

describe('bad input throws before any GPU work', () => {
  /** Runs `fn`, expects it to throw `message`, and checks that no tensor was allocated. */
  function rejects(ctx: Context, fn: () => unknown, message: RegExp): void {
    const before = ctx.memory().liveTensors;
    expect(fn).toThrow(message);
    expect(ctx.memory().liveTensors).toBe(before);
  }

  it('inner-dimension mismatch', async () => {
    const ctx = await sharedContext();
    const a = ctx.zeros([3, 4]);
    const b = ctx.zeros([5, 2]);
    rejects(ctx, () => matmul(a, b), /matmul: argument 'b' expected shape \[4, N\].*got \[5, 2\]/);
    rejects(ctx, () => matmul(a, b, { transposeB: true }), /matmul: argument 'b' expected shape \[N, 4\]/);
    const t1 = ctx.zeros([3]);
    rejects(ctx, () => matmul(a, t1, {}), /matmul: argument 'b' expected shape of rank 2, got \[3\]/);
    const x = ctx.zeros([2, 4]);
    const w = ctx.zeros([3, 5]);
    rejects(ctx, () => linearForward(x, w, null), /linearForward: argument 'w' expected shape \[out, 4\]/);
    rejects(ctx, () => lrtLinearForward(x, w, w, null, null, { key: key0 }), /lrtLinearForward: argument 'wMu' expected shape \[out, 4\]/);
    const wOk = ctx.zeros([3, 4]);
    const t2 = ctx.zeros([4, 3]);
    rejects(ctx, () => lrtLinearForward(x, wOk, t2, null, null, { key: key0 }), /lrtLinearForward: argument 'wSigma2' expected shape \[3, 4\]/);
    const t3 = ctx.zeros([2, 4]);
    rejects(ctx, () => linearBackward(t3, x, wOk, { needInput: true }), /linearBackward: argument 'dy' expected shape \[2, 3\]/);
  });

  it('bias length and per-sample shapes', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([6, 4]);
    const w = ctx.zeros([3, 4]);
    const t4 = ctx.zeros([4]);
    rejects(ctx, () => linearForward(x, w, t4), /linearForward: argument 'bias' expected shape \[3\]/);
    const w2 = ctx.zeros([2, 3, 4]);
    const t5 = ctx.zeros([3]);
    rejects(ctx, () => linearForward(x, w2, t5), /linearForward: argument 'bias' expected shape of rank 2/);
    const t6 = ctx.zeros([3, 3]);
    rejects(ctx, () => linearForward(x, w2, t6), /linearForward: argument 'bias' expected shape \[2, 3\]/);
    const t7 = ctx.zeros([5]);
    rejects(ctx, () => lrtLinearForward(x, w, w, t7, null, { key: key0 }), /lrtLinearForward: argument 'bMu' expected shape \[3\]/);
    const t8 = ctx.zeros([2]);
    rejects(ctx, () => lrtLinearForward(x, w, w, null, t8, { key: key0 }), /lrtLinearForward: argument 'bSigma2' expected shape \[3\]/);
  });

  it('N % S != 0', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([5, 4]);
    const w = ctx.zeros([2, 3, 4]);
    rejects(ctx, () => linearForward(x, w, null), /linearForward: argument 'x' expected a row count divisible by the 2 weight samples/);
    const t9 = ctx.zeros([5, 3]);
    rejects(ctx, () => linearBackward(t9, x, w, { needInput: true }), /linearBackward: argument 'x' expected a row count divisible/);
  });

  it('bad options, key and need', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([2, 4]);
    const w = ctx.zeros([3, 4]);
    rejects(ctx, () => matmul(x, x, { transposeB: 1 as unknown as boolean }), /matmul: argument 'opts.transposeB' expected a boolean, got 1/);
    rejects(ctx, () => lrtLinearForward(x, w, w, null, null, { key: { seed: 1, step: -1, stream: 0 } }), /lrtLinearForward: argument 'key.step' expected an integer >= 0, got -1/);
    const { std } = lrtLinearForward(x, w, w, null, null, { key: key0 });
    const t10 = ctx.zeros([2, 3]);
    rejects(ctx, () => lrtLinearBackward(t10, x, std, w, w, { key: key0, needInput: 1 as unknown as boolean }), /lrtLinearBackward: argument 'options.needInput' expected a boolean/);
    const t11 = ctx.zeros([2, 3]);
    const t12 = ctx.zeros([3, 2]);
    rejects(ctx, () => lrtLinearBackward(t11, x, t12, w, w, { key: key0 }), /lrtLinearBackward: argument 'std' expected shape \[2, 3\]/);
  });

  it('disposed tensor', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([2, 4]);
    const w = ctx.zeros([3, 4]);
    const dy = ctx.zeros([2, 3]);
    w.dispose();
    rejects(ctx, () => linearForward(x, w, null), /linearForward: argument 'w' is a disposed tensor/);
    rejects(ctx, () => matmul(x, w, { transposeB: true }), /matmul: argument 'b' is a disposed tensor/);
    dy.dispose();
    const t13 = ctx.zeros([3, 4]);
    const t14 = ctx.zeros([3, 4]);
    rejects(ctx, () => lrtLinearBackward(dy, x, dy, t13, t14, { key: key0 }), /lrtLinearBackward: argument 'dy' is a disposed tensor/);
  });

  it('tensor from another context', async () => {
    const ctx = await sharedContext();
    const other = await createContext();
    try {
      const foreign = other.zeros([3, 4]);
      const x = ctx.zeros([2, 4]);
      rejects(ctx, () => linearForward(x, foreign, null), /linearForward: argument 'w' is a tensor from another device\/context/);
      const t15 = ctx.zeros([4, 2]);
      rejects(ctx, () => matmul(foreign, t15), /matmul: argument 'b' is a tensor from another device\/context than argument 'a'/);
      const t16 = ctx.zeros([3, 4]);
      rejects(ctx, () => lrtLinearForward(x, t16, foreign, null, null, { key: key0 }), /lrtLinearForward: argument 'wSigma2' is a tensor from another/);
    } finally {
      other.destroy();
    }
  });
});

const key0: RandomKey = { seed: 0, step: 0, stream: 0 };
