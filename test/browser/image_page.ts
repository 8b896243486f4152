/**
 * The in-page half of test/browser/image.test.ts: the same pixels as a canvas, an ImageData, an
 * ImageBitmap, an OffscreenCanvas, an image (a PNG data URL) and a VideoFrame go through
 * imagesToTensor, and must give the tensor of the same pixels as a RawImage, the model's logits of
 * that tensor, and through model.predict the prediction of that tensor; then the bad sources a page can make (a video with no frame, a closed
 * ImageBitmap and VideoFrame, a zero-sized canvas, a colour canvas for a grey model) must each be
 * one BayesError with nothing left allocated. Bundled by the test with the shaders inlined;
 * everything crosses back as JSON.
 */
import { BayesError, Flatten, Linear, ReLU, Sequential, createContext, type Context, type Tensor } from '../../src/index.js';
import { type ImageOptions, type RawImage, imagesToTensor, isImageSource } from '../../src/nn/image_input.js';
import type { ImageInput } from '../../src/nn/input.js';
import { rng } from './random.js';

export interface SourceResult {
  name: string;
  /** Why the source was not tested (this Chromium lacks it); the test prints it. */
  skipped?: string;
  isImageSource?: boolean;
  shape?: number[];
  /** Largest |difference| from the RawImage's tensor. */
  tensorDiff?: number;
  /** How the pixels reached the GPU, where it is not the direct copyExternalImageToTexture. */
  note?: string;
  /** Largest |difference| between the logits of this tensor and of the RawImage's tensor uploaded as a Tensor. */
  logitsDiff?: number;
  /** Largest |difference| between model.predict(source)'s predictive mean and model.predict(that Tensor)'s. */
  predictDiff?: number;
}

export interface ErrorResult {
  name: string;
  code?: string;
  message: string;
  /** Live tensors after the failed call minus before (must be 0). */
  leaked: number;
}

export interface ImageReport {
  adapter: string;
  sources: Record<string, SourceResult[]>;
  batchDiff: number;
  errors: ErrorResult[];
}

const WIDTH = 37;
const HEIGHT = 23;

/** Opaque RGBA pixels (alpha 255, so premultiplication changes nothing); `grey` makes R = G = B. */
function pixels(seed: number, grey: boolean): Uint8ClampedArray<ArrayBuffer> {
  const r = rng(seed);
  const data = new Uint8ClampedArray(new ArrayBuffer(WIDTH * HEIGHT * 4));
  for (let p = 0; p < WIDTH * HEIGHT; p++) {
    const g = Math.floor(r() * 256);
    data[4 * p] = g;
    data[4 * p + 1] = grey ? g : Math.floor(r() * 256);
    data[4 * p + 2] = grey ? g : Math.floor(r() * 256);
    data[4 * p + 3] = 255;
  }
  return data;
}

function canvasOf(image: ImageData): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(image, 0, 0);
  return canvas;
}

/** Every kind of browser source holding `image`'s pixels, or why this browser cannot make it. */
async function sourcesOf(image: ImageData): Promise<[string, unknown | string][]> {
  const canvas = canvasOf(image);
  const out: [string, unknown | string][] = [['HTMLCanvasElement', canvas], ['ImageData', image]];
  out.push(['ImageBitmap', await createImageBitmap(image, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' })]);
  if (typeof OffscreenCanvas === 'function') {
    const offscreen = new OffscreenCanvas(image.width, image.height);
    offscreen.getContext('2d')!.putImageData(image, 0, 0);
    out.push(['OffscreenCanvas', offscreen]);
  } else out.push(['OffscreenCanvas', 'OffscreenCanvas is not defined in this browser']);
  const img = new Image();
  img.src = canvas.toDataURL('image/png'); // PNG is lossless: the same bytes come back
  await img.decode();
  out.push(['HTMLImageElement', img]);
  if (typeof VideoFrame === 'function') {
    out.push(['VideoFrame', new VideoFrame(canvas, { timestamp: 0 })]);
  } else out.push(['VideoFrame', 'VideoFrame (WebCodecs) is not defined in this browser']);
  return out;
}

/** Whether this browser refuses copyExternalImageToTexture of `source` (its message), so that imagesToTensor took its ImageBitmap detour. */
function directCopyRefused(ctx: Context, source: unknown): string | undefined {
  const s = source as { width?: number; height?: number; displayWidth?: number; displayHeight?: number };
  const size = [s.displayWidth ?? s.width ?? 1, s.displayHeight ?? s.height ?? 1];
  const texture = ctx.device.createTexture({ size, format: 'rgba8unorm', usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.RENDER_ATTACHMENT });
  try {
    ctx.device.queue.copyExternalImageToTexture({ source: source as GPUCopyExternalImageSource }, { texture }, size);
    return undefined;
  } catch (e) {
    return `direct copy refused, ${(e as Error).name}: ${(e as Error).message}; copied through createImageBitmap`;
  } finally {
    texture.destroy();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Number.isNaN(a[i]) || Number.isNaN(b[i]) ? Infinity : Math.abs(a[i] - b[i]));
  return worst;
}

async function logits(m: Sequential, x: Tensor): Promise<Float32Array> {
  const { logits: y } = m.run(x, { kl: false });
  try {
    return (await y.read()) as Float32Array;
  } finally {
    y.dispose();
  }
}

/** Each source vs the RawImage of the same pixels, for `m` and `options`. */
async function compareSources(ctx: Context, m: Sequential, image: ImageData, options: ImageOptions): Promise<{ results: SourceResult[]; batchDiff: number }> {
  const raw: RawImage = { data: new Uint8Array(image.data.buffer.slice(0)), width: image.width, height: image.height, channels: 4 };
  const want = await imagesToTensor(m, [raw], options);
  const wantValues = (await want.read()) as Float32Array;
  // The Tensor path: the same values uploaded as a tensor.
  const asTensor = ctx.tensor(wantValues, want.shape);
  const wantLogits = await logits(m, asTensor);
  const wantPrediction = (await m.predict(asTensor)).mean;
  asTensor.dispose();
  want.dispose();
  const results: SourceResult[] = [];
  const usable: unknown[] = [];
  for (const [name, source] of await sourcesOf(image)) {
    if (typeof source === 'string') {
      results.push({ name, skipped: source });
      continue;
    }
    usable.push(source);
    const x = await imagesToTensor(m, [source], options);
    results.push({
      name, note: directCopyRefused(ctx, source), isImageSource: isImageSource(source), shape: [...x.shape],
      tensorDiff: maxDiff((await x.read()) as Float32Array, wantValues), logitsDiff: maxDiff(await logits(m, x), wantLogits),
      predictDiff: maxDiff((await m.predict(source as ImageInput, { image: options })).mean, wantPrediction),
    });
    x.dispose();
  }
  // All of them in one call: one [N, C, H, W] tensor, each slice the RawImage's.
  const batch = await imagesToTensor(m, usable, options);
  const all = (await batch.read()) as Float32Array;
  batch.dispose();
  let batchDiff = 0;
  for (let n = 0; n < usable.length; n++) batchDiff = Math.max(batchDiff, maxDiff(all.subarray(n * wantValues.length, (n + 1) * wantValues.length), wantValues));
  for (const s of usable) if (s instanceof VideoFrame || s instanceof ImageBitmap) s.close();
  return { results, batchDiff };
}

async function failure(ctx: Context, name: string, call: () => Promise<unknown>): Promise<ErrorResult> {
  const before = ctx.memory().liveTensors;
  try {
    const t = (await call()) as Tensor;
    t.dispose();
    return { name, message: 'no error', leaked: 0 };
  } catch (e) {
    return { name, code: e instanceof BayesError ? e.code : undefined, message: String((e as Error).message ?? e), leaked: ctx.memory().liveTensors - before };
  }
}

async function run(): Promise<ImageReport> {
  const ctx = await createContext();
  try {
    const grey = new Sequential(ctx, { flat: new Flatten(), fc1: new Linear(null, 8), act: new ReLU(), fc2: new Linear(8, 4) }, { inputShape: [1, 16, 12], seed: 3 }).eval();
    const rgb = new Sequential(ctx, { flat: new Flatten(), fc: new Linear(null, 5) }, { inputShape: [3, 10, 14], seed: 4 }).eval();
    const greyImage = new ImageData(pixels(1, true), WIDTH, HEIGHT);
    const colourImage = new ImageData(pixels(2, false), WIDTH, HEIGHT);
    const sources: Record<string, SourceResult[]> = {};
    let batchDiff = 0;
    for (const [label, m, image, options] of [
      ['grey model, grey pixels, area, inverted, centred by mass', grey, greyImage, { invert: true, centerByMass: true, mean: [0.1307], std: [0.3081] }],
      ['grey model, colour pixels, grey: true, bilinear', grey, colourImage, { grey: true, resize: 'bilinear' }],
      ['RGB model, colour pixels, area, normalized', rgb, colourImage, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
    ] as const) {
      const r = await compareSources(ctx, m, image, options as ImageOptions);
      sources[label] = r.results;
      batchDiff = Math.max(batchDiff, r.batchDiff);
    }

    const errors: ErrorResult[] = [];
    const video = document.createElement('video');
    errors.push(await failure(ctx, 'video without a frame', () => imagesToTensor(grey, [video])));
    const bitmap = await createImageBitmap(greyImage);
    bitmap.close();
    errors.push(await failure(ctx, 'closed ImageBitmap', () => imagesToTensor(grey, [bitmap])));
    if (typeof VideoFrame === 'function') {
      const frame = new VideoFrame(canvasOf(greyImage), { timestamp: 0 });
      frame.close();
      errors.push(await failure(ctx, 'closed VideoFrame', () => imagesToTensor(grey, [frame])));
    }
    const empty = document.createElement('canvas');
    empty.width = 0;
    errors.push(await failure(ctx, 'zero-sized canvas', () => imagesToTensor(grey, [empty])));
    errors.push(await failure(ctx, 'colour canvas for a grey model', () => imagesToTensor(grey, [canvasOf(greyImage), canvasOf(colourImage)])));
    errors.push(await failure(ctx, 'a canvas 2D context instead of the canvas', () => imagesToTensor(grey, [canvasOf(greyImage).getContext('2d')])));
    grey.dispose();
    rgb.dispose();
    return { adapter: ctx.adapterName, sources, batchDiff, errors };
  } finally {
    ctx.destroy();
  }
}

(globalThis as { imageHarness?: { run: () => Promise<ImageReport> } }).imageHarness = { run };
document.documentElement.dataset.harness = 'ready';
