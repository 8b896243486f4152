/**
 * Image preprocessing as the seed project does it (PyTorch-BayesianCNN,
 * data/data.py: Resize((32, 32)), RandomHorizontalFlip for CIFAR,
 * RandomRotation(10), ToTensor):
 *
 * - toFloatImages: bytes -> float32 in [0, 1], NCHW, optionally resized by
 *   bilinear interpolation with half-pixel centres (MNIST 28x28 -> 32x32).
 * - rotateImages / flipHorizontal / augmentImages: the random augmentations,
 *   drawn from a seeded Rng so that a run can be repeated.
 *
 * Differences from the seed, on purpose: the seed resizes PIL 8-bit images, so
 * its resized pixels are rounded to whole grey levels (an error of at most
 * 0.5/255); here they stay float. torchvision's RandomRotation samples with
 * nearest neighbour; here rotation is bilinear (smoother, same geometry).
 */
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf, pair, shapeError } from '../errors.js';
import { type Rng, toRng } from './random.js';

export interface ToFloatOptions {
  /** Output size: n for n x n, or [height, width]. Default: the input size (no resize). */
  resizeTo?: number | readonly [number, number];
  /** Memory order of each input image: 'chw' (IDX, CIFAR; default) or 'hwc' (interleaved channels). Output is always NCHW. */
  layout?: 'chw' | 'hwc';
}

function checkImages(op: string, images: ArrayLike<number>, count: number, channels: number, height: number, width: number): void {
  checkInt(op, 'count', count, 0);
  checkInt(op, 'channels', channels, 1);
  checkInt(op, 'height', height, 1);
  checkInt(op, 'width', width, 1);
  if (!(images instanceof Uint8Array || images instanceof Float32Array)) {
    throw argumentError(op, 'images', 'a Uint8Array or Float32Array', images);
  }
  if (images.length !== count * channels * height * width) {
    throw new BayesError(
      'SHAPE_MISMATCH',
      `${op}: argument 'images' expected ${count * channels * height * width} values (count ${count} x channels ${channels} x ${height} x ${width}), got ${images.length}`,
    );
  }
}

/**
 * Source taps of 1-D linear interpolation from `inSize` to `outSize` samples,
 * half-pixel centres: src = (dst + 0.5) * in/out - 0.5, clamped to [0, in - 1]
 * (PyTorch upsample_bilinear2d with align_corners=False; for upscaling this is
 * also what PIL's bilinear filter computes). Returns the two source indices
 * (scaled by `stride`) and the weight of the second.
 */
function axisTaps(inSize: number, outSize: number, stride: number): { off0: Int32Array; off1: Int32Array; w1: Float64Array } {
  const off0 = new Int32Array(outSize);
  const off1 = new Int32Array(outSize);
  const w1 = new Float64Array(outSize);
  const scale = inSize / outSize;
  for (let d = 0; d < outSize; d++) {
    const src = Math.min(Math.max((d + 0.5) * scale - 0.5, 0), inSize - 1);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    off0[d] = i0 * stride;
    off1[d] = i1 * stride;
    w1[d] = src - i0;
  }
  return { off0, off1, w1 };
}

/**
 * Converts `count` images of `channels x height x width` bytes (or floats
 * already in [0, 1]) to float32 NCHW in [0, 1]: bytes are divided by 255.
 * With `resizeTo`, each channel is resized by bilinear interpolation (see axisTaps).
 */
export function toFloatImages(
  images: Uint8Array | Float32Array,
  count: number,
  channels: number,
  height: number,
  width: number,
  options: ToFloatOptions = {},
): Float32Array {
  const op = 'toFloatImages';
  checkImages(op, images, count, channels, height, width);
  const layout = checkOneOf(op, 'layout', options.layout ?? 'chw', ['chw', 'hwc'] as const);
  const [outH, outW] = options.resizeTo === undefined ? [height, width] : pair(op, 'resizeTo', options.resizeTo, 0, 1);
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  const out = new Float32Array(count * channels * outH * outW);

  // Strides of the input, so that one loop serves both layouts.
  const xStride = layout === 'chw' ? 1 : channels;
  const yStride = width * xStride;
  const channelStride = layout === 'chw' ? height * width : 1;
  const imageStride = channels * height * width;

  if (outH === height && outW === width) {
    // No resize: a scaled copy (and a transpose for 'hwc').
    if (layout === 'chw') {
      for (let i = 0; i < out.length; i++) out[i] = images[i] * scale;
    } else {
      let o = 0;
      for (let n = 0; n < count; n++) {
        for (let c = 0; c < channels; c++) {
          let s = n * imageStride + c;
          for (let p = 0; p < height * width; p++, s += channels) out[o++] = images[s] * scale;
        }
      }
    }
    return out;
  }

  const ys = axisTaps(height, outH, yStride);
  const xs = axisTaps(width, outW, xStride);
  let o = 0;
  for (let n = 0; n < count; n++) {
    for (let c = 0; c < channels; c++) {
      const base = n * imageStride + c * channelStride;
      for (let oy = 0; oy < outH; oy++) {
        const row0 = base + ys.off0[oy];
        const row1 = base + ys.off1[oy];
        const wy = ys.w1[oy];
        for (let ox = 0; ox < outW; ox++) {
          const x0 = xs.off0[ox];
          const x1 = xs.off1[ox];
          const wx = xs.w1[ox];
          const top = images[row0 + x0] + wx * (images[row0 + x1] - images[row0 + x0]);
          const bottom = images[row1 + x0] + wx * (images[row1 + x1] - images[row1 + x0]);
          out[o++] = (top + wy * (bottom - top)) * scale;
        }
      }
    }
  }
  return out;
}

/** cos and sin of an angle in degrees, exact (0, +-1) at multiples of 90 degrees so that quarter turns move pixels exactly. */
function cosSinDegrees(degrees: number): [number, number] {
  if (degrees % 90 === 0) {
    const quarter = (((degrees / 90) % 4) + 4) % 4;
    return ([[1, 0], [0, 1], [-1, 0], [0, -1]] as const)[quarter] as [number, number];
  }
  const r = (degrees * Math.PI) / 180;
  return [Math.cos(r), Math.sin(r)];
}

/**
 * Rotates each image by its angle in degrees, counter-clockwise as displayed
 * (rows downwards), about the image centre ((width-1)/2, (height-1)/2) in pixel
 * indices — torchvision's rotate convention. Each output pixel samples the input
 * at the inversely rotated position by bilinear interpolation; samples outside
 * the image count as 0. `degrees`: one angle for all images or one per image.
 */
export function rotateImages(
  x: Float32Array,
  count: number,
  channels: number,
  height: number,
  width: number,
  degrees: number | ArrayLike<number>,
): Float32Array {
  const op = 'rotateImages';
  checkImages(op, x, count, channels, height, width);
  if (!(x instanceof Float32Array)) throw argumentError(op, 'x', 'a Float32Array', x);
  if (typeof degrees === 'number') {
    checkNumber(op, 'degrees', degrees);
  } else {
    if (degrees?.length !== count) throw shapeError(op, 'degrees', `[${count}] (one angle per image) or a number`, [degrees?.length ?? 0]);
    for (let n = 0; n < count; n++) checkNumber(op, `degrees[${n}]`, degrees[n]);
  }
  const out = new Float32Array(x.length);
  const plane = height * width;
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  for (let n = 0; n < count; n++) {
    const [cos, sin] = cosSinDegrees(typeof degrees === 'number' ? degrees : degrees[n]);
    const base = n * channels * plane;
    for (let oy = 0; oy < height; oy++) {
      const dy = oy - cy;
      for (let ox = 0; ox < width; ox++) {
        const dx = ox - cx;
        // Inverse rotation: out(p) = in(R(-theta) p) in y-down coordinates.
        const sx = cos * dx - sin * dy + cx;
        const sy = sin * dx + cos * dy + cy;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        if (x0 < -1 || x0 >= width || y0 < -1 || y0 >= height) continue; // every tap outside: stays 0
        const fx = sx - x0;
        const fy = sy - y0;
        // Weights of the four taps; a tap outside the image gets weight 0 (zero fill).
        const inX0 = x0 >= 0;
        const inX1 = x0 + 1 < width;
        const inY0 = y0 >= 0;
        const inY1 = y0 + 1 < height;
        const w00 = inX0 && inY0 ? (1 - fx) * (1 - fy) : 0;
        const w01 = inX1 && inY0 ? fx * (1 - fy) : 0;
        const w10 = inX0 && inY1 ? (1 - fx) * fy : 0;
        const w11 = inX1 && inY1 ? fx * fy : 0;
        // Clamp the indices of zero-weight taps into the image so the reads stay in bounds.
        const xa = inX0 ? x0 : 0;
        const xb = inX1 ? x0 + 1 : 0;
        const ya = (inY0 ? y0 : 0) * width;
        const yb = (inY1 ? y0 + 1 : 0) * width;
        const o = oy * width + ox;
        for (let c = 0, p = base; c < channels; c++, p += plane) {
          out[p + o] = w00 * x[p + ya + xa] + w01 * x[p + ya + xb] + w10 * x[p + yb + xa] + w11 * x[p + yb + xb];
        }
      }
    }
  }
  return out;
}

/** Mirrors left-right the images whose `flip[n]` is true (all when `flip` is true). Returns a new array. */
export function flipHorizontal(
  x: Float32Array,
  count: number,
  channels: number,
  height: number,
  width: number,
  flip: boolean | ArrayLike<boolean>,
): Float32Array {
  const op = 'flipHorizontal';
  checkImages(op, x, count, channels, height, width);
  if (typeof flip !== 'boolean' && flip?.length !== count) throw shapeError(op, 'flip', `[${count}] (one flag per image) or a boolean`, [flip?.length ?? 0]);
  const out = x.slice();
  const imageSize = channels * height * width;
  for (let n = 0; n < count; n++) {
    if (!(typeof flip === 'boolean' ? flip : flip[n])) continue;
    for (let row = n * imageSize; row < (n + 1) * imageSize; row += width) {
      for (let i = 0; i < width; i++) out[row + i] = x[row + width - 1 - i];
    }
  }
  return out;
}

export interface AugmentOptions {
  /** Rotate each image by an angle drawn uniformly from [-rotationDegrees, rotationDegrees]; 0 or absent: no rotation. The seed uses 10. */
  rotationDegrees?: number;
  /** Mirror each image left-right with probability 1/2 (the seed does this for CIFAR). */
  horizontalFlip?: boolean;
}

/** Validates AugmentOptions; returns the maximum angle and whether to flip. */
export function checkAugmentOptions(op: string, options: AugmentOptions): { maxDegrees: number; flipping: boolean } {
  if (typeof options !== 'object' || options === null) throw argumentError(op, 'augment', 'an object { rotationDegrees?, horizontalFlip? }', options);
  const maxDegrees = checkNumber(op, 'rotationDegrees', options.rotationDegrees ?? 0, (v) => Number.isFinite(v) && v >= 0, 'a number >= 0');
  const flipping = options.horizontalFlip ?? false;
  if (typeof flipping !== 'boolean') throw argumentError(op, 'horizontalFlip', 'a boolean', flipping);
  return { maxDegrees, flipping };
}

/**
 * The seed's random augmentation, in its order: horizontal flip (if asked),
 * then rotation. Per image the Rng draws first the flip (if enabled), then the
 * angle (if enabled). Returns a new array; `x` is left as it is.
 */
export function augmentImages(
  x: Float32Array,
  count: number,
  channels: number,
  height: number,
  width: number,
  options: AugmentOptions,
  random: Rng | number,
): Float32Array {
  const op = 'augmentImages';
  checkImages(op, x, count, channels, height, width);
  const { maxDegrees, flipping } = checkAugmentOptions(op, options);
  const rng = toRng(op, random);
  const flips = new Array<boolean>(count).fill(false);
  const angles = new Float64Array(count);
  for (let n = 0; n < count; n++) {
    if (flipping) flips[n] = rng.nextFloat() < 0.5;
    if (maxDegrees > 0) angles[n] = (2 * rng.nextFloat() - 1) * maxDegrees;
  }
  const flipped = flipping ? flipHorizontal(x, count, channels, height, width, flips) : x.slice();
  return maxDegrees > 0 ? rotateImages(flipped, count, channels, height, width, angles) : flipped;
}
