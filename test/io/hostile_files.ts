/**
 * Plumbing for the hostile-file tests (hostile.test.ts, fuzz.test.ts): a
 * safetensors writer that writes whatever it is told (any header text, any
 * length field), and a meter of the typed-array memory a call allocates.
 */
import { expect } from 'vitest';
import { BayesError, type BayesErrorCode } from '../../src/errors.js';

const encoder = new TextEncoder();

/** A file of `header` (verbatim: no padding, no checks), then `data`; the length field says `length` (default: the header's true length). */
export function rawFile(header: string, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const json = encoder.encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** `"dtype":…,"shape":…,"data_offsets":…` as an entry's JSON text; each part is spliced in verbatim. */
export function entry(dtype: string, shape: string, offsets: string): string {
  return `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`;
}

/** Little-endian bytes of float32 values. */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** Runs `fn`, expecting a BayesError with `code` whose message contains every part; returns it. */
export function expectRefused(fn: () => unknown, code: BayesErrorCode, ...parts: string[]): BayesError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof BayesError)) throw new Error(`expected a BayesError ${code} (${parts.join(' | ')}), got ${error === undefined ? 'a successful load' : String(error)}`);
  expect(error.code, error.message).toBe(code);
  for (const p of parts) expect(error.message).toContain(p);
  return error;
}

const TYPED = [
  'ArrayBuffer', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
] as const;

export interface Metered<T> {
  result?: T;
  error?: unknown;
  /** Bytes of typed-array memory allocated in JavaScript during the call (views of existing buffers count 0). */
  total: number;
  largest: number;
}

/**
 * Calls `fn` (synchronously) with every typed-array constructor and
 * TypedArray.prototype.slice replaced by counting wrappers, and reports what
 * it allocated. Only JavaScript-side typed arrays are seen: strings, objects
 * and native (GPU) memory are not.
 */
export function metered<T>(fn: () => T): Metered<T> {
  const g = globalThis as unknown as Record<string, unknown>;
  const originals = new Map<string, unknown>();
  let total = 0;
  let largest = 0;
  const note = (bytes: number) => {
    total += bytes;
    largest = Math.max(largest, bytes);
  };
  const OriginalArrayBuffer = ArrayBuffer;
  for (const name of TYPED) {
    const Ctor = g[name] as { new (...args: unknown[]): unknown; BYTES_PER_ELEMENT?: number };
    originals.set(name, Ctor);
    const perElement = Ctor.BYTES_PER_ELEMENT ?? 1;
    g[name] = new Proxy(Ctor, {
      construct(target, args, newTarget) {
        const a = args[0] as unknown;
        if (typeof a === 'number') note(a * perElement);
        else if (a !== null && typeof a === 'object' && !(a instanceof OriginalArrayBuffer) && !(typeof SharedArrayBuffer !== 'undefined' && a instanceof SharedArrayBuffer)) {
          note(Number((a as { length?: number }).length ?? 0) * perElement);
        }
        return Reflect.construct(target, args, newTarget) as object;
      },
    });
  }
  const typedProto = Object.getPrototypeOf(Uint8Array.prototype) as { slice: (...a: unknown[]) => ArrayBufferView };
  const slice = typedProto.slice;
  typedProto.slice = function (this: ArrayBufferView, ...args: unknown[]) {
    const r = slice.apply(this, args);
    note(r.byteLength);
    return r;
  };
  try {
    return { result: fn(), total, largest };
  } catch (error) {
    return { error, total, largest };
  } finally {
    typedProto.slice = slice;
    for (const [name, Ctor] of originals) g[name] = Ctor;
  }
}
