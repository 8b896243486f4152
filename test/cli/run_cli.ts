import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

/** Runs the bayesgpu CLI in-process; returns its exit code, stdout lines and stderr text. */
export async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  let err = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore();
    write.mockRestore();
  }
}
