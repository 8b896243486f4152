import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import { decodeCifar, parseCifar10, parseCifar100 } from '../../src/data/cifar.js';
import { loadCifar } from '../../src/data/node_files.js';
import { toFloatImages } from '../../src/data/preprocess.js';

const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-cifar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Pixel byte of image `id`, channel c, row y, column x: distinct enough to catch any shuffle of records or planes. */
function pixel(id: number, c: number, y: number, x: number): number {
  return (id * 31 + c * 101 + y * 7 + x * 3) % 256;
}

/** Records written the way the CIFAR binary files are laid out: label byte(s), then R, G, B planes of 32x32. */
function records(ids: number[], labelsOf: (id: number) => number[]): Uint8Array {
  const parts: number[] = [];
  for (const id of ids) {
    parts.push(...labelsOf(id));
    for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) parts.push(pixel(id, c, y, x));
  }
  return Uint8Array.from(parts);
}
const label10 = (id: number) => [id % 10];
const label100 = (id: number) => [id % 20, (id * 7) % 100]; // coarse, fine

function expectImages(images: Uint8Array, ids: number[]): void {
  expect(images.length).toBe(ids.length * 3072);
  ids.forEach((id, n) => {
    for (const [c, y, x] of [[0, 0, 0], [1, 5, 9], [2, 31, 31], [0, 17, 3]]) {
      expect(images[n * 3072 + c * 1024 + y * 32 + x]).toBe(pixel(id, c, y, x));
    }
  });
}

function badFile(fn: () => unknown, ...parts: string[]): void {
  try {
    fn();
  } catch (e) {
    expect((e as BayesError).code).toBe('BAD_FILE');
    for (const p of parts) expect((e as Error).message).toContain(p);
    return;
  }
  throw new Error('expected BAD_FILE');
}

describe('CIFAR-10 binary', () => {
  it('parses records of 1 label byte + 3072 CHW pixel bytes', () => {
    const r = parseCifar10(records([3, 4, 5], label10), 'b.bin');
    expect(r.count).toBe(3);
    expect(Array.from(r.labels)).toEqual([3, 4, 5]);
    expectImages(r.images, [3, 4, 5]);
  });

  it('loads data_batch_1..5 in order from a cifar-10-batches-bin folder; limit stops early; test_batch', async () => {
    const folder = join(dir, 'c10', 'cifar-10-batches-bin');
    mkdirSync(folder, { recursive: true });
    for (let b = 1; b <= 5; b++) writeFileSync(join(folder, `data_batch_${b}.bin`), records([2 * b, 2 * b + 1], label10));
    writeFileSync(join(folder, 'test_batch.bin.gz'), gzipSync(records([90, 91, 92], label10)));
    const train = await loadCifar({ kind: 'cifar-10', split: 'train', dataDir: join(dir, 'c10') });
    const ids = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    expect({ count: train.count, channels: train.channels, height: train.height, width: train.width, classes: train.classes })
      .toEqual({ count: 10, channels: 3, height: 32, width: 32, classes: 10 });
    expect(Array.from(train.labels)).toEqual(ids.map((i) => i % 10));
    expectImages(train.images, ids);

    // With limit 3 only batches 1 and 2 are needed: deleting batch 5 must not matter.
    rmSync(join(folder, 'data_batch_5.bin'));
    const few = await loadCifar({ kind: 'cifar-10', split: 'train', dataDir: folder, limit: 3 });
    expect(Array.from(few.labels)).toEqual([2, 3, 4]);
    expectImages(few.images, [2, 3, 4]);
    const msg = await loadCifar({ kind: 'cifar-10', split: 'train', dataDir: folder }).catch((e: BayesError) => `${e.code}: ${e.message}`);
    expect(msg).toContain('DATA_NOT_FOUND');
    expect(msg).toContain('data_batch_5.bin');

    const test = await loadCifar({ kind: 'cifar-10', split: 'test', dataDir: folder });
    expect(Array.from(test.labels)).toEqual([0, 1, 2]);
    expectImages(test.images, [90, 91, 92]);
  });

  it('converts to float NCHW in [0, 1] (x / 255, planes kept)', async () => {
    const set = await decodeCifar([records([1, 2], label10)], { kind: 'cifar-10' });
    const x = toFloatImages(set.images, set.count, 3, 32, 32);
    expect(x.length).toBe(2 * 3 * 32 * 32);
    expect(x[1 * 3072 + 2 * 1024 + 4 * 32 + 6]).toBe(Math.fround(pixel(2, 2, 4, 6) / 255));
  });
});

describe('CIFAR-100 binary', () => {
  it('parses records of coarse + fine label bytes + 3072 pixels; label picks fine (100) or coarse (20)', () => {
    const bytes = records([1, 2, 3], label100);
    const fine = parseCifar100(bytes, 'fine', 'train.bin');
    expect(Array.from(fine.labels)).toEqual([7, 14, 21]);
    expectImages(fine.images, [1, 2, 3]);
    expect(Array.from(parseCifar100(bytes, 'coarse').labels)).toEqual([1, 2, 3]);
  });

  it('loads train.bin / test.bin from a cifar-100-binary folder with 100 or 20 classes', async () => {
    const folder = join(dir, 'c100', 'cifar-100-binary');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'train.bin'), records([5, 6], label100));
    writeFileSync(join(folder, 'test.bin'), records([7], label100));
    const fine = await loadCifar({ kind: 'cifar-100', split: 'train', dataDir: join(dir, 'c100') });
    expect(fine.classes).toBe(100);
    expect(Array.from(fine.labels)).toEqual([35, 42]);
    const coarse = await loadCifar({ kind: 'cifar-100', split: 'test', label: 'coarse', dataDir: join(dir, 'c100') });
    expect(coarse.classes).toBe(20);
    expect(Array.from(coarse.labels)).toEqual([7]);
    expectImages(coarse.images, [7]);
  });
});

describe('CIFAR errors', () => {
  it('wrong sizes name the file, the record size and the likely mix-up', () => {
    badFile(() => parseCifar10(new Uint8Array(3073 * 2 + 5), 'data_batch_1.bin'), 'data_batch_1.bin', 'not a whole number of CIFAR-10 records of 3073 bytes');
    badFile(() => parseCifar10(records([1, 2], label100), 'x.bin'), 'x.bin', 'fits CIFAR-100 records of 3074 bytes');
    badFile(() => parseCifar100(records([1, 2], label10), 'fine', 'train.bin'), 'train.bin', 'records of 3074 bytes', 'fits CIFAR-10');
    badFile(() => parseCifar10(new Uint8Array(0), 'empty.bin'), 'empty.bin', 'size 0 bytes');
  });

  it('labels out of range name the file and the record', () => {
    badFile(() => parseCifar10(records([1, 2], () => [10]), 'b.bin'), 'b.bin', 'record 0 has label 10', '0..9');
    badFile(() => parseCifar100(records([1], () => [20, 5]), 'coarse', 't.bin'), 't.bin', 'label 20', '0..19');
    badFile(() => parseCifar100(records([1], () => [2, 100]), 'fine', 't.bin'), 'label 100', '0..99');
  });

  it('missing files: DATA_NOT_FOUND naming the files, folders and the download URL', async () => {
    const e = await loadCifar({ kind: 'cifar-100', split: 'train', dataDir: join(dir, 'nothing') }).catch((err: BayesError) => err);
    expect((e as BayesError).code).toBe('DATA_NOT_FOUND');
    const msg = (e as Error).message;
    expect(msg).toContain('train.bin');
    expect(msg).toContain(join(dir, 'nothing', 'cifar-100-binary'));
    expect(msg).toContain('https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz');
  });

  it('bad options are rejected', async () => {
    await expect(loadCifar({ kind: 'cifar-20' as 'cifar-10', split: 'train' })).rejects.toThrow(/argument 'kind' expected one of 'cifar-10' \| 'cifar-100'/);
    await expect(loadCifar({ kind: 'cifar-100', split: 'train', label: 'medium' as 'fine' })).rejects.toThrow(/argument 'label'/);
    await expect(decodeCifar([], { kind: 'cifar-10' })).rejects.toThrow(/argument 'files'/);
  });
});
