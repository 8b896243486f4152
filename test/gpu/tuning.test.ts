import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/node.js';
import { GEMM_VARIANTS } from '../../src/gpu/gemm_variants.js';
import { TUNING_FORMAT, shapeClass } from '../../src/gpu/tuning.js';
import { conv2dForward } from '../../src/ops/conv2d.js';
import { matmul } from '../../src/ops/linear.js';
import { context, randomArray } from '../helpers.js';

const names = GEMM_VARIANTS.map((v) => v.name);

describe('GEMM variant choice', () => {
  it('every variant gives the same bits for a convolution (same order of accumulation)', async () => {
    const xs = randomArray(2 * 3 * 11 * 9, 1);
    const ws = randomArray(5 * 3 * 3 * 3, 2);
    let first: ArrayLike<number> | null = null;
    for (const variant of names) {
      const ctx = await createContext({ gemm: { variant } });
      try {
        const y = await conv2dForward(ctx.tensor(xs, [2, 3, 11, 9]), ctx.tensor(ws, [5, 3, 3, 3]), null, { padding: 1 }).read();
        if (first === null) first = y;
        else expect(Array.from(y), variant).toEqual(Array.from(first as ArrayLike<number>));
      } finally {
        ctx.destroy();
      }
    }
  });

  it('shape classes group powers of two of M, N, K and the batch count', () => {
    expect(shapeClass('matmul', { m: 64, n: 65, k: 1, batches: 3 })).toBe('matmul|m6|n7|k0|z2');
    expect(shapeClass('matmul', { m: 33, n: 64, k: 2, batches: 1 })).toBe(shapeClass('matmul', { m: 64, n: 40, k: 2, batches: 1 }));
  });

  it("tuning 'auto' measures a class at its first readback and uses the winner afterwards", async () => {
    const ctx = await createContext({ gemm: { tuning: 'auto' } });
    try {
      const a = ctx.tensor(randomArray(40 * 24, 3), [40, 24]);
      const b = ctx.tensor(randomArray(24 * 36, 4), [24, 36]);
      const key = shapeClass('matmul', { m: 40, n: 36, k: 24, batches: 1 });
      const shipped = ctx.tuningTable().choices;
      expect(shipped[key]).toBeUndefined();
      await matmul(a, b).read();
      const table = ctx.tuningTable();
      expect(Object.keys(table.choices).sort()).toEqual([...Object.keys(shipped), key].sort());
      expect(names).toContain(table.choices[key]);
      // Every variant was timed, and the winner is the fastest of them.
      const times = table.times![key];
      expect(Object.keys(times).sort()).toEqual([...names].sort());
      expect(times[table.choices[key]]).toBe(Math.min(...Object.values(times)));
      const before = JSON.stringify(ctx.tuningTable());
      await matmul(a, b).read();
      expect(JSON.stringify(ctx.tuningTable())).toBe(before);
    } finally {
      ctx.destroy();
    }
  });

  it('ctx.tune(fn) measures every class fn uses; the table round-trips through JSON on the same adapter', async () => {
    const ctx = await createContext({ gemm: { tuning: 'off' } });
    let json = '';
    try {
      const x = ctx.tensor(randomArray(2 * 2 * 8 * 8, 5), [2, 2, 8, 8]);
      const w = ctx.tensor(randomArray(4 * 2 * 3 * 3, 6), [4, 2, 3, 3]);
      const a = ctx.tensor(randomArray(9 * 5, 7), [9, 5]);
      const table = await ctx.tune(() => {
        conv2dForward(x, w, null);
        matmul(a, a, { transposeB: true });
      });
      expect(table.format).toBe(TUNING_FORMAT);
      // Measured classes carry their times (the shipped table's choices carry none).
      expect(Object.keys(table.times ?? {}).sort()).toEqual([
        shapeClass('conv2d_forward', { m: 4, n: 36, k: 18, batches: 2 }),
        shapeClass('matmul_tb', { m: 9, n: 9, k: 5, batches: 1 }),
      ].sort());
      json = JSON.stringify(table);
    } finally {
      ctx.destroy();
    }
    const again = await createContext({ gemm: { table: json } });
    try {
      expect(again.tuningTable().choices).toEqual(JSON.parse(json).choices);
    } finally {
      again.destroy();
    }
  });

  it('bad variant names, malformed tables and tables of another adapter are refused by name', async () => {
    await expect(createContext({ gemm: { variant: 'registers-16x16' } })).rejects.toThrow(
      /createContext: argument 'gemm.variant' expected a GEMM variant name \(registers-8x8, .*workgroup-64x64.*\), got "registers-16x16"/,
    );
    await expect(createContext({ gemm: { variant: { conv2d_forward: 'fast' } } })).rejects.toThrow(/argument 'gemm.variant.conv2d_forward' expected a GEMM variant name .* got "fast"/);
    await expect(createContext({ gemm: { tuning: 'always' as 'auto' } })).rejects.toThrow(/argument 'gemm.tuning' expected 'auto' or 'off', got "always"/);
    const ctx = await context();
    const good = ctx.tuningTable();
    expect(() => ctx.importTuning('{"format": ')).toThrow(/importTuning: expected the JSON text of a tuning table, got text that does not parse/);
    expect(() => ctx.importTuning({ ...good, format: 'other' as typeof TUNING_FORMAT })).toThrow(/expected format 'bayesgpu-gemm-tuning', got "other"/);
    expect(() => ctx.importTuning({ ...good, adapter: 'nvidia / hopper / H200' })).toThrow(/importTuning: the table was measured on 'nvidia \/ hopper \/ H200', not on this adapter/);
    expect(() => ctx.importTuning({ ...good, choices: { 'matmul|m1|n1|k1|z0': 'tiny' } })).toThrow(/entry choices\['matmul\|m1\|n1\|k1\|z0'\] expected a GEMM variant name .* got "tiny"/);
    expect(() => ctx.importTuning({ ...good, choices: { conv: 'registers-8x8' } })).toThrow(/expected shape class keys like/);
    // Nothing was applied by the refused imports.
    expect(ctx.tuningTable().choices).toEqual(good.choices);
    await expect(ctx.tune(42 as unknown as () => void)).rejects.toThrow(/tune: argument 'fn' expected a function/);
  });
});
