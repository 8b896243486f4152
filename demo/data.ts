/**
 * The files the demo ships, fetched relative to the bundles in demo/build/
 * (the page and the worker both live there, so '../' is demo/):
 *   data/*.gz                        small MNIST and Fashion-MNIST subsets as gzipped IDX
 *                                    (written by tools/make_data.mjs)
 *   model/lenet_lrt.safetensors      the pretrained BBB-LRT LeNet (trained by the CLI)
 * Images become floats in [0, 1] resized 28 -> 32 exactly as the CLI prepares
 * its training data (src/cli/datasets.ts), so the shipped model sees the same inputs.
 */
import { type FloatDataset, decodeMnist, toFloatImages } from '../src/index.js';

export const DEMO_ROOT = new URL('../', import.meta.url);
export const MODEL_URL = new URL('model/lenet_lrt.safetensors', DEMO_ROOT);

export const DATA_SETS = {
  'mnist-train': 'mnist-train-2000',
  'mnist-test': 'mnist-test-1000',
  'fashion-test': 'fashion-test-500',
} as const;
export type DataSetName = keyof typeof DATA_SETS;

export const DIGIT_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
export const FASHION_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

export const IMAGE_SIZE = 32;

export async function fetchBytes(url: URL): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** One shipped subset as 32x32 float images. */
export async function loadDataSet(name: DataSetName): Promise<FloatDataset> {
  const stem = DATA_SETS[name];
  const files = { images: `${stem}-images-idx3-ubyte.gz`, labels: `${stem}-labels-idx1-ubyte.gz` };
  const [images, labels] = await Promise.all([fetchBytes(new URL(`data/${files.images}`, DEMO_ROOT)), fetchBytes(new URL(`data/${files.labels}`, DEMO_ROOT))]);
  const set = await decodeMnist(images, labels, { names: files });
  const x = toFloatImages(set.images, set.count, set.channels, set.height, set.width, { resizeTo: IMAGE_SIZE });
  return { x, labels: set.labels, count: set.count, shape: [set.channels, IMAGE_SIZE, IMAGE_SIZE], classes: set.classes };
}

/** The first `count` images of a data set (a view, no copy). */
export function firstImages(data: FloatDataset, count: number): FloatDataset {
  const n = Math.min(count, data.count);
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  return { ...data, x: data.x.subarray(0, n * per), labels: data.labels.subarray(0, n), count: n };
}
