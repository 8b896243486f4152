/**
 * A drawing becomes a model input the way MNIST's digits were made (LeCun et
 * al. 1998, section III.A): "size normalized to fit in a 20x20 pixel box while
 * preserving their aspect ratio", grey levels from anti-aliasing, then
 * "centered in a 28x28 image by computing the center of mass of the pixels,
 * and translating the image so as to position this point at the center of the
 * 28x28 field". The 28x28 image is then resized to 32x32 by the library's
 * toFloatImages, exactly as the training images were (src/cli/datasets.ts).
 *
 * Pure functions on grey images (Float32Array, row-major, values in [0, 1],
 * ink = 1): they run in the page and in Node tests alike.
 */
import { toFloatImages } from '../src/index.js';

export const MNIST_SIZE = 28;
/** The box MNIST's digits were scaled into. */
export const MNIST_BOX = 20;
/** The models' input size: 28x28 resized to 32x32, as the seed prepares MNIST. */
export const INPUT_SIZE = 32;
/** Pixels at or below this grey level do not count towards the bounding box (canvas anti-aliasing leaves faint edges). */
export const INK_THRESHOLD = 0.05;

export interface Box {
  /** Columns x0 <= x < x1, rows y0 <= y < y1. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The grey level (red channel / 255) of an RGBA canvas where ink is white on black. */
export function greyFromRgba(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): Float32Array {
  if (rgba.length !== width * height * 4) throw new Error(`greyFromRgba: expected ${width * height * 4} RGBA bytes for ${width}x${height}, got ${rgba.length}`);
  const grey = new Float32Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i] / 255;
  return grey;
}

/** The smallest box holding every pixel above `threshold`, or null for a blank image. */
export function inkBox(grey: Float32Array, width: number, height: number, threshold = INK_THRESHOLD): Box | null {
  let x0 = width;
  let y0 = height;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (grey[y * width + x] > threshold) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        if (y >= y1) y1 = y + 1;
      }
    }
  }
  return x1 > x0 ? { x0, y0, x1, y1 } : null;
}

/**
 * Weights of a 1-D area (box filter) resampling of the source interval
 * [start, start + length) onto `outSize` pixels: output pixel j averages the
 * source over [start + j s, start + (j + 1) s), s = length / outSize, each
 * source pixel weighted by its overlap. Each output's weights sum to 1.
 */
export function areaWeights(start: number, length: number, outSize: number): { index: number; weight: number }[][] {
  const s = length / outSize;
  const taps: { index: number; weight: number }[][] = [];
  for (let j = 0; j < outSize; j++) {
    const lo = start + j * s;
    const hi = lo + s;
    const row: { index: number; weight: number }[] = [];
    for (let i = Math.floor(lo); i < Math.ceil(hi); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > 1e-9) row.push({ index: i, weight: overlap / s });
    }
    taps.push(row);
  }
  return taps;
}

/** Area-resamples the `box` of a grey image to outW x outH (separable: rows, then columns). */
export function resampleBox(grey: Float32Array, width: number, box: Box, outW: number, outH: number): Float32Array {
  const cols = areaWeights(box.x0, box.x1 - box.x0, outW);
  const rows = areaWeights(box.y0, box.y1 - box.y0, outH);
  // Horizontal pass over the rows the box covers.
  const boxH = box.y1 - box.y0;
  const tmp = new Float32Array(boxH * outW);
  for (let y = 0; y < boxH; y++) {
    const src = (box.y0 + y) * width;
    for (let j = 0; j < outW; j++) {
      let v = 0;
      for (const t of cols[j]) v += t.weight * grey[src + t.index];
      tmp[y * outW + j] = v;
    }
  }
  const out = new Float32Array(outW * outH);
  for (let i = 0; i < outH; i++) {
    for (const t of rows[i]) {
      const src = (t.index - box.y0) * outW;
      for (let j = 0; j < outW; j++) out[i * outW + j] += t.weight * tmp[src + j];
    }
  }
  return out;
}

/** Centre of mass (x, y) of a grey image in pixel indices (pixel (i, j) at (i, j)); null when it has no mass. */
export function centerOfMass(grey: Float32Array, width: number, height: number): [number, number] | null {
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = grey[y * width + x];
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  return mass > 0 ? [mx / mass, my / mass] : null;
}

/**
 * A 28x28 MNIST-style image of a drawing (width x height grey): the ink's
 * bounding box scaled, aspect ratio kept, so its longer side is 20 pixels,
 * and translated by whole pixels so that its centre of mass lands on pixel
 * (14, 14), where MNIST's digits have theirs (measured on the test set: within
 * half a pixel of index 14 in both directions); shifted back inside where the
 * box would stick out. A blank drawing gives zeros.
 */
export function mnistLike(grey: Float32Array, width: number, height: number): Float32Array {
  if (grey.length !== width * height) throw new Error(`mnistLike: expected ${width * height} grey values for ${width}x${height}, got ${grey.length}`);
  const out = new Float32Array(MNIST_SIZE * MNIST_SIZE);
  const box = inkBox(grey, width, height);
  if (!box) return out;
  const bw = box.x1 - box.x0;
  const bh = box.y1 - box.y0;
  const scale = MNIST_BOX / Math.max(bw, bh);
  const w = Math.max(1, Math.min(MNIST_BOX, Math.round(bw * scale)));
  const h = Math.max(1, Math.min(MNIST_BOX, Math.round(bh * scale)));
  const digit = resampleBox(grey, width, box, w, h);
  const [cx, cy] = centerOfMass(digit, w, h) ?? [(w - 1) / 2, (h - 1) / 2];
  const ox = Math.min(Math.max(Math.round(MNIST_SIZE / 2 - cx), 0), MNIST_SIZE - w);
  const oy = Math.min(Math.max(Math.round(MNIST_SIZE / 2 - cy), 0), MNIST_SIZE - h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) out[(oy + y) * MNIST_SIZE + ox + x] = Math.min(digit[y * w + x], 1);
  }
  return out;
}

/** The model input [1, 32, 32] of a drawing: mnistLike, then the training data's 28 -> 32 bilinear resize. */
export function drawingToInput(grey: Float32Array, width: number, height: number): Float32Array {
  return toFloatImages(mnistLike(grey, width, height), 1, 1, MNIST_SIZE, MNIST_SIZE, { resizeTo: INPUT_SIZE });
}
