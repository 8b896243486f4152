/**
 * CIFAR-10 and CIFAR-100, "binary version" (Krizhevsky 2009,
 * https://www.cs.toronto.edu/~kriz/cifar.html). Each file is a run of fixed-size
 * records, one per 32x32 colour image:
 *
 *   CIFAR-10   1 label byte (0..9)                                   + 3072 pixel bytes  = 3073
 *   CIFAR-100  1 coarse label byte (0..19), 1 fine label byte (0..99) + 3072 pixel bytes  = 3074
 *
 * The 3072 pixel bytes are already channel-major: 1024 red, then 1024 green,
 * then 1024 blue, each 32 rows of 32 — so the images come out as NCHW bytes.
 *
 * parse* and decodeCifar work on bytes anywhere; loadCifar (node_files.ts) reads a directory in Node.
 */
import { BayesError, argumentError, checkInt, checkOneOf } from '../errors.js';
import { type ByteSource, maybeGunzip, toBytes } from './bytes.js';
import type { ImageSet, Split } from './image_set.js';

export type CifarKind = 'cifar-10' | 'cifar-100';
export type CifarLabel = 'fine' | 'coarse';

const PIXELS = 3 * 32 * 32;

export interface CifarRecords {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

function parseRecords(bytes: Uint8Array, name: string, labelBytes: number, labelAt: number, classes: number, what: string): CifarRecords {
  const record = labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    // The most common mistake is pointing the CIFAR-10 reader at CIFAR-100 files or the other way round.
    const other = record === 3073 ? 3074 : 3073;
    const hint = bytes.length > 0 && bytes.length % other === 0 ? `; its size fits ${other === 3074 ? 'CIFAR-100' : 'CIFAR-10'} records of ${other} bytes` : '';
    throw new BayesError(
      'BAD_FILE',
      `${name}: size ${bytes.length} bytes is not a whole number of ${what} records of ${record} bytes ` +
        `(${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + 3072 pixels)${hint}`,
    );
  }
  const count = bytes.length / record;
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * record;
    const label = bytes[at + labelAt];
    if (label >= classes) throw new BayesError('BAD_FILE', `${name}: record ${i} has label ${label}, ${what} labels are 0..${classes - 1}`);
    labels[i] = label;
    images.set(bytes.subarray(at + labelBytes, at + record), i * PIXELS);
  }
  return { images, labels, count };
}

/** Parses one CIFAR-10 binary batch file (records of 1 + 3072 bytes). */
export function parseCifar10(bytes: Uint8Array, name = 'CIFAR-10 data'): CifarRecords {
  return parseRecords(bytes, name, 1, 0, 10, 'CIFAR-10');
}

/** Parses a CIFAR-100 binary file (records of 2 + 3072 bytes); `label` picks the fine (100) or coarse (20) classes. */
export function parseCifar100(bytes: Uint8Array, label: CifarLabel = 'fine', name = 'CIFAR-100 data'): CifarRecords {
  checkOneOf('parseCifar100', 'label', label, ['fine', 'coarse'] as const);
  return label === 'fine'
    ? parseRecords(bytes, name, 2, 1, 100, 'CIFAR-100 fine')
    : parseRecords(bytes, name, 2, 0, 20, 'CIFAR-100 coarse');
}

/** The file names of a split, in the order their images are concatenated. */
export function cifarFileNames(kind: CifarKind, split: Split): string[] {
  if (kind === 'cifar-100') return [split === 'train' ? 'train.bin' : 'test.bin'];
  return split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
}

export function cifarClassCount(kind: CifarKind, label: CifarLabel): number {
  return kind === 'cifar-10' ? 10 : label === 'fine' ? 100 : 20;
}

/**
 * Decodes and concatenates CIFAR files (plain or gzip) in the given order.
 * `names` label the files in error messages.
 */
export async function decodeCifar(
  files: readonly ByteSource[],
  options: { kind: CifarKind; label?: CifarLabel; limit?: number; names?: readonly string[] },
): Promise<ImageSet> {
  const op = 'decodeCifar';
  const kind = checkOneOf(op, 'kind', options.kind, ['cifar-10', 'cifar-100'] as const);
  const label = checkOneOf(op, 'label', options.label ?? 'fine', ['fine', 'coarse'] as const);
  const limit = options.limit === undefined ? Infinity : checkInt(op, 'limit', options.limit, 0);
  if (!Array.isArray(files) || files.length === 0) throw argumentError(op, 'files', 'a non-empty array of file contents', files);
  const parts: CifarRecords[] = [];
  let total = 0;
  for (let f = 0; f < files.length && total < limit; f++) {
    const name = options.names?.[f] ?? `file ${f}`;
    const bytes = await maybeGunzip(await toBytes(op, files[f]), name);
    const part = kind === 'cifar-10' ? parseCifar10(bytes, name) : parseCifar100(bytes, label, name);
    parts.push(part);
    total += part.count;
  }
  const count = Math.min(total, limit);
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const part of parts) {
    const take = Math.min(part.count, count - at);
    images.set(part.images.subarray(0, take * PIXELS), at * PIXELS);
    labels.set(part.labels.subarray(0, take), at);
    at += take;
  }
  return { images, labels, count, channels: 3, height: 32, width: 32, classes: cifarClassCount(kind, label) };
}
