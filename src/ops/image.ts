/**
 * Image preprocessing on the GPU (shaders/image.wgsl): decoded pixels of N images, of any sizes,
 * become one [N, C, H, W] tensor: resized (nearest, bilinear, or area averaging when shrinking),
 * grey (ITU-R BT.601 luma) or RGB, scaled to [0, 1], optionally inverted and centred by mass,
 * normalized per channel. src/nn/image_input.ts gets the pixels there from browser images and
 * decoded bytes; this file is the kernel's data: dispatch sizes and uniforms from the shapes.
 *
 *   imageTable(layouts)                                   -> Uint32Array (upload as a 'u32' tensor)
 *   preprocessImages(pixels, table, options)              -> [N, C, H, W]
 *   colourPixelCounts(pixels, table, { count, maxHeight }) -> [N]: pixels with R, G, B not all equal
 *
 * `pixels` is a 'u32' tensor holding the images' bytes (four per word, little-endian);
 * `table` holds IMAGE_TABLE_WORDS words per image (see ImageLayout).
 */
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, checkOneOf } from '../errors.js';
import { contextOf, optionsOf } from './check.js';
import { sumAxes } from './reduce.js';

const SHADER = 'image.wgsl';
const WG = 64;
/** Words per image in the table (shaders/image.wgsl). */
export const IMAGE_TABLE_WORDS = 9;

export type ResizeFilter = 'nearest' | 'bilinear' | 'area';
const FILTERS: readonly ResizeFilter[] = ['nearest', 'bilinear', 'area'];

/** Where one image's bytes lie in the pixel buffer, and which rectangle of it fills the output. */
export interface ImageLayout {
  /** Byte offset of pixel (0, 0). */
  offset: number;
  width: number;
  height: number;
  /** Bytes from one row to the next. */
  pitch: number;
  /** Bytes per pixel: 1 (grey), 3 (RGB) or 4 (RGBA; alpha is not read). */
  channels: 1 | 3 | 4;
  /** Source rectangle [x0, y0, width, height] in pixels that fills the output; it may reach past the image (background). */
  region: readonly [number, number, number, number];
}

/** The table shaders/image.wgsl reads: IMAGE_TABLE_WORDS words per image (the region as f32 bits). */
export function imageTable(layouts: readonly ImageLayout[]): Uint32Array {
  const words = new Uint32Array(layouts.length * IMAGE_TABLE_WORDS);
  const asFloat = new Float32Array(words.buffer);
  layouts.forEach((l, n) => {
    const b = n * IMAGE_TABLE_WORDS;
    words.set([l.offset, l.width, l.height, l.pitch, l.channels], b);
    asFloat.set(l.region, b + 5);
  });
  return words;
}

export interface PreprocessImagesOptions {
  /** Images in the table. */
  count: number;
  /** Output height and width. */
  height: number;
  width: number;
  /** 1: grey (BT.601 luma), 3: RGB. */
  channels: 1 | 3;
  /** Default 'area': the box average when shrinking, bilinear when enlarging. */
  resize?: ResizeFilter;
  /** v -> 1 - v after scaling to [0, 1] (default false). */
  invert?: boolean;
  /** Shift each image so that its centre of mass lies at pixel (W / 2, H / 2) (default false). */
  centerByMass?: boolean;
  /** Per-channel normalization (v - mean[c]) / std[c]; default 0 and 1. */
  mean?: readonly number[];
  std?: readonly number[];
}

function checkSources(op: string, pixels: Tensor, table: Tensor, count: number): void {
  if (pixels.dtype !== 'u32') throw argumentError(op, 'pixels', "a tensor of dtype 'u32' (bytes, four per word)", pixels.dtype);
  if (table.dtype !== 'u32') throw argumentError(op, 'table', "a tensor of dtype 'u32' (imageTable)", table.dtype);
  if (table.size !== count * IMAGE_TABLE_WORDS) throw argumentError(op, 'table', `${count * IMAGE_TABLE_WORDS} words (${IMAGE_TABLE_WORDS} per image for options.count = ${count})`, `${table.size} words`);
}

function perChannel(op: string, name: 'mean' | 'std', value: readonly number[] | undefined, channels: number, fallback: number): number[] {
  if (value === undefined) return [fallback, fallback, fallback];
  const positive = name === 'std';
  if (!Array.isArray(value) || value.length !== channels || value.some((v) => typeof v !== 'number' || !Number.isFinite(v) || (positive && !(v > 0)))) {
    throw argumentError(op, `options.${name}`, `${channels} ${positive ? 'positive finite numbers' : 'finite numbers'} (one per channel)`, value);
  }
  return channels === 1 ? [value[0], fallback, fallback] : [...value];
}

/**
 * The model input [count, channels, height, width] of the images in `pixels` (see the file's
 * comment): one dispatch, or three and two row sums with centerByMass.
 */
export function preprocessImages(pixels: Tensor, table: Tensor, options: PreprocessImagesOptions): Tensor<'f32'> {
  const op = 'preprocessImages';
  const ctx = contextOf(op, { pixels, table });
  optionsOf(op, options);
  const count = checkInt(op, 'options.count', options.count, 1);
  const height = checkInt(op, 'options.height', options.height, 1);
  const width = checkInt(op, 'options.width', options.width, 1);
  const channels = options.channels;
  if (channels !== 1 && channels !== 3) throw argumentError(op, 'options.channels', '1 or 3', channels);
  const resize = checkOneOf(op, 'options.resize', options.resize ?? 'area', FILTERS);
  for (const flag of ['invert', 'centerByMass'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw argumentError(op, `options.${flag}`, 'a boolean', options[flag]);
  }
  const mean = perChannel(op, 'mean', options.mean, channels, 0);
  const std = perChannel(op, 'std', options.std, channels, 1);
  checkSources(op, pixels, table, count);
  const uniforms = { count, out_h: height, out_w: width, channels, resize: FILTERS.indexOf(resize), invert: options.invert ? 1 : 0 };
  const outputs = count * height * width;
  const out = ctx.empty([count, channels, height, width]);
  if (!options.centerByMass) {
    ctx.dispatch({
      shader: SHADER, entry: 'resample', constants: { WG, CENTER: false },
      uniforms: { ...uniforms, mean, std_dev: std }, bindings: { pixels, images: table, out }, unbound: ['moments'],
      workgroups: grid(Math.ceil(outputs / WG)),
    });
    return out;
  }
  // Centring by mass: the values before normalization, their row moments, the [N, 3] moments,
  // then the source sampled again with the shift (shaders/image.wgsl).
  const raw = ctx.empty([count, channels, height, width]);
  const rows = ctx.empty([count, height, 3]);
  let moments: Tensor | null = null;
  try {
    ctx.dispatch({
      shader: SHADER, entry: 'resample', constants: { WG, CENTER: false },
      uniforms: { ...uniforms, mean: [0, 0, 0], std_dev: [1, 1, 1] }, bindings: { pixels, images: table, out: raw }, unbound: ['moments'],
      workgroups: grid(Math.ceil(outputs / WG)),
    });
    ctx.dispatch({
      shader: SHADER, entry: 'moment_rows', constants: { WG }, uniforms, bindings: { raw, rows },
      workgroups: grid(Math.ceil((count * height) / WG)),
    });
    moments = sumAxes(rows, { axes: { outer: count, reduceA: height, kept: 3 }, shape: [count, 3] });
    ctx.dispatch({
      shader: SHADER, entry: 'resample', constants: { WG, CENTER: true },
      uniforms: { ...uniforms, mean, std_dev: std }, bindings: { pixels, images: table, moments, out },
      workgroups: grid(Math.ceil(outputs / WG)),
    });
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    // Safe before the work runs: a pooled buffer handed out again is only written by work recorded later.
    raw.dispose();
    rows.dispose();
    moments?.dispose();
  }
  return out;
}

/**
 * Per image, how many pixels have R, G and B not all equal (0 for a grey image, and always 0 for a
 * 1-channel source): [count]. A grey model's input guard (src/nn/image_input.ts) reads it.
 */
export function colourPixelCounts(pixels: Tensor, table: Tensor, options: { count: number; maxHeight: number }): Tensor<'f32'> {
  const op = 'colourPixelCounts';
  const ctx = contextOf(op, { pixels, table });
  optionsOf(op, options);
  const count = checkInt(op, 'options.count', options.count, 1);
  const maxHeight = checkInt(op, 'options.maxHeight', options.maxHeight, 1);
  checkSources(op, pixels, table, count);
  const rowCounts = ctx.empty([count, maxHeight]);
  try {
    ctx.dispatch({
      shader: SHADER, entry: 'colour_rows', constants: { WG }, uniforms: { count, max_h: maxHeight },
      bindings: { pixels, images: table, counts: rowCounts }, workgroups: grid(Math.ceil((count * maxHeight) / WG)),
    });
    return sumAxes(rowCounts, { axes: { outer: count, reduceA: maxHeight }, shape: [count] });
  } finally {
    rowCounts.dispose();
  }
}
