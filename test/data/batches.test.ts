import { describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import { batchCount, batches, permutation, shuffleInPlace, splitTrainValid } from '../../src/data/batches.js';
import { Rng } from '../../src/data/random.js';
import { toFloatImages } from '../../src/data/preprocess.js';

describe('Rng (xoshiro128** seeded by SplitMix64)', () => {
  it('matches the reference C code: raw state {1, 2, 3, 4} and seed 42', () => {
    // Outputs of xoshiro128starstar.c (Blackman & Vigna) compiled with gcc; seed 42 through splitmix64.c.
    const raw = Rng.fromState([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => raw.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
    const seeded = new Rng(42);
    expect(Array.from({ length: 6 }, () => seeded.nextUint32())).toEqual([1776835114, 4165204688, 17111135, 2317295270, 2792088233, 2554630222]);
  });

  it('nextInt is uniform: 60000 draws of 6 values, chi-square well below the 0.1% critical value', () => {
    const rng = new Rng(3);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[rng.nextInt(6)]++;
    const chi2 = counts.reduce((s, c) => s + (c - 10000) ** 2 / 10000, 0);
    expect(chi2).toBeLessThan(20.5); // chi-square, 5 degrees of freedom, p = 0.001
  });

  it('rejects seeds that are not safe non-negative integers', () => {
    expect(() => new Rng(-1)).toThrow(BayesError);
    expect(() => new Rng(0.5)).toThrow(/Rng: argument 'seed'/);
    expect(() => new Rng(2 ** 60)).toThrow(/2\^53/);
  });
});

describe('shuffling and the train/validation split', () => {
  it('permutation is a valid permutation, reproducible per seed, different across seeds', () => {
    const a = permutation(1000, 7);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(permutation(1000, 7))).toEqual(Array.from(a));
    expect(Array.from(permutation(1000, 8))).not.toEqual(Array.from(a));
    expect(permutation(0, 1).length).toBe(0);
    expect(Array.from(permutation(1, 1))).toEqual([0]);
  });

  it('Fisher-Yates gives every ordering of 3 items about equally often', () => {
    const rng = new Rng(11);
    const seen = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const key = Array.from(shuffleInPlace(Uint32Array.from([0, 1, 2]), rng)).join('');
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect(seen.size).toBe(6);
    for (const c of seen.values()) expect(Math.abs(c - 1000)).toBeLessThan(150); // ~4.7 standard deviations
  });

  it('splitTrainValid: floor(fraction * count) validation indices, disjoint, together all of them', () => {
    const { train, valid } = splitTrainValid(60000, 0.2, 1);
    expect(valid.length).toBe(12000);
    expect(train.length).toBe(48000);
    const all = new Uint8Array(60000);
    for (const i of train) all[i]++;
    for (const i of valid) all[i]++;
    expect(all.every((v) => v === 1)).toBe(true);
    expect(Array.from(splitTrainValid(60000, 0.2, 1).valid.subarray(0, 5))).toEqual(Array.from(valid.subarray(0, 5)));
    const small = splitTrainValid(10, 0.25, 2);
    expect([small.train.length, small.valid.length]).toEqual([8, 2]);
    expect(splitTrainValid(10, 0, 2).valid.length).toBe(0);
    expect(() => splitTrainValid(10, 1, 2)).toThrow(/argument 'validFraction' expected a number in \[0, 1\), got 1/);
  });
});

describe('batches', () => {
  // 10 images of 1 x 2 x 3 bytes whose values encode their index, labels 0..9 reversed.
  const count = 10;
  const images = Uint8Array.from({ length: count * 6 }, (_, i) => Math.floor(i / 6) * 10 + (i % 6));
  const source = { images, labels: Uint8Array.from({ length: count }, (_, i) => 9 - i), count, channels: 1, height: 2, width: 3 };

  it('covers all samples in order with a smaller last batch; dropLast drops it', () => {
    const all = [...batches(source, { batchSize: 4 })];
    expect(all.map((b) => b.size)).toEqual([4, 4, 2]);
    expect(all[2].shape).toEqual([2, 1, 2, 3]);
    expect(Array.from(all[2].labels)).toEqual([1, 0]);
    expect(Array.from(all[2].indices)).toEqual([8, 9]);
    expect(Array.from(all[2].x)).toEqual(Array.from(images.subarray(48), (v) => Math.fround(v / 255)));
    expect(all[0].labels).toBeInstanceOf(Uint32Array);
    expect([...batches(source, { batchSize: 4, dropLast: true })].map((b) => b.size)).toEqual([4, 4]);
    expect(batchCount(10, 4)).toBe(3);
    expect(batchCount(10, 4, true)).toBe(2);
    expect([...batches(source, { batchSize: 20, dropLast: true })].length).toBe(0);
  });

  it('shuffles a subset reproducibly; images and labels stay paired', () => {
    const indices = [1, 3, 5, 7, 9];
    const run = () => [...batches(source, { batchSize: 2, indices, shuffle: true, seed: 4 })];
    const a = run();
    const order = a.flatMap((b) => Array.from(b.indices));
    expect([...order].sort((x, y) => x - y)).toEqual(indices);
    expect(run().flatMap((b) => Array.from(b.indices))).toEqual(order);
    for (const b of a) {
      for (let i = 0; i < b.size; i++) {
        expect(b.labels[i]).toBe(9 - b.indices[i]);
        expect(b.x[i * 6]).toBe(Math.fround((b.indices[i] * 10) / 255));
      }
    }
  });

  it('resizes and augments per batch, matching toFloatImages', () => {
    const [b] = [...batches(source, { batchSize: 3, resizeTo: [4, 5] })];
    expect(b.shape).toEqual([3, 1, 4, 5]);
    expect(Array.from(b.x)).toEqual(Array.from(toFloatImages(images.subarray(0, 18), 3, 1, 2, 3, { resizeTo: [4, 5] })));
    const aug = (seed: number) => [...batches(source, { batchSize: 5, augment: { rotationDegrees: 10, horizontalFlip: true, seed } })].map((x) => Array.from(x.x));
    expect(aug(1)).toEqual(aug(1));
    expect(aug(1)).not.toEqual(aug(2));
  });

  it('rejects a batch size of 0, negative or fractional, bad indices and mismatched sources before the first batch', () => {
    expect(() => batches(source, { batchSize: 0 })).toThrow(/batches: argument 'batchSize' expected an integer >= 1, got 0/);
    expect(() => batches(source, { batchSize: -3 })).toThrow(/got -3/);
    expect(() => batches(source, { batchSize: 2.5 })).toThrow(/got 2.5/);
    expect(() => batches(source, { batchSize: 2, indices: [0, 10] })).toThrow(/argument 'indices\[1\]' expected an integer in \[0, 10\), got 10/);
    expect(() => batches(source, { batchSize: 2, shuffle: true })).toThrow(/argument 'seed' expected a seed when shuffle is true/);
    expect(() => batches({ ...source, count: 11 }, { batchSize: 2 })).toThrow(/'source.images' expected 66 values/);
    expect(() => batches(source, { batchSize: 2, augment: { rotationDegrees: Infinity, seed: 1 } })).toThrow(/'rotationDegrees'/);
  });
});
