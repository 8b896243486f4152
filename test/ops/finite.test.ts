/**
 * The non-finite guard's kernels (shaders/finite.wgsl) and the gated Adam update: flags are set exactly
 * for NaN and +-Inf (never for the largest finite values or subnormals), per slot at its first step, and
 * a closed gate leaves param, m and v untouched while an open one computes adam_step's bits.
 */
import { describe, expect, it } from 'vitest';
import { type AdamGate, adamStep } from '../../src/ops/adam.js';
import {
  checkFiniteInto, countNonFiniteStep, decodeNonFiniteFlags, describeKinds, flagWordsFromF32, flagsIntoF32, nonFiniteFlags, nonFiniteGate,
} from '../../src/ops/finite.js';
import { context, randomArray } from '../helpers.js';

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

describe('checkFiniteInto', () => {
  it('flags NaN, +Inf and -Inf (by their bits) and nothing finite, per slot at its first step', async () => {
    const ctx = await context();
    const flags = nonFiniteFlags(ctx, 4);
    const n = 3000;
    const finite = f32(randomArray(n, 1, -1, 1));
    // The extremes of f32: largest finite, smallest normal and subnormal, negative zero.
    finite.set([3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1e-45, -0], 100);
    const nan = finite.slice();
    nan[2999] = NaN; // the last element: the tail of the last workgroup is checked
    const inf = finite.slice();
    inf[7] = Infinity;
    inf[1500] = -Infinity;
    const t = (a: Float32Array) => ctx.tensor(a, [n]);
    // step 5: slot 0 finite, slot 1 NaN; step 6: slot 1 finite again, slot 2 +-Inf; step 9: slot 1 +-Inf.
    checkFiniteInto(t(finite), flags, { slot: 0, step: 5 });
    checkFiniteInto(t(nan), flags, { slot: 1, step: 5 });
    countNonFiniteStep(flags, { step: 5 });
    checkFiniteInto(t(finite), flags, { slot: 1, step: 6 });
    checkFiniteInto(t(inf), flags, { slot: 2, step: 6 });
    countNonFiniteStep(flags, { step: 6 });
    checkFiniteInto(t(finite), flags, { slot: 3, step: 7 });
    countNonFiniteStep(flags, { step: 7 });
    checkFiniteInto(t(inf), flags, { slot: 1, step: 9 });
    countNonFiniteStep(flags, { step: 9 });
    const r = decodeNonFiniteFlags(await flags.read());
    expect(r.count).toBe(3);
    expect(r.latest).toBe(9);
    expect(r.first).toBe(5);
    expect(r.slots[0]).toBeNull();
    expect(r.slots[3]).toBeNull();
    // Slot 1 keeps its first step (5, NaN); step 9's infinities are not mixed in.
    expect(r.slots[1]).toEqual({ step: 5, kinds: { nan: true, posInf: false, negInf: false } });
    expect(r.slots[2]).toEqual({ step: 6, kinds: { nan: false, posInf: true, negInf: true } });
    expect(describeKinds(r.slots[2]!.kinds)).toBe('+Inf, -Inf');
  });

  it('checks many tensors of different sizes at once (seven per dispatch), each into its own slot', async () => {
    const ctx = await context();
    const sizes = [1, 5000, 13, 64, 513, 2, 9000, 7, 1, 300];
    const flags = nonFiniteFlags(ctx, 1 + sizes.length);
    const xs = sizes.map((n, k) => {
      const a = f32(randomArray(n, 10 + k));
      if (k === 3) a[63] = -Infinity;
      if (k === 7) a[0] = NaN;
      if (k === 9) a[150] = Infinity;
      return ctx.tensor(a, [n]);
    });
    // Slots 1..10; slot 0 stays clear.
    checkFiniteInto(xs, flags, { slot: 1, step: 41 });
    countNonFiniteStep(flags, { step: 41 });
    const r = decodeNonFiniteFlags(await flags.read());
    expect(r.count).toBe(1);
    expect(r.slots.map((s) => (s ? describeKinds(s.kinds) : null))).toEqual([null, null, null, null, '-Inf', null, null, null, 'NaN', null, '+Inf']);
    expect(r.slots[4]?.step).toBe(41);
  });

  it('the flags travel exactly as 16-bit halves in an f32 tensor', async () => {
    const ctx = await context();
    const flags = nonFiniteFlags(ctx, 2);
    checkFiniteInto(ctx.tensor(f32([0, NaN]), [2]), flags, { slot: 1, step: 123_456_789 });
    countNonFiniteStep(flags, { step: 123_456_789 });
    const out = ctx.zeros([4 + 2 * flags.size]);
    flagsIntoF32(flags, out, { offset: 4 });
    const words = flagWordsFromF32(await out.read(), 4, flags.size);
    expect(Array.from(words)).toEqual(Array.from(await flags.read()));
    expect(decodeNonFiniteFlags(words).slots[1]?.step).toBe(123_456_789);
  });

  it('rejects bad arguments before any GPU work', async () => {
    const ctx = await context();
    const flags = nonFiniteFlags(ctx, 2);
    const x = ctx.zeros([4]);
    expect(() => checkFiniteInto(x, flags, { slot: 2, step: 0 })).toThrow(/checkFiniteInto: argument 'slot' expected an integer <= 1 \(1 tensor\(s\) from it, the flags have 2 slots\), got 2/);
    expect(() => checkFiniteInto([x, x, x], flags, { slot: 0, step: 0 })).toThrow(/argument 'slot' expected an integer <= -1 \(3 tensor\(s\) from it/);
    expect(() => checkFiniteInto([x, ctx.zeros([2], 'u32') as never], flags, { slot: 0, step: 0 })).toThrow(/checkFiniteInto: argument 'xs\[1\]' expected a tensor of dtype 'f32'/);
    expect(() => checkFiniteInto(x, ctx.zeros([7]) as never, { slot: 0, step: 0 })).toThrow(/argument 'flags' expected a u32 tensor from nonFiniteFlags/);
    expect(() => checkFiniteInto(x, flags, { slot: 0, step: 2 ** 32 - 1 })).toThrow(/argument 'step' expected an integer <= 4294967294/);
    expect(() => flagsIntoF32(flags, ctx.zeros([8]), { offset: 0 })).toThrow(/flagsIntoF32: argument 'offset' expected at most -6/);
  });
});

describe('adamStep with a gate', () => {
  it('open: the bits of adam_step; closed: param, m and v unchanged', async () => {
    const ctx = await context();
    const n = 1000;
    const p0 = f32(randomArray(n, 1));
    const g = ctx.tensor(f32(randomArray(n, 2)), [n]);
    const m0 = f32(randomArray(n, 3, -0.1, 0.1));
    const v0 = f32(randomArray(n, 4, 0, 0.1));
    const run = (gate?: AdamGate) => {
      const [p, m, v] = [ctx.tensor(p0, [n]), ctx.tensor(m0, [n]), ctx.tensor(v0, [n])];
      adamStep(p, g, m, v, { lr: 1e-2, weightDecay: 0.1, step: 3, gate });
      return Promise.all([p.read(), m.read(), v.read()]);
    };
    const plain = await run();
    const flags = nonFiniteFlags(ctx, 1);
    // Step 4 flagged: step 4 is skipped; step 6 runs unless the gate is sticky.
    checkFiniteInto(ctx.tensor(f32([NaN]), [1]), flags, { slot: 0, step: 4 });
    expect(await run(nonFiniteGate(flags, 6, false))).toEqual(plain);
    expect(await run(nonFiniteGate(flags, 4, false))).toEqual([p0, m0, v0]);
    expect(await run(nonFiniteGate(flags, 6, true))).toEqual([p0, m0, v0]);
    const clear = nonFiniteFlags(ctx, 1);
    expect(await run(nonFiniteGate(clear, 6, true))).toEqual(plain);
    expect(() => adamStep(ctx.zeros([2]), ctx.zeros([2]), ctx.zeros([2]), ctx.zeros([2]), { lr: 1, step: 1, gate: { flags, from: 0 } })).toThrow(/adamStep: argument 'gate.from' expected an integer >= 1, got 0/);
  });
});
