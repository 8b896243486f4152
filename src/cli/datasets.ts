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
import type { Preprocessing } from '../nn/sequential.js';

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

const CIFAR100_FINE = (
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle caterpillar cattle ' +
  'chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard ' +
  'lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree ' +
  'plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider ' +
  'squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm'
).split(' ');

/** The class names of each data set, by label (CIFAR-100: its 100 fine labels, as in its 'meta' file). */
export const CLASS_NAMES: Readonly<Record<DatasetName, readonly string[]>> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  cifar10: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
  cifar100: CIFAR100_FINE,
};

/**
 * The preprocessing that turns an image file into what `toFloatDataset` gave the model in training,
 * saved with the model so that `bayesgpu predict` (and model.predict on images) applies the same:
 * values / 255 in [0, 1] with no normalization (mean 0, std 1 per channel), resized to the input
 * size. The resize is 'area': when enlarging (MNIST's 28 -> 32) it is the half-pixel bilinear of
 * toFloatImages, and when shrinking a larger photo it averages each output pixel's footprint, which
 * bilinear, sampling 4 source pixels, would alias (a thin stroke could vanish).
 */
export function trainingPreprocessing(channels: number): Preprocessing {
  return { resize: 'area', mean: new Array(channels).fill(0), std: new Array(channels).fill(1) };
}

/** The rows `indices` of a data set, as a data set of their own. */
export function subset(data: FloatDataset, indices: ArrayLike<number>): FloatDataset {
  const per = data.shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(indices.length * per);
  const labels = new Uint32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    x.set(data.x.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = data.labels[j];
  }
  return { ...data, x, labels, count: indices.length };
}
