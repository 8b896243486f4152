/**
 * Node only: reading and atomically writing files (checkpoints). Node built-ins
 * are imported dynamically inside the functions, and this module is exported
 * only by the Node entry (src/node.ts): the browser bundle must not reach it,
 * because esbuild resolves even a dynamic `import('node:fs')` at bundle time.
 * In browsers use safetensorsBlob / readSafetensors (safetensors.ts) instead.
 */
import { BayesError, argumentError } from '../errors.js';
import { type DecodedSafetensors, type TensorEntry, decodeSafetensors, encodeSafetensors } from './safetensors.js';

/**
 * Writes `bytes` to `path` atomically: into `<path>.tmp-<pid>-<random>` in the
 * same directory, fsync, then rename over `path`. A reader (or a crash) sees
 * either the old file or the complete new one, never a partial file. On any
 * failure the temporary file is removed and `path` is left as it was.
 */
export async function saveFile(path: string, bytes: Uint8Array): Promise<void> {
  const op = 'saveFile';
  if (typeof path !== 'string' || path === '') throw argumentError(op, 'path', 'a file path', path);
  if (!(bytes instanceof Uint8Array)) throw argumentError(op, 'bytes', 'a Uint8Array', bytes);
  const fs = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  const { randomBytes } = await import('node:crypto');

  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    handle = await fs.open(tmp, 'wx', 0o644); // 'wx': never follow or reuse an existing file
    await handle.writeFile(bytes);
    await handle.sync(); // the data is on disk before the rename makes it visible
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new BayesError('BAD_FILE', `${op}: could not write '${path}' (${(err as Error).message}); any previous file there is unchanged`);
  }
  // Make the rename itself durable. Directories cannot be opened for fsync on every platform (Windows): best effort.
  try {
    const dir = await fs.open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // the file is complete and in place; only the directory entry's durability is not guaranteed
  }
}

/** Reads a whole file. A missing file is DATA_NOT_FOUND; other failures BAD_FILE; both name the path. */
export async function readFile(path: string): Promise<Uint8Array> {
  const op = 'readFile';
  if (typeof path !== 'string' || path === '') throw argumentError(op, 'path', 'a file path', path);
  const fs = await import('node:fs/promises');
  try {
    const buf = await fs.readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BayesError('DATA_NOT_FOUND', `${op}: '${path}' does not exist`);
    throw new BayesError('BAD_FILE', `${op}: cannot read '${path}' (${(err as Error).message})`);
  }
}

/** Encodes and saves a safetensors file atomically (see saveFile). */
export async function saveSafetensorsFile(path: string, tensors: Record<string, TensorEntry>, metadata?: Record<string, string>): Promise<void> {
  await saveFile(path, encodeSafetensors(tensors, metadata));
}

/** Reads and decodes a safetensors file; decoding errors are prefixed with the path. */
export async function loadSafetensorsFile(path: string): Promise<DecodedSafetensors> {
  const bytes = await readFile(path);
  try {
    return decodeSafetensors(bytes);
  } catch (err) {
    if (err instanceof BayesError) throw new BayesError(err.code, `${path}: ${err.message}`);
    throw err;
  }
}
