/**
 * The in-shader generator (shaders/random.wgsl): Philox4x32-10 against a BigInt
 * implementation and the Random123 known answers, the four-draws-per-call index
 * contract (element j is lane j & 3 of the call at counter (j >> 2, stream, 0, 0);
 * scalar and vector forms agree bit for bit at every alignment), then the
 * statistics of its normal and uniform draws, lane by lane and pooled.
 */
import { describe, expect, it } from 'vitest';
import { grid, type Context } from '../../src/gpu/context.js';
import { drawNormal, drawUniform } from '../../src/ops/sample.js';
import type { RandomKey } from '../../src/ops/random.js';
import { context, rng } from '../helpers.js';
import { erf, ksStatistic, mulHiLoRef, normalCdf, normalRef, normalsRef, philoxRef, uniformRef } from '../reference/sample.js';

/** Random123 kat_vectors for philox4x32_10: counter, key, expected output words. */
const KAT: [number[], number[], number[]][] = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];

const u32 = (r: () => number) => Math.floor(r() * 2 ** 32) >>> 0;

/** Runs the test-only entry philox_words of sample.wgsl on the given counters and keys. */
async function gpuPhilox(ctx: Context, counters: number[][], keys: number[][]): Promise<number[][]> {
  const m = counters.length;
  const words = ctx.empty([m, 4], 'u32');
  ctx.dispatch({
    shader: 'sample.wgsl', entry: 'philox_words', constants: { WG: 64 },
    uniforms: { n: m, samples: 1, stream: 0, key: [0, 0], offset: 0 },
    bindings: { counters: ctx.tensor(counters.flat(), [m, 4], 'u32'), keys: ctx.tensor(keys.flat(), [m, 2], 'u32'), words },
    workgroups: grid(Math.ceil(m / 64)),
  });
  const out = await words.read();
  return counters.map((_, j) => Array.from(out.subarray(4 * j, 4 * j + 4)));
}

/**
 * Runs a test-only entry of sample.wgsl that writes `per` draws per invocation for n invocations:
 * normal_scalar / uniform_scalar (per = 1) or normal4_at / uniform4_at (per = 4). The offset
 * may run past 2^32 - n: the shader's u32 index wraps.
 */
async function gpuDraws(ctx: Context, entry: string, per: 1 | 4, n: number, key: RandomKey): Promise<ArrayLike<number>> {
  const draws = ctx.empty([n * per]);
  ctx.dispatch({
    shader: 'sample.wgsl', entry, constants: { WG: 64 },
    uniforms: { n, stream: key.stream, key: [key.seed, key.step], offset: key.offset ?? 0 },
    bindings: { draws }, workgroups: grid(Math.ceil(n / 64)),
  });
  return draws.read();
}

/** The f32 bit patterns of f32 values (Float32Array.from of f32 values is exact). */
const bitsOf = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

/** Lane k of draws made from offset 0: elements 4b + k. */
const lane = (x: ArrayLike<number>, k: number) => Float32Array.from({ length: x.length >> 2 }, (_, b) => x[4 * b + k]);

function meanVar(x: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return { mean, variance: v / (x.length - 1) };
}

/** Pearson correlation of a[i] and b[i]. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = meanVar(a).mean;
  const mb = meanVar(b).mean;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

const N = 1 << 20; // >= 1e6 draws for the distribution tests
const KS_CRITICAL = 1.95; // sqrt(n) * D at the 0.1% level (Kolmogorov distribution, large n)

describe('Philox4x32-10', () => {
  it('the BigInt reference reproduces the Random123 known answers', () => {
    for (const [counter, key, want] of KAT) expect(philoxRef(counter, key)).toEqual(want);
  });

  it('the GPU generator reproduces the known answers and the BigInt reference on random counters and keys', async () => {
    const ctx = await context();
    const r = rng(2024);
    const counters = KAT.map((k) => k[0]);
    const keys = KAT.map((k) => k[1]);
    for (let j = 0; j < 125; j++) {
      counters.push([u32(r), u32(r), u32(r), u32(r)]);
      keys.push([u32(r), u32(r)]);
    }
    const got = await gpuPhilox(ctx, counters, keys);
    KAT.forEach(([, , want], j) => expect(got[j]).toEqual(want));
    got.forEach((words, j) => expect(words, `counter ${counters[j]} key ${keys[j]}`).toEqual(philoxRef(counters[j], keys[j])));
  });

  it('mul_hi_lo gives the exact 64-bit product, including the carry edge cases', async () => {
    const ctx = await context();
    const r = rng(7);
    const pairs: number[][] = [[0, 0], [1, 0xffffffff], [0xffffffff, 0xffffffff], [0xffff, 0xffff], [0x10000, 0x10000], [0xffff0000, 0x0000ffff], [0xd2511f53, 0xffffffff], [0xcd9e8d57, 0x80000000]];
    for (let j = 0; j < 200; j++) pairs.push([u32(r), u32(r)]);
    const words = ctx.empty([pairs.length, 2], 'u32');
    ctx.dispatch({
      shader: 'sample.wgsl', entry: 'mul_hi_lo_words', constants: { WG: 64 },
      uniforms: { n: pairs.length, samples: 1, stream: 0, key: [0, 0], offset: 0 },
      bindings: { factors: ctx.tensor(pairs.flat(), [pairs.length, 2], 'u32'), words }, workgroups: grid(Math.ceil(pairs.length / 64)),
    });
    const got = await words.read();
    pairs.forEach(([a, b], j) => expect([got[2 * j], got[2 * j + 1]], `${a} * ${b}`).toEqual(mulHiLoRef(a, b)));
  });

  it('drawUniform is bit-exactly the top 24 bits of word j & 3 of Philox at counter (j >> 2, stream, 0, 0), key (seed, step)', async () => {
    const ctx = await context();
    for (const key of [{ seed: 0, step: 0, stream: 0 }, { seed: 0xdeadbeef, step: 12345, stream: 7 }, { seed: 9, step: 1, stream: 2, offset: 3 }]) {
      const got = await drawUniform(ctx, [301], { key }).read();
      for (let i = 0; i < 301; i++) expect(got[i], `${JSON.stringify(key)} element ${i}`).toBe(uniformRef(key.seed, key.step, (key.offset ?? 0) + i, key.stream));
    }
  });

  it('drawNormal matches Box-Muller in float64 on the same Philox words (two pairs per call), at aligned and unaligned offsets', async () => {
    const ctx = await context();
    const n = 4097;
    for (const offset of [0, 1, 2, 3, 4096]) {
      const key = { seed: 99, step: 3, stream: 2, offset };
      const got = await drawNormal(ctx, [n], { key }).read();
      const want = normalsRef(key.seed, key.step, key.stream, n, offset);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      // Tolerance: WGSL allows cos and sin an absolute error of 2^-11 on [-pi, pi] (the angle's range
      // here), times the Box-Muller radius sqrt(-2 log u1) <= sqrt(2 * 24 ln 2) = 5.77: 2.8e-3. A wrong
      // word, lane or bit shift is O(1) off. SwiftShader measured 6.4e-4 for cos alone: its cos is off
      // by up to 1.9e-4 near cos = +-1.
      expect(worst, `offset ${offset}`).toBeLessThan(5.77 * 2 ** -11);
      expect(want[0]).toBe(normalRef(key.seed, key.step, offset, key.stream));
    }
  });

  it('rand_normal(i) equals lane i % 4 of rand_normal4(i - i % 4), and rand_normal4 at any index equals the scalars, bit for bit', async () => {
    const ctx = await context();
    // Offsets 0..3 cover every alignment; 2^32 - 6 wraps the u32 index (block 2^30 is block 0).
    for (const offset of [0, 1, 2, 3, 2 ** 32 - 6]) {
      const key = { seed: 0x1234567, step: 89, stream: 5, offset };
      const n = 1000;
      const scalar = bitsOf(await gpuDraws(ctx, 'normal_scalar', 1, n + 3, key));
      const vector = bitsOf(await gpuDraws(ctx, 'normal4_at', 4, n, key));
      for (let j = 0; j < n; j++) expect(vector.slice(4 * j, 4 * j + 4), `normal4 at offset ${offset} + ${j}`).toEqual(scalar.slice(j, j + 4));
      const uScalar = bitsOf(await gpuDraws(ctx, 'uniform_scalar', 1, n + 3, key));
      const uVector = bitsOf(await gpuDraws(ctx, 'uniform4_at', 4, n, key));
      for (let j = 0; j < n; j++) expect(uVector.slice(4 * j, 4 * j + 4), `uniform4 at offset ${offset} + ${j}`).toEqual(uScalar.slice(j, j + 4));
      if (offset < 4) {
        // drawNormal / drawUniform (four per invocation through rand_normal4 / rand_uniform4) give the same bits.
        expect(bitsOf(await drawNormal(ctx, [n], { key }).read()), `drawNormal offset ${offset}`).toEqual(scalar.slice(0, n));
        expect(bitsOf(await drawUniform(ctx, [n], { key }).read()), `drawUniform offset ${offset}`).toEqual(uScalar.slice(0, n));
      }
    }
  });

  it('an offset draw equals the tail of a longer draw bit for bit, whatever its alignment', async () => {
    const ctx = await context();
    const key = { seed: 4, step: 8, stream: 15 };
    const whole = bitsOf(await drawNormal(ctx, [203], { key }).read());
    for (const offset of [1, 2, 3, 4, 7]) {
      expect(bitsOf(await drawNormal(ctx, [203 - offset], { key: { ...key, offset } }).read()), `offset ${offset}`).toEqual(whole.slice(offset));
    }
  });
});

describe('generator statistics', () => {
  it(`erf (float64) matches tabulated values to 1e-15`, () => {
    // Abramowitz & Stegun table 7.1 / high-precision values.
    const table: [number, number][] = [[0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014], [4, 0.9999999845827421]];
    for (const [x, want] of table) {
      expect(Math.abs(erf(x) - want)).toBeLessThan(1e-15);
      expect(Math.abs(erf(-x) + want)).toBeLessThan(1e-15);
    }
  });

  /** Mean, variance (5 standard errors) and Kolmogorov-Smirnov (0.1% level) of one sample. */
  function checkNormal(z: ArrayLike<number>, what: string) {
    const n = z.length;
    const { mean, variance } = meanVar(z);
    // se(mean) = 1 / sqrt(n), se(variance) = sqrt(2 / n) for a normal.
    expect(Math.abs(mean), `${what} mean`).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(variance - 1), `${what} variance`).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(ksStatistic(z, normalCdf) * Math.sqrt(n), `${what} KS`).toBeLessThan(KS_CRITICAL);
  }

  function checkUniform(u: ArrayLike<number>, what: string) {
    const n = u.length;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      lo = Math.min(lo, u[i]);
      hi = Math.max(hi, u[i]);
    }
    expect(lo, `${what} min`).toBeGreaterThanOrEqual(0);
    expect(hi, `${what} max`).toBeLessThan(1);
    const { mean, variance } = meanVar(u);
    // se(mean) = sqrt(1/12 / n); se(variance) = sqrt((mu4 - sigma^4) / n) = sqrt((1/80 - 1/144) / n).
    expect(Math.abs(mean - 0.5), `${what} mean`).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(variance - 1 / 12), `${what} variance`).toBeLessThan(5 * Math.sqrt((1 / 80 - 1 / 144) / n));
    // The 24-bit grid shifts the CDF by at most 2^-24, far below the KS resolution 1.95 / sqrt(n).
    expect(ksStatistic(u, (x) => Math.min(Math.max(x, 0), 1)) * Math.sqrt(n), `${what} KS`).toBeLessThan(KS_CRITICAL);
  }

  it(`${N} normal draws per lane (4 * ${N} pooled): mean, variance and Kolmogorov-Smirnov against N(0, 1)`, async () => {
    const ctx = await context();
    const z = await drawNormal(ctx, [4 * N], { key: { seed: 12345, step: 0, stream: 0 } }).read();
    for (let k = 0; k < 4; k++) checkNormal(lane(z, k), `lane ${k}`);
    checkNormal(z, 'pooled');
  });

  it(`${N} uniform draws per lane (4 * ${N} pooled): mean, variance and Kolmogorov-Smirnov against U(0, 1)`, async () => {
    const ctx = await context();
    const u = await drawUniform(ctx, [4 * N], { key: { seed: 777, step: 5, stream: 3 } }).read();
    for (let k = 0; k < 4; k++) checkUniform(lane(u, k), `lane ${k}`);
    checkUniform(u, 'pooled');
  });

  it('the four lanes of one Philox call are uncorrelated, and so are their squares (the Box-Muller pairs share a radius)', async () => {
    const ctx = await context();
    const z = await drawNormal(ctx, [4 * N], { key: { seed: 31, step: 7, stream: 1 } }).read();
    const u = await drawUniform(ctx, [4 * N], { key: { seed: 31, step: 7, stream: 2 } }).read();
    const lanes = [0, 1, 2, 3].map((k) => lane(z, k));
    const squares = lanes.map((x) => x.map((v) => v * v));
    const uLanes = [0, 1, 2, 3].map((k) => lane(u, k));
    // Under independence a sample correlation has standard error 1 / sqrt(n); allow 5 of them.
    const limit = 5 / Math.sqrt(N);
    for (let a = 0; a < 4; a++) {
      for (let b = a + 1; b < 4; b++) {
        expect(Math.abs(correlation(lanes[a], lanes[b])), `normal lanes ${a}, ${b}`).toBeLessThan(limit);
        expect(Math.abs(correlation(squares[a], squares[b])), `squared normal lanes ${a}, ${b}`).toBeLessThan(limit);
        expect(Math.abs(correlation(uLanes[a], uLanes[b])), `uniform lanes ${a}, ${b}`).toBeLessThan(limit);
      }
    }
  });

  it('adjacent indices, neighbouring streams and neighbouring steps are uncorrelated', async () => {
    const ctx = await context();
    const n = 1 << 18;
    const z = await drawNormal(ctx, [n], { key: { seed: 1, step: 1, stream: 0 } }).read();
    const zStream = await drawNormal(ctx, [n], { key: { seed: 1, step: 1, stream: 1 } }).read();
    const zStep = await drawNormal(ctx, [n], { key: { seed: 1, step: 2, stream: 0 } }).read();
    const u = await drawUniform(ctx, [n], { key: { seed: 1, step: 1, stream: 0 } }).read();
    // Under independence a sample correlation has standard error 1 / sqrt(n); allow 5 of them.
    const limit = 5 / Math.sqrt(n);
    expect(Math.abs(correlation(z.subarray(0, n - 1), z.subarray(1)))).toBeLessThan(limit);
    expect(Math.abs(correlation(u.subarray(0, n - 1), u.subarray(1)))).toBeLessThan(limit);
    expect(Math.abs(correlation(z, zStream))).toBeLessThan(limit);
    expect(Math.abs(correlation(z, zStep))).toBeLessThan(limit);
  });

  it('the same key gives bitwise identical draws on repeated runs; another step, stream or seed gives different ones', async () => {
    const ctx = await context();
    const n = 100_000;
    const bits = async (f: typeof drawNormal, key: RandomKey) => new Uint32Array((await f(ctx, [n], { key }).read()).buffer);
    const key = { seed: 42, step: 10, stream: 4 };
    for (const f of [drawNormal, drawUniform]) {
      const a = await bits(f, key);
      const again = await bits(f, { ...key });
      let differing = 0;
      for (let i = 0; i < n; i++) if (a[i] !== again[i]) differing++;
      expect(differing).toBe(0);
      for (const other of [{ ...key, step: 11 }, { ...key, stream: 5 }, { ...key, seed: 43 }]) {
        const b = await bits(f, other);
        let same = 0;
        for (let i = 0; i < n; i++) if (a[i] === b[i]) same++;
        // Independent 24-bit draws coincide with probability 2^-24 each: expect about 0.006 of 100000.
        expect(same, JSON.stringify(other)).toBeLessThan(5);
      }
    }
  });

  it('draws of any shape index the flattened tensor (a [4, 5, 6] draw equals the flat [120] draw)', async () => {
    const ctx = await context();
    const key = { seed: 5, step: 6, stream: 7 };
    const a = drawNormal(ctx, [4, 5, 6], { key });
    expect(a.shape).toEqual([4, 5, 6]);
    expect(await a.read()).toEqual(await drawNormal(ctx, [120], { key }).read());
  });

  it('rejects an invalid key or shape before GPU work', async () => {
    const ctx = await context();
    expect(() => drawNormal(ctx, [4], { key: { seed: -1, step: 0, stream: 0 } })).toThrow(/drawNormal: argument 'key.seed' expected an integer >= 0, got -1/);
    expect(() => drawNormal(ctx, [4], { key: { seed: 0, step: 0.5, stream: 0 } })).toThrow(/drawNormal: argument 'key.step'/);
    expect(() => drawUniform(ctx, [4], { key: { seed: 0, step: 0, stream: NaN } })).toThrow(/drawUniform: argument 'key.stream'/);
    expect(() => drawUniform(ctx, [4], { key: null as never })).toThrow(/drawUniform: argument 'key' expected \{ seed, step, stream \}/);
    expect(() => drawNormal(ctx, [4, 0], { key: { seed: 0, step: 0, stream: 0 } })).toThrow(/drawNormal: argument 'shape' expected a non-empty array of positive integers/);
    expect(() => drawNormal(ctx, [], { key: { seed: 0, step: 0, stream: 0 } })).toThrow(/drawNormal: argument 'shape'/);
    expect(() => drawUniform(ctx, [2.5], { key: { seed: 0, step: 0, stream: 0 } })).toThrow(/drawUniform: argument 'shape'/);
  });
});
