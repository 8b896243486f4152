/**
 * Node only: reading OOD image sets from files (the decoding is in ood.ts and
 * runs anywhere). Node built-ins are imported dynamically, and only the CLI and
 * the Node entry may import this module, so the browser bundle never reaches it.
 *
 *   loadOodSet(path)      an IDX images file (plain or .gz), a single PNG file,
 *                         or a folder of PNG files (read in name order)
 *   loadNamedOodSet(name) the test split of 'fashion-mnist' (the default OOD set
 *                         for MNIST; Debian package dataset-fashion-mnist) or 'mnist'
 */
import { hasPngSignature } from 'fast-png';
import { BayesError, argumentError, checkInt, checkOneOf } from '../errors.js';
import { loadMnist } from '../data/node_files.js';
import { type OodSet, type OodTarget, decodeIdxImages, decodePngImages, prepareOodImages } from './ood.js';

export interface OodLoadOptions {
  /** Keep the first `limit` images (files of a folder, in name order). */
  limit?: number;
}

/** Loads an OOD set from an IDX file, a PNG file or a folder of PNG files. */
export async function loadOodSet(path: string, target: OodTarget, options: OodLoadOptions = {}): Promise<OodSet> {
  const op = 'loadOodSet';
  if (typeof path !== 'string' || path === '') throw argumentError(op, 'path', 'a file or folder path', path);
  const limit = options.limit === undefined ? undefined : checkInt(op, 'limit', options.limit, 1);
  const fs = await import('node:fs/promises');
  const { join } = await import('node:path');
  let stat;
  try {
    stat = await fs.stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new BayesError('DATA_NOT_FOUND', `${op}: OOD set '${path}' does not exist (expected an IDX images file, plain or .gz, a PNG file, or a folder of PNG files)`);
    }
    throw new BayesError('BAD_FILE', `${op}: cannot read '${path}': ${(err as Error).message}`);
  }
  if (stat.isDirectory()) {
    const names = (await fs.readdir(path)).filter((n) => n.toLowerCase().endsWith('.png')).sort();
    if (names.length === 0) throw new BayesError('DATA_NOT_FOUND', `${op}: OOD folder '${path}' has no .png files`);
    const chosen = names.slice(0, limit ?? names.length);
    const files = await Promise.all(chosen.map(async (n) => ({ name: join(path, n), bytes: new Uint8Array(await fs.readFile(join(path, n))) })));
    return decodePngImages(files, path, target);
  }
  const bytes = new Uint8Array(await fs.readFile(path));
  if (hasPngSignature(bytes)) return decodePngImages([{ name: path, bytes }], path, target);
  return decodeIdxImages(bytes, path, target, limit);
}

export const NAMED_OOD_SETS = ['fashion-mnist', 'mnist'] as const;
export type NamedOodSet = (typeof NAMED_OOD_SETS)[number];

/**
 * The test split of a named data set as an OOD set, or null when its files are
 * not installed (DATA_NOT_FOUND); `dataDir` as loadMnist takes it.
 */
export async function loadNamedOodSet(name: NamedOodSet, target: OodTarget, options: OodLoadOptions & { dataDir?: string } = {}): Promise<OodSet | null> {
  const op = 'loadNamedOodSet';
  const kind = checkOneOf(op, 'name', name, NAMED_OOD_SETS);
  let set;
  try {
    set = await loadMnist({ split: 'test', kind, dataDir: options.dataDir, limit: options.limit });
  } catch (err) {
    if (err instanceof BayesError && err.code === 'DATA_NOT_FOUND') return null;
    throw err;
  }
  return prepareOodImages({ images: set.images, count: set.count, channels: set.channels, height: set.height, width: set.width }, `${kind} (test split)`, target);
}
