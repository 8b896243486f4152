/**
 * Real signals to a real `bayesgpu train` process (dist/cli.js, rebuilt when stale): SIGINT or
 * SIGTERM after its first progress line; it must save a resumable checkpoint, say where on stderr,
 * exit 130 / 143 within seconds, and `--resume` from that file must train to the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from '../../scripts/build.mjs';
import type { Context } from '../../src/gpu/context.js';
import { loadCheckpointFile } from '../../src/io/checkpoint_files.js';
import { context } from '../helpers.js';

const CLI = join(ROOT, 'dist', 'cli.js');

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; exitSeconds: number }

/** Runs the CLI; when `signal` is given, sends it once stderr shows the first progress line. */
function run(args: string[], signal?: NodeJS.Signals): Promise<Exit> {
  return new Promise((done, fail) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sentAt = 0;
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => {
      stderr += d;
      if (signal && !sentAt && /^epoch 1\/\d+ \[/m.test(stderr)) {
        sentAt = performance.now();
        child.kill(signal);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
    child.on('error', fail);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      done({ code, signal: sig, stdout, stderr, exitSeconds: sentAt ? (performance.now() - sentAt) / 1000 : NaN });
    });
  });
}

describe('bayesgpu train under SIGINT / SIGTERM (child process)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-cli-signals-'));
  let ctx: Context;
  beforeAll(async () => {
    await ensureBuilt({ log: () => undefined });
    ctx = await context();
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  // 205 training images in 7 steps of 32 per epoch; a progress line after step 5 and step 7.
  const tiny = ['train', '--train-size', '256', '--valid-fraction', '0.2', '--batch-size', '32', '--epochs', '3', '--test-samples', '0'];

  it('SIGINT: saves a resumable checkpoint, exits 130, and --resume trains to the end', async () => {
    const out = join(scratch, 'int.safetensors');
    const saved = join(scratch, 'int.interrupted.safetensors');
    const stopped = await run([...tiny, '--out', out], 'SIGINT');
    expect(stopped.signal).toBeNull();
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.exitSeconds).toBeLessThan(20);
    expect(stopped.stderr).toContain('SIGINT received: stopping at the next progress report');
    expect(stopped.stderr).toContain(`bayesgpu train: SIGINT: saved a resumable checkpoint to ${saved} (after `);
    expect(stopped.stderr).not.toMatch(/\n\s+at /);
    const file = await loadCheckpointFile(ctx, saved);
    const epochsDone = Number(file.metadata.epochs);
    expect(file.metadata.interrupted).toBe('SIGINT');
    expect(epochsDone).toBeLessThan(3);
    expect(file.optimizer!.step).toBe(7 * epochsDone + Number(file.metadata.epochSteps));
    expect(file.optimizer!.step).toBeGreaterThanOrEqual(5);
    file.model.dispose();

    const resumed = await run([...tiny, '--resume', saved, '--out', out]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming .*int\.interrupted\.safetensors/);
    expect(resumed.stdout).toMatch(/^Epoch: 3 \t/m);
    expect(resumed.stdout).toMatch(/^(saved .*int\.safetensors \(best epoch \d\)|no epoch improved)/m);
    // The best epoch's file: written by the resumed run (its steps count the rerun epoch's extra ones) or before.
    const best = await loadCheckpointFile(ctx, out);
    const extra = best.metadata.resumedFrom === saved ? Number(file.metadata.epochSteps) : 0;
    expect(best.optimizer!.step).toBe(7 * Number(best.metadata.epochs) + extra);
    best.model.dispose();
  });

  it('SIGTERM: saves a resumable checkpoint and exits 143', async () => {
    const out = join(scratch, 'term.safetensors');
    const stopped = await run([...tiny, '--out', out], 'SIGTERM');
    expect(stopped.code, stopped.stderr).toBe(143);
    expect(stopped.exitSeconds).toBeLessThan(20);
    const saved = join(scratch, 'term.interrupted.safetensors');
    expect(stopped.stderr).toContain(`bayesgpu train: SIGTERM: saved a resumable checkpoint to ${saved}`);
    expect(existsSync(saved)).toBe(true);
  });
});
