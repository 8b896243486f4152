/**
 * What `model.predict` accepts, turned into batches [n, ...inputShape] on the model's context:
 * - a Tensor [B, ...inputShape], or [...inputShape] for one example;
 * - values with a shape, `{ data, shape }` (a typed array or a number[], shape [B, ...inputShape]
 *   or [...inputShape]);
 * - a data set `{ x, count, shape, labels? }` (a FloatDataset, an OOD set): `count` examples of
 *   `shape`, which must be the model's input shape;
 * - images: one image source (ImageData, ImageBitmap, a canvas, an image, a video, a VideoFrame or
 *   decoded pixels, see nn/image_input.ts) or an array of them, preprocessed on the GPU.
 *
 * `inputBatches` checks everything on the CPU and allocates nothing: a wrong kind, rank or shape
 * is one BayesError naming what the model expects and what was given, before any GPU work. The
 * batches are made when asked for, so a large data set is never on the GPU at once.
 */
import { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt } from '../errors.js';
import { type ImageOptions, type RawImage, imagesToTensor, isImageSource } from './image_input.js';
import { shapeString } from './module.js';
import type { BuiltModel } from './model.js';

/** One image from the page or from a decoder (see nn/image_input.ts). */
export type ImageInput = RawImage | ImageData | ImageBitmap | HTMLCanvasElement | OffscreenCanvas | HTMLImageElement | HTMLVideoElement | VideoFrame;

export type TypedArray = Float32Array | Float64Array | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array;

/** Values on the CPU with their shape: [B, ...inputShape], or [...inputShape] for one example. */
export interface ArrayInput {
  data: TypedArray | readonly number[];
  shape: readonly number[];
}

/** A data set: `count` examples of one shape, row-major (labels, when given, come back with the prediction). */
export interface DatasetInput {
  x: Float32Array;
  count: number;
  /** One example's shape: the model's input shape. */
  shape: readonly number[];
  labels?: ArrayLike<number>;
}

/** Everything `model.predict` takes. */
export type ModelInput = Tensor | ArrayInput | DatasetInput | ImageInput | readonly ImageInput[];

/** An input, checked and ready to be cut into batches. */
export interface InputBatches {
  /** Examples N. */
  count: number;
  /** A data set's labels, or null. */
  labels: Uint32Array | null;
  /** Examples [from, from + n) as a tensor [n, ...inputShape] on the model's context; give it back with `release`. */
  batch(from: number, n: number): Promise<Tensor>;
  /** Frees what `batch` made (never the caller's own tensor). */
  release(x: Tensor): void;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);
}

function describe(value: unknown): string {
  if (value instanceof Tensor) return `a Tensor of shape ${shapeString(value.shape)}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length} (first: ${describe(value[0])})`;
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name && name !== 'Object' ? name : `an object with keys { ${Object.keys(value).join(', ')} }`;
  }
  return `${typeof value} ${String(value)}`;
}

/** What the model takes, for the messages: "[B, 1, 32, 32] (or [1, 32, 32] for one example)". */
function expectedShape(inputShape: readonly number[]): string {
  return `[B, ${inputShape.join(', ')}] (or ${shapeString(inputShape)} for one example)`;
}

/** Examples in `shape`: its leading B when it is [B, ...inputShape], 1 when it is [...inputShape]; null when it is neither. */
function examplesOf(shape: readonly number[], inputShape: readonly number[]): number | null {
  const per = shape.length === inputShape.length + 1 ? shape.slice(1) : shape.length === inputShape.length ? shape : null;
  if (per === null || per.some((d, i) => d !== inputShape[i])) return null;
  return shape.length === inputShape.length ? 1 : shape[0];
}

function shapeMismatch(op: string, argument: string, inputShape: readonly number[], given: readonly number[]): BayesError {
  return new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' expected shape ${expectedShape(inputShape)}, got ${shapeString(given)}`);
}

/**
 * Checks `input` against `model.inputShape` (CPU only, nothing allocated) and returns its batches.
 * `image` holds the per-call image settings for image inputs.
 */
export function inputBatches(op: string, model: BuiltModel, input: ModelInput, options: { image?: ImageOptions } = {}): InputBatches {
  const inputShape = model.inputShape;
  const per = inputShape.reduce((a, b) => a * b, 1);
  const ctx = model.ctx;

  if (input instanceof Tensor) {
    ctx.own(op, 'input', input);
    if (input.dtype !== 'f32') throw argumentError(op, 'input', "a tensor of dtype 'f32'", input.dtype);
    const count = examplesOf(input.shape, inputShape);
    if (count === null) throw shapeMismatch(op, 'input', inputShape, input.shape);
    const single = input.shape.length === inputShape.length;
    // The tensor is used as it is when it fits in one batch. There is no row-slice kernel, so a tensor
    // larger than the batch is read back once and uploaded batch by batch: the same batches, and so the
    // same random keys, as the same values given on the CPU (the read is small next to T forward passes).
    let host: Promise<Float32Array> | null = null;
    return {
      count, labels: null,
      async batch(from, n) {
        if (from === 0 && n === count) return single ? input.reshape([1, ...inputShape]) : input;
        host ??= input.read() as Promise<Float32Array>;
        return ctx.tensor((await host).subarray(from * per, (from + n) * per), [n, ...inputShape]);
      },
      release(x) {
        if (x !== input) x.dispose();
      },
    };
  }

  const images = isImageSource(input) ? [input] : Array.isArray(input) && input.length > 0 && input.every((v) => isImageSource(v)) ? (input as readonly unknown[]) : null;
  if (images) {
    return {
      count: images.length, labels: null,
      async batch(from, n) {
        const x = await imagesToTensor(model, images.slice(from, from + n), options.image ?? {});
        if (x.shape.length !== inputShape.length + 1 || x.shape[0] !== n || x.shape.slice(1).some((d, i) => d !== inputShape[i])) {
          x.dispose();
          throw new BayesError('SHAPE_MISMATCH', `${op}: the images became a tensor of shape ${shapeString(x.shape)}, but the model expects [${n}, ${inputShape.join(', ')}]`);
        }
        return x;
      },
      release: (x) => x.dispose(),
    };
  }

  if (isObject(input) && 'x' in input && 'count' in input) return datasetBatches(op, model, input as unknown as DatasetInput);

  if (isObject(input) && 'data' in input && 'shape' in input) {
    const { data, shape } = input as unknown as ArrayInput;
    if (!isTypedArray(data) && !Array.isArray(data)) throw argumentError(op, 'input.data', 'a typed array or an array of numbers', data);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1)) throw argumentError(op, 'input.shape', `an array of positive integers such as ${expectedShape(inputShape)}`, shape);
    const count = examplesOf(shape, inputShape);
    if (count === null) throw shapeMismatch(op, 'input.shape', inputShape, shape);
    if (data.length !== count * per) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'input.data' expected ${count * per} values for shape ${shapeString(shape)}, got ${data.length}`);
    }
    if (Array.isArray(data)) {
      const bad = data.findIndex((v) => typeof v !== 'number');
      if (bad >= 0) throw argumentError(op, `input.data[${bad}]`, 'a number', data[bad]);
    }
    return {
      count, labels: null,
      batch: async (from, n) => ctx.tensor(isTypedArray(data) ? data.subarray(from * per, (from + n) * per) : data.slice(from * per, (from + n) * per), [n, ...inputShape]),
      release: (x) => x.dispose(),
    };
  }

  const hint = isTypedArray(input) || (Array.isArray(input) && input.length > 0 && typeof input[0] === 'number') ? ` (give the values their shape: { data, shape: [B, ${inputShape.join(', ')}] })` : '';
  throw new BayesError(
    'INVALID_ARGUMENT',
    `${op}: argument 'input' expected a Tensor ${expectedShape(inputShape)}, values { data, shape: [B, ${inputShape.join(', ')}] }, a data set { x, count, shape: ${shapeString(inputShape)}, labels? } or image sources (ImageData, ImageBitmap, canvas, image, video, VideoFrame, decoded pixels, or an array of them), got ${describe(input)}${hint}`,
  );
}

function datasetBatches(op: string, model: BuiltModel, data: DatasetInput): InputBatches {
  const inputShape = model.inputShape;
  const count = checkInt(op, 'input.count', data.count, 1);
  const { shape } = data;
  if (!Array.isArray(shape) || shape.length !== inputShape.length || shape.some((d, i) => d !== inputShape[i])) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'input.shape' (one example's shape in a data set) expected ${shapeString(inputShape)}, got ${Array.isArray(shape) ? shapeString(shape) : describe(shape)}`);
  }
  const per = inputShape.reduce((a, b) => a * b, 1);
  if (!(data.x instanceof Float32Array) || data.x.length !== count * per) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'input.x' expected a Float32Array of ${count * per} values (${count} examples of ${shapeString(shape)}), got ${data.x instanceof Float32Array ? `${data.x.length} values` : describe(data.x)}`);
  }
  let labels: Uint32Array | null = null;
  if (data.labels !== undefined && data.labels !== null) {
    const given = data.labels;
    if (!isObject(given) || typeof given.length !== 'number') throw argumentError(op, 'input.labels', 'an array of class indices', given);
    if (given.length !== count) throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'input.labels' expected ${count} labels (one per example), got ${given.length}`);
    for (let i = 0; i < count; i++) if (!Number.isInteger(given[i]) || given[i] < 0) throw argumentError(op, `input.labels[${i}]`, 'a class index (an integer >= 0)', given[i]);
    labels = Uint32Array.from(given);
  }
  const ctx = model.ctx;
  return {
    count, labels,
    batch: async (from, n) => ctx.tensor(data.x.subarray(from * per, (from + n) * per), [n, ...inputShape]),
    release: (x) => x.dispose(),
  };
}
