/** The runtime: pooled buffers and their counters, scopes, the pipeline cache, errors. */
import { describe, expect, it } from 'vitest';
import { context } from '../helpers.js';
import { createContext, sizeClass } from '../../src/gpu/context.js';
import { activationForward } from '../../src/ops/activation.js';
import { add } from '../../src/ops/elementwise.js';
import { ShaderRegistry, packUniforms } from '../../src/gpu/shaders.js';

describe('context', () => {
  it('reports the adapter', async () => {
    const ctx = await context();
    expect(ctx.adapterName).toMatch(/\[node\]$/);
    expect(typeof ctx.adapter.isFallbackAdapter).toBe('boolean');
  });

  it('the live-buffer counters return to their start value after a scope closes, keeping only what it returns', async () => {
    const ctx = await context();
    const start = ctx.memory();
    const kept = ctx.scope(() => {
      const a = ctx.tensor([1, 2, 3], [3]);
      const b = activationForward(a, { kind: 'relu' });
      activationForward(b, { kind: 'softplus' });
      return { result: activationForward(b, { kind: 'relu' }) };
    });
    expect(ctx.memory().liveTensors).toBe(start.liveTensors + 1);
    expect(Array.from(await kept.result.read())).toEqual([1, 2, 3]);
    kept.result.dispose();
    const end = ctx.memory();
    expect(end.liveTensors).toBe(start.liveTensors);
    expect(end.liveBuffers).toBe(start.liveBuffers);
    expect(end.liveBytes).toBe(start.liveBytes);
    // Freed buffers went to the pool and are reused: no new buffer for the same size class.
    const pooled = end.pooledBuffers;
    const again = ctx.tensor([4, 5, 6], [3]);
    expect(ctx.memory().pooledBuffers).toBe(pooled - 1);
    again.dispose();
  });

  it('async scopes free their intermediates too, and views keep a buffer alive until the last one goes', async () => {
    const ctx = await context();
    const start = ctx.memory();
    const sum = await ctx.scope(async () => {
      const t = ctx.tensor([1, -2, 3, -4], [2, 2]);
      const v = t.reshape([4]);
      t.dispose();
      return Array.from(await activationForward(v, { kind: 'relu' }).read()).reduce((a, b) => a + b, 0);
    });
    expect(sum).toBe(4);
    expect(ctx.memory().liveBuffers).toBe(start.liveBuffers);
  });

  it('size classes: four per octave, at least 256 bytes', () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(1024)).toBe(1024);
    expect(sizeClass(1025)).toBe(1280);
    expect(sizeClass(1500)).toBe(1536);
  });

  it('compiles each variant once; a new batch size reuses the pipeline', async () => {
    const ctx = await context();
    activationForward(ctx.tensor([1], [1]), { kind: 'relu' });
    const n = ctx.pipelineCount;
    activationForward(ctx.tensor(new Float32Array(1000), [10, 100]), { kind: 'relu' });
    expect(ctx.pipelineCount).toBe(n);
    await ctx.sync();
  });

  it('rejects a disposed tensor, a tensor of another context and a bad shape before any GPU work', async () => {
    const ctx = await context();
    const other = await createContext();
    try {
      const foreign = other.tensor([1, 2], [2]);
      // An op runs on its operands' context: one operand of another context than the rest is refused.
      expect(() => add(ctx.tensor([3, 4], [2]), foreign)).toThrow(/add: argument 'b' is a tensor from another device\/context than argument 'a'/);
      expect(() => ctx.write(foreign, [5, 6])).toThrow(/write: argument 'tensor' is a tensor from another device\/context/);
      const t = ctx.tensor([1], [1]);
      t.dispose();
      expect(() => activationForward(t, { kind: 'relu' })).toThrow(/argument 'x' is a disposed tensor/);
      expect(() => ctx.tensor([1, 2, 3], [2])).toThrow(/tensor: argument 'data' expected 2 values for shape \[2\], got 3/);
      expect(() => ctx.zeros([2, 0])).toThrow(/argument 'shape' expected a non-empty array of positive integers, got \[2,0\]/);
      expect(() => ctx.zeros([1.5])).toThrow(/positive integers/);
    } finally {
      other.destroy();
    }
  });

  it('a WGSL compile error names the shader file and line (through includes)', async () => {
    const ctx = await createContext({
      shaderFiles: {
        'common.wgsl': 'fn helper() -> f32 { return 1.0; }\n',
        'broken.wgsl': [
          '//! include "common.wgsl"',
          'struct Params { n: u32 };',
          '@group(0) @binding(0) var<uniform> params: Params;',
          '@group(0) @binding(1) var<storage, read_write> y: array<f32>;',
          '@compute @workgroup_size(1) fn main() {',
          '  y[0] = helper() + undefined_name;',
          '}',
        ].join('\n'),
      },
    });
    try {
      const y = ctx.zeros([1]);
      ctx.dispatch({ shader: 'broken.wgsl', entry: 'main', uniforms: { n: 1 }, bindings: { y }, workgroups: [1] });
      await expect(y.read()).rejects.toThrow(/broken\.wgsl:6/);
    } finally {
      ctx.destroy();
    }
  });

  it('uniforms are packed from the reflected struct layout', () => {
    const reg = new ShaderRegistry({ 'u.wgsl': 'struct P { a: u32, b: f32, c: vec4<u32>, d: vec2<i32> };\n@group(0) @binding(0) var<uniform> params: P;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1) fn main() { y[0] = params.b + f32(params.a + params.c.w) + f32(params.d.y); }' });
    const entry = reg.get('u.wgsl').entries.get('main')!;
    const bytes = packUniforms(entry.uniform!, { a: 7, b: 0.5, c: [1, 2, 3, 4], d: [-1, -2] }, 'test');
    expect(bytes.byteLength).toBe(48);
    expect(new Uint32Array(bytes, 0, 1)[0]).toBe(7);
    expect(new Float32Array(bytes, 4, 1)[0]).toBe(0.5);
    expect(Array.from(new Uint32Array(bytes, 16, 4))).toEqual([1, 2, 3, 4]);
    expect(Array.from(new Int32Array(bytes, 32, 2))).toEqual([-1, -2]);
    // Members not given are zero; unknown names are errors.
    const partial = packUniforms(entry.uniform!, { b: 2.5, d: [3, 4] }, 'test');
    expect(new Uint32Array(partial, 0, 1)[0]).toBe(0);
    expect(new Float32Array(partial, 4, 1)[0]).toBe(2.5);
    expect(Array.from(new Uint32Array(partial, 16, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(new Int32Array(partial, 32, 2))).toEqual([3, 4]);
    expect(() => packUniforms(entry.uniform!, { a: 7, e: 1 }, 'test')).toThrow(/uniform value 'e' is not a member of params \(members: a, b, c, d\)/);
    expect(() => packUniforms(entry.uniform!, { a: 7, b: 0.5, c: [1, 2, 3], d: [0, 0] }, 'test')).toThrow(/'c' expected 4 values, got 3/);
  });
});

describe('buffer pool bound', () => {
  const relu = (v: Float32Array) => Array.from(v, (x) => Math.max(0, x));
  const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7 + seed) % 11) - 5);

  it('keeps at most maxPooledBytes, freeing the least recently used size classes first; freed buffers of recorded work stay valid', async () => {
    const cap = 32 * 1024;
    const ctx = await createContext({ maxPooledBytes: cap });
    try {
      expect(ctx.memory().poolLimitBytes).toBe(cap);
      const hot = 1000; // a size used in every round: its class stays recent, so it is never evicted
      let unbounded = 0; // what the pool would hold without the bound: every class ever freed
      const seen = new Set<number>();
      for (let i = 1; i <= 120; i++) {
        const n = 16 * i; // 64 B .. 7.5 KiB: 21 size classes
        const x = values(n, i);
        // a and b are freed when the scope ends, while the recorded relus still read them; if the
        // bound evicts (destroys) their buffers, the recorded work must be submitted first.
        const y = ctx.scope(() => activationForward(activationForward(ctx.tensor(x, [n]), { kind: 'relu' }), { kind: 'relu' }));
        const h = ctx.empty([hot]);
        h.dispose();
        if (i % 20 === 0) expect(Array.from(await y.read()), `round ${i}`).toEqual(relu(x));
        y.dispose();
        const cls = sizeClass(n * 4);
        if (!seen.has(cls)) unbounded += 3 * cls;
        seen.add(cls);
        const m = ctx.memory();
        expect(m.pooledBytes, `pooled bytes after round ${i}`).toBeLessThanOrEqual(cap);
      }
      expect(unbounded).toBeGreaterThan(4 * cap);
      // The hot class survived the evictions: taking a tensor of it re-uses a pooled buffer.
      const pooled = ctx.memory().pooledBuffers;
      const h = ctx.empty([hot]);
      expect(ctx.memory().pooledBuffers).toBe(pooled - 1);
      h.dispose();
      // trimPool with recorded work pending (its inputs already freed) submits that work first.
      const x = values(5000, 3);
      const y = ctx.scope(() => activationForward(ctx.tensor(x, [5000]), { kind: 'relu' }));
      ctx.trimPool();
      expect(ctx.memory().pooledBuffers).toBe(0);
      expect(Array.from(await y.read())).toEqual(relu(x));
    } finally {
      ctx.destroy();
    }
  });

  it('defaults to the larger of 256 MiB and the most bytes ever live; rejects a bad bound before opening a device', async () => {
    const ctx = await context();
    expect(ctx.memory().poolLimitBytes).toBeGreaterThanOrEqual(256 * 1024 * 1024);
    await expect(createContext({ maxPooledBytes: -1 })).rejects.toThrow(/createContext: argument 'maxPooledBytes' expected a number of bytes >= 0, got -1/);
  });
});
