/**
 * MNIST and Fashion-MNIST: 28x28 grey images in IDX files, 10 classes.
 *
 * decodeMnist works anywhere (browsers included) on bytes the caller fetched;
 * loadMnist (node_files.ts) reads the standard files from a directory in Node.
 * Nothing is ever downloaded.
 */
import { BayesError, checkInt } from '../errors.js';
import type { ByteSource } from './bytes.js';
import { decodeIdx } from './idx.js';
import type { ImageSet, Split } from './image_set.js';

export type MnistKind = 'mnist' | 'fashion-mnist';

/** Where Debian's `dataset-fashion-mnist` installs the gzipped IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';

/** The standard file names of a split (without `.gz`). */
export function mnistFileNames(split: Split): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  return { images: `${prefix}-images-idx3-ubyte`, labels: `${prefix}-labels-idx1-ubyte` };
}

/**
 * Decodes an images file and a labels file (IDX, plain or gzip). `names` are used
 * in error messages. Checks that the images are ubyte [N, H, W], the labels ubyte
 * [N] with the same N, and every label < 10.
 */
export async function decodeMnist(
  images: ByteSource,
  labels: ByteSource,
  options: { limit?: number; names?: { images: string; labels: string } } = {},
): Promise<ImageSet> {
  const op = 'decodeMnist';
  const names = options.names ?? { images: 'images', labels: 'labels' };
  const limit = options.limit === undefined ? Infinity : checkInt(op, 'limit', options.limit, 0);
  const img = await decodeIdx(images, names.images);
  const lab = await decodeIdx(labels, names.labels);
  if (img.dtype !== 'u8' || img.shape.length !== 3) {
    throw new BayesError('BAD_FILE', `${names.images}: expected ubyte images of shape [N, height, width], got ${img.dtype} [${img.shape.join(', ')}]`);
  }
  if (lab.dtype !== 'u8' || lab.shape.length !== 1) {
    throw new BayesError('BAD_FILE', `${names.labels}: expected ubyte labels of shape [N], got ${lab.dtype} [${lab.shape.join(', ')}]`);
  }
  const [n, height, width] = img.shape;
  if (lab.shape[0] !== n) {
    throw new BayesError('BAD_FILE', `${names.labels}: has ${lab.shape[0]} labels but ${names.images} has ${n} images`);
  }
  const count = Math.min(n, limit);
  const labelBytes = (lab.data as Uint8Array).subarray(0, count);
  for (let i = 0; i < count; i++) {
    if (labelBytes[i] >= 10) throw new BayesError('BAD_FILE', `${names.labels}: label ${labelBytes[i]} at index ${i} is not a class 0..9`);
  }
  // A limited set is copied so that it does not keep the whole file alive.
  const imageBytes = (img.data as Uint8Array).subarray(0, count * height * width);
  return {
    images: count < n ? imageBytes.slice() : imageBytes,
    labels: count < n ? labelBytes.slice() : labelBytes,
    count, channels: 1, height, width, classes: 10,
  };
}
