import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, randomArray } from '../helpers.js';
import { BBBLeNet, LeNet, Model, buildModel, resolveConfig } from '../../src/nn/models.js';
import { loadCheckpoint, loadModel, loadOptimizer, loadStateDict, parameterCount, saveCheckpoint, saveModel } from '../../src/io/checkpoint.js';
import { loadModelFile, saveModelFile } from '../../src/io/checkpoint_files.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { Adam } from '../../src/train/adam.js';
import { lossAndGradients } from '../../src/train/step.js';
import { predictLogProbs } from '../../src/train/step.js';
import type { Sequential } from '../../src/nn/sequential.js';

/** A minimal safetensors writer, independent of the library's: F32 tensors in the given order, no metadata. */
function writeSafetensorsByHand(tensors: [string, number[], Float32Array][]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const [, , data] of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

async function params(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

describe('checkpoints', () => {
  it('round trip is bitwise exact, with config, priors and Adam state', async () => {
    const ctx = await context();
    const model = BBBLeNet(ctx, { layerType: 'bbb', priors: { prior_sigma: 0.2 }, seed: 3 });
    const adam = new Adam(model, { lr: 2e-3 });
    const x = ctx.tensor(randomArray(2 * 1024, 1, 0, 1), [2, 1, 32, 32]);
    const y = ctx.tensor([1, 7], [2], 'u32');
    lossAndGradients(model, x, y, { samples: 2, beta: 0.1, trainSize: 100, seed: 1, step: 0 });
    adam.update();
    const bytes = await saveModel(model, { optimizer: adam });
    const loaded = loadModel(ctx, bytes) as Model;
    expect(loaded).toBeInstanceOf(Model);
    expect(loaded.config).toEqual(model.config);
    const a = await params(model);
    const b = await params(loaded);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, v] of a) expect(Buffer.from(b.get(name)!.buffer).equals(Buffer.from(v.buffer)), name).toBe(true);
    const restored = loadOptimizer(loaded, bytes)!;
    expect(restored.step).toBe(1);
    expect(restored.lr).toBe(2e-3);
    for (const [name, s] of adam.state) {
      const r = restored.state.get(name)!;
      expect(Buffer.from((await r.m.read()).buffer).equals(Buffer.from((await s.m.read()).buffer)), `m ${name}`).toBe(true);
      expect(Buffer.from((await r.v.read()).buffer).equals(Buffer.from((await s.v.read()).buffer)), `v ${name}`).toBe(true);
    }
    model.dispose();
    loaded.dispose();
  });

  it('a file from a hand-written writer with the seed state_dict names (no metadata) predicts like the same weights set through the API', async () => {
    const ctx = await context();
    const reference = BBBLeNet(ctx, { seed: 9 });
    const tensors: [string, number[], Float32Array][] = [];
    let seed = 50;
    for (const [name, p] of reference.namedParameters()) {
      const data = Float32Array.from(randomArray(p.value.size, seed++, -0.2, 0.2), (v) => (name.endsWith('rho') ? v - 4 : v));
      tensors.push([name, [...p.value.shape], data]);
      ctx.write(p.value, data);
    }
    // The seed's files list names alphabetically; the loader must not depend on order.
    tensors.reverse();
    const bytes = writeSafetensorsByHand(tensors);
    // Through the internal loader (the architecture named in its options) and into a model built by hand (loadStateDict).
    const loaded = loadCheckpoint(ctx, bytes, { model: 'lenet', layerType: 'lrt' });
    expect(loaded.model.config.inChannels).toBe(1);
    expect(loaded.model.config.classes).toBe(10);
    const built = BBBLeNet(ctx, { layerType: 'lrt' });
    loadStateDict(built, bytes);
    const x = ctx.tensor(randomArray(3 * 1024, 2, 0, 1), [3, 1, 32, 32]);
    for (const sample of [false, true]) {
      const o = { samples: 4, sample, seed: 5, step: 1 };
      const want = await predictLogProbs(reference, x, o).read();
      const got = await predictLogProbs(loaded.model, x, o).read();
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(Array.from(await predictLogProbs(built, x, o).read())).toEqual(Array.from(want));
    }
    reference.dispose();
    loaded.model.dispose();
    built.dispose();
  });

  it('rejects a missing, extra or wrongly shaped tensor by name, and a truncated file, changing nothing', async () => {
    const ctx = await context();
    const model = LeNet(ctx, { seed: 1 });
    const good = decodeSafetensors(await saveCheckpoint(model));
    const asMap = (drop?: string, extra?: string, reshape?: string) => {
      const m = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const [name, t] of good.tensors) {
        if (name === drop) continue;
        const shape = name === reshape ? [t.shape[0], t.data.length / t.shape[0]] : [...t.shape];
        m.set(name, { shape, data: t.data });
      }
      if (extra) m.set(extra, { shape: [1], data: new Float32Array(1) });
      return m;
    };
    const before = await params(model);
    // Corrupt values so that a partial write would be visible.
    const poisoned = asMap(undefined, 'fc9.weight');
    for (const t of poisoned.values()) t.data = new Float32Array(t.data.length).fill(42);
    expect(() => loadStateDict(model, poisoned)).toThrow(/tensor 'fc9.weight' in the file is not a parameter/);
    expect(() => loadStateDict(model, asMap('conv2.bias'))).toThrow(/tensor 'conv2.bias' is missing from the file \(the model expects shape \[16\]\)/);
    expect(() => loadStateDict(model, asMap(undefined, undefined, 'conv1.weight'))).toThrow(/tensor 'conv1.weight' has shape \[6, 25\], the model expects \[6, 1, 5, 5\]/);
    const after = await params(model);
    for (const [name, v] of before) expect(Array.from(after.get(name)!), name).toEqual(Array.from(v));
    const bytes = await saveModel(model);
    expect(() => loadModel(ctx, bytes.subarray(0, bytes.length - 10))).toThrow(/BAD_FILE|truncated|out of range|beyond/i);
    expect(() => loadModel(ctx, writeSafetensorsByHand([['conv1.weight', [6, 1, 5, 5], new Float32Array(150)]]))).toThrow(/loadModel: the file holds no architecture .*loadStateDict\(model, bytes\)/);
    expect(() => loadCheckpoint(ctx, writeSafetensorsByHand([['conv1.weight', [6, 1, 5, 5], new Float32Array(150)]]))).toThrow(/argument 'model' must name the architecture/);
    model.dispose();
  });

  it('files are written atomically and load back', async () => {
    const ctx = await context();
    const model = BBBLeNet(ctx, { seed: 2 });
    const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-ckpt-'));
    const path = join(dir, 'model.safetensors');
    await saveModelFile(path, model);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    const loaded = { model: await loadModelFile(ctx, path) };
    const a = await params(model);
    const b = await params(loaded.model);
    for (const [name, v] of a) expect(Array.from(b.get(name)!), name).toEqual(Array.from(v));
    await expect(loadModelFile(ctx, join(dir, 'missing.safetensors'))).rejects.toThrow(/missing.safetensors/);
    model.dispose();
    loaded.model.dispose();
  });

  it('parameterCount, which bounds a model before it is built, matches the six built models', async () => {
    const ctx = await context();
    const configs: [string, boolean, { inChannels?: number; classes?: number; imageSize?: number }][] = [
      ['lenet', true, {}], ['lenet', false, { inChannels: 3, classes: 7, imageSize: 20 }], ['lenet', true, { imageSize: 16, classes: 2 }],
      ['alexnet', true, { inChannels: 3 }], ['alexnet', false, { imageSize: 40, classes: 3 }],
      ['3conv3fc', true, {}], ['3conv3fc', false, { inChannels: 3, imageSize: 24, classes: 5 }],
    ];
    for (const [name, bayesian, o] of configs) {
      const config = resolveConfig('test', name, bayesian, o);
      const model = buildModel(ctx, config);
      let built = 0;
      for (const p of model.namedParameters().values()) built += p.value.size;
      expect(parameterCount(config), JSON.stringify(config)).toBe(BigInt(built));
      model.dispose();
    }
    // Too small for the architecture: null, and building fails too.
    expect(parameterCount(resolveConfig('test', 'lenet', false, { imageSize: 15 }))).toBeNull();
    expect(parameterCount(resolveConfig('test', 'alexnet', false, { imageSize: 16 }))).toBeNull();
    expect(parameterCount(resolveConfig('test', '3conv3fc', true, { imageSize: 16 }))).toBeNull();
    expect(parameterCount(resolveConfig('test', 'lenet', false, { imageSize: 16 }))).not.toBeNull();
  });
});
