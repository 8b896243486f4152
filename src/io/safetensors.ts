/**
 * The safetensors checkpoint format (Hugging Face,
 * https://huggingface.co/docs/safetensors; the reference reader is the Rust
 * crate `safetensors`):
 *
 *   8 bytes      N, the header length, unsigned 64-bit little-endian
 *   N bytes      UTF-8 JSON: { "__metadata__": { string: string }?,
 *                              name: { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
 *                padded with spaces (0x20) so that the data starts 8-byte aligned
 *   rest         the tensors' bytes, little-endian, row-major; offsets are relative to the start of
 *                this section, and the tensors tile it exactly (no gap, no overlap, nothing after)
 *
 * This module runs anywhere (browsers included). The Node file functions
 * (atomic saveFile, readFile) are in node_files.ts, kept apart so that the
 * browser bundle never reaches a Node built-in.
 */
import { BayesError, argumentError } from '../errors.js';
import { type ByteSource, toBytes } from '../data/bytes.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

export type TensorData =
  | Float64Array | Float32Array | BigInt64Array | BigUint64Array
  | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

/**
 * A tensor to encode. `data` must be the typed array of the dtype: F64 Float64Array,
 * F32 Float32Array, I64 BigInt64Array, U64 BigUint64Array, I32 Int32Array, U32
 * Uint32Array, I16 Int16Array, U16 Uint16Array, I8 Int8Array, U8 and BOOL (0/1)
 * Uint8Array. F16 and BF16 take either the raw 16-bit patterns (Uint16Array) or
 * a Float32Array, rounded to nearest even.
 */
export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: TensorData;
}

/**
 * A decoded tensor. `data` is always a Float32Array: F32 as stored; F64, F16 and
 * BF16 converted to float32 (F64 rounds to nearest; F16 and BF16 convert
 * exactly); integer and BOOL tensors as float32 values (exact up to 2^24).
 * Conversions happen when `data` is first read, so decoding allocates no more than the file.
 * `converted` says whether `data` differs in type from the file; `raw` holds
 * the file's exact little-endian bytes (for F32 it shares memory with `data`),
 * and rawValues() gives them as the dtype's own typed array.
 */
export interface DecodedTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array;
  converted: boolean;
  raw: Uint8Array;
}

export interface DecodedSafetensors {
  tensors: Map<string, DecodedTensor>;
  /** The `__metadata__` string map ({} when the file has none). */
  metadata: Record<string, string>;
}

const DTYPES = Object.keys(DTYPE_SIZE) as SafetensorsDType[];
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndian(op: string): void {
  // Typed arrays use the host's byte order; every current browser and Node platform is little-endian.
  if (!LITTLE_ENDIAN) throw new BayesError('BAD_FILE', `${op}: safetensors data is little-endian and this host is big-endian, which bayesgpu does not support`);
}

// ---------------------------------------------------------------------------
// float16 and bfloat16 conversions

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bit pattern -> float32 value (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24; // zero and subnormals: m * 2^-24
  if (e === 31) return m ? NaN : sign * Infinity;
  u32[0] = ((h & 0x8000) << 16) | ((e + 112) << 23) | (m << 13); // rebias 15 -> 127
  return f32[0];
}

/** float32 value -> binary16 bit pattern, rounded to nearest even; overflow gives infinity, NaN stays NaN. */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  const m = x & 0x7fffff;
  if (e === 255) return sign | 0x7c00 | (m ? 0x200 | (m >>> 13) : 0);
  const E = e - 112; // the binary16 biased exponent
  if (E >= 31) return sign | 0x7c00;
  if (E <= 0) {
    if (E < -10) return sign; // below half the smallest subnormal: rounds to zero
    // Subnormal result: the significand with its implicit bit, shifted to units of 2^-24.
    const M = m | 0x800000;
    const shift = 14 - E;
    const h = M >>> shift;
    const rem = M & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (h + (rem > half || (rem === half && h & 1) ? 1 : 0));
  }
  const h = sign | (E << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  // A carry out of the significand correctly bumps the exponent (up to infinity).
  return h + (rem > 0x1000 || (rem === 0x1000 && h & 1) ? 1 : 0);
}

/** bfloat16 bit pattern -> float32 value (exact: bfloat16 is the top half of a float32). */
export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** float32 value -> bfloat16 bit pattern, rounded to nearest even; NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
}

// ---------------------------------------------------------------------------
// encoding

const ARRAY_OF: Record<SafetensorsDType, { new (n: number): TensorData; name: string }> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array, U64: BigUint64Array,
  I32: Int32Array, U32: Uint32Array, I16: Int16Array, U16: Uint16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The tensor's bytes as they go into the file (F16/BF16 from a Float32Array converted here). */
function tensorBytes(op: string, name: string, t: TensorEntry): Uint8Array {
  const where = `tensor '${name}'`;
  if (typeof t !== 'object' || t === null) throw argumentError(op, where, 'an object { dtype, shape, data }', t);
  if (!DTYPES.includes(t.dtype)) throw argumentError(op, `${where}.dtype`, `one of ${DTYPES.join(', ')}`, t.dtype);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw argumentError(op, `${where}.shape`, 'an array of integers >= 0', t.shape);
  }
  const count = elementCount(t.shape);
  if (!ArrayBuffer.isView(t.data) || (t.data as { length?: number }).length !== count) {
    throw argumentError(op, `${where}.data`, `a typed array of ${count} elements (shape [${t.shape.join(', ')}])`, ArrayBuffer.isView(t.data) ? `${t.data.constructor.name} of ${(t.data as TensorData).length}` : t.data);
  }
  let data: TensorData = t.data;
  if ((t.dtype === 'F16' || t.dtype === 'BF16') && data instanceof Float32Array) {
    const bits = new Uint16Array(count);
    const convert = t.dtype === 'F16' ? f32ToF16 : f32ToBf16;
    for (let i = 0; i < count; i++) bits[i] = convert(data[i]);
    data = bits;
  }
  const want = ARRAY_OF[t.dtype];
  if (!(data instanceof want)) {
    const also = t.dtype === 'F16' || t.dtype === 'BF16' ? ' (raw bits) or Float32Array' : '';
    throw argumentError(op, `${where}.data`, `${want.name}${also} for dtype ${t.dtype}`, data);
  }
  if (t.dtype === 'BOOL') {
    for (let i = 0; i < count; i++) if (data[i] > 1) throw argumentError(op, `${where}.data[${i}]`, '0 or 1 for dtype BOOL', data[i]);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Encodes tensors (and an optional string metadata map) as a safetensors file.
 * Tensors are laid out by decreasing element size, then by name, so every
 * tensor starts at a multiple of its element size (as the Rust writer does);
 * readers find them by name, so the order is not visible otherwise.
 */
export function encodeSafetensors(tensors: Record<string, TensorEntry>, metadata?: Record<string, string>): Uint8Array {
  const op = 'encodeSafetensors';
  requireLittleEndian(op);
  if (typeof tensors !== 'object' || tensors === null) throw argumentError(op, 'tensors', 'an object { name: { dtype, shape, data } }', tensors);
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null) throw argumentError(op, 'metadata', 'an object of strings', metadata);
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw argumentError(op, `metadata['${k}']`, 'a string', v);
  }
  const entries = Object.entries(tensors).map(([name, t]) => {
    if (name === '__metadata__') throw argumentError(op, 'tensors', "no tensor named '__metadata__' (the name is reserved)", name);
    return { name, t, bytes: tensorBytes(op, name, t) };
  });
  entries.sort((a, b) => DTYPE_SIZE[b.t.dtype] - DTYPE_SIZE[a.t.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const { name, t, bytes } of entries) {
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true); // headers beyond 4 GiB are not a concern: the high word stays 0
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { bytes } of entries) {
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** Encodes to a Blob (application/octet-stream), e.g. for a browser download link. */
export function safetensorsBlob(tensors: Record<string, TensorEntry>, metadata?: Record<string, string>): Blob {
  return new Blob([encodeSafetensors(tensors, metadata) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
}

// ---------------------------------------------------------------------------
// decoding

/**
 * What a header may hold. Every size in a header is checked against these and
 * against the file before anything is allocated from it, so decoding a file of
 * n bytes allocates the n-byte copy of its data plus at most a bounded amount
 * for the header (its text and parsed values: fixed by these limits).
 */
export const SAFETENSORS_LIMITS = Object.freeze({
  /** Header bytes. The Rust reader allows 100 MB; the header of a 10,000-tensor file is about 1 MB. */
  headerBytes: 16 * 1024 * 1024,
  /**
   * JSON values in the header (every object, array, string and number): 7 to 10 per tensor, so about
   * 30,000 tensors. It keeps the worst header well under a second to parse on a slow, loaded machine.
   */
  headerValues: 250_000,
  /** Nesting of the header JSON: a valid header needs 3 (header, entry, shape). */
  depth: 16,
  /** Dimensions of one tensor. */
  rank: 64,
});

function toFloat32(dtype: SafetensorsDType, raw: Uint8Array): Float32Array {
  const buf = raw.buffer as ArrayBuffer; // raw is a fresh copy starting at offset 0, so every view is aligned
  const n = raw.length / DTYPE_SIZE[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, 0, n);
    case 'F16': {
      const bits = new Uint16Array(buf, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(bits[i]);
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place through a uint32 view.
      const bits = new Uint16Array(buf, 0, n);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = bits[i] << 16;
      return out;
    }
    case 'I64':
    case 'U64': {
      const src = dtype === 'I64' ? new BigInt64Array(buf, 0, n) : new BigUint64Array(buf, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      // F64 (rounded to nearest), the 8- to 32-bit integers and BOOL: the typed-array constructor converts.
      return new Float32Array(rawArray(dtype, raw) as Float64Array);
  }
}

function rawArray(dtype: SafetensorsDType, raw: Uint8Array): TensorData {
  const Ctor = ARRAY_OF[dtype] as unknown as { new (b: ArrayBuffer, o: number, n: number): TensorData };
  const size = DTYPE_SIZE[dtype];
  if (raw.byteOffset % size !== 0) {
    raw = raw.slice(); // re-align a view into a larger buffer
  }
  return new Ctor(raw.buffer as ArrayBuffer, raw.byteOffset, raw.length / size);
}

/** A decoded tensor's exact values in the dtype's own typed array (F16/BF16: Uint16Array of bit patterns). */
export function rawValues(tensor: DecodedTensor): TensorData {
  return rawArray(tensor.dtype, tensor.raw);
}

/** A JSON number that is not a small non-negative integer, kept as its text so that messages print it exactly. */
class JsonNumberText {
  constructor(readonly text: string) {}
}
type Json = null | boolean | number | string | JsonNumberText | Json[] | JsonObject;
type JsonObject = Map<string, Json>;

const MAX_SHOWN = 120;

/** A value for a message: JSON as written in the file (numbers exactly), cut after about 120 characters. */
function jsonText(value: Json | undefined, spaced = false): string {
  let out = '';
  const put = (v: Json | undefined): boolean => {
    if (out.length > MAX_SHOWN) return false;
    if (v === undefined) out += 'undefined';
    else if (v instanceof JsonNumberText) out += v.text;
    else if (v instanceof Map) {
      out += '{';
      let first = true;
      for (const [k, x] of v) {
        if (!first) out += ',';
        first = false;
        out += `${JSON.stringify(k)}:`;
        if (!put(x)) return false;
      }
      out += '}';
    } else if (Array.isArray(v)) {
      out += '[';
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out += spaced ? ', ' : ',';
        if (!put(v[i])) return false;
      }
      out += ']';
    } else out += JSON.stringify(v);
    return true;
  };
  put(value);
  return out.length > MAX_SHOWN ? `${out.slice(0, MAX_SHOWN)}…` : out;
}

/** A tensor or key name for a message, quoted; a very long one is cut (its length is given). */
export function quoteName(name: string): string {
  return name.length <= MAX_SHOWN ? `'${name}'` : `'${name.slice(0, MAX_SHOWN)}…' (a name of ${name.length} characters)`;
}

/**
 * A strict JSON parser for the header (RFC 8259). Unlike JSON.parse it refuses
 * a key given twice in one object (JSON.parse keeps the last silently, which
 * would let two entries claim one name), stops at SAFETENSORS_LIMITS, and keeps
 * numbers that are not small non-negative integers as their text. Objects
 * become Maps, so no key (not even "__proto__") is special.
 */
function parseHeader(text: string, fail: (what: string) => BayesError, invalid: (what: string) => BayesError): JsonObject {
  const n = text.length;
  let pos = 0;
  let values = 0;
  const error = (what: string, at = pos) => invalid(`${what} at character ${at}`);
  const space = () => {
    for (; pos < n; pos++) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    }
  };
  const found = () => (pos >= n ? 'the end of the header' : `${JSON.stringify(text[pos])}`);
  const string = (): string => {
    const start = pos++;
    let escapes = false;
    for (;;) {
      if (pos >= n) throw error('an unterminated string', start);
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escapes = true;
        pos += 2;
      } else if (c < 0x20) {
        throw error('a control character inside a string');
      } else pos++;
    }
    pos++;
    if (!escapes) return text.slice(start + 1, pos - 1);
    try {
      return JSON.parse(text.slice(start, pos)) as string; // the escapes, decoded and checked natively
    } catch {
      throw error('an invalid escape in a string', start);
    }
  };
  const digits = (): number => {
    const start = pos;
    while (pos < n && text.charCodeAt(pos) >= 0x30 && text.charCodeAt(pos) <= 0x39) pos++;
    if (pos === start) throw error(`a digit expected, found ${found()}`);
    return pos - start;
  };
  const number = (): number | JsonNumberText => {
    const start = pos;
    const negative = text.charCodeAt(pos) === 0x2d;
    if (negative) pos++;
    const length = text.charCodeAt(pos) === 0x30 ? (pos++, 1) : digits();
    let integer = !negative;
    if (text.charCodeAt(pos) === 0x2e) {
      pos++;
      digits();
      integer = false;
    }
    if ((text.charCodeAt(pos) | 0x20) === 0x65) {
      pos++;
      if (text.charCodeAt(pos) === 0x2b || text.charCodeAt(pos) === 0x2d) pos++;
      digits();
      integer = false;
    }
    const token = text.slice(start, pos);
    return integer && length <= 15 ? Number(token) : new JsonNumberText(token);
  };
  const value = (depth: number, owner: string): Json => {
    if (++values > SAFETENSORS_LIMITS.headerValues) throw fail(`the header holds more than ${SAFETENSORS_LIMITS.headerValues} JSON values (the limit)`);
    const c = text.charCodeAt(pos);
    if (c === 0x7b || c === 0x5b) {
      if (depth >= SAFETENSORS_LIMITS.depth) throw fail(`the header nests deeper than ${SAFETENSORS_LIMITS.depth} levels (in ${quoteName(owner)})`);
      return c === 0x7b ? object(depth + 1, owner) : array(depth + 1, owner);
    }
    if (c === 0x22) return string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return v;
      }
    }
    throw error(`a value expected, found ${found()}`);
  };
  const array = (depth: number, owner: string): Json[] => {
    pos++;
    const out: Json[] = [];
    space();
    if (text.charCodeAt(pos) === 0x5d) {
      pos++;
      return out;
    }
    for (;;) {
      space();
      out.push(value(depth, owner));
      space();
      const c = text.charCodeAt(pos++);
      if (c === 0x5d) return out;
      if (c !== 0x2c) throw error(`',' or ']' expected, found ${(pos--, found())}`);
    }
  };
  const object = (depth: number, owner: string): JsonObject => {
    pos++;
    const out: JsonObject = new Map();
    space();
    if (text.charCodeAt(pos) === 0x7d) {
      pos++;
      return out;
    }
    for (;;) {
      space();
      if (text.charCodeAt(pos) !== 0x22) throw error(`a key (a string) expected, found ${found()}`);
      const at = pos;
      const key = string();
      if (out.has(key)) {
        throw fail(depth === 1
          ? `the name ${quoteName(key)} appears twice in the header (again at character ${at})`
          : `the key ${quoteName(key)} appears twice in the entry of ${quoteName(owner)} (again at character ${at})`);
      }
      space();
      if (text.charCodeAt(pos) !== 0x3a) throw error(`':' expected, found ${found()}`);
      pos++;
      space();
      out.set(key, value(depth, depth === 1 ? key : owner));
      space();
      const c = text.charCodeAt(pos++);
      if (c === 0x7d) return out;
      if (c !== 0x2c) throw error(`',' or '}' expected, found ${(pos--, found())}`);
    }
  };

  if (text.charCodeAt(0) !== 0x7b) throw invalid(`it starts with ${JSON.stringify(text.slice(0, 8))}, not '{'`);
  values++;
  const header = object(1, '');
  space(); // the writer pads with spaces
  if (pos < n) throw error(`trailing ${found()} after the header object`);
  return header;
}

/** A JSON value that is an integer >= 0, exactly (BigInt), or null. */
function uint(v: Json): bigint | null {
  if (typeof v === 'number') return BigInt(v); // the parser makes numbers only of small non-negative integers
  if (v instanceof JsonNumberText && /^[0-9]+$/.test(v.text)) return BigInt(v.text);
  return null;
}

const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'];
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Decodes a safetensors file, validating it completely first: the header
 * length, the JSON (strictly: no key twice, within SAFETENSORS_LIMITS), every
 * tensor's dtype, shape and offsets, and that the tensors tile the data
 * section exactly. Every size is checked against the file before anything is
 * allocated from it. Every problem is a BayesError 'BAD_FILE' naming the
 * tensor concerned, with the file's numbers printed exactly. The result
 * shares no memory with `bytes`; non-F32 tensors convert to float32 when
 * `data` is first read. Values are not judged: NaN and infinities decode as
 * stored (loadCheckpoint refuses them in parameters).
 */
export function decodeSafetensors(bytes: Uint8Array | ArrayBuffer): DecodedSafetensors {
  const op = 'decodeSafetensors';
  requireLittleEndian(op);
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw argumentError(op, 'bytes', 'a Uint8Array or ArrayBuffer', bytes);
  // A plain view: subclasses such as Node's Buffer have a slice() that shares memory.
  bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (what: string) => new BayesError('BAD_FILE', `${op}: ${what}`);

  if (bytes.length < 8) throw bad(`truncated: ${bytes.length} bytes, less than the 8-byte header length`);
  const headerLength64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength64 > BigInt(bytes.length - 8)) {
    throw bad(`header length ${headerLength64} is beyond the file: only ${bytes.length - 8} bytes follow the length field (truncated file?)`);
  }
  if (headerLength64 > BigInt(SAFETENSORS_LIMITS.headerBytes)) {
    throw bad(`header length ${headerLength64} is over the limit of ${SAFETENSORS_LIMITS.headerBytes} bytes`);
  }
  const headerLength = Number(headerLength64);
  const invalid = (what: string) => bad(`the ${headerLength}-byte header is not valid UTF-8 JSON (${what})`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength)); // a BOM is kept, so refused: the header starts with '{'
  } catch (err) {
    throw invalid((err as Error).message);
  }
  const header = parseHeader(text, bad, invalid);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const layout: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of header) {
    if (name === '__metadata__') {
      if (!(entry instanceof Map)) throw bad(`'__metadata__' is ${jsonText(entry)}, not an object of strings`);
      for (const [k, v] of entry) {
        if (typeof v !== 'string') throw bad(`'__metadata__' entry ${quoteName(k)} is ${jsonText(v)}, not a string`);
        // defineProperty: an own property even for the key "__proto__"
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const t = `tensor ${quoteName(name)}`;
    if (!(entry instanceof Map)) throw bad(`${t}: entry is ${jsonText(entry)}, not { dtype, shape, data_offsets }`);
    for (const key of entry.keys()) {
      if (!ENTRY_KEYS.includes(key)) throw bad(`${t}: unknown key ${quoteName(key)} in its entry (an entry holds only dtype, shape and data_offsets)`);
    }
    const dtype = entry.get('dtype');
    const shape = entry.get('shape');
    const offsets = entry.get('data_offsets');
    if (!DTYPES.includes(dtype as SafetensorsDType)) throw bad(`${t}: unsupported dtype ${jsonText(dtype)} (supported: ${DTYPES.join(', ')})`);
    const size = DTYPE_SIZE[dtype as SafetensorsDType];
    const dims = Array.isArray(shape) ? shape.map(uint) : null;
    if (!Array.isArray(shape) || !dims || dims.some((d) => d === null)) throw bad(`${t}: shape ${jsonText(shape)} is not an array of integers >= 0`);
    if (dims.length > SAFETENSORS_LIMITS.rank) throw bad(`${t}: shape has ${dims.length} dimensions, more than the limit of ${SAFETENSORS_LIMITS.rank}`);
    const pair = Array.isArray(offsets) && offsets.length === 2 ? offsets.map(uint) : null;
    if (!pair || pair[0] === null || pair[1] === null || pair[0] > pair[1]) {
      throw bad(`${t}: data_offsets ${jsonText(offsets)} is not a pair [begin, end] of integers with 0 <= begin <= end`);
    }
    const [begin, end] = pair as [bigint, bigint];
    const span = `data_offsets ${jsonText(offsets, true)}`;
    if (end > BigInt(dataLength)) throw bad(`${t}: ${span} are out of range: the data section has ${dataLength} bytes (truncated file?)`);
    const want = (dims as bigint[]).reduce((a, d) => a * d, 1n) * BigInt(size);
    if (end - begin !== want) {
      throw bad(`${t}: dtype ${dtype} x shape ${jsonText(shape, true)} is ${want} bytes, but ${span} span ${end - begin}`);
    }
    // Only an empty tensor can get here with a huge dimension (another one is 0); a shape is plain numbers.
    const huge = (dims as bigint[]).findIndex((d) => d > MAX_SAFE);
    if (huge >= 0) throw bad(`${t}: shape ${jsonText(shape, true)}: dimension ${huge} is beyond 2^53 - 1`);
    layout.push({ name, dtype: dtype as SafetensorsDType, shape: (dims as bigint[]).map(Number), begin: Number(begin), end: Number(end) });
  }

  // The tensors must tile [0, dataLength) exactly: sorted by offset, each starts where the previous ended.
  layout.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: string | null = null;
  for (const t of layout) {
    const name = quoteName(t.name);
    if (t.begin < expected) throw bad(`tensor ${name}: data_offsets [${t.begin}, ${t.end}] overlap tensor ${quoteName(previous!)} (which ends at ${expected})`);
    if (t.begin > expected) {
      throw bad(`tensor ${name}: data is not contiguous: bytes [${expected}, ${t.begin}) before it${previous !== null ? ` (after tensor ${quoteName(previous)})` : ''} belong to no tensor`);
    }
    expected = t.end;
    previous = t.name;
  }
  if (expected !== dataLength) {
    throw bad(`${dataLength - expected} bytes after ${previous !== null ? `the last tensor ${quoteName(previous)}` : 'the header (no tensors)'} belong to no tensor: the data section is ${dataLength} bytes, the tensors cover ${expected}`);
  }

  // Everything is checked: copy. The copies tile the data section, so together they are its size.
  const tensors = new Map<string, DecodedTensor>();
  for (const t of layout) {
    const raw = new Uint8Array(t.end - t.begin);
    raw.set(bytes.subarray(dataStart + t.begin, dataStart + t.end));
    tensors.set(t.name, decodedTensor(t.dtype, t.shape, raw));
  }
  return { tensors, metadata };
}

/** A DecodedTensor whose float32 `data` is made when first read (F32: a view of `raw`). */
function decodedTensor(dtype: SafetensorsDType, shape: number[], raw: Uint8Array): DecodedTensor {
  let data: Float32Array | null = dtype === 'F32' ? toFloat32(dtype, raw) : null;
  return {
    dtype,
    shape,
    get data(): Float32Array {
      return (data ??= toFloat32(dtype, raw));
    },
    set data(value: Float32Array) {
      data = value;
    },
    converted: dtype !== 'F32',
    raw,
  };
}

/** Decodes from an ArrayBuffer, Uint8Array or Blob (e.g. a File from an <input type="file">). */
export async function readSafetensors(source: ByteSource): Promise<DecodedSafetensors> {
  return decodeSafetensors(await toBytes('readSafetensors', source));
}
