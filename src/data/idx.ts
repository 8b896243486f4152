/**
 * IDX files, the container of MNIST and Fashion-MNIST (LeCun et al.,
 * http://yann.lecun.com/exdb/mnist/, "FILE FORMATS FOR THE MNIST DATABASE"):
 *
 *   bytes 0-1   0x00 0x00
 *   byte  2     element type: 0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
 *   byte  3     number of dimensions d
 *   4 * d       each dimension as a big-endian uint32
 *   then        the elements, row-major, big-endian
 *
 * parseIdx reads plain bytes; decodeIdx also accepts gzip-compressed bytes and Blobs.
 */
import { BayesError } from '../errors.js';
import { type ByteSource, isGzip, maybeGunzip, toBytes } from './bytes.js';

export type IdxDType = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  shape: number[];
  /** The elements in native byte order; for u8 a view into the input bytes (no copy). */
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDType; size: number }> = {
  0x08: { dtype: 'u8', size: 1 },
  0x09: { dtype: 'i8', size: 1 },
  0x0b: { dtype: 'i16', size: 2 },
  0x0c: { dtype: 'i32', size: 4 },
  0x0d: { dtype: 'f32', size: 4 },
  0x0e: { dtype: 'f64', size: 8 },
};

function hex(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Parses an uncompressed IDX file. `name` (the file name) prefixes every error message. */
export function parseIdx(bytes: Uint8Array, name = 'IDX data'): IdxArray {
  const fail = (what: string) => new BayesError('BAD_FILE', `${name}: ${what}`);
  if (isGzip(bytes)) throw fail('is gzip-compressed; use decodeIdx (or gunzip it first)');
  if (bytes.length < 4) throw fail(`truncated: ${bytes.length} bytes, an IDX header needs at least 4`);
  if (bytes[0] !== 0 || bytes[1] !== 0) throw fail(`bad magic: expected 00 00 <type> <dims>, got ${hex(bytes, 4)}`);
  const type = TYPES[bytes[2]];
  if (!type) throw fail(`bad magic: unknown element type 0x${bytes[2].toString(16).padStart(2, '0')} (known: 08, 09, 0b, 0c, 0d, 0e)`);
  const ndims = bytes[3];
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) throw fail(`truncated: header declares ${ndims} dimensions (${headerBytes} bytes), file has ${bytes.length} bytes`);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  const dataBytes = count * type.size;
  const have = bytes.length - headerBytes;
  if (have < dataBytes) {
    throw fail(`truncated: shape [${shape.join(', ')}] of ${type.dtype} needs ${dataBytes} data bytes, file has ${have}`);
  }
  if (have > dataBytes) {
    throw fail(`size mismatch: shape [${shape.join(', ')}] of ${type.dtype} needs ${dataBytes} data bytes, file has ${have} (${have - dataBytes} extra)`);
  }

  const begin = headerBytes;
  let data: IdxData;
  switch (type.dtype) {
    case 'u8':
      data = bytes.subarray(begin, begin + count);
      break;
    case 'i8':
      data = new Int8Array(bytes.buffer, bytes.byteOffset + begin, count);
      break;
    case 'i16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(begin + 2 * i, false);
      data = out;
      break;
    }
    case 'i32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(begin + 4 * i, false);
      data = out;
      break;
    }
    case 'f32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(begin + 4 * i, false);
      data = out;
      break;
    }
    case 'f64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(begin + 8 * i, false);
      data = out;
      break;
    }
  }
  return { dtype: type.dtype, shape, data };
}

/** Parses IDX bytes that may be gzip-compressed (detected by the 1f 8b magic). */
export async function decodeIdx(source: ByteSource, name = 'IDX data'): Promise<IdxArray> {
  const bytes = await toBytes('decodeIdx', source);
  return parseIdx(await maybeGunzip(bytes, name), name);
}
