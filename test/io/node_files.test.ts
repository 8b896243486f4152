import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { BayesError } from '../../src/errors.js';
import { loadSafetensorsFile, readFile, saveFile, saveSafetensorsFile } from '../../src/io/node_files.js';

const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) % 256);

async function fails(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    // By name, not instanceof: the simulated-failure test loads a second copy of the modules.
    expect((e as Error).name).toBe('BayesError');
    expect((e as BayesError).code).toBe(code);
    for (const part of parts) expect((e as Error).message).toContain(part);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('saveFile / readFile', () => {
  afterEach(() => {
    vi.doUnmock('node:fs/promises');
    vi.resetModules();
  });

  it('writes, replaces and reads back; leaves no temporary file', async () => {
    const path = join(dir, 'a.safetensors');
    await saveFile(path, bytes(1000, 1));
    expect(Array.from(await readFile(path))).toEqual(Array.from(bytes(1000, 1)));
    await saveFile(path, bytes(10, 2));
    expect(Array.from(readFileSync(path))).toEqual(Array.from(bytes(10, 2)));
    expect(readdirSync(dir)).toEqual(['a.safetensors']);
  });

  it('a failing rename (the target is a directory) removes the temporary file and names the path', async () => {
    const target = join(dir, 'is-a-dir');
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'x'); // non-empty, so no platform lets a file replace it
    await fails(saveFile(target, bytes(100, 3)), 'BAD_FILE', `could not write '${target}'`, 'unchanged');
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(readdirSync(target)).toEqual(['keep']);
  });

  it('a write that fails halfway (simulated) leaves the old file intact and no partial or temporary file', async () => {
    const path = join(dir, 'b.safetensors');
    await saveFile(path, bytes(64, 4));
    // Make FileHandle.writeFile write half of the data, then fail like a full disk.
    vi.doMock('node:fs/promises', async (importOriginal) => {
      const real = await importOriginal<typeof import('node:fs/promises')>();
      const open: typeof real.open = async (...args: Parameters<typeof real.open>) => {
        const handle = await real.open(...args);
        handle.writeFile = (async (data: Uint8Array) => {
          await handle.write(data, 0, data.length >> 1);
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }) as typeof handle.writeFile;
        return handle;
      };
      return { ...real, default: { ...real, open }, open };
    });
    vi.resetModules();
    const mocked = await import('../../src/io/node_files.js');
    await fails(mocked.saveFile(path, bytes(4096, 5)), 'BAD_FILE', 'ENOSPC', path);
    expect(Array.from(readFileSync(path))).toEqual(Array.from(bytes(64, 4)));
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('a missing directory fails before anything is written', async () => {
    const path = join(dir, 'no', 'such', 'dir', 'c.safetensors');
    await fails(saveFile(path, bytes(8, 6)), 'BAD_FILE', path, 'ENOENT');
  });

  it.skipIf(process.getuid?.() === 0)('a directory without write permission: BAD_FILE and no file (not as root)', async () => {
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    try {
      await fails(saveFile(join(locked, 'd.safetensors'), bytes(8, 7)), 'BAD_FILE', 'EACCES');
      expect(readdirSync(locked)).toEqual([]);
    } finally {
      chmodSync(locked, 0o700);
    }
  });

  it('readFile: a missing file is DATA_NOT_FOUND, bad arguments are rejected', async () => {
    await fails(readFile(join(dir, 'nope')), 'DATA_NOT_FOUND', join(dir, 'nope'), 'does not exist');
    await fails(readFile(dir), 'BAD_FILE', `cannot read '${dir}'`);
    await fails(saveFile('', new Uint8Array(1)), 'INVALID_ARGUMENT', "saveFile: argument 'path'");
    await fails(saveFile(join(dir, 'x'), [1, 2] as unknown as Uint8Array), 'INVALID_ARGUMENT', "argument 'bytes' expected a Uint8Array");
  });

  it('saveSafetensorsFile / loadSafetensorsFile round trip; decoding errors name the path', async () => {
    const path = join(dir, 'model.safetensors');
    await saveSafetensorsFile(path, { 'fc1.W_mu': { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } }, { epoch: '1' });
    const file = await loadSafetensorsFile(path);
    expect(Array.from(file.tensors.get('fc1.W_mu')!.data)).toEqual([1, 2, 3, 4]);
    expect(file.metadata).toEqual({ epoch: '1' });
    const broken = join(dir, 'broken.safetensors');
    writeFileSync(broken, readFileSync(path).subarray(0, 20));
    await fails(loadSafetensorsFile(broken), 'BAD_FILE', broken, 'beyond the file');
  });
});
