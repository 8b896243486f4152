import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/node.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward, conv2dOutputShape, lrtConv2dBackward, lrtConv2dForward } from '../../src/ops/conv2d.js';
import { GEMM_VARIANT_NAMES, context as sharedContext, dot, expectClose, numericGradient, randomArray, variantContext } from '../helpers.js';
import { type ConvShape, conv2dBackwardRef, conv2dRef, geometryRef, lrtConv2dBackwardRef, lrtConv2dRef } from '../reference/conv2d.js';

interface Case {
  name: string;
  x: number[];
  w: number[];
  bias: boolean;
  opts?: Conv2dOptions;
}

const cases: Case[] = [
  { name: 'batch 1, Cin 3, Cout 5, 7x9 input, 3x3 kernel, bias', x: [1, 3, 7, 9], w: [5, 3, 3, 3], bias: true },
  { name: 'batch 3, 3x2 kernel, stride 2, padding 2, no bias', x: [3, 3, 7, 9], w: [5, 3, 3, 2], bias: false, opts: { stride: 2, padding: 2 } },
  { name: 'dilation 2 with stride [1, 2] and padding [1, 2]', x: [3, 2, 9, 7], w: [5, 2, 3, 3], bias: true, opts: { stride: [1, 2], padding: [1, 2], dilation: 2 } },
  { name: 'per-sample weights S=2 (N=4), padding 1', x: [4, 3, 6, 5], w: [2, 5, 3, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'LeNet-like 1 -> 6 channels, 12x12, 5x5 kernel', x: [2, 1, 12, 12], w: [6, 1, 5, 5], bias: true },
  { name: 'stride 3, dilation [2, 1], 2x3 kernel, Cout 7', x: [2, 3, 11, 8], w: [7, 3, 2, 3], bias: false, opts: { stride: 3, padding: [0, 1], dilation: [2, 1] } },
  // Tiles are 8 wide, or 4 along a dimension at most 4 wide: these two cover each entry's 4-wide variants.
  { name: 'Cout 3, 2x2 output, stride 2, padding 1', x: [2, 5, 4, 4], w: [3, 5, 3, 3], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'Cin 1, 2x2 kernel (4 weight entries per channel)', x: [3, 1, 5, 5], w: [6, 1, 2, 2], bias: true },
  { name: 'Cin 12 -> Cout 12 (a full and a partial 8-channel block), 7x7 kernel, batch 7', x: [7, 12, 8, 8], w: [12, 12, 7, 7], bias: true, opts: { padding: 3 } },
  // 700 weight tiles of 8x8: backward-weight aims at 8192 invocations, so it splits the 13 images
  // into chunks of 2, 2, 2, 2, 2, 2, 1 and adds the partial sums.
  // 121 output positions per image: the bias-gradient sum's inner axis (OH*OW) is not a multiple of 4 or 64.
  { name: 'batch 3, 13x13 input, 11x11 output, bias', x: [3, 2, 13, 13], w: [3, 2, 3, 3], bias: true },
  { name: 'Cin 224 -> Cout 8, batch 13 (uneven weight-gradient chunks)', x: [13, 224, 5, 5], w: [8, 224, 5, 5], bias: false, opts: { padding: 2 } },
];

const shapeOf = (c: Case): ConvShape => ({ x: c.x, w: c.w, ...c.opts });
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const biasShape = (w: readonly number[]) => (w.length === 5 ? [w[0], w[1]] : [w[0]]);

for (const variant of GEMM_VARIANT_NAMES) {
const context = () => variantContext(variant);

describe(`conv2d forward [${variant}]`, () => {
  for (const c of cases) {
    it(`matches float64: ${c.name}`, async () => {
      const ctx = await context();
      const g = geometryRef(shapeOf(c));
      const xs = randomArray(sizeOf(c.x), 1);
      const ws = randomArray(sizeOf(c.w), 2);
      const bs = c.bias ? randomArray(sizeOf(biasShape(c.w)), 3) : null;
      const y = conv2dForward(ctx.tensor(xs, c.x), ctx.tensor(ws, c.w), bs ? ctx.tensor(bs, biasShape(c.w)) : null, c.opts);
      expect(y.shape).toEqual([g.n, g.cout, g.oh, g.ow]);
      expect(conv2dOutputShape(c.x, c.w, c.opts)).toEqual([g.n, g.cout, g.oh, g.ow]);
      // Tolerance: 1e-5 of max |y|; f32 sums of at most 588 products of values in [-1, 1].
      expectClose(await y.read(), conv2dRef(shapeOf(c), xs, ws, bs), 1e-5, 'y');
    });
  }

  it('a new batch size reuses the compiled pipeline (shapes travel as uniforms)', async () => {
    const ctx = await context();
    const w = ctx.tensor(randomArray(5 * 3 * 9, 4), [5, 3, 3, 3]);
    conv2dForward(ctx.tensor(randomArray(3 * 7 * 9, 5), [1, 3, 7, 9]), w, null);
    const pipelines = ctx.pipelineCount;
    const xs = randomArray(6 * 3 * 7 * 9, 6);
    const y = conv2dForward(ctx.tensor(xs, [6, 3, 7, 9]), w, null);
    expect(ctx.pipelineCount).toBe(pipelines);
    expectClose(await y.read(), conv2dRef({ x: [6, 3, 7, 9], w: [5, 3, 3, 3] }, xs, await w.read(), null), 1e-5, 'y');
  });
});

describe(`conv2d backward [${variant}]`, () => {
  it('reference backward equals central finite differences of the reference forward', () => {
    for (const c of [cases[1], cases[2], cases[3]]) {
      const s = shapeOf(c);
      const g = geometryRef(s);
      const xs = randomArray(sizeOf(c.x), 11);
      const ws = randomArray(sizeOf(c.w), 12);
      const bs = randomArray(sizeOf(biasShape(c.w)), 13);
      const dys = randomArray(g.n * g.cout * g.oh * g.ow, 14);
      const ref = conv2dBackwardRef(s, xs, ws, dys);
      // Tolerance: 1e-7; L is linear in each argument, so central differences are exact up to float64 rounding.
      expectClose(ref.dx, numericGradient((x) => dot(conv2dRef(s, x, ws, bs), dys), Float64Array.from(xs)), 1e-7, `${c.name}: dx`);
      expectClose(ref.dWeight, numericGradient((w) => dot(conv2dRef(s, xs, w, bs), dys), Float64Array.from(ws)), 1e-7, `${c.name}: dw`);
      expectClose(ref.dBias, numericGradient((b) => dot(conv2dRef(s, xs, ws, b), dys), Float64Array.from(bs)), 1e-7, `${c.name}: db`);
    }
  });

  for (const c of cases) {
    it(`GPU backward matches float64: ${c.name}`, async () => {
      const ctx = await context();
      const s = shapeOf(c);
      const g = geometryRef(s);
      const xs = randomArray(sizeOf(c.x), 21);
      const ws = randomArray(sizeOf(c.w), 22);
      const dys = randomArray(g.n * g.cout * g.oh * g.ow, 23);
      const ref = conv2dBackwardRef(s, xs, ws, dys);
      const dy = ctx.tensor(dys, [g.n, g.cout, g.oh, g.ow]);
      const got = conv2dBackward(dy, ctx.tensor(xs, c.x), ctx.tensor(ws, c.w), { ...c.opts, needInput: true, needBias: true });
      expect(got.dWeight.shape).toEqual(c.w);
      expect(got.dBias!.shape).toEqual(biasShape(c.w));
      // Tolerance: 1e-5 of the tensor's max |value|; f32 sums of at most a few thousand products in [-1, 1].
      expectClose(await got.dx!.read(), ref.dx, 1e-5, 'dx');
      expectClose(await got.dWeight.read(), ref.dWeight, 1e-5, 'dw');
      expectClose(await got.dBias!.read(), ref.dBias, 1e-5, 'db');
    });
  }

  it('skips dx and db when not needed', async () => {
    const ctx = await context();
    const c = cases[0];
    const g = geometryRef(shapeOf(c));
    const got = conv2dBackward(ctx.tensor(randomArray(g.n * g.cout * g.oh * g.ow, 3), [g.n, g.cout, g.oh, g.ow]), ctx.tensor(randomArray(sizeOf(c.x), 1), c.x), ctx.tensor(randomArray(sizeOf(c.w), 2), c.w), { ...c.opts, needInput: false, needBias: false });
    expect(got.dx).toBeNull();
    expect(got.dBias).toBeNull();
    expect(got.dWeight.shape).toEqual(c.w);
  });
});

// ------------------------------------------------------------------------------------- LRT

interface LrtCase extends Case {
  sigma2Bias: boolean;
}

const lrtCases: LrtCase[] = [
  { name: 'per-sample S=2 (N=4), stride 2, padding 1, both biases', x: [4, 3, 9, 8], w: [2, 5, 3, 3, 3], bias: true, sigma2Bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'no biases, dilation 2, 3x2 kernel', x: [3, 2, 9, 7], w: [6, 2, 3, 2], bias: false, sigma2Bias: false, opts: { dilation: 2, padding: [2, 1] } },
  { name: 'mean bias only, batch 1', x: [1, 3, 7, 9], w: [5, 3, 3, 3], bias: true, sigma2Bias: false },
  { name: 'Cout 3, 2x2 output (4-wide tiles), stride 2, padding 1', x: [2, 5, 4, 4], w: [3, 5, 3, 3], bias: true, sigma2Bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'Cin 10 -> Cout 12 (several channel tiles), padding 1', x: [2, 10, 6, 7], w: [12, 10, 3, 3], bias: true, sigma2Bias: true, opts: { padding: 1 } },
];

/** Inputs of an LRT case; sigma^2 in [0.05, 0.5] keeps std comparable to the mean so eps is recoverable from f32 y. */
function lrtInputs(c: LrtCase, seed: number) {
  const bShape = biasShape(c.w);
  return {
    xs: randomArray(sizeOf(c.x), seed),
    wMu: randomArray(sizeOf(c.w), seed + 1),
    wSigma2: randomArray(sizeOf(c.w), seed + 2, 0.05, 0.5),
    bMu: c.bias ? randomArray(sizeOf(bShape), seed + 3) : null,
    bSigma2: c.sigma2Bias ? randomArray(sizeOf(bShape), seed + 4, 0.05, 0.5) : null,
  };
}

describe(`LRT conv2d [${variant}]`, () => {
  const key = { seed: 1234, step: 7, stream: 3 };

  for (const c of lrtCases) {
    it(`forward: std matches float64 and (y - mean) / std is a standard normal draw: ${c.name}`, async () => {
      const ctx = await context();
      const s = shapeOf(c);
      const inp = lrtInputs(c, 31);
      const bShape = biasShape(c.w);
      const { y, std } = lrtConv2dForward(ctx.tensor(inp.xs, c.x), ctx.tensor(inp.wMu, c.w), ctx.tensor(inp.wSigma2, c.w), inp.bMu && ctx.tensor(inp.bMu, bShape), inp.bSigma2 && ctx.tensor(inp.bSigma2, bShape), { ...c.opts, key });
      const ref = lrtConv2dRef(s, inp.xs, inp.wMu, inp.wSigma2, inp.bMu, inp.bSigma2, null);
      // Tolerance: 1e-5 of max std (f32 sums as in the forward tests, then a square root).
      expectClose(await std.read(), ref.std, 1e-5, 'std');
      const ys = await y.read();
      for (let i = 0; i < ys.length; i++) expect(Number.isFinite((ys[i] - ref.mean[i]) / ref.std[i])).toBe(true);
    });
  }

  it('eps recovered as (y - mean_ref) / std_ref has mean ~ 0 and variance ~ 1 over 4800 outputs', async () => {
    const ctx = await context();
    const c: LrtCase = { name: 'stats', x: [8, 3, 10, 10], w: [6, 3, 3, 3], bias: true, sigma2Bias: true, opts: { padding: 1 } };
    const inp = lrtInputs(c, 41);
    const { y } = lrtConv2dForward(ctx.tensor(inp.xs, c.x), ctx.tensor(inp.wMu, c.w), ctx.tensor(inp.wSigma2, c.w), ctx.tensor(inp.bMu!, [6]), ctx.tensor(inp.bSigma2!, [6]), { ...c.opts, key });
    const ref = lrtConv2dRef(shapeOf(c), inp.xs, inp.wMu, inp.wSigma2, inp.bMu, inp.bSigma2, null);
    const ys = await y.read();
    const eps = Float64Array.from(ys, (v, i) => (v - ref.mean[i]) / ref.std[i]);
    const mean = eps.reduce((a, b) => a + b, 0) / eps.length;
    const variance = eps.reduce((a, b) => a + (b - mean) ** 2, 0) / eps.length;
    // Bounds: about 5 standard errors for n = 4800 (se(mean) = 0.0144, se(variance) = sqrt(2/n) = 0.0204).
    expect(Math.abs(mean)).toBeLessThan(0.075);
    expect(Math.abs(variance - 1)).toBeLessThan(0.1);
    // Neighbouring outputs draw independent eps: lag-1 correlation near 0.
    let lag = 0;
    for (let i = 1; i < eps.length; i++) lag += (eps[i] - mean) * (eps[i - 1] - mean);
    expect(Math.abs(lag / (eps.length - 1) / variance)).toBeLessThan(0.075);
  });

  it('with wSigma2 = 0 and no variance bias equals conv2dForward with the mean weights', async () => {
    const ctx = await context();
    const c = cases[3];
    const xs = randomArray(sizeOf(c.x), 51);
    const ws = randomArray(sizeOf(c.w), 52);
    const bs = randomArray(sizeOf(biasShape(c.w)), 53);
    const x = ctx.tensor(xs, c.x);
    const wMu = ctx.tensor(ws, c.w);
    const bMu = ctx.tensor(bs, biasShape(c.w));
    const { y, std } = lrtConv2dForward(x, wMu, ctx.zeros(c.w), bMu, null, { ...c.opts, key });
    const plain = await conv2dForward(x, wMu, bMu, c.opts).read();
    // Tolerance: 1e-6 of max |y|; the same f32 sums in the same order, plus 1e-8 * eps.
    expectClose(await y.read(), plain, 1e-6, 'y');
    for (const v of await std.read()) expect(v).toBeCloseTo(1e-8, 12);
  });

  it('same key gives bitwise identical output; another step or stream gives another', async () => {
    const ctx = await context();
    const c = lrtCases[0];
    const inp = lrtInputs(c, 61);
    const bShape = biasShape(c.w);
    const args = [ctx.tensor(inp.xs, c.x), ctx.tensor(inp.wMu, c.w), ctx.tensor(inp.wSigma2, c.w), ctx.tensor(inp.bMu!, bShape), ctx.tensor(inp.bSigma2!, bShape)] as const;
    const run = async (k: typeof key) => lrtConv2dForward(...args, { ...c.opts, key: k }).y.read();
    const a = await run(key);
    const b = await run({ ...key });
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const nextStep = await run({ ...key, step: key.step + 1 });
    const otherStream = await run({ ...key, stream: key.stream + 1 });
    const differs = (u: ArrayLike<number>) => Array.from(u).filter((v, i) => v !== a[i]).length;
    expect(differs(nextStep)).toBeGreaterThan(a.length * 0.99);
    expect(differs(otherStream)).toBeGreaterThan(a.length * 0.99);
  });

  it('reference LRT backward equals central finite differences with eps held fixed', () => {
    for (const c of lrtCases.slice(0, 2)) {
      const s = shapeOf(c);
      const g = geometryRef(s);
      const inp = lrtInputs(c, 71);
      const outSize = g.n * g.cout * g.oh * g.ow;
      const eps = randomArray(outSize, 72, -2, 2);
      const dys = randomArray(outSize, 73);
      const bMu = inp.bMu ?? new Float64Array(sizeOf(biasShape(c.w)));
      const bSigma2 = inp.bSigma2 ?? new Float64Array(sizeOf(biasShape(c.w))).fill(0.1);
      const ref = lrtConv2dBackwardRef(s, inp.xs, inp.wMu, inp.wSigma2, bSigma2, dys, eps);
      const loss = (x = inp.xs, wMu = inp.wMu, wSigma2 = inp.wSigma2, bm = bMu, bs = bSigma2) => dot(lrtConv2dRef(s, x, wMu, wSigma2, bm, bs, eps).y, dys);
      // Tolerance: 1e-6; central differences err by O(h^2) through the square root (variance >= 0.05 here).
      expectClose(ref.dx, numericGradient((v) => loss(v), Float64Array.from(inp.xs)), 1e-6, `${c.name}: dx`);
      expectClose(ref.dWeightMu, numericGradient((v) => loss(undefined, v), Float64Array.from(inp.wMu)), 1e-6, `${c.name}: dwMu`);
      expectClose(ref.dWeightSigma2, numericGradient((v) => loss(undefined, undefined, v), Float64Array.from(inp.wSigma2)), 1e-6, `${c.name}: dwSigma2`);
      expectClose(ref.dBiasMu, numericGradient((v) => loss(undefined, undefined, undefined, v), Float64Array.from(bMu)), 1e-6, `${c.name}: dbMu`);
      expectClose(ref.dBiasSigma2, numericGradient((v) => loss(undefined, undefined, undefined, undefined, v), Float64Array.from(bSigma2)), 1e-6, `${c.name}: dbSigma2`);
    }
  });

  for (const c of lrtCases) {
    it(`GPU backward matches float64 with eps recovered from y: ${c.name}`, async () => {
      const ctx = await context();
      const s = shapeOf(c);
      const g = geometryRef(s);
      const inp = lrtInputs(c, 81);
      const bShape = biasShape(c.w);
      const x = ctx.tensor(inp.xs, c.x);
      const wMu = ctx.tensor(inp.wMu, c.w);
      const wSigma2 = ctx.tensor(inp.wSigma2, c.w);
      const { y, std } = lrtConv2dForward(x, wMu, wSigma2, inp.bMu && ctx.tensor(inp.bMu, bShape), inp.bSigma2 && ctx.tensor(inp.bSigma2, bShape), { ...c.opts, key });
      const fwd = lrtConv2dRef(s, inp.xs, inp.wMu, inp.wSigma2, inp.bMu, inp.bSigma2, null);
      const ys = await y.read();
      const eps = Float64Array.from(ys, (v, i) => (v - fwd.mean[i]) / fwd.std[i]);
      const dys = randomArray(g.n * g.cout * g.oh * g.ow, 82);
      const ref = lrtConv2dBackwardRef(s, inp.xs, inp.wMu, inp.wSigma2, inp.bSigma2, dys, eps);
      const got = lrtConv2dBackward(ctx.tensor(dys, y.shape), x, std, wMu, wSigma2, { ...c.opts, key, needInput: true, needBias: true });
      expect(got.dWeightMu.shape).toEqual(c.w);
      expect(got.dWeightSigma2.shape).toEqual(c.w);
      expect(got.dBiasSigma2!.shape).toEqual(bShape);
      // Tolerance: 1e-4 of max |value|; eps recovered from f32 y carries y's rounding scaled by |mean| / std (<= ~20 here).
      expectClose(await got.dx!.read(), ref.dx, 1e-4, 'dx');
      expectClose(await got.dWeightMu.read(), ref.dWeightMu, 1e-4, 'dwMu');
      expectClose(await got.dWeightSigma2.read(), ref.dWeightSigma2, 1e-4, 'dwSigma2');
      expectClose(await got.dBiasMu!.read(), ref.dBiasMu, 1e-4, 'dbMu');
      expectClose(await got.dBiasSigma2!.read(), ref.dBiasSigma2, 1e-4, 'dbSigma2');
    });
  }
});

// ------------------------------------------------------------------------------- bad input

}

describe('conv2d rejects bad input before any GPU work', () => {
  it('shape mismatches', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([2, 3, 7, 9]);
    const w = ctx.zeros([5, 3, 3, 3]);
    expect(() => conv2dForward(x, ctx.zeros([5, 4, 3, 3]), null)).toThrow(/conv2dForward: argument 'w' expected shape \[Cout, 3, KH, KW\] \(Cin = x.shape\[1\] = 3\), got \[5, 4, 3, 3\]/);
    expect(() => conv2dForward(x, w, ctx.zeros([4]))).toThrow(/conv2dForward: argument 'bias' expected shape \[5\], got \[4\]/);
    expect(() => conv2dForward(x, ctx.zeros([3, 5, 3, 3, 3]), null)).toThrow(/argument 'w' expected shape per-sample weights .* dividing the batch N = 2/);
    expect(() => conv2dForward(x, ctx.zeros([2, 5, 3, 3, 3]), ctx.zeros([5]))).toThrow(/argument 'bias' expected shape \[2, 5\], got \[5\]/);
    expect(() => conv2dForward(ctx.zeros([2, 3, 7]), w, null)).toThrow(/argument 'x' expected a shape \[N, Cin, H, W\]/);
    expect(() => conv2dBackward(ctx.zeros([2, 5, 5, 6]), x, w)).toThrow(/conv2dBackward: argument 'dy' expected shape \[2, 5, 5, 7\] \(the output shape\), got \[2, 5, 5, 6\]/);
    expect(() => lrtConv2dForward(x, w, ctx.zeros([5, 3, 3, 2]), null, null, { key: { seed: 1, step: 0, stream: 0 } })).toThrow(/lrtConv2dForward: argument 'wSigma2' expected shape \[5, 3, 3, 3\]/);
    expect(() => lrtConv2dBackward(ctx.zeros([2, 5, 5, 7]), x, ctx.zeros([2, 5, 5, 6]), w, w, { key: { seed: 1, step: 0, stream: 0 } })).toThrow(/lrtConv2dBackward: argument 'std' expected shape \[2, 5, 5, 7\]/);
    expect(() => conv2dOutputShape([1, 3, 7, 9], [5, 2, 3, 3])).toThrow(/conv2dOutputShape: argument 'w'/);
  });

  it('non-integer or negative stride, padding, dilation and an output smaller than 1', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([1, 3, 7, 9]);
    const w = ctx.zeros([5, 3, 3, 3]);
    expect(() => conv2dForward(x, w, null, { stride: 1.5 })).toThrow(/conv2dForward: argument 'stride' expected an integer >= 1, got 1.5/);
    expect(() => conv2dForward(x, w, null, { stride: 0 })).toThrow(/argument 'stride' expected an integer >= 1, got 0/);
    expect(() => conv2dForward(x, w, null, { padding: -1 })).toThrow(/argument 'padding' expected an integer >= 0, got -1/);
    expect(() => conv2dForward(x, w, null, { padding: [1, 0.5] })).toThrow(/argument 'padding\[1\]' expected an integer >= 0, got 0.5/);
    expect(() => conv2dForward(x, w, null, { dilation: [2, 0] })).toThrow(/argument 'dilation\[1\]' expected an integer >= 1, got 0/);
    expect(() => conv2dForward(x, w, null, { dilation: [1, 2, 3] as unknown as [number, number] })).toThrow(/argument 'dilation' expected an integer or a pair/);
    expect(() => conv2dForward(x, ctx.zeros([5, 3, 8, 3]), null)).toThrow(/conv2dForward: argument 'x' expected a padded input at least as large as the dilated kernel 8x3, got 7x9 with padding \[0, 0\] \(output would be 0x7\)/);
    expect(() => conv2dOutputShape([1, 3, 7, 9], [5, 3, 3, 3], { dilation: 5 })).toThrow(/dilated kernel 11x11/);
    expect(() => conv2dBackward(ctx.zeros([1, 5, 5, 7]), x, w, { needInput: 'yes' as unknown as boolean })).toThrow(/conv2dBackward: argument 'options.needInput' expected a boolean or undefined, got "yes"/);
    expect(() => lrtConv2dForward(x, w, w, null, null, { key: { seed: 1, step: -1, stream: 0 } })).toThrow(/argument 'key.step' expected an integer >= 0/);
  });

  it('a disposed tensor, a non-f32 tensor and a tensor from another context', async () => {
    const ctx = await sharedContext();
    const x = ctx.zeros([1, 3, 7, 9]);
    const w = ctx.zeros([5, 3, 3, 3]);
    const gone = ctx.zeros([5]);
    gone.dispose();
    expect(() => conv2dForward(x, w, gone)).toThrow(/conv2dForward: argument 'bias' is a disposed tensor/);
    expect(() => conv2dForward(ctx.zeros([1, 3, 7, 9], 'u32'), w, null)).toThrow(/conv2dForward: argument 'x' expected an 'f32' tensor/);
    const other = await createContext();
    try {
      const foreign = other.zeros([5, 3, 3, 3]);
      expect(() => conv2dForward(x, foreign, null)).toThrow(/conv2dForward: argument 'w' is a tensor from another device\/context/);
      expect(() => lrtConv2dForward(x, w, foreign, null, null, { key: { seed: 1, step: 0, stream: 0 } })).toThrow(/lrtConv2dForward: argument 'wSigma2' is a tensor from another device\/context/);
    } finally {
      other.destroy();
    }
    const before = ctx.memory().liveTensors;
    expect(() => conv2dBackward(ctx.zeros([1, 5, 5, 6]), x, w)).toThrow();
    // The failed call allocated nothing beyond the dy argument itself.
    expect(ctx.memory().liveTensors).toBe(before + 1);
  });
});
