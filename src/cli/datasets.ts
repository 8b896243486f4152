/**
 * Named data sets for the CLI and the trainer: raw bytes from the readers in
 * data/, turned into float images as the seed prepares them (grey 28x28 images
 * resized to 32x32 bilinear, values in [0, 1]).
 */
import { checkOneOf } from '../errors.js';
import { loadCifar, loadMnist } from '../data/node_files.js';
import { toFloatImages } from '../data/preprocess.js';
import type { ImageSet, Split } from '../data/image_set.js';
import type { FloatDataset } from '../train/fit.js';

export const DATASETS = ['mnist', 'fashion-mnist', 'cifar10', 'cifar100'] as const;
export type DatasetName = (typeof DATASETS)[number];

export async function loadImageSet(name: string, split: Split, o: { dataDir?: string; limit?: number } = {}): Promise<ImageSet> {
  const dataset = checkOneOf('loadDataset', 'dataset', name, DATASETS);
  if (dataset === 'mnist' || dataset === 'fashion-mnist') return loadMnist({ split, kind: dataset, dataDir: o.dataDir, limit: o.limit });
  return loadCifar({ kind: dataset === 'cifar10' ? 'cifar-10' : 'cifar-100', split, dataDir: o.dataDir, limit: o.limit });
}

/** Float NCHW images in [0, 1], resized to `imageSize` (32 as in the seed). */
export function toFloatDataset(set: ImageSet, imageSize = 32): FloatDataset {
  const x = toFloatImages(set.images, set.count, set.channels, set.height, set.width, { resizeTo: imageSize });
  return { x, labels: set.labels, count: set.count, shape: [set.channels, imageSize, imageSize], classes: set.classes };
}

export async function loadDataset(name: string, split: Split, o: { dataDir?: string; limit?: number; imageSize?: number } = {}): Promise<FloatDataset> {
  return toFloatDataset(await loadImageSet(name, split, o), o.imageSize ?? 32);
}
