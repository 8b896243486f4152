/**
 * The pad's drawing becomes a model input the way MNIST's digits were made (LeCun et al. 1998,
 * section III.A): "size normalized to fit in a 20x20 pixel box while preserving their aspect
 * ratio", then "centered in a 28x28 image by computing the center of mass of the pixels". The
 * library does the image work on the GPU (imagesToTensor: area resize, centring by mass); the page
 * only says which part of the pad to take: the square around the ink whose side is 28/20 of the
 * ink's longer side, so that the digit fills MNIST's 20 of 28 pixels of the input.
 */
import { type ImageOptions, type ImageRegion, type RawImage, type Sequential, type Tensor, imagesToTensor } from '../src/index.js';

/** MNIST's field and the box its digits were scaled into: the ink's longer side becomes 20/28 of the input. */
export const MNIST_SIZE = 28;
export const MNIST_BOX = 20;
/** Red levels (0..255) at or below this do not count as ink (canvas anti-aliasing leaves faint edges). */
export const INK_THRESHOLD = 12;

export interface Box {
  /** Columns x0 <= x < x1, rows y0 <= y < y1. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The smallest box holding every pixel whose red level is above `threshold` (white ink on black), or null for a blank pad. */
export function inkBox(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, threshold = INK_THRESHOLD): Box | null {
  if (rgba.length !== width * height * 4) throw new Error(`inkBox: expected ${width * height * 4} RGBA bytes for ${width}x${height}, got ${rgba.length}`);
  let x0 = width;
  let y0 = height;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (rgba[4 * (y * width + x)] > threshold) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        if (y >= y1) y1 = y + 1;
      }
    }
  }
  return x1 > x0 ? { x0, y0, x1, y1 } : null;
}

/** The square around `box`, centred on it, whose side is 28/20 of the box's longer side (it may reach past the pad). */
export function mnistRegion(box: Box): ImageRegion {
  const side = (Math.max(box.x1 - box.x0, box.y1 - box.y0) * MNIST_SIZE) / MNIST_BOX;
  return { x: (box.x0 + box.x1 - side) / 2, y: (box.y0 + box.y1 - side) / 2, width: side, height: side };
}

/**
 * The library's settings for a drawing with ink in `box`: that square, averaged down, centred by
 * mass. `grey: true` because the pad is grey already (white ink on black, grey anti-aliasing): the
 * luma of a grey pixel is its value, and the library then need not read the canvas back to check.
 */
export function drawingOptions(box: Box): ImageOptions {
  return { region: mnistRegion(box), resize: 'area', centerByMass: true, grey: true };
}

/** The model input [1, ...model.inputShape] of a drawing (a canvas, or its pixels) whose ink lies in `box`. */
export function drawingToInput(model: Sequential, drawing: HTMLCanvasElement | OffscreenCanvas | ImageData | RawImage, box: Box): Promise<Tensor> {
  return imagesToTensor(model, [drawing], drawingOptions(box));
}
