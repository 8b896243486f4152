/**
 * Shuffling, the train/validation split and mini-batches.
 *
 * All randomness comes from the seeded xoshiro128** Rng (./random.ts), so the
 * same seed gives the same split, the same batch order and the same
 * augmentations on every run and every platform.
 */
import { BayesError, argumentError, checkInt, checkNumber, pair } from '../errors.js';
import { type AugmentOptions, augmentImages, checkAugmentOptions, toFloatImages } from './preprocess.js';
import { type Rng, toRng } from './random.js';

/** Shuffles `values` in place by Fisher–Yates (Knuth, TAOCP vol. 2, Algorithm P), every ordering equally likely. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(values: T, random: Rng | number): T {
  const rng = toRng('shuffleInPlace', random);
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = values[i];
    values[i] = values[j];
    values[j] = t;
  }
  return values;
}

/** A random permutation of 0..count-1. */
export function permutation(count: number, random: Rng | number): Uint32Array {
  checkInt('permutation', 'count', count, 0);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = i;
  return shuffleInPlace(out, random);
}

/**
 * Splits 0..count-1 into a training and a validation subset as the seed's
 * getDataloader does: shuffle all indices, the first floor(validFraction * count)
 * become the validation set, the rest the training set.
 */
export function splitTrainValid(count: number, validFraction = 0.2, seed = 0): { train: Uint32Array; valid: Uint32Array } {
  const op = 'splitTrainValid';
  checkInt(op, 'count', count, 0);
  checkNumber(op, 'validFraction', validFraction, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  const perm = permutation(count, toRng(op, seed));
  const split = Math.floor(validFraction * count);
  return { valid: perm.slice(0, split), train: perm.slice(split) };
}

/** What batches() draws from: images (bytes or floats in [0, 1], NCHW) and their labels. */
export interface BatchSource {
  images: Uint8Array | Float32Array;
  labels: ArrayLike<number>;
  count: number;
  channels: number;
  height: number;
  width: number;
}

export interface BatchOptions {
  batchSize: number;
  /** The samples to use and their order (e.g. a split from splitTrainValid). Default: all, in order. */
  indices?: ArrayLike<number>;
  /** Shuffle `indices` before batching, with `seed` (pass a new seed per epoch for a new order). */
  shuffle?: boolean;
  seed?: number;
  /** Drop a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Resize each image to n x n or [height, width] while batching (bilinear, see toFloatImages). */
  resizeTo?: number | readonly [number, number];
  /** Random augmentation per batch, drawn from its own Rng started from `augment.seed`. */
  augment?: AugmentOptions & { seed: number };
}

export interface Batch {
  /** [size, channels, height, width], float32 in [0, 1]. */
  x: Float32Array;
  labels: Uint32Array;
  size: number;
  shape: [number, number, number, number];
  /** The sample indices in this batch (into the source). */
  indices: Uint32Array;
}

/** Number of batches of `count` samples: ceil, or floor when dropLast. */
export function batchCount(count: number, batchSize: number, dropLast = false): number {
  checkInt('batchCount', 'count', count, 0);
  checkInt('batchCount', 'batchSize', batchSize, 1);
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * Iterates mini-batches of a source. Every option is checked before the first
 * batch is produced (the checks run when batches() is called, not on first next()).
 */
export function batches(source: BatchSource, options: BatchOptions): IterableIterator<Batch> {
  const op = 'batches';
  if (typeof options !== 'object' || options === null) throw argumentError(op, 'options', 'an object { batchSize, ... }', options);
  const { count, channels, height, width } = source;
  checkInt(op, 'source.count', count, 0);
  checkInt(op, 'source.channels', channels, 1);
  checkInt(op, 'source.height', height, 1);
  checkInt(op, 'source.width', width, 1);
  const batchSize = checkInt(op, 'batchSize', options.batchSize, 1);
  if (!(source.images instanceof Uint8Array || source.images instanceof Float32Array)) {
    throw argumentError(op, 'source.images', 'a Uint8Array or Float32Array', source.images);
  }
  const imageSize = channels * height * width;
  if (source.images.length !== count * imageSize) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'source.images' expected ${count * imageSize} values (count ${count} x ${channels} x ${height} x ${width}), got ${source.images.length}`);
  }
  if (source.labels?.length !== count) throw argumentError(op, 'source.labels', `${count} labels (source.count)`, source.labels?.length);
  const [outH, outW] = options.resizeTo === undefined ? [height, width] : pair(op, 'resizeTo', options.resizeTo, 0, 1);

  let order: Uint32Array;
  if (options.indices === undefined) {
    order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
  } else {
    order = Uint32Array.from(options.indices);
    for (let i = 0; i < order.length; i++) {
      const v = options.indices[i];
      if (!Number.isInteger(v) || v < 0 || v >= count) throw argumentError(op, `indices[${i}]`, `an integer in [0, ${count})`, v);
    }
  }
  if (options.shuffle) {
    if (options.seed === undefined) throw argumentError(op, 'seed', 'a seed when shuffle is true', options.seed);
    shuffleInPlace(order, toRng(op, options.seed));
  } else if (options.seed !== undefined) {
    toRng(op, options.seed); // validate even when unused
  }
  const augment = options.augment;
  if (augment !== undefined) checkAugmentOptions(op, augment);
  const augmentRng = augment ? toRng(op, augment.seed) : undefined;
  const total = batchCount(order.length, batchSize, options.dropLast ?? false);
  return generate();

  function* generate(): IterableIterator<Batch> {
    const { images, labels } = source;
    for (let b = 0; b < total; b++) {
      const indices = order.slice(b * batchSize, Math.min((b + 1) * batchSize, order.length));
      const size = indices.length;
      // Gather the batch's images in their source type, then convert (scale, resize) in one pass.
      const gathered = images instanceof Uint8Array ? new Uint8Array(size * imageSize) : new Float32Array(size * imageSize);
      const batchLabels = new Uint32Array(size);
      for (let i = 0; i < size; i++) {
        const s = indices[i];
        gathered.set(images.subarray(s * imageSize, (s + 1) * imageSize), i * imageSize);
        batchLabels[i] = labels[s];
      }
      let x = toFloatImages(gathered, size, channels, height, width, { resizeTo: [outH, outW] });
      if (augment && augmentRng) x = augmentImages(x, size, channels, outH, outW, augment, augmentRng);
      yield { x, labels: batchLabels, size, shape: [size, channels, outH, outW], indices };
    }
  }
}
