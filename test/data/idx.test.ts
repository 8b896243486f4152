import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import { decodeIdx, parseIdx } from '../../src/data/idx.js';
import { loadMnist } from '../../src/data/node_files.js';

/** A minimal IDX writer, independent of the parser: header then big-endian elements via DataView. */
function idx(type: number, dims: number[], values: number[]): Uint8Array {
  const size = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[type]!;
  const out = new Uint8Array(4 + 4 * dims.length + size * values.length);
  const v = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  const at = 4 + 4 * dims.length;
  values.forEach((x, i) => {
    const o = at + i * size;
    if (type === 0x08) v.setUint8(o, x);
    else if (type === 0x09) v.setInt8(o, x);
    else if (type === 0x0b) v.setInt16(o, x, false);
    else if (type === 0x0c) v.setInt32(o, x, false);
    else if (type === 0x0d) v.setFloat32(o, x, false);
    else v.setFloat64(o, x, false);
  });
  return out;
}

function badFile(fn: () => unknown, ...parts: string[]): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BayesError);
    expect((e as BayesError).code).toBe('BAD_FILE');
    for (const p of parts) expect((e as Error).message).toContain(p);
    return;
  }
  throw new Error('expected a BAD_FILE error');
}

const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-idx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('IDX', () => {
  it('parses ubyte images: shape from the big-endian dims, data a view of the bytes', () => {
    const values = Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 37) % 256);
    const a = parseIdx(idx(0x08, [2, 3, 4], values), 'x.idx');
    expect(a.dtype).toBe('u8');
    expect(a.shape).toEqual([2, 3, 4]);
    expect(Array.from(a.data)).toEqual(values);
  });

  it('parses sbyte, int16, int32, float32 and float64 (big-endian to native)', () => {
    expect(Array.from(parseIdx(idx(0x09, [3], [-128, 0, 127])).data)).toEqual([-128, 0, 127]);
    expect(Array.from(parseIdx(idx(0x0b, [3], [-32768, 258, 32767])).data)).toEqual([-32768, 258, 32767]);
    expect(Array.from(parseIdx(idx(0x0c, [2], [-2147483648, 16909060])).data)).toEqual([-2147483648, 16909060]);
    const f = parseIdx(idx(0x0d, [1, 2], [1.5, -0.25]));
    expect(f.dtype).toBe('f32');
    expect(Array.from(f.data)).toEqual([1.5, -0.25]);
    expect(Array.from(parseIdx(idx(0x0e, [2], [Math.PI, -1e300])).data)).toEqual([Math.PI, -1e300]);
  });

  it('decodes gzip-compressed bytes (detected by 1f 8b) the same as plain ones', async () => {
    const plain = idx(0x08, [5, 2], [0, 1, 2, 3, 4, 250, 251, 252, 253, 254]);
    const gz = new Uint8Array(gzipSync(plain));
    expect(gz[0]).toBe(0x1f);
    const a = await decodeIdx(gz, 'x.gz');
    expect(a.shape).toEqual([5, 2]);
    expect(Array.from(a.data)).toEqual(Array.from(plain.subarray(12)));
    expect(Array.from((await decodeIdx(plain.buffer as ArrayBuffer)).data)).toEqual(Array.from(a.data));
    expect(Array.from((await decodeIdx(new Blob([gz]))).data)).toEqual(Array.from(a.data));
  });

  it('rejects bad magic, unknown types, truncation and size mismatches, naming the file', async () => {
    const good = idx(0x08, [2, 2], [1, 2, 3, 4]);
    badFile(() => parseIdx(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), 'a-idx1-ubyte'), 'a-idx1-ubyte', 'bad magic', '01 00 08 01');
    badFile(() => parseIdx(Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0]), 'b'), 'b:', 'unknown element type 0x0a');
    badFile(() => parseIdx(Uint8Array.from([0, 0]), 'c'), 'c:', 'truncated', '2 bytes');
    badFile(() => parseIdx(good.subarray(0, 10), 'd'), 'd:', 'truncated', '2 dimensions');
    badFile(() => parseIdx(good.subarray(0, good.length - 1), 'e'), 'e:', 'truncated', 'needs 4 data bytes, file has 3');
    const longer = new Uint8Array(good.length + 2);
    longer.set(good);
    badFile(() => parseIdx(longer, 'f'), 'f:', 'size mismatch', '2 extra');
    badFile(() => parseIdx(new Uint8Array(gzipSync(good)), 'g.gz'), 'g.gz', 'gzip-compressed', 'decodeIdx');
    const corrupt = new Uint8Array(gzipSync(good)).subarray(0, 12);
    await expect(decodeIdx(corrupt, 'h.gz')).rejects.toThrow(/h\.gz: is not a valid gzip stream/);
  });

  it('loadMnist reads .gz files through node:zlib, and a torchvision MNIST/raw folder', async () => {
    const n = 3;
    const images = Array.from({ length: n * 28 * 28 }, (_, i) => (i * 7) % 256);
    const labels = [7, 0, 9];
    const raw = join(dir, 'MNIST', 'raw');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(raw, { recursive: true });
    writeFileSync(join(raw, 't10k-images-idx3-ubyte.gz'), gzipSync(idx(0x08, [n, 28, 28], images)));
    writeFileSync(join(raw, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx(0x08, [n], labels)));
    const set = await loadMnist({ split: 'test', dataDir: dir });
    expect(set.count).toBe(n);
    expect(Array.from(set.labels)).toEqual(labels);
    expect(Array.from(set.images)).toEqual(images);
  });
});
