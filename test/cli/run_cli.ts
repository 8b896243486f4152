import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { SignalSource } from '../../src/cli/interrupt.js';

export interface CliHooks {
  /** Stand-in for `process` as the source of SIGINT/SIGTERM (an EventEmitter). */
  signals?: SignalSource;
  /** Called with each stdout line as it is printed. */
  onOut?: (line: string) => void;
  /** Called with each stderr chunk as it is written. */
  onErr?: (text: string) => void;
  /** Called with the error that ended the command. */
  onFailure?: (error: unknown) => void;
}

/** Runs the bayesgpu CLI in-process; returns its exit code, stdout lines and stderr text. */
export async function cli(args: string[], hooks: CliHooks = {}): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  let err = '';
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    const line = a.join(' ');
    out.push(line);
    hooks.onOut?.(line);
  });
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    hooks.onErr?.(String(chunk));
    return true;
  });
  try {
    return { code: await main(args, { signals: hooks.signals, onFailure: hooks.onFailure }), out, err };
  } finally {
    log.mockRestore();
    write.mockRestore();
  }
}
