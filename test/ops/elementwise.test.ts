import { describe, expect, it } from 'vitest';
import { grid } from '../../src/gpu/context.js';
import { add, addInto, fill, scale, square, tile } from '../../src/ops/elementwise.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { addIntoRef, addRef, scaleRef, squareRef, tileRef } from '../reference/elementwise.js';

describe('elementwise', () => {
  for (const shape of [[1], [7], [3, 5, 7], [1000, 70]]) {
    const n = shape.reduce((p, d) => p * d, 1);
    it(`add, addInto, scale, square match float64, shape [${shape}]`, async () => {
      const ctx = await context();
      const as = randomArray(n, n, -3, 3);
      const bs = randomArray(n, n + 1, -3, 3);
      const a = ctx.tensor(as, shape);
      const b = ctx.tensor(bs, shape);
      // Tolerance 1e-6: one f32 rounding per element, relative to the tensor's magnitude.
      expectClose(await add(a, b).read(), addRef(as, bs), 1e-6, 'add');
      expectClose(await scale(a, -0.37).read(), scaleRef(as, -0.37), 1e-6, 'scale');
      expectClose(await square(a).read(), squareRef(as), 1e-6, 'square');
      addInto(a, b, 2.5);
      // Tolerance 1e-6: one fused multiply-add in f32 on f32-rounded inputs.
      expectClose(await a.read(), addIntoRef(Float32Array.from(as), Float32Array.from(bs), 2.5), 1e-6, 'addInto');
      addInto(a, b); // alpha defaults to 1
      expectClose(await a.read(), addRef(addIntoRef(Float32Array.from(as), Float32Array.from(bs), 2.5), Float32Array.from(bs)), 1e-6, 'addInto alpha=1');
    });
  }

  it('fill writes f32, u32 and i32 values exactly', async () => {
    const ctx = await context();
    const f = ctx.empty([3, 5]);
    fill(f, -1.25);
    expect([...(await f.read())]).toEqual(new Array(15).fill(-1.25));
    fill(f, -Infinity);
    expect([...(await f.read())]).toEqual(new Array(15).fill(-Infinity));
    const u = ctx.empty([7], 'u32');
    fill(u, 4000000000);
    expect([...(await u.read())]).toEqual(new Array(7).fill(4000000000));
    const i = ctx.empty([7], 'i32');
    fill(i, -3);
    expect([...(await i.read())]).toEqual(new Array(7).fill(-3));
  });

  it('tile repeats the whole tensor along a new leading axis', async () => {
    const ctx = await context();
    const xs = randomArray(2 * 3 * 5, 9);
    const x = ctx.tensor(xs, [2, 3, 5]);
    const y = tile(x, 4);
    expect(y.shape).toEqual([4, 2, 3, 5]);
    // Exact: a copy.
    expectClose(await y.read(), tileRef(Float32Array.from(xs), 4), 0, 'tile');
  });

  it('the kernels fold more than 65535 workgroups into a 2-D grid', async () => {
    const ctx = await context();
    const xs = Float32Array.from(randomArray(30, 9));
    const x = ctx.tensor(xs, [30]);
    // One element per invocation (the wrapper uses more) so that 64 * 65536 + 30 outputs need 65537 workgroups.
    const n = 64 * 65536 + 30;
    const out = ctx.empty([n]);
    ctx.dispatch({
      shader: 'elementwise.wgsl', entry: 'tile', constants: { WG: 64, PER_THREAD: 1 },
      uniforms: { n, m: 30, alpha: 0, bits: 0 }, bindings: { a: x, out }, workgroups: grid(Math.ceil(n / 64)),
    });
    const got = await out.read();
    for (const at of [0, 29, 30, 64 * 65535 + 7, n - 1]) expect(got[at]).toBe(xs[at % 30]);
    out.dispose();
  });

  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const a = ctx.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = ctx.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    const u = ctx.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'u32');
    expect(() => add(a, b)).toThrow(/add: argument 'b' expected shape \[2, 3\] \(the shape of a\), got \[3, 2\]/);
    expect(() => addInto(a, b)).toThrow(/addInto: argument 'x' expected shape \[2, 3\]/);
    expect(() => addInto(a, a)).toThrow(/addInto: argument 'x' expected a tensor that does not share its buffer/);
    expect(() => addInto(a, a.reshape([3, 2]).reshape([2, 3]))).toThrow(/does not share its buffer/);
    expect(() => addInto(a, b.reshape([2, 3]), NaN)).toThrow(/addInto: argument 'alpha' expected a finite number, got NaN/);
    expect(() => add(a, u)).toThrow(/add: argument 'b' expected a tensor of dtype 'f32'/);
    expect(() => scale(a, Infinity)).toThrow(/scale: argument 'alpha' expected a finite number/);
    expect(() => tile(a, 2.5)).toThrow(/tile: argument 'times' expected an integer >= 1, got 2.5/);
    expect(() => tile(a, 0)).toThrow(/tile: argument 'times' expected an integer >= 1, got 0/);
    expect(() => fill(u, -1)).toThrow(/fill: argument 'value' expected an integer in 0..4294967295/);
    expect(() => fill(a, NaN)).toThrow(/fill: argument 'value' expected a number \(not NaN\)/);
    b.dispose();
    expect(() => add(a, b)).toThrow(/add: argument 'b' is a disposed tensor/);
    expect(() => square(b)).toThrow(/square: argument 'x' is a disposed tensor/);
  });
});
