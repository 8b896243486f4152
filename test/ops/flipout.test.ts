/**
 * Flipout ops (Wen et al. 2018, eq. 3) against float64: the signs against the BigInt Philox
 * reference, the perturbation against drawNormal under the same key, conv2d and linear forward and
 * backward against the references given the exact signs and eps the GPU used, the references
 * against central finite differences, statistics of the signs, and bad input refused before any work.
 */
import { describe, expect, it } from 'vitest';
import { context, dot, expectClose, numericGradient, randomArray } from '../helpers.js';
import { flipoutAdd, flipoutConv2dBackward, flipoutConv2dForward, flipoutLinearBackward, flipoutLinearForward, flipoutPerturbation, flipoutSigns } from '../../src/ops/flipout.js';
import { drawNormal, drawUniform, sampleWeights } from '../../src/ops/sample.js';
import { BayesError } from '../../src/errors.js';
import { flipRef, flipoutConv2dBackwardRef, flipoutConv2dRef, flipoutLinearBackwardRef, flipoutLinearRef, perturbationRef, signsFromUniformsRef, signsRef } from '../reference/flipout.js';
import type { ConvShape } from '../reference/conv2d.js';

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe('flipoutSigns / flipoutAdd (Rademacher signs per row and channel)', () => {
  // inner 1 (linear), 3 (straddling invocations), 16; offsets off a multiple of 4 take the two-Philox path.
  for (const [shape, offset] of [[[5, 7], 0], [[3, 4, 3], 1], [[2, 3, 4, 4], 6], [[1, 1], 3]] as [number[], number][]) {
    it(`x * s equals the BigInt Philox reference sign(r, c) = uniform(offset + r C + c) < 1/2 ? 1 : -1, shape [${shape}], offset ${offset}`, async () => {
      const ctx = await context();
      const n = sizeOf(shape);
      const xs = f32(randomArray(n, n, 0.5, 2));
      const bases = f32(randomArray(n, n + 1));
      const key = { seed: 77, step: 3, stream: 5, offset };
      const pairs = shape[0] * shape[1];
      const inner = n / pairs;
      const signs = signsRef(key.seed, key.step, key.stream, pairs, offset);
      const got = await flipoutSigns(ctx.tensor(xs, shape), { key }).read();
      // Exact: a sign flip of an f32 is exact.
      expect(Array.from(got)).toEqual(Array.from(flipRef(xs, signs, inner), Math.fround));
      // The same signs as drawUniform under the same key (the entry point the layer tests read).
      const u = await drawUniform(ctx, [pairs], { key }).read();
      expect(Array.from(signsFromUniformsRef(u))).toEqual(Array.from(signs));
      const added = await flipoutAdd(ctx.tensor(bases, shape), ctx.tensor(xs, shape), { key }).read();
      // One f32 addition: half an ulp of the result.
      expectClose(added, Float64Array.from(xs, (v, j) => bases[j] + signs[Math.floor(j / inner)] * v), 1e-7, 'base + s x');
    });
  }

  it('signs are balanced, independent across rows and channels, and change with step and stream', async () => {
    const ctx = await context();
    const rows = 400;
    const channels = 250; // 100,000 signs
    const key = { seed: 9, step: 1, stream: 5 };
    const s = await flipoutSigns(ctx.tensor(new Float32Array(rows * channels).fill(1), [rows, channels]), { key }).read();
    const n = s.length;
    let sum = 0;
    for (const v of s) {
      expect(Math.abs(v)).toBe(1);
      sum += v;
    }
    // Balanced: the mean of n fair +-1 has standard deviation 1 / sqrt(n); 5 of them.
    expect(Math.abs(sum / n)).toBeLessThan(5 / Math.sqrt(n));
    // Independent: the correlation of neighbouring channels, of neighbouring rows, and of the
    // two sign streams of a layer (in and out) each has standard deviation 1 / sqrt(pairs) under independence.
    const corr = (a: (i: number) => number, b: (i: number) => number, m: number) => {
      let c = 0;
      for (let i = 0; i < m; i++) c += a(i) * b(i);
      return c / m;
    };
    const channelPairs = rows * (channels - 1);
    expect(Math.abs(corr((i) => s[Math.floor(i / (channels - 1)) * channels + (i % (channels - 1))], (i) => s[Math.floor(i / (channels - 1)) * channels + (i % (channels - 1)) + 1], channelPairs))).toBeLessThan(5 / Math.sqrt(channelPairs));
    const rowPairs = (rows - 1) * channels;
    expect(Math.abs(corr((i) => s[i], (i) => s[i + channels], rowPairs))).toBeLessThan(5 / Math.sqrt(rowPairs));
    // Pairs of consecutive signs come in four patterns equally often (chi-square, 3 degrees of freedom; 16.3 is p = 0.001).
    const counts = [0, 0, 0, 0];
    for (let i = 0; i + 1 < n; i += 2) counts[(s[i] > 0 ? 2 : 0) + (s[i + 1] > 0 ? 1 : 0)]++;
    const expected = n / 2 / 4;
    expect(counts.reduce((a, c) => a + (c - expected) ** 2 / expected, 0)).toBeLessThan(16.3);
    const other = await flipoutSigns(ctx.tensor(new Float32Array(rows * channels).fill(1), [rows, channels]), { key: { ...key, stream: 6 } }).read();
    const nextStep = await flipoutSigns(ctx.tensor(new Float32Array(rows * channels).fill(1), [rows, channels]), { key: { ...key, step: 2 } }).read();
    expect(Math.abs(corr((i) => s[i], (i) => other[i], n))).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(corr((i) => s[i], (i) => nextStep[i], n))).toBeLessThan(5 / Math.sqrt(n));
  });

  it('every element of one (row, channel) pair shares its sign', async () => {
    const ctx = await context();
    const shape = [6, 5, 7, 3];
    const s = await flipoutSigns(ctx.tensor(new Float32Array(sizeOf(shape)).fill(1), shape), { key: { seed: 1, step: 2, stream: 3 } }).read();
    const inner = 21;
    for (let q = 0; q < 30; q++) for (let r = 1; r < inner; r++) expect(s[q * inner + r]).toBe(s[q * inner]);
  });
});

describe('flipoutPerturbation (dW = softplus(rho) * eps)', () => {
  for (const [shape, samples, offset] of [[[7], 1, 0], [[4, 3, 3, 3], 3, 2], [[3, 5], 2, 15]] as [number[], number, number][]) {
    it(`equals softplus(rho) * drawNormal([S n]) and sampleWeights - mu under the same key, shape [${shape}], S=${samples}, offset ${offset}`, async () => {
      const ctx = await context();
      const n = sizeOf(shape);
      const rhos = f32(randomArray(n, n, -5, 1));
      const mus = f32(randomArray(n, n + 1, -0.5, 0.5));
      const key = { seed: 4, step: 12, stream: 1, offset };
      const rho = ctx.tensor(rhos, shape);
      const delta = flipoutPerturbation(rho, { key, samples });
      expect(delta.shape).toEqual([samples, ...shape]);
      const eps = await drawNormal(ctx, [samples * n], { key }).read();
      const got = await delta.read();
      // 1e-6 of the largest |dW|: f32 softplus (a few ulp) and one product.
      expectClose(got, perturbationRef(rhos, eps), 1e-6, 'dW');
      const w = await sampleWeights(ctx.tensor(mus, shape), rho, { key, samples }).read();
      // w - mu carries the rounding of the sum: half an ulp of |w| <= 0.5 + |dW|.
      for (let j = 0; j < got.length; j++) expect(Math.abs(w[j] - mus[j % n] - got[j])).toBeLessThan(2 ** -23 * (Math.abs(w[j]) + Math.abs(mus[j % n])) + 1e-7);
    });
  }
});

/** Signs of both keys as the GPU draws them (drawUniform, the generator's entry point). */
async function gpuSigns(ctx: Awaited<ReturnType<typeof context>>, keys: { signIn: object; signOut: object }, inCount: number, outCount: number) {
  const read = async (key: object, count: number) => signsFromUniformsRef(await drawUniform(ctx, [count], { key: key as never }).read());
  return { signIn: await read(keys.signIn, inCount), signOut: await read(keys.signOut, outCount) };
}

describe('flipoutConv2dForward / flipoutConv2dBackward', () => {
  const cases: { name: string; s: ConvShape; bias: boolean }[] = [
    { name: 'per-sample dW (S=2), stride 1, bias', s: { x: [4, 3, 6, 5], w: [2, 4, 3, 3, 3] }, bias: true },
    { name: 'shared dW, stride 2 padding 1, no bias', s: { x: [3, 2, 7, 7], w: [5, 2, 3, 3], stride: 2, padding: 1 }, bias: false },
    { name: 'per-sample dW (S=3), dilation 2, bias', s: { x: [3, 2, 8, 8], w: [3, 3, 2, 2, 2], dilation: 2 }, bias: true },
  ];
  for (const { name, s, bias } of cases) {
    it(`${name}: forward and backward match float64 given the GPU's signs`, async () => {
      const ctx = await context();
      const perSample = s.w.length === 5;
      const muShape = perSample ? s.w.slice(1) : s.w;
      const samples = perSample ? s.w[0] : 1;
      const cout = muShape[0];
      const conv = { stride: s.stride, padding: s.padding, dilation: s.dilation };
      const xs = f32(randomArray(sizeOf(s.x), 1));
      const wMus = f32(randomArray(sizeOf(muShape), 2, -0.5, 0.5));
      const wDeltas = f32(randomArray(sizeOf(s.w), 3, -0.3, 0.3));
      const bMus = bias ? f32(randomArray(cout, 4)) : null;
      const bDeltas = bias ? f32(randomArray(samples * cout, 5, -0.3, 0.3)) : null;
      const keys = { signIn: { seed: 3, step: 8, stream: 21, offset: 5 }, signOut: { seed: 3, step: 8, stream: 22 } };
      const x = ctx.tensor(xs, s.x);
      const wMu = ctx.tensor(wMus, muShape);
      const wDelta = ctx.tensor(wDeltas, s.w);
      const y = flipoutConv2dForward(x, wMu, wDelta, bMus && ctx.tensor(bMus, [cout]), bDeltas && ctx.tensor(bDeltas, perSample ? [samples, cout] : [cout]), { ...conv, ...keys });
      const outCount = y.shape[0] * y.shape[1];
      const signs = await gpuSigns(ctx, keys, s.x[0] * s.x[1], outCount);
      // Tolerance 1e-5 of the largest |y|: f32 products of up to 27 terms, twice.
      const want = flipoutConv2dRef(s, xs, wMus, wDeltas, bMus, bDeltas, signs);
      expectClose(await y.read(), want, 1e-5, 'y');
      const dys = f32(randomArray(y.size, 6));
      const g = flipoutConv2dBackward(ctx.tensor(dys, y.shape), x, wMu, wDelta, { ...conv, ...keys, needBias: bias });
      const r = flipoutConv2dBackwardRef(s, xs, wMus, wDeltas, dys, signs);
      expect(g.dWeightDelta.shape).toEqual(s.w);
      expectClose(await g.dx!.read(), r.dx, 1e-5, 'dx');
      expectClose(await g.dWeightMu.read(), r.dWeightMu, 1e-5, 'dWeightMu');
      expectClose(await g.dWeightDelta.read(), r.dWeightDelta, 1e-5, 'dWeightDelta');
      if (bias) {
        expectClose(await g.dBiasMu!.read(), r.dBiasMu, 1e-5, 'dBiasMu');
        expectClose(await g.dBiasDelta!.read(), r.dBiasDelta, 1e-5, 'dBiasDelta');
      } else expect(g.dBiasMu).toBeNull();
      // Other signs give another output (the keys are not ignored).
      const other = await flipoutConv2dForward(x, wMu, wDelta, null, null, { ...conv, ...keys, signOut: { ...keys.signOut, step: 9 } }).read();
      expect(() => expectClose(other, flipoutConv2dRef(s, xs, wMus, wDeltas, null, null, signs), 1e-3)).toThrow();
    });
  }

  it('the reference backward equals central finite differences of the reference forward (signs and dW fixed)', () => {
    const s: ConvShape = { x: [2, 2, 5, 5], w: [2, 3, 2, 3, 3], padding: 1 };
    const xs = randomArray(sizeOf(s.x), 11);
    const wMu = randomArray(3 * 2 * 9, 12);
    const wDelta = randomArray(sizeOf(s.w), 13);
    const bMu = randomArray(3, 14);
    const bDelta = randomArray(6, 15);
    const signs = { signIn: signsRef(1, 2, 3, 4), signOut: signsRef(1, 2, 4, 6) };
    const dy = randomArray(2 * 3 * 25, 16);
    const r = flipoutConv2dBackwardRef(s, xs, wMu, wDelta, dy, signs);
    const L = (o: { x?: Float64Array; wMu?: Float64Array; wDelta?: Float64Array; bMu?: Float64Array; bDelta?: Float64Array }) =>
      dot(flipoutConv2dRef(s, o.x ?? xs, o.wMu ?? wMu, o.wDelta ?? wDelta, o.bMu ?? bMu, o.bDelta ?? bDelta, signs), dy);
    // Tolerance 1e-7: the loss is linear in each argument, so central differences are exact up to rounding / h.
    expectClose(r.dx, numericGradient((v) => L({ x: v }), Float64Array.from(xs)), 1e-7, 'dx');
    expectClose(r.dWeightMu, numericGradient((v) => L({ wMu: v }), Float64Array.from(wMu)), 1e-7, 'dWeightMu');
    expectClose(r.dWeightDelta, numericGradient((v) => L({ wDelta: v }), Float64Array.from(wDelta)), 1e-7, 'dWeightDelta');
    expectClose(r.dBiasMu, numericGradient((v) => L({ bMu: v }), Float64Array.from(bMu)), 1e-7, 'dBiasMu');
    expectClose(r.dBiasDelta, numericGradient((v) => L({ bDelta: v }), Float64Array.from(bDelta)), 1e-7, 'dBiasDelta');
  });
});

describe('flipoutLinearForward / flipoutLinearBackward', () => {
  for (const [rows, inF, outF, samples] of [[6, 5, 4, 2], [3, 17, 9, 1], [9, 3, 2, 3]] as const) {
    it(`forward and backward match float64 given the GPU's signs: ${rows} rows, ${inF} -> ${outF}, S=${samples}`, async () => {
      const ctx = await context();
      const d = { rows, inF, outF, samples };
      const xs = f32(randomArray(rows * inF, 21));
      const wMus = f32(randomArray(outF * inF, 22, -0.5, 0.5));
      const wDeltas = f32(randomArray(samples * outF * inF, 23, -0.3, 0.3));
      const bMus = f32(randomArray(outF, 24));
      const bDeltas = f32(randomArray(samples * outF, 25, -0.3, 0.3));
      const keys = { signIn: { seed: 5, step: 1, stream: 13 }, signOut: { seed: 5, step: 1, stream: 14, offset: 3 } };
      const x = ctx.tensor(xs, [rows, inF]);
      const wMu = ctx.tensor(wMus, [outF, inF]);
      const deltaShape = samples > 1 ? [samples, outF, inF] : [outF, inF];
      const wDelta = ctx.tensor(wDeltas, deltaShape);
      const y = flipoutLinearForward(x, wMu, wDelta, ctx.tensor(bMus, [outF]), ctx.tensor(bDeltas, samples > 1 ? [samples, outF] : [outF]), keys);
      const signs = await gpuSigns(ctx, keys, rows * inF, rows * outF);
      // Tolerance 1e-5 of the largest |y|: f32 dot products of up to 17 terms.
      expectClose(await y.read(), flipoutLinearRef(d, xs, wMus, wDeltas, bMus, bDeltas, signs), 1e-5, 'y');
      const dys = f32(randomArray(rows * outF, 26));
      const g = flipoutLinearBackward(ctx.tensor(dys, [rows, outF]), x, wMu, wDelta, keys);
      const r = flipoutLinearBackwardRef(d, xs, wMus, wDeltas, dys, signs);
      expect(g.dWeightDelta.shape).toEqual(deltaShape);
      expectClose(await g.dx!.read(), r.dx, 1e-5, 'dx');
      expectClose(await g.dWeightMu.read(), r.dWeightMu, 1e-5, 'dWeightMu');
      expectClose(await g.dWeightDelta.read(), r.dWeightDelta, 1e-5, 'dWeightDelta');
      expectClose(await g.dBiasMu!.read(), r.dBiasMu, 1e-5, 'dBiasMu');
      expectClose(await g.dBiasDelta!.read(), r.dBiasDelta, 1e-5, 'dBiasDelta');
      const noInput = flipoutLinearBackward(ctx.tensor(dys, [rows, outF]), x, wMu, wDelta, { ...keys, needInput: false });
      expect(noInput.dx).toBeNull();
    });
  }

  it('the reference backward equals central finite differences of the reference forward', () => {
    const d = { rows: 4, inF: 3, outF: 5, samples: 2 };
    const xs = randomArray(12, 31);
    const wMu = randomArray(15, 32);
    const wDelta = randomArray(30, 33);
    const bMu = randomArray(5, 34);
    const bDelta = randomArray(10, 35);
    const signs = { signIn: signsRef(2, 3, 4, 12), signOut: signsRef(2, 3, 5, 20) };
    const dy = randomArray(20, 36);
    const r = flipoutLinearBackwardRef(d, xs, wMu, wDelta, dy, signs);
    const L = (o: { x?: Float64Array; wMu?: Float64Array; wDelta?: Float64Array; bMu?: Float64Array; bDelta?: Float64Array }) =>
      dot(flipoutLinearRef(d, o.x ?? xs, o.wMu ?? wMu, o.wDelta ?? wDelta, o.bMu ?? bMu, o.bDelta ?? bDelta, signs), dy);
    expectClose(r.dx, numericGradient((v) => L({ x: v }), Float64Array.from(xs)), 1e-7, 'dx');
    expectClose(r.dWeightMu, numericGradient((v) => L({ wMu: v }), Float64Array.from(wMu)), 1e-7, 'dWeightMu');
    expectClose(r.dWeightDelta, numericGradient((v) => L({ wDelta: v }), Float64Array.from(wDelta)), 1e-7, 'dWeightDelta');
    expectClose(r.dBiasMu, numericGradient((v) => L({ bMu: v }), Float64Array.from(bMu)), 1e-7, 'dBiasMu');
    expectClose(r.dBiasDelta, numericGradient((v) => L({ bDelta: v }), Float64Array.from(bDelta)), 1e-7, 'dBiasDelta');
  });
});

describe('flipout ops refuse bad input before any work', () => {
  it('names the op, the argument, what was expected and what was given', async () => {
    const ctx = await context();
    const keys = { signIn: { seed: 1, step: 0, stream: 0 }, signOut: { seed: 1, step: 0, stream: 1 } };
    const x = ctx.zeros([4, 3]);
    const wMu = ctx.zeros([2, 3]);
    const refused = (f: () => unknown, ...parts: string[]) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(BayesError);
        for (const p of parts) expect((e as Error).message).toContain(p);
        return;
      }
      throw new Error('not refused');
    };
    // Operands made first; then every dispatch and allocation is counted: a refusal makes none.
    const z5 = ctx.zeros([5]);
    const z23 = ctx.zeros([2, 3]);
    const z32 = ctx.zeros([3, 2]);
    const z323 = ctx.zeros([3, 2, 3]);
    const z22 = ctx.zeros([2, 2]);
    const z43 = ctx.zeros([4, 3]);
    const xc = ctx.zeros([2, 3, 5, 5]);
    const w4 = ctx.zeros([4, 3, 3, 3]);
    const w5 = ctx.zeros([3, 4, 3, 3, 3]);
    const w4c = ctx.zeros([4, 2, 3, 3]);
    const dyc = ctx.zeros([2, 4, 2, 2]);
    let work = 0;
    const { dispatch, empty } = ctx;
    ctx.dispatch = (k) => (work++, dispatch.call(ctx, k));
    ctx.empty = ((shape: readonly number[], dtype?: never) => (work++, empty.call(ctx, shape, dtype))) as typeof ctx.empty;
    try {
      refused(() => flipoutSigns(z5, { key: keys.signIn }), 'flipoutSigns', "'x'", '[N, C, ...]', '[5]');
      refused(() => flipoutAdd(z23, z32, { key: keys.signIn }), 'flipoutAdd', "'x'", '[2, 3]');
      refused(() => flipoutSigns(x, { key: { seed: 1, step: 0, stream: -1 } }), 'flipoutSigns', 'key.stream');
      refused(() => flipoutPerturbation(wMu, { key: keys.signIn, samples: 0 }), 'flipoutPerturbation', 'samples');
      refused(() => flipoutLinearForward(x, wMu, z323, null, null, keys), 'flipoutLinearForward', "'x'", 'divisible by the 3 samples');
      refused(() => flipoutLinearForward(x, wMu, z22, null, null, keys), 'flipoutLinearForward', "'wDelta'", '[2, 3]');
      refused(() => flipoutLinearForward(x, wMu, wMu, null, z22, keys), 'flipoutLinearForward', "'bDelta'", '[2]');
      refused(() => flipoutLinearBackward(z43, x, wMu, wMu, keys), 'flipoutLinearBackward', "'dy'", '[4, 2]');
      refused(() => flipoutLinearForward(x, wMu, wMu, null, null, { ...keys, signOut: { ...keys.signOut, offset: 2 ** 32 - 4 } }), 'flipoutLinearForward', 'key.offset');
      refused(() => flipoutConv2dForward(xc, w4, w5, null, null, keys), 'flipoutConv2dForward', "'w'", 'dividing the batch');
      refused(() => flipoutConv2dForward(xc, w4c, w4c, null, null, keys), 'flipoutConv2dForward', "'w'", 'Cin');
      refused(() => flipoutConv2dBackward(dyc, xc, w4, w4, keys), 'flipoutConv2dBackward', "'dy'", '[2, 4, 3, 3]');
      refused(() => flipoutConv2dForward(xc, w4, w4, null, null, { signIn: keys.signIn } as never), 'flipoutConv2dForward', 'key');
    } finally {
      ctx.dispatch = dispatch;
      ctx.empty = empty;
    }
    expect(work).toBe(0);
  });
});
