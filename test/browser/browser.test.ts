/**
 * bayesgpu in headless Chromium: the kernel checks of checks.ts run in a page
 * (test/browser/page.ts bundled with the shaders inlined), the determinism
 * computations are compared with the same run in Node, and the published
 * artifact dist/bayesgpu.browser.js runs a kernel through the public API.
 * Any page error, console error, failed request or WebGPU uncaptured error
 * fails the test.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_BUNDLE, ROOT, bundleForBrowser, ensureBuilt } from '../../scripts/build.mjs';
import { context } from '../helpers.js';
import { type CheckResult, describeFailures } from './checks.js';
import { type BrowserSession, type PageSession, launchChromium, openPage } from './chromium.js';
import { CROSS_RUNTIME_TOLERANCE, DETERMINISM_SEED, type Outputs, compareOutputs, runComputations, summarizeDifferences } from './determinism.js';
import type { Harness } from './page.js';
import { type StaticServer, serveStatic } from './server.js';

type HarnessWindow = { bayesgpuHarness: Harness };

describe('browser: headless Chromium with WebGPU', () => {
  let site: string;
  let server: StaticServer;
  let chromium: BrowserSession;
  let harness: PageSession;

  beforeAll(async () => {
    // `npm test` builds first; this covers running the file alone after an edit.
    await ensureBuilt();
    site = mkdtempSync(join(tmpdir(), 'bayesgpu-site-'));
    await bundleForBrowser({ entry: join(ROOT, 'test/browser/page.ts'), outfile: join(site, 'harness.js') });
    for (const page of ['index.html', 'public.html']) copyFileSync(join(ROOT, 'test/browser', page), join(site, page));
    copyFileSync(BROWSER_BUNDLE, join(site, 'bayesgpu.browser.js'));
    copyFileSync(`${BROWSER_BUNDLE}.map`, join(site, 'bayesgpu.browser.js.map'));
    server = await serveStatic(site);
    chromium = await launchChromium();
    harness = await openPage(chromium.browser, `${server.url}index.html`);
    await harness.page.waitForFunction(() => (globalThis as unknown as Partial<HarnessWindow>).bayesgpuHarness !== undefined);
  });

  afterAll(async () => {
    await harness?.page.evaluate(() => (globalThis as unknown as HarnessWindow).bayesgpuHarness.close()).catch(() => undefined);
    await chromium?.close();
    await server?.close();
    if (site) rmSync(site, { recursive: true, force: true });
  });

  afterEach(async () => {
    const gpuErrors = await harness.page.evaluate(() => (globalThis as unknown as HarnessWindow).bayesgpuHarness.gpuErrors());
    expect(gpuErrors, 'WebGPU uncaptured errors in the page').toEqual([]);
    // Taken out, so that a problem fails the test during which it happened and no later one.
    const problems = harness.problems.splice(0);
    expect(problems, `problems in the page; console:\n${harness.console.join('\n')}`).toEqual([]);
  });

  it('opens a WebGPU adapter in the page and reports it', async () => {
    const adapter = await harness.page.evaluate(() => (globalThis as unknown as HarnessWindow).bayesgpuHarness.adapter());
    console.log(`browser adapter: ${adapter.name} (${chromium.executablePath})`);
    expect(adapter.runtime).toBe('browser');
    expect(adapter.vendor.length + adapter.architecture.length + adapter.description.length).toBeGreaterThan(0);
    expect(typeof adapter.isFallbackAdapter).toBe('boolean');
  });

  it('runs every kernel check in the page against the float64 reference', async () => {
    const names = await harness.page.evaluate(() => (globalThis as unknown as HarnessWindow).bayesgpuHarness.list());
    const results: CheckResult[] = await harness.page.evaluate(() => (globalThis as unknown as HarnessWindow).bayesgpuHarness.run());
    expect(results.map((r) => r.name)).toEqual(names);
    // Kernels, and a forward pass, a training step and predictive uncertainty of a Bayesian CNN.
    for (const name of ['conv2d.forward_backward', 'linear.lrt_forward', 'kl.gaussian', 'loss.softmax_nll', 'nn.forward', 'train.step', 'uncertainty.predict']) expect(names).toContain(name);
    console.log(`browser checks: ${results.map((r) => `${r.name} ${r.ok ? 'ok' : 'FAILED'} (${r.ms.toFixed(0)} ms)`).join(', ')}`);
    expect(describeFailures(results)).toEqual([]);
    expect(results.every((r) => r.ok)).toBe(true);
  });

  it(`computes the same outputs as Node from the same seed (within ${CROSS_RUNTIME_TOLERANCE})`, async () => {
    const inPage: Record<string, Outputs> = await harness.page.evaluate(
      (seed) => (globalThis as unknown as HarnessWindow).bayesgpuHarness.compute(seed),
      DETERMINISM_SEED,
    );
    const inNode = await runComputations(await context(), DETERMINISM_SEED);
    console.log(`browser vs Node, largest relative difference: ${summarizeDifferences(inPage, inNode)}`);
    expect(Object.keys(inPage)).toEqual(Object.keys(inNode));
    expect(compareOutputs(inPage, inNode)).toEqual([]);
  });

  it('runs a kernel through the published bundle dist/bayesgpu.browser.js', async () => {
    const smoke = await openPage(chromium.browser, `${server.url}public.html`);
    try {
      const result = await smoke.page.evaluate(() => (globalThis as unknown as { publicResult: Promise<{ error?: string; input: number[]; relu: number[] }> }).publicResult);
      expect(result.error).toBeUndefined();
      expect(result.relu).toEqual(result.input.map((v) => Math.max(v, 0)));
      expect(smoke.problems, smoke.console.join('\n')).toEqual([]);
    } finally {
      await smoke.page.close();
    }
  });
});
