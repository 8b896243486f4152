/**
 * Images as model input, in the spirit of TensorFlow.js's `tf.browser.fromPixels`: any browser
 * image (ImageData, ImageBitmap, a canvas, an OffscreenCanvas, an image, a video, a VideoFrame) or
 * decoded bytes (a RawImage: PNG/JPEG files in Node and the CLI) become the model's input
 * [N, C, H, W] on its context, preprocessed on the GPU (shaders/image.wgsl, src/ops/image.ts).
 *
 * How pixels get there: a browser source through `queue.copyExternalImageToTexture` into an
 * rgba8unorm texture (the browser decodes, converts colour space and reads video frames; nothing
 * passes through a 2D canvas), then `copyTextureToBuffer` into one byte buffer shared by the N
 * sources, because bayesgpu's kernels bind buffers only (src/gpu/shaders.ts) and the kernel then
 * reads every kind of source the same way; a RawImage's bytes with `writeBuffer` into that same
 * buffer as they are, grey, RGB or RGBA (a texture has no 1- or 3-byte format, so `writeTexture`
 * would first need an RGBA copy on the CPU). One kernel then resizes, converts, inverts, centres
 * and normalizes all N at once (model.modelOptions.preprocessing gives the defaults; the
 * per-call ImageOptions override them).
 *
 * Everything is checked before anything is allocated: the source kinds, their state (a video
 * without a frame, a closed ImageBitmap or VideoFrame, an image not decoded yet, a zero size),
 * the model's input shape ([1 | 3, H, W]) and the options. The one check that needs the pixels,
 * whether a colour image meets a grey model, runs on the CPU for a RawImage and on the GPU for a
 * browser source, before the output is allocated (see ImageOptions.grey).
 */
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkNumber } from '../errors.js';
import { IMAGE_TABLE_WORDS, type ImageLayout, type ResizeFilter, colourPixelCounts, imageTable, preprocessImages } from '../ops/image.js';
import type { BuiltModel, Preprocessing } from './model.js';

/** Decoded pixels from anywhere (PNG/JPEG files in Node, a canvas's getImageData): RGBA or grey bytes, row-major. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 4 (RGBA, default), 3 (RGB) or 1 (grey). */
  channels?: 1 | 3 | 4;
}

/** A rectangle of the source, in its pixels (it may reach past the image: what lies outside is background). */
export interface ImageRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Per-call image settings; they override the model's saved preprocessing. */
export interface ImageOptions extends Preprocessing {
  /**
   * Convert colour images to grey (ITU-R BT.601 luma) for a 1-channel model. A colour image is one
   * whose pixels are not all R = G = B; giving one to a grey model without `grey: true` is an error,
   * so that a colour photo does not silently become a grey input. Checked on the pixels themselves:
   * on the CPU for a RawImage (a 1-channel RawImage is grey), on the GPU for a browser source (its
   * pixels exist only there), before the output tensor is allocated. Not allowed for a 3-channel model.
   */
  grey?: boolean;
  /**
   * The rectangle of every source that becomes the input (default: the whole image), e.g. a square
   * around a drawing's ink. It is resized to the model's H x W; parts outside the image are
   * background (0 after inversion, before normalization).
   */
  region?: ImageRegion;
}

const OP = 'imagesToTensor';
/** The browser's image sources, by global constructor name (absent ones, as in Node, are skipped). */
const BROWSER_KINDS = ['ImageData', 'ImageBitmap', 'HTMLCanvasElement', 'OffscreenCanvas', 'HTMLImageElement', 'HTMLVideoElement', 'VideoFrame'] as const;
type BrowserKind = (typeof BROWSER_KINDS)[number];
const SOURCE_KINDS = 'an image source (ImageData, ImageBitmap, HTMLCanvasElement, OffscreenCanvas, HTMLImageElement, HTMLVideoElement, VideoFrame, or a RawImage { data: Uint8Array, width, height, channels? })';
/** HTMLMediaElement.HAVE_CURRENT_DATA: the video has a frame to show. */
const HAVE_CURRENT_DATA = 2;
/** Row pitch alignment of copyTextureToBuffer (WebGPU: bytesPerRow a multiple of 256); every image starts at such an offset. */
const ROW_ALIGN = 256;

function browserKind(value: unknown): BrowserKind | null {
  if (value === null || typeof value !== 'object') return null;
  for (const kind of BROWSER_KINDS) {
    const constructor = (globalThis as Record<string, unknown>)[kind];
    if (typeof constructor === 'function' && value instanceof (constructor as new () => object)) return kind;
  }
  return null;
}

function looksRaw(value: unknown): value is RawImage {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return (v.data instanceof Uint8Array || v.data instanceof Uint8ClampedArray) && typeof v.width === 'number' && typeof v.height === 'number';
}

/** True for a browser image source (ImageData, ImageBitmap, canvas, image, video, VideoFrame) or a RawImage. */
export function isImageSource(value: unknown): boolean {
  return browserKind(value) !== null || looksRaw(value);
}


/** One source, checked: its kind, size and (for a RawImage) bytes per pixel and whether it is grey. */
interface Checked {
  kind: BrowserKind | 'RawImage';
  source: unknown;
  width: number;
  height: number;
  /** Bytes per pixel in the buffer: the RawImage's channels, 4 for a browser source. */
  channels: 1 | 3 | 4;
  /** Known grey (every pixel R = G = B), known colour, or to be checked on the GPU (null). */
  grey: boolean | null;
  /** A RawImage's colour pixels (for the message), else 0. */
  colourPixels: number;
}

function colourPixelsOf(data: Uint8Array | Uint8ClampedArray, channels: 3 | 4): number {
  let n = 0;
  for (let p = 0; p < data.length; p += channels) if (data[p] !== data[p + 1] || data[p + 1] !== data[p + 2]) n++;
  return n;
}

function checkRaw(where: string, raw: RawImage, countColour: boolean): Checked {
  const { data, width, height } = raw;
  const channels = raw.channels ?? 4;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) throw argumentError(OP, `${where}.width/height`, 'whole numbers of pixels', [width, height]);
  if (width === 0 || height === 0) throw new BayesError('INVALID_ARGUMENT', `${OP}: argument '${where}' expected an image of at least 1 x 1 pixels, got a zero-sized RawImage (${width} x ${height})`);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw argumentError(OP, `${where}.channels`, '1 (grey), 3 (RGB) or 4 (RGBA)', channels);
  if (data.length !== width * height * channels) {
    throw new BayesError('SHAPE_MISMATCH', `${OP}: argument '${where}.data' expected ${width * height * channels} bytes (${width} x ${height} x ${channels} channels), got ${data.length}`);
  }
  const colourPixels = channels === 1 || !countColour ? 0 : colourPixelsOf(data, channels);
  return { kind: 'RawImage', source: raw, width, height, channels, grey: channels === 1 || (countColour ? colourPixels === 0 : null), colourPixels };
}

/** The size a browser source copies at, after checking that it has pixels to copy now. */
function browserSize(where: string, kind: BrowserKind, source: unknown): [number, number] {
  const fail = (state: string) => new BayesError('INVALID_ARGUMENT', `${OP}: argument '${where}' expected an image with pixels, got ${state}`);
  switch (kind) {
    case 'HTMLVideoElement': {
      const v = source as HTMLVideoElement;
      if (v.readyState < HAVE_CURRENT_DATA || v.videoWidth === 0 || v.videoHeight === 0) {
        throw fail(`an HTMLVideoElement with no frame yet (readyState ${v.readyState} < HAVE_CURRENT_DATA (2), videoWidth ${v.videoWidth}); wait for its 'loadeddata' event`);
      }
      return [v.videoWidth, v.videoHeight];
    }
    case 'HTMLImageElement': {
      const img = source as HTMLImageElement;
      if (!img.complete || img.naturalWidth === 0 || img.naturalHeight === 0) throw fail(`an HTMLImageElement that is not loaded or failed to decode (complete ${img.complete}, naturalWidth ${img.naturalWidth}); await img.decode() first`);
      return [img.naturalWidth, img.naturalHeight];
    }
    case 'VideoFrame': {
      const f = source as VideoFrame;
      // A closed frame has format null and zero sizes (WebCodecs, VideoFrame.close()).
      if (f.format === null || f.displayWidth === 0 || f.displayHeight === 0) throw fail('a closed VideoFrame (close() was called, or it was transferred)');
      return [f.displayWidth, f.displayHeight];
    }
    case 'ImageBitmap': {
      const b = source as ImageBitmap;
      // A closed ImageBitmap reports 0 x 0 (HTML: close() sets the bitmap's width and height to 0).
      if (b.width === 0 || b.height === 0) throw fail('a closed or empty ImageBitmap (0 x 0: close() was called, or it was transferred)');
      return [b.width, b.height];
    }
    default: {
      const c = source as { width: number; height: number };
      if (c.width === 0 || c.height === 0) throw fail(`a zero-sized ${kind} (${c.width} x ${c.height})`);
      return [c.width, c.height];
    }
  }
}

interface Settings {
  resize: ResizeFilter;
  invert: boolean;
  centerByMass: boolean;
  mean: number[] | undefined;
  std: number[] | undefined;
  grey: boolean;
  region: ImageRegion | null;
}

/** The model's saved preprocessing, overridden by the per-call options that are given (not undefined). */
function settingsOf(model: BuiltModel, options: ImageOptions, channels: number): Settings {
  if (options === null || typeof options !== 'object') throw argumentError(OP, 'options', 'an options object { resize?, invert?, centerByMass?, mean?, std?, grey?, region? }', options);
  const saved: Preprocessing = model.modelOptions.preprocessing ?? {};
  const pick = <K extends keyof ImageOptions>(key: K): ImageOptions[K] => (options[key] !== undefined ? options[key] : (saved as ImageOptions)[key]);
  const where = (key: string) => (options[key as keyof ImageOptions] !== undefined ? `options.${key}` : `the model's preprocessing.${key}`);
  const resize = pick('resize') ?? 'area';
  if (resize !== 'area' && resize !== 'bilinear' && resize !== 'nearest') throw argumentError(OP, where('resize'), "'area', 'bilinear' or 'nearest'", resize);
  const flag = (key: 'invert' | 'centerByMass' | 'grey'): boolean => {
    const v = pick(key);
    if (v !== undefined && typeof v !== 'boolean') throw argumentError(OP, where(key), 'a boolean', v);
    return v ?? false;
  };
  const perChannel = (key: 'mean' | 'std'): number[] | undefined => {
    const v = pick(key);
    if (v === undefined) return undefined;
    const positive = key === 'std';
    if (!Array.isArray(v) || v.length !== channels || v.some((x) => typeof x !== 'number' || !Number.isFinite(x) || (positive && !(x > 0)))) {
      throw argumentError(OP, where(key), `${channels} ${positive ? 'positive ' : ''}finite number${channels > 1 ? 's' : ''} (one per channel of the model's input)`, v);
    }
    return [...v];
  };
  const grey = flag('grey');
  if (grey && channels !== 1) throw argumentError(OP, where('grey'), `false or undefined for a model whose input has ${channels} channels (grey: true turns colour images grey for a 1-channel model)`, true);
  let region: ImageRegion | null = null;
  if (options.region !== undefined) {
    const r = options.region;
    if (r === null || typeof r !== 'object') throw argumentError(OP, 'options.region', '{ x, y, width, height } in source pixels', r);
    for (const key of ['x', 'y'] as const) checkNumber(OP, `options.region.${key}`, r[key]);
    for (const key of ['width', 'height'] as const) checkNumber(OP, `options.region.${key}`, r[key], (v) => Number.isFinite(v) && v > 0, 'a positive finite number of pixels');
    region = { x: r.x, y: r.y, width: r.width, height: r.height };
  }
  return { resize, invert: flag('invert'), centerByMass: flag('centerByMass'), mean: perChannel('mean'), std: perChannel('std'), grey, region };
}

/**
 * Images -> [N, ...model.inputShape] on the model's context, preprocessed on the GPU: resized to
 * the input's H x W ('area' by default: the average over each output pixel when shrinking, so thin
 * strokes keep their ink, bilinear when enlarging), grey (BT.601 luma) or RGB as the model's
 * channels, scaled to [0, 1], optionally inverted and centred by mass, normalized per channel
 * (see Preprocessing). `model.modelOptions.preprocessing` gives the defaults, `options` override
 * them. The model's input must be [1 | 3, H, W]; the sources may have different sizes (a
 * `region` applies to each). Alpha is not read: a pixel counts as its colour, not premultiplied (a
 * canvas's untouched pixels are transparent black, so they count as black); flatten a transparent
 * image onto its background first.
 *
 * @example
 * const x = await imagesToTensor(model, [canvas], { invert: true, centerByMass: true }); // [1, 1, 28, 28]
 */
export async function imagesToTensor(model: BuiltModel, sources: readonly unknown[], options: ImageOptions = {}): Promise<Tensor> {
  // ------------------------------------------------ checks: nothing is allocated before they pass
  if (model === null || typeof model !== 'object' || !(model as BuiltModel).isModel) throw argumentError(OP, 'model', 'a model (a Sequential built on a context)', model);
  const inputShape = model.inputShape;
  if (inputShape.length !== 3 || (inputShape[0] !== 1 && inputShape[0] !== 3)) {
    throw new BayesError('SHAPE_MISMATCH', `${OP}: images need a model whose input is [1 | 3, H, W] (grey or RGB images), but this model's input is [${inputShape.join(', ')}]`);
  }
  const [channels, height, width] = inputShape as [1 | 3, number, number];
  const expects = `the model's input [${channels}, ${height}, ${width}] (${channels === 1 ? 'grey' : 'RGB'} images, any size)`;
  if (!Array.isArray(sources) || sources.length === 0) throw argumentError(OP, 'sources', `a non-empty array of image sources for ${expects}`, Array.isArray(sources) ? 'an empty array' : sources);
  const settings = settingsOf(model, options, channels);
  const ctx = model.ctx;
  const maxSide = ctx.limits.maxTextureDimension2D;
  const checked: Checked[] = sources.map((source, i) => {
    const where = `sources[${i}]`;
    const kind = browserKind(source);
    if (kind === null) {
      if (!looksRaw(source)) throw argumentError(OP, where, `${SOURCE_KINDS} for ${expects}`, source);
      return checkRaw(where, source, channels === 1 && !settings.grey);
    }
    const [w, h] = browserSize(where, kind, source);
    if (w > maxSide || h > maxSide) throw new BayesError('ADAPTER_LIMIT', `${OP}: argument '${where}' is ${w} x ${h} pixels, larger than this adapter's textures (maxTextureDimension2D ${maxSide}); draw it smaller first`);
    return { kind, source, width: w, height: h, channels: 4, grey: null, colourPixels: 0 };
  });
  if (channels === 1 && !settings.grey) {
    const colour = checked.findIndex((c) => c.grey === false);
    if (colour >= 0) throw colourError(checked, colour, checked[colour].colourPixels, expects);
  }

  // The buffer layout: every image at a multiple of 256 bytes; a browser source's rows 256-aligned (copyTextureToBuffer).
  const align = (n: number) => Math.ceil(n / ROW_ALIGN) * ROW_ALIGN;
  let bytes = 0;
  const layouts: ImageLayout[] = checked.map((c) => {
    const pitch = c.kind === 'RawImage' ? c.width * c.channels : align(c.width * 4);
    const offset = bytes;
    bytes = align(offset + pitch * c.height);
    const r = settings.region ?? { x: 0, y: 0, width: c.width, height: c.height };
    return { offset, width: c.width, height: c.height, pitch, channels: c.channels, region: [r.x, r.y, r.width, r.height] };
  });
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  if (bytes > limit) throw new BayesError('ADAPTER_LIMIT', `${OP}: the ${checked.length} images take ${bytes} bytes on the GPU, more than this adapter's buffers hold (${limit}); give them in smaller batches`);

  // ----------------------------------------------------------------------------- upload
  const pixels = ctx.empty<'u32'>([bytes / 4], 'u32');
  let table: Tensor<'u32'> | null = null;
  try {
    table = ctx.tensor(imageTable(layouts), [layouts.length * IMAGE_TABLE_WORDS], 'u32');
    if (checked.some((c) => c.kind === 'RawImage')) {
      const host = new Uint8Array(bytes);
      checked.forEach((c, i) => {
        if (c.kind === 'RawImage') host.set((c.source as RawImage).data, layouts[i].offset);
      });
      ctx.write(pixels, new Uint32Array(host.buffer));
    }
    const browser = checked.map((c, i) => [c, i] as const).filter(([c]) => c.kind !== 'RawImage');
    if (browser.length > 0) await copyBrowserSources(ctx.device, browser.map(([c, i]) => ({ checked: c, layout: layouts[i], where: `sources[${i}]` })), pixels.buffer, () => ctx.flush());

    // The colour check of browser sources needs their pixels: on the GPU, before the output exists.
    if (channels === 1 && !settings.grey && checked.some((c) => c.grey === null)) {
      const counts = colourPixelCounts(pixels, table, { count: checked.length, maxHeight: Math.max(...checked.map((c) => c.height)) });
      let values: Float32Array;
      try {
        values = (await counts.read()) as Float32Array;
      } finally {
        counts.dispose();
      }
      const colour = checked.findIndex((c, i) => c.grey === null && values[i] > 0);
      if (colour >= 0) throw colourError(checked, colour, values[colour], expects);
    }

    return preprocessImages(pixels, table, {
      count: checked.length, height, width, channels, resize: settings.resize, invert: settings.invert, centerByMass: settings.centerByMass, mean: settings.mean, std: settings.std,
    });
  } finally {
    // Safe before the recorded work runs: a pooled buffer handed out again is only written by work recorded later.
    pixels.dispose();
    table?.dispose();
  }
}

function colourError(checked: Checked[], i: number, colourPixels: number, expects: string): BayesError {
  const c = checked[i];
  return new BayesError(
    'INVALID_ARGUMENT',
    `${OP}: argument 'sources[${i}]' is a colour image (${colourPixels} of its ${c.width * c.height} pixels have R, G, B not all equal; a ${c.kind} of ${c.width} x ${c.height}), but ${expects} is grey; pass { grey: true } to convert it by its luma (ITU-R BT.601), or give a grey image`,
  );
}

interface BrowserCopy {
  checked: Checked;
  layout: ImageLayout;
  where: string;
}

/**
 * Each browser source -> an rgba8unorm texture (copyExternalImageToTexture: colour as stored, not
 * premultiplied by alpha, top row first) -> its rows in `buffer` (copyTextureToBuffer), in one
 * submit after the context's recorded work (`flush`, called just before the submit), so that work
 * that still reads a pooled buffer runs before the copy overwrites it.
 *
 * A video frame the browser cannot copy directly (Chromium on a software adapter such as
 * SwiftShader answers OperationError for every VideoFrame and video element) is first made an
 * ImageBitmap, which it can copy: the same pixels, one more copy inside the browser.
 */
async function copyBrowserSources(device: GPUDevice, copies: BrowserCopy[], buffer: GPUBuffer, flush: () => void): Promise<void> {
  const textures: GPUTexture[] = [];
  try {
    const encoder = device.createCommandEncoder({ label: 'bayesgpu images' });
    for (const { checked, layout, where } of copies) {
      const size = [checked.width, checked.height];
      const texture = device.createTexture({
        label: `bayesgpu image ${where}`, size, format: 'rgba8unorm',
        // RENDER_ATTACHMENT: copyExternalImageToTexture requires it of its destination.
        usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC | GPUTextureUsage.RENDER_ATTACHMENT,
      });
      textures.push(texture);
      const copy = (source: GPUCopyExternalImageSource) => device.queue.copyExternalImageToTexture({ source, flipY: false }, { texture, premultipliedAlpha: false }, size);
      try {
        try {
          copy(checked.source as GPUCopyExternalImageSource);
        } catch (e) {
          const video = checked.kind === 'VideoFrame' || checked.kind === 'HTMLVideoElement';
          if (!video || (e as { name?: string })?.name !== 'OperationError' || typeof createImageBitmap !== 'function') throw e;
          const bitmap = await createImageBitmap(checked.source as ImageBitmapSource, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
          try {
            copy(bitmap);
          } finally {
            bitmap.close();
          }
        }
      } catch (e) {
        // A canvas tainted by a cross-origin image (SecurityError), a source detached meanwhile (InvalidStateError).
        const err = e as { name?: string; message?: string };
        throw new BayesError('INVALID_ARGUMENT', `${OP}: argument '${where}' (a ${checked.kind} of ${checked.width} x ${checked.height}) could not be copied to the GPU: ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`);
      }
      encoder.copyTextureToBuffer({ texture }, { buffer, offset: layout.offset, bytesPerRow: layout.pitch, rowsPerImage: checked.height }, size);
    }
    flush();
    device.queue.submit([encoder.finish()]);
  } finally {
    // Destroyed once the submitted copies are done (WebGPU keeps a texture alive for work already submitted).
    for (const t of textures) t.destroy();
  }
}
