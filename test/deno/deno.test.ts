/**
 * bayesgpu in Deno (wgpu's WebGPU): spawns test/deno/smoke.ts with the Deno
 * binary that the npm package `deno` installs, asserts its kernel checks, and
 * compares its determinism outputs with the same computations run here in Node.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from '../../scripts/build.mjs';
import { configureVulkanEnvironment } from '../../src/gpu/dawn.js';
import { type CheckResult, checks, describeFailures } from '../browser/checks.js';
import { CROSS_RUNTIME_TOLERANCE, DETERMINISM_SEED, type Outputs, compareOutputs, runComputations, summarizeDifferences } from '../browser/determinism.js';
import { context } from '../helpers.js';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const MARKER = 'BAYESGPU_DENO_RESULT ';

interface DenoReport {
  adapter: { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean; runtime: string; name: string };
  checks: CheckResult[];
  outputs: Record<string, Outputs>;
  gpuErrors: string[];
}

/**
 * The child's environment: the same Vulkan driver choice as Node's Dawn (SwiftShader
 * from Debian's Chromium when the machine has no GPU device node, see
 * src/gpu/dawn.ts), a runtime dir, and no colour or update check in the output.
 */
function denoEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' };
  configureVulkanEnvironment(env);
  return env;
}

function runDeno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(DENO, args, { cwd: ROOT, env: denoEnvironment(), timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      ok({ code, stdout, stderr });
    });
  });
}

describe('deno: WebGPU through Deno (wgpu)', () => {
  it('the npm package deno installed a working binary', async () => {
    expect(existsSync(DENO), `${DENO} is missing: run npm ci`).toBe(true);
    const { code, stdout, stderr } = await runDeno(['--version']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^deno \d+\.\d+\.\d+/);
  });

  it(`runs the kernel checks and matches Node's outputs within ${CROSS_RUNTIME_TOLERANCE}`, async () => {
    const started = performance.now();
    // Least privilege: read the repository (sources, shaders/, node_modules/), nothing else.
    const { code, stdout, stderr } = await runDeno(['run', '--no-lock', '--sloppy-imports', `--allow-read=${ROOT}`, 'test/deno/smoke.ts', `--seed=${DETERMINISM_SEED}`]);
    const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
    expect(code, `deno exited with ${code}\nstderr:\n${stderr}\nstdout:\n${stdout}`).toBe(0);
    expect(line, `no result line\nstderr:\n${stderr}`).toBeDefined();
    const report = JSON.parse(line!.slice(MARKER.length)) as DenoReport;
    console.log(`deno adapter: ${report.adapter.name}; checks: ${report.checks.map((r) => `${r.name} ${r.ok ? 'ok' : 'FAILED'}`).join(', ')} (${((performance.now() - started) / 1000).toFixed(1)} s)`);

    expect(report.adapter.runtime).toBe('deno');
    expect(report.gpuErrors).toEqual([]);
    // Every shared check ran, among them a forward pass, a training step and predictive uncertainty of a Bayesian CNN.
    expect(report.checks.map((r) => r.name)).toEqual([...Object.keys(checks), 'deno.runtime']);
    for (const name of ['nn.forward', 'train.step', 'uncertainty.predict']) expect(report.checks.map((r) => r.name)).toContain(name);
    expect(describeFailures(report.checks)).toEqual([]);
    expect(report.checks.every((r) => r.ok)).toBe(true);

    const inNode = await runComputations(await context(), DETERMINISM_SEED);
    console.log(`deno vs Node, largest relative difference: ${summarizeDifferences(report.outputs, inNode)}`);
    expect(Object.keys(report.outputs)).toEqual(Object.keys(inNode));
    expect(compareOutputs(report.outputs, inNode)).toEqual([]);
  });

  it('runs a kernel through the built dist/index.js (the package\'s "deno" export)', async () => {
    await ensureBuilt();
    const { code, stdout, stderr } = await runDeno(['run', '--no-lock', `--allow-read=${ROOT}`, 'test/deno/dist_smoke.ts']);
    expect(code, `deno exited with ${code}\nstderr:\n${stderr}`).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('BAYESGPU_DENO_DIST '));
    expect(line, `no result line\nstderr:\n${stderr}`).toBeDefined();
    const out = JSON.parse(line!.slice('BAYESGPU_DENO_DIST '.length)) as { runtime: string; input: number[]; relu: number[] };
    expect(out.runtime).toBe('deno');
    expect(out.relu).toEqual(out.input.map((v) => Math.max(v, 0)));
  });
});
