import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { vi } from 'vitest';
import { ROOT, ensureBuilt } from '../../scripts/build.mjs';
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

/** What a run of the built binary left: its exit code, stdout and stderr. */
export interface BuiltRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `bayesgpu` binary (dist/cli.js, rebuilt first when stale) as a child process, as a
 * user does: real stdout, stderr and exit code.
 */
export async function runBuilt(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<BuiltRun> {
  await ensureBuilt({ log: () => undefined });
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 110_000);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** The smallest `train` run the CLI tests use: 72 training and 24 validation images, one epoch of batch 24. */
export const TINY_TRAIN = ['train', '--train-size', '96', '--valid-fraction', '0.25', '--epochs', '1', '--batch-size', '24', '--test-samples', '2', '--test-size', '24'];
