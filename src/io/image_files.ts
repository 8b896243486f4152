/**
 * Image files for `bayesgpu predict` and Node's readImageFile: PNG (fast-png) and JPEG (jpeg-js) decoded into RawImage
 * pixels, the form the library's image path takes (src/nn/image_input.ts); a folder stands for its
 * .png/.jpg/.jpeg files in name order. Everything here runs on the CPU, so a bad file is reported
 * before the GPU is touched.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import jpeg from 'jpeg-js';
import { hasPngSignature } from 'fast-png';
import { BayesError } from '../errors.js';
import type { RawImage } from '../nn/image_input.js';
import { decodePngPixels } from '../uncertainty/ood.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/**
 * jpeg-js guards: a JPEG declaring more pixels than this, or needing more memory to decode, is
 * refused before it allocates (a 100-megapixel photo is 400 MB of RGBA).
 */
const JPEG_LIMITS = { maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 };

const badFile = (message: string) => new BayesError('BAD_FILE', message);

/** The files the arguments name: a file as it is, a folder as its image files sorted by name. */
export async function expandImagePaths(args: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const arg of args) {
    let info;
    try {
      info = await stat(arg);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new BayesError('DATA_NOT_FOUND', `image '${arg}' does not exist (expected a PNG or JPEG file, or a folder of them)`);
      throw badFile(`cannot read image '${arg}': ${(err as Error).message}`);
    }
    if (info.isDirectory()) {
      const names = (await readdir(arg)).filter((n) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(n).toLowerCase())).sort();
      if (names.length === 0) throw new BayesError('DATA_NOT_FOUND', `folder '${arg}' has no ${IMAGE_EXTENSIONS.join(', ')} files`);
      files.push(...names.map((n) => join(arg, n)));
    } else {
      files.push(arg);
    }
  }
  return files;
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Pixels of a colour image whose R, G and B are not all equal (0 for a grey image), as the library's grey check counts them. */
export function colourPixels(image: RawImage): number {
  const c = image.channels ?? 4;
  if (c === 1) return 0;
  let n = 0;
  for (let i = 0; i < image.data.length; i += c) if (image.data[i] !== image.data[i + 1] || image.data[i + 1] !== image.data[i + 2]) n++;
  return n;
}

/** PNG or JPEG bytes -> RawImage (grey, RGB or RGBA bytes, row-major); `name` is the file, for messages. */
export function decodeImage(bytes: Uint8Array, name: string): RawImage {
  if (hasPngSignature(bytes)) {
    let png;
    try {
      png = decodePngPixels(bytes, name);
    } catch (err) {
      throw badFile(`'${name}' is not a valid PNG file (${String((err as Error).message).replace(/^decodePngPixels: /, '')})`);
    }
    const { data, width, height, channels } = png;
    if (channels === 2) {
      // Grey + alpha: RGBA with the grey replicated, so the image path handles alpha as for any RGBA image.
      const rgba = new Uint8Array(width * height * 4);
      for (let p = 0; p < width * height; p++) rgba.set([data[2 * p], data[2 * p], data[2 * p], data[2 * p + 1]], 4 * p);
      return { data: rgba, width, height, channels: 4 };
    }
    return { data, width, height, channels: channels as 1 | 3 | 4 };
  }
  if (isJpeg(bytes)) {
    let decoded;
    try {
      decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, ...JPEG_LIMITS });
    } catch (err) {
      throw badFile(`'${name}' is not a valid JPEG file (${String((err as Error)?.message ?? err)})`);
    }
    if (!(decoded.width > 0 && decoded.height > 0) || decoded.data.length !== decoded.width * decoded.height * 4) {
      throw badFile(`'${name}' is not a valid JPEG file (decoded to ${decoded.width} x ${decoded.height} with ${decoded.data.length} bytes)`);
    }
    return { data: decoded.data, width: decoded.width, height: decoded.height, channels: 4 };
  }
  const head = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw badFile(`'${name}' is not a PNG or JPEG file (it starts with ${bytes.length ? `bytes ${head}` : 'nothing: it is empty'})`);
}

export async function readImageFile(path: string): Promise<RawImage> {
  let bytes;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    throw badFile(`cannot read image '${path}': ${(err as Error).message}`);
  }
  return decodeImage(bytes, path);
}

/**
 * The decoded images of `files`, all decoded now (so every bad file is found before any GPU work),
 * kept in memory up to `keepBytes` of pixels; the rest are decoded again when their batch comes.
 */
export class ImageFiles {
  private constructor(readonly files: string[], private readonly kept: (RawImage | null)[]) {}

  static async decode(files: string[], keepBytes = 512 * 2 ** 20): Promise<ImageFiles> {
    const kept: (RawImage | null)[] = [];
    let bytes = 0;
    for (const file of files) {
      const image = await readImageFile(file);
      bytes += image.data.length;
      kept.push(bytes <= keepBytes ? image : null);
    }
    return new ImageFiles(files, kept);
  }

  get count(): number {
    return this.files.length;
  }

  /** The images from `from` to `to` (exclusive). */
  async slice(from: number, to: number): Promise<RawImage[]> {
    const out: RawImage[] = [];
    for (let i = from; i < to; i++) out.push(this.kept[i] ?? (await readImageFile(this.files[i])));
    return out;
  }
}
