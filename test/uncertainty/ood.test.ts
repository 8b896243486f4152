import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, bundleForBrowser } from '../../scripts/build.mjs';
import { loadDataset } from '../../src/cli/datasets.js';
import { toFloatImages } from '../../src/data/preprocess.js';
import { decodeIdxImages, decodePngImages, decodePngPixels, prepareOodImages } from '../../src/uncertainty/ood.js';
import { loadNamedOodSet, loadOodSet } from '../../src/uncertainty/ood_files.js';
import { rng } from '../helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-ood-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** IDX bytes of u8 images [n, h, w] (magic 00 00 08 03, big-endian dimensions). */
function idxImages(data: Uint8Array, n: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000803, false);
  view.setUint32(4, n, false);
  view.setUint32(8, h, false);
  view.setUint32(12, w, false);
  out.set(data, 16);
  return out;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

const mnistTarget = { channels: 1, imageSize: 32 };

describe('OOD image sets', () => {
  it('an IDX file (plain or .gz) of 28x28 images gets the in-distribution preprocessing (bilinear 28 -> 32, [0, 1])', async () => {
    const pixels = randomBytes(5 * 28 * 28, 1);
    const want = toFloatImages(pixels, 5, 1, 28, 28, { resizeTo: 32 });
    const plain = join(scratch, 'letters-idx3-ubyte');
    writeFileSync(plain, idxImages(pixels, 5, 28, 28));
    writeFileSync(`${plain}.gz`, gzipSync(idxImages(pixels, 5, 28, 28)));
    for (const path of [plain, `${plain}.gz`]) {
      const set = await loadOodSet(path, mnistTarget);
      expect([set.name, set.count, set.shape]).toEqual([path, 5, [1, 32, 32]]);
      expect(set.x).toEqual(want);
    }
    expect((await loadOodSet(plain, mnistTarget, { limit: 2 })).x).toEqual(want.subarray(0, 2 * 32 * 32));
    // Images already of the model's size are only scaled to [0, 1].
    const big = randomBytes(2 * 32 * 32, 2);
    const set = await decodeIdxImages(idxImages(big, 2, 32, 32), 'big', mnistTarget);
    expect(set.x).toEqual(Float32Array.from(big, (v) => v / 255));
  });

  it('the default OOD set, Fashion-MNIST test images, is preprocessed exactly as loadDataset does', async () => {
    const set = await loadNamedOodSet('fashion-mnist', mnistTarget, { limit: 20 });
    expect(set, 'Fashion-MNIST (Debian package dataset-fashion-mnist) is installed on this machine').not.toBeNull();
    const want = await loadDataset('fashion-mnist', 'test', { limit: 20 });
    expect(set!.x).toEqual(want.x);
    expect(set!.name).toBe('fashion-mnist (test split)');
    expect(await loadNamedOodSet('fashion-mnist', mnistTarget, { dataDir: join(scratch, 'nowhere'), limit: 1 })).toBeNull();
  });

  it('a folder of PNG images (grey, RGB, RGBA, palette, 1-bit, 16-bit) is converted to the model channels', async () => {
    const dir = join(scratch, 'pngs');
    mkdirSync(dir);
    // 2 x 2 images, 8-bit unless stated; named so that the folder order is a..f.
    const grey = Uint8Array.from([0, 64, 128, 255]);
    writeFileSync(join(dir, 'a_grey.png'), encodePng({ width: 2, height: 2, data: grey, channels: 1, depth: 8 }));
    const rgb = Uint8Array.from([255, 0, 0, /**/ 0, 255, 0, /**/ 0, 0, 255, /**/ 10, 20, 30]);
    writeFileSync(join(dir, 'b_rgb.png'), encodePng({ width: 2, height: 2, data: rgb, channels: 3, depth: 8 }));
    const rgba = Uint8Array.from([200, 200, 200, 255, /**/ 200, 200, 200, 0, /**/ 100, 100, 100, 128, /**/ 0, 0, 0, 255]);
    writeFileSync(join(dir, 'c_rgba.png'), encodePng({ width: 2, height: 2, data: rgba, channels: 4, depth: 8 }));
    writeFileSync(join(dir, 'd_palette.png'), encodePng({ width: 2, height: 2, data: Uint8Array.from([0, 1, 1, 0]), channels: 1, depth: 8, palette: [[255, 255, 255], [0, 0, 0]] }));
    // 1-bit grey: rows packed from the high bit, one byte per row: pixels 1 0 / 0 1.
    writeFileSync(join(dir, 'e_1bit.png'), encodePng({ width: 2, height: 2, data: Uint8Array.from([0b10000000, 0b01000000]), channels: 1, depth: 1 }));
    writeFileSync(join(dir, 'f_16bit.png'), encodePng({ width: 2, height: 2, data: Uint16Array.from([0, 257 * 64, 65535, 257 * 3]), channels: 1, depth: 16 }));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');

    const target = { channels: 1, imageSize: 2 }; // no resize: the values themselves are checked
    const set = await loadOodSet(dir, target);
    expect([set.count, set.shape, set.name]).toEqual([6, [1, 2, 2], dir]);
    const image = (i: number) => Array.from(set.x.subarray(i * 4, i * 4 + 4), (v) => Math.round(v * 255));
    expect(image(0)).toEqual([0, 64, 128, 255]);
    // PIL's L = (R 19595 + G 38470 + B 7471 + 2^15) >> 16: red 76, green 150, blue 29, (10, 20, 30) -> 18.
    expect(image(1)).toEqual([76, 150, 29, 18]);
    // Alpha over black: 200, 0, round(100 * 128 / 255) = 50, 0.
    expect(image(2)).toEqual([200, 0, 50, 0]);
    expect(image(3)).toEqual([255, 0, 0, 255]);
    expect(image(4)).toEqual([255, 0, 0, 255]);
    expect(image(5)).toEqual([0, 64, 255, 3]);

    // Three-channel model: grey repeats, RGB stays.
    const colour = await loadOodSet(dir, { channels: 3, imageSize: 2 }, { limit: 2 });
    expect(colour.shape).toEqual([3, 2, 2]);
    const c = (i: number) => Array.from(colour.x.subarray(i * 12, i * 12 + 12), (v) => Math.round(v * 255));
    expect(c(0)).toEqual([...grey, ...grey, ...grey]);
    expect(c(1)).toEqual([255, 0, 0, 10, /* R plane */ 0, 255, 0, 20, /* G */ 0, 0, 255, 30]); // CHW

    // 28 x 28 PNGs are resized to 32 x 32 like the IDX images.
    const pixels = randomBytes(28 * 28, 3);
    const one = decodePngImages([{ name: 'x.png', bytes: encodePng({ width: 28, height: 28, data: pixels, channels: 1, depth: 8 }) }], 'one', mnistTarget);
    expect(one.x).toEqual(toFloatImages(pixels, 1, 1, 28, 28, { resizeTo: 32 }));
  });

  it('an image size that cannot be mapped is an error naming the file and the sizes', async () => {
    const notSquare = join(scratch, 'wide-idx3-ubyte');
    writeFileSync(notSquare, idxImages(new Uint8Array(2 * 20 * 28), 2, 20, 28));
    await expect(loadOodSet(notSquare, mnistTarget)).rejects.toThrow(
      new RegExp(`OOD set '${notSquare}' has images of 20 x 28 pixels \\(height x width\\), which are not square; expected square images of at most the model's 32 x 32 pixels`),
    );
    const tooBig = join(scratch, 'big-idx3-ubyte.gz');
    writeFileSync(tooBig, gzipSync(idxImages(new Uint8Array(64 * 64), 1, 64, 64)));
    await expect(loadOodSet(tooBig, mnistTarget)).rejects.toThrow(/OOD set '.*big-idx3-ubyte.gz' has images of 64 x 64 pixels, larger than the model's 32 x 32/);
    const png = encodePng({ width: 3, height: 2, data: new Uint8Array(6), channels: 1, depth: 8 });
    expect(() => decodePngImages([{ name: 'dir/odd.png', bytes: png }], 'dir', mnistTarget)).toThrow(/OOD set 'dir\/odd.png' has images of 2 x 3 pixels/);
    // Channels without a conversion rule.
    expect(() => prepareOodImages({ images: new Uint8Array(5 * 4), count: 1, channels: 5, height: 2, width: 2 }, 'five.bin', { channels: 1, imageSize: 2 }))
      .toThrow(/OOD set 'five.bin' has images with 5 channel\(s\) and the model takes 1; there is no conversion rule/);
    // Not images: labels files, other element types, garbage, missing paths, empty folders.
    const labels = new Uint8Array(8 + 3);
    new DataView(labels.buffer).setUint32(0, 0x00000801, false);
    new DataView(labels.buffer).setUint32(4, 3, false);
    await expect(decodeIdxImages(labels, 'labels-idx1-ubyte', mnistTarget)).rejects.toThrow(/'labels-idx1-ubyte' is an IDX file of u8 with shape \[3\]; expected u8 images \[N, height, width\]/);
    await expect(decodeIdxImages(Uint8Array.from([1, 2, 3, 4, 5]), 'junk.bin', mnistTarget)).rejects.toThrow(/junk.bin: bad magic/);
    await expect(loadOodSet(join(scratch, 'missing.idx'), mnistTarget)).rejects.toThrow(/OOD set '.*missing.idx' does not exist/);
    mkdirSync(join(scratch, 'empty'));
    await expect(loadOodSet(join(scratch, 'empty'), mnistTarget)).rejects.toThrow(/OOD folder '.*empty' has no .png files/);
    expect(() => decodePngPixels(Uint8Array.from([1, 2, 3]), 'fake.png')).toThrow(/'fake.png' is not a PNG file/);
    await expect(loadOodSet(notSquare, { channels: 0, imageSize: 32 })).rejects.toThrow(/argument 'target.channels' expected an integer >= 1, got 0/);
  });

  it('the universal modules bundle for browsers without Node built-ins; ood_files.ts is Node-only', async () => {
    const entry = join(scratch, 'entry.ts');
    const outfile = join(scratch, 'bundle.js');
    const modules = ['nn/predict', 'uncertainty/metrics', 'uncertainty/ood', 'uncertainty/report'].map((m) => JSON.stringify(join(ROOT, `src/${m}.ts`)));
    writeFileSync(entry, modules.map((m, i) => `export * as m${i} from ${m};\n`).join(''));
    await bundleForBrowser({ entry, outfile, logLevel: 'silent' });
    writeFileSync(entry, `${modules.map((m, i) => `export * as m${i} from ${m};\n`).join('')}export * from ${JSON.stringify(join(ROOT, 'src/uncertainty/ood_files.ts'))};\n`);
    await expect(bundleForBrowser({ entry, outfile, logLevel: 'silent' })).rejects.toThrow(/must not reach Node|node:/);
  });
});
