/**
 * Byte plumbing shared by the data readers and the checkpoint format: turning
 * whatever the caller holds (ArrayBuffer, Uint8Array, Blob) into a Uint8Array,
 * and gunzip. Runs anywhere; nothing here names a Node built-in (the Node-only
 * file functions live in node_files.ts, which the browser entry never reaches).
 */
import { BayesError, argumentError } from '../errors.js';

export type ByteSource = ArrayBuffer | Uint8Array | Blob;

/** A Uint8Array view of an ArrayBuffer or Uint8Array (no copy), or the contents of a Blob. */
export async function toBytes(op: string, source: ByteSource): Promise<Uint8Array> {
  if (typeof Blob !== 'undefined' && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  return bytesOf(op, source as ArrayBuffer | Uint8Array);
}

/** The synchronous half of toBytes: ArrayBuffer or Uint8Array only. */
export function bytesOf(op: string, source: ArrayBuffer | Uint8Array): Uint8Array {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  throw argumentError(op, 'bytes', 'an ArrayBuffer, Uint8Array or Blob', source);
}

/** gzip streams start with the two bytes 1f 8b (RFC 1952, section 2.3.1). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses a gzip stream with DecompressionStream('gzip') (browsers, Deno,
 * Node >= 18). `name` is the file name used in error messages. The Node file
 * loaders (node_files.ts) use node:zlib instead, which is faster there.
 */
export async function gunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') {
    throw new BayesError('BAD_FILE', `${name}: is gzip-compressed and this runtime has no DecompressionStream; decompress it first`);
  }
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    throw new BayesError('BAD_FILE', `${name}: is not a valid gzip stream (${(err as Error).message})`);
  }
}

/** Gunzips when the bytes start with the gzip magic, otherwise returns them as they are. */
export async function maybeGunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  return isGzip(bytes) ? gunzip(bytes, name) : bytes;
}
