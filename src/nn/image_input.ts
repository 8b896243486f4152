/**
 * Images as model input: the seam between model.predict (src/nn/input.ts) and the image kernel
 * (src/ops/image.ts). Being written in this change; see the "images straight from the page".
 */
import type { Tensor } from '../gpu/tensor.js';
import { BayesError } from '../errors.js';
import type { Preprocessing, Sequential } from './sequential.js';

/** Decoded pixels from anywhere (PNG/JPEG files in Node, a canvas's getImageData): RGBA or grey bytes, row-major. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 4 (RGBA, default), 3 (RGB) or 1 (grey). */
  channels?: 1 | 3 | 4;
}

/** Per-call image settings; they override the model's saved preprocessing. */
export interface ImageOptions extends Preprocessing {
  /** Convert colour images to grey for a 1-channel model (required when a colour source meets a grey model). */
  grey?: boolean;
}

/** True for a browser image source (ImageData, ImageBitmap, canvas, image, video, VideoFrame) or a RawImage. */
export function isImageSource(value: unknown): boolean {
  void value;
  return false;
}

/** Images -> [N, ...model.inputShape] on the model's context, preprocessed on the GPU. */
export async function imagesToTensor(model: Sequential, sources: readonly unknown[], options: ImageOptions = {}): Promise<Tensor> {
  void model;
  void options;
  throw new BayesError('INVALID_ARGUMENT', `imagesToTensor: ${sources.length} image sources given, but image input is not wired yet`);
}
