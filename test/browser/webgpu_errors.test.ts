/**
 * Without WebGPU, or with too weak an adapter, createContext fails with a
 * BayesError that says what is missing and how to get it in this runtime:
 *
 *   - Node with no WebGPU provider and no navigator.gpu (the universal entry
 *     alone, setGpuProvider(undefined));
 *   - a fake GPU passed through setGpuProvider: no adapter, and an adapter
 *     reporting too small (or no) limits: the message names each limit;
 *   - headless Chromium started without --enable-unsafe-webgpu (its Linux
 *     blocklist stays in force, so requestAdapter() returns null), and a page
 *     from an origin that is not secure (no navigator.gpu at all).
 *
 * This file imports src/index.ts, never src/node.ts, so Dawn is not registered.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_BUNDLE, ensureBuilt } from '../../scripts/build.mjs';
import { REQUIRED_LIMITS } from '../../src/gpu/device.js';
import { BayesError, createContext, setGpuProvider } from '../../src/index.js';
import { type BrowserSession, launchChromium, openPage } from './chromium.js';
import { type StaticServer, serveStatic } from './server.js';

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<BayesError> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome, 'expected createContext to fail').toBeInstanceOf(BayesError);
  return outcome as BayesError;
}

/** A WebGPU implementation whose adapter reports `limits` (or no adapter at all) and counts requestDevice calls. */
function fakeGpu(adapter: { limits: Record<string, number> } | null): { gpu: GPU; deviceRequests: () => number } {
  let requests = 0;
  const fakeAdapter = adapter && {
    info: { vendor: 'acme', architecture: 'toy', device: '', description: 'Acme Toy GPU' },
    features: new Set<string>(),
    limits: adapter.limits,
    requestDevice: async () => {
      requests++;
      throw new Error('the fake adapter opens no device');
    },
  };
  const gpu = { requestAdapter: async () => fakeAdapter, getPreferredCanvasFormat: () => 'bgra8unorm', wgslLanguageFeatures: new Set() };
  return { gpu: gpu as unknown as GPU, deviceRequests: () => requests };
}

describe('no WebGPU: Node', () => {
  afterEach(() => setGpuProvider(undefined));

  it('without a provider and without navigator.gpu, the error says how to get WebGPU in Node', async () => {
    setGpuProvider(undefined);
    expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBeUndefined();
    const e = await rejection(createContext());
    expect(e.code).toBe('NO_WEBGPU');
    expect(e.message).toMatch(/^createContext: WebGPU is not available in this node runtime \(navigator\.gpu is undefined\)\./);
    expect(e.message).toContain("import from 'bayesgpu' in Node (its Node entry registers Dawn, the npm package 'webgpu')");
    expect(e.message).toContain('setGpuProvider(');
  });

  it('a provider whose requestAdapter() finds nothing: the error says how to get an adapter for Dawn', async () => {
    setGpuProvider(async () => fakeGpu(null).gpu);
    const e = await rejection(createContext());
    expect(e.code).toBe('NO_WEBGPU');
    expect(e.message).toMatch(/^createContext: requestAdapter\(\) returned no adapter in this node runtime\. Dawn .* found no GPU adapter/);
    expect(e.message).toContain('Vulkan driver');
    expect(e.message).toContain('VK_ICD_FILENAMES');
  });
});

describe('adapter limits', () => {
  afterEach(() => setGpuProvider(undefined));

  it('an adapter with too small a limit: the error names the limit, its value and the need, before requestDevice', async () => {
    const fake = fakeGpu({ limits: { ...REQUIRED_LIMITS, maxStorageBuffersPerShaderStage: 4, maxBufferSize: 1 << 30 } });
    setGpuProvider(async () => fake.gpu);
    const e = await rejection(createContext());
    expect(e.code).toBe('ADAPTER_LIMIT');
    expect(e.message).toBe(
      'createContext: the adapter acme / toy / Acme Toy GPU [node] is too limited: ' +
        "'maxStorageBuffersPerShaderStage' is 4, but bayesgpu needs at least 8. Try another adapter (powerPreference), a newer browser or driver.",
    );
    expect(fake.deviceRequests()).toBe(0);
  });

  it('every shortfall at once, including a limit the adapter does not report', async () => {
    const limits: Record<string, number> = { ...REQUIRED_LIMITS, maxComputeWorkgroupStorageSize: 8192 };
    delete limits.maxStorageBufferBindingSize;
    setGpuProvider(async () => fakeGpu({ limits }).gpu);
    const e = await rejection(createContext());
    expect(e.code).toBe('ADAPTER_LIMIT');
    expect(e.message).toContain("'maxComputeWorkgroupStorageSize' is 8192, but bayesgpu needs at least 16384");
    expect(e.message).toContain(`'maxStorageBufferBindingSize' is not reported (bayesgpu needs at least ${REQUIRED_LIMITS.maxStorageBufferBindingSize})`);
  });

  it('an adapter meeting every limit is asked for its device with those limits', async () => {
    const fake = fakeGpu({ limits: { ...REQUIRED_LIMITS } });
    setGpuProvider(async () => fake.gpu);
    // The fake adapter throws from requestDevice: reaching it means the limits passed.
    await expect(createContext()).rejects.toThrow('the fake adapter opens no device');
    expect(fake.deviceRequests()).toBe(1);
  });
});

interface Outcome {
  secure: boolean;
  hasGpu: boolean;
  /** null when there is no navigator.gpu to ask. */
  adapterFound: boolean | null;
  error: { name: string; code?: string; message: string } | null;
}

/** A page that imports the published browser bundle and offers createContext's outcome as plain data. */
const PAGE = `<!doctype html>
<meta charset="utf-8"><link rel="icon" href="data:,"><title>no WebGPU</title>
<script type="module">
import { createContext } from './bayesgpu.browser.js';
window.tryCreateContext = async () => {
  const gpu = navigator.gpu;
  const adapterFound = gpu ? (await gpu.requestAdapter()) !== null : null;
  const outcome = { secure: isSecureContext, hasGpu: Boolean(gpu), adapterFound, error: null };
  try {
    (await createContext()).destroy();
  } catch (e) {
    outcome.error = { name: e.name, code: e.code, message: e.message };
  }
  return outcome;
};
</script>
`;

describe('no WebGPU: headless Chromium', () => {
  let site: string;
  let server: StaticServer;
  let chromium: BrowserSession;

  beforeAll(async () => {
    await ensureBuilt();
    site = mkdtempSync(join(tmpdir(), 'bayesgpu-nogpu-'));
    copyFileSync(BROWSER_BUNDLE, join(site, 'bayesgpu.browser.js'));
    writeFileSync(join(site, 'index.html'), PAGE);
    server = await serveStatic(site);
    // No --enable-unsafe-webgpu; the name insecure.test reaches the same server from an origin that is not secure.
    chromium = await launchChromium({ webgpu: false, extraFlags: ['--host-resolver-rules=MAP insecure.test 127.0.0.1'] });
  });

  afterAll(async () => {
    await chromium?.close();
    await server?.close();
    if (site) rmSync(site, { recursive: true, force: true });
  });

  /** Opens `url`, imports the published bundle there and returns what createContext did. */
  async function tryCreateContext(url: string): Promise<Outcome> {
    const session = await openPage(chromium.browser, url);
    try {
      await session.page.waitForFunction(() => 'tryCreateContext' in globalThis);
      const outcome = await session.page.evaluate(() => (globalThis as unknown as { tryCreateContext(): Promise<Outcome> }).tryCreateContext());
      expect(session.problems, session.console.join('\n')).toEqual([]);
      return outcome;
    } finally {
      await session.page.close();
    }
  }

  it('without --enable-unsafe-webgpu requestAdapter() returns null, and the error says how to enable WebGPU in Chromium on Linux', async () => {
    const out = await tryCreateContext(`${server.url}index.html`);
    expect(out.secure).toBe(true);
    expect(out.adapterFound).not.toBe(true);
    expect(out.error?.name).toBe('BayesError');
    expect(out.error?.code).toBe('NO_WEBGPU');
    console.log(`Chromium without WebGPU: ${out.error?.message}`);
    expect(out.error?.message).toMatch(/in this browser runtime/);
    expect(out.error?.message).toContain('--enable-unsafe-webgpu');
    expect(out.error?.message).toContain('chrome://flags/#enable-unsafe-webgpu');
  });

  it('a page from an origin that is not secure has no navigator.gpu, and the error says to serve it over https or from localhost', async () => {
    const out = await tryCreateContext(server.url.replace('127.0.0.1', 'insecure.test') + 'index.html');
    expect(out.secure).toBe(false);
    expect(out.hasGpu).toBe(false);
    expect(out.error?.code).toBe('NO_WEBGPU');
    expect(out.error?.message).toMatch(/^createContext: WebGPU is not available in this browser runtime \(navigator\.gpu is undefined\)\. This page is not a secure context \(origin http:\/\/insecure\.test:\d+\)/);
    expect(out.error?.message).toContain('https');
  });
});
