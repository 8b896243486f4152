/**
 * `npm run bench` on its tiny configuration (--quick), run as the user runs it (a child
 * process through bench/run.mjs, which exits deliberately once its device is destroyed).
 * Checks the JSON's structure and that every number is positive and finite; never timing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'bayesgpu-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const positive = (x: unknown, what: string) => {
  expect(typeof x, what).toBe('number');
  expect(Number.isFinite(x as number) && (x as number) > 0, `${what} = ${x}`).toBe(true);
};

const measured = (m: unknown, what: string) => {
  const r = m as { ms: unknown; gflops: unknown; error?: string };
  expect(r.error, `${what}: error`).toBeUndefined();
  positive(r.ms, `${what}.ms`);
  positive(r.gflops, `${what}.gflops`);
};

describe('npm run bench --quick', () => {
  it('writes the JSON and prints the markdown table', async () => {
    const out = join(dir, 'bench.json');
    const { stdout } = await run(process.execPath, ['bench/run.mjs', 'bench', '--quick', '--out', out], { timeout: 600_000, maxBuffer: 16 << 20 });
    const r = JSON.parse(readFileSync(out, 'utf8'));

    expect(typeof r.adapter).toBe('string');
    expect(r.adapter.length).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(r.date))).toBe(false);
    expect(['gpu-timestamp', 'wall']).toContain(r.timing.method);

    const ops = new Set<string>();
    expect(r.cases.length).toBeGreaterThan(0);
    for (const c of r.cases) {
      const what = `${c.op} ${c.shape} N=${c.batch}`;
      ops.add(c.op.replace('+Weight', ''));
      expect(typeof c.shape).toBe('string');
      positive(c.batch, `${what} batch`);
      measured(c.ours, `${what} ours`);
      measured(c.peers['tfjs-webgpu'], `${what} tfjs-webgpu`);
      measured(c.peers['tfjs-cpu'], `${what} tfjs-cpu`);
    }
    expect([...ops].sort()).toEqual(['conv2d.backwardInput', 'conv2d.backwardWeight', 'conv2d.forward', 'matmul']);

    positive(r.ceiling.gflops, 'ceiling.gflops');
    positive(r.training.samplesPerSecond, 'training.samplesPerSecond');
    positive(r.training.batch, 'training.batch');
    expect(Number.isFinite(r.training.lastLoss), 'training.lastLoss').toBe(true);
    positive(r.mcPrediction.batchedMs, 'mcPrediction.batchedMs');
    positive(r.mcPrediction.loopedMs, 'mcPrediction.loopedMs');
    positive(r.memory.peakBytes, 'memory.peakBytes');
    positive(r.memory.minimumBytes, 'memory.minimumBytes');
    expect(r.memory.liveBuffers.perStep.length).toBeGreaterThan(0);
    // Steady-state training steps must not accumulate GPU buffers.
    expect(r.memory.liveBuffers.growth, `live buffers per step: ${r.memory.liveBuffers.perStep}`).toBe(0);

    expect(stdout).toContain(`| op | shape | batch | ours ms |`);
    expect(stdout).toContain(r.adapter);
  }, 660_000);

  it('rejects an unknown flag with a message that names it', async () => {
    const err = await run(process.execPath, ['bench/run.mjs', 'bench', '--quick', '--batch', '4'], { timeout: 120_000 }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain("unknown flag '--batch'");
  }, 180_000);
});
