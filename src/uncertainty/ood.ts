/**
 * Out-of-distribution image sets, decoded from bytes (runs anywhere; the Node
 * file reading is in ood_files.ts). The seed compares MNIST with notMNIST,
 * which no package registry carries, so any of these serves as an OOD set:
 *
 *   - an IDX images file (plain or gzip), u8, shape [N, H, W] (grey), as MNIST,
 *     Fashion-MNIST, KMNIST or EMNIST ship;
 *   - PNG images (grey, grey + alpha, RGB, RGBA, palette; 1 to 16 bits), e.g. a
 *     folder of notMNIST letters.
 *
 * Every image goes through the in-distribution preprocessing (src/cli/datasets.ts):
 * bytes / 255, resized bilinearly to the model's size (28x28 -> 32x32 for
 * MNIST models). Channels are converted to the model's: grey -> RGB repeats the
 * grey value; RGB -> grey is the ITU-R 601 luma as PIL's convert('L') computes
 * it; alpha is composited over black (the MNIST background). Images must be
 * square and no larger than the model's input (bilinear upsampling is what the
 * seed's Resize does for 28 -> 32; downsampling would need an antialiasing
 * filter, so larger images are refused with a message saying so).
 */
import { decode as decodePng, convertIndexedToRgb, hasPngSignature } from 'fast-png';
import { BayesError, argumentError, checkInt } from '../errors.js';
import { maybeGunzip } from '../data/bytes.js';
import { parseIdx } from '../data/idx.js';
import { toFloatImages } from '../data/preprocess.js';

/** What the model takes: channels and the side of its square input. */
export interface OodTarget {
  channels: number;
  imageSize: number;
}

/** Preprocessed OOD images (a data set input for model.predict; no labels). */
export interface OodSet {
  /** The file or folder the images came from. */
  name: string;
  x: Float32Array;
  count: number;
  shape: [number, number, number];
}

/** Raw u8 images, channel-major (CHW) or interleaved (HWC) per image. */
export interface RawImages {
  images: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  layout?: 'chw' | 'hwc';
}

function checkTarget(op: string, target: OodTarget): void {
  if (target === null || typeof target !== 'object') throw argumentError(op, 'target', '{ channels, imageSize }', target);
  checkInt(op, 'target.channels', target.channels, 1);
  checkInt(op, 'target.imageSize', target.imageSize, 1);
}

/** Throws unless `height x width` images can be mapped onto the model's input. */
export function checkOodImageSize(op: string, name: string, height: number, width: number, target: OodTarget): void {
  const want = `square images of at most the model's ${target.imageSize} x ${target.imageSize} pixels (smaller ones, such as 28 x 28, are resized bilinearly)`;
  if (height !== width) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: OOD set '${name}' has images of ${height} x ${width} pixels (height x width), which are not square; expected ${want}`);
  }
  if (height > target.imageSize) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: OOD set '${name}' has images of ${height} x ${width} pixels, larger than the model's ${target.imageSize} x ${target.imageSize}; expected ${want}. Downsample them first (with an antialiasing filter)`);
  }
}

/** RGB -> L as PIL computes it: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16 (ITU-R 601 luma, 16-bit fixed point). */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/**
 * Converts images with `from` channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; HWC)
 * to `to` channels (1 or 3), still HWC; alpha is composited over black.
 */
function convertChannels(op: string, name: string, hwc: Uint8Array, pixels: number, from: number, to: number): Uint8Array {
  if (from === to && from !== 2 && from !== 4) return hwc;
  if (![1, 2, 3, 4].includes(from) || ![1, 3].includes(to)) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: OOD set '${name}' has images with ${from} channel(s) and the model takes ${to}; there is no conversion rule (known: grey, grey + alpha, RGB, RGBA -> grey or RGB)`);
  }
  const out = new Uint8Array(pixels * to);
  for (let i = 0; i < pixels; i++) {
    const at = i * from;
    const alpha = from === 2 || from === 4 ? hwc[at + from - 1] : 255;
    const over = (v: number) => (alpha === 255 ? v : Math.round((v * alpha) / 255));
    const [r, g, b] = from <= 2 ? [hwc[at], hwc[at], hwc[at]] : [hwc[at], hwc[at + 1], hwc[at + 2]];
    if (to === 1) out[i] = over(from <= 2 ? r : luma(r, g, b));
    else {
      out[i * 3] = over(r);
      out[i * 3 + 1] = over(g);
      out[i * 3 + 2] = over(b);
    }
  }
  return out;
}

/** Converts and resizes raw u8 images into an OOD set for a model. */
export function prepareOodImages(raw: RawImages, name: string, target: OodTarget): OodSet {
  const op = 'prepareOodImages';
  checkTarget(op, target);
  const { count, channels, height, width } = raw;
  checkInt(op, 'raw.count', count, 1);
  checkInt(op, 'raw.channels', channels, 1);
  checkOodImageSize(op, name, height, width, target);
  const per = channels * height * width;
  if (!(raw.images instanceof Uint8Array) || raw.images.length !== count * per) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'raw.images' expected ${count * per} bytes (${count} images of ${channels} x ${height} x ${width}), got ${raw.images?.length}`);
  }
  const pixels = height * width;
  let images = raw.images;
  let layout = raw.layout ?? 'chw';
  const to = target.channels;
  if (channels !== to || channels === 2 || channels === 4) {
    const converted = new Uint8Array(count * pixels * to);
    for (let i = 0; i < count; i++) {
      let hwc = images.subarray(i * per, (i + 1) * per);
      if (layout === 'chw' && channels > 1) {
        const t = new Uint8Array(per);
        for (let c = 0; c < channels; c++) for (let p = 0; p < pixels; p++) t[p * channels + c] = hwc[c * pixels + p];
        hwc = t;
      }
      converted.set(convertChannels(op, name, hwc, pixels, channels, to), i * pixels * to);
    }
    images = converted;
    layout = 'hwc';
  }
  const x = toFloatImages(images, count, to, height, width, { resizeTo: target.imageSize, layout });
  return { name, x, count, shape: [to, target.imageSize, target.imageSize] };
}

/** An IDX images file (plain or gzip bytes): u8 [N, H, W] grey images. */
export async function decodeIdxImages(bytes: Uint8Array, name: string, target: OodTarget, limit?: number): Promise<OodSet> {
  const op = 'decodeIdxImages';
  checkTarget(op, target);
  if (limit !== undefined) checkInt(op, 'limit', limit, 1);
  const idx = parseIdx(await maybeGunzip(bytes, name), name);
  if (idx.dtype !== 'u8' || idx.shape.length !== 3) {
    throw new BayesError('BAD_FILE', `${op}: '${name}' is an IDX file of ${idx.dtype} with shape [${idx.shape.join(', ')}]; expected u8 images [N, height, width] (as MNIST's images files). For colour images use a folder of PNG files`);
  }
  const [n, height, width] = idx.shape;
  if (n === 0) throw new BayesError('BAD_FILE', `${op}: '${name}' holds no images`);
  checkOodImageSize(op, name, height, width, target);
  const count = Math.min(n, limit ?? n);
  return prepareOodImages({ images: (idx.data as Uint8Array).subarray(0, count * height * width), count, channels: 1, height, width }, name, target);
}

/** One decoded PNG as u8 HWC with 1 to 4 channels (palette expanded, 1-4 and 16 bits scaled to 8). */
export function decodePngPixels(bytes: Uint8Array, name: string): { data: Uint8Array; height: number; width: number; channels: number } {
  if (!hasPngSignature(bytes)) throw new BayesError('BAD_FILE', `decodePngPixels: '${name}' is not a PNG file (no PNG signature)`);
  let png;
  try {
    png = decodePng(bytes);
  } catch (err) {
    throw new BayesError('BAD_FILE', `decodePngPixels: '${name}' is not a valid PNG file (${(err as Error).message})`);
  }
  const { width, height } = png;
  const pixels = width * height;
  if (png.palette) {
    const rgb = convertIndexedToRgb(png);
    return { data: rgb, height, width, channels: rgb.length / pixels };
  }
  const channels = png.channels;
  const data = new Uint8Array(pixels * channels);
  if (png.depth === 16) {
    // 16 -> 8 bits: round(v / 257), exact for values that came from 8 bits (v = 257 k).
    for (let i = 0; i < data.length; i++) data[i] = Math.round(png.data[i] / 257);
  } else if (png.depth === 8) {
    data.set(png.data);
  } else {
    // 1, 2 or 4 bits per sample (grey only), rows packed from the high bit and padded to whole bytes.
    const depth = png.depth;
    const rowBytes = Math.ceil((width * channels * depth) / 8);
    const max = (1 << depth) - 1;
    for (let y = 0; y < height; y++) {
      for (let s = 0; s < width * channels; s++) {
        const bit = s * depth;
        const byte = png.data[y * rowBytes + (bit >> 3)];
        const v = (byte >> (8 - depth - (bit & 7))) & max;
        data[y * width * channels + s] = Math.round((v * 255) / max);
      }
    }
  }
  return { data, height, width, channels };
}

/** PNG images (e.g. the files of a folder, in order) as one OOD set named `name`. */
export function decodePngImages(files: readonly { name: string; bytes: Uint8Array }[], name: string, target: OodTarget): OodSet {
  const op = 'decodePngImages';
  checkTarget(op, target);
  if (!Array.isArray(files) || files.length === 0) throw argumentError(op, 'files', 'at least one PNG file', files);
  const per = target.channels * target.imageSize * target.imageSize;
  const x = new Float32Array(files.length * per);
  files.forEach((file, i) => {
    const png = decodePngPixels(file.bytes, file.name);
    const one = prepareOodImages({ images: png.data, count: 1, channels: png.channels, height: png.height, width: png.width, layout: 'hwc' }, file.name, target);
    x.set(one.x, i * per);
  });
  return { name, x, count: files.length, shape: [target.channels, target.imageSize, target.imageSize] };
}
