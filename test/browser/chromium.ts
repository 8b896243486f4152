/**
 * Headless Chromium for the browser tests (puppeteer-core driving the system
 * Chromium; no browser is downloaded).
 *
 * Flags, as measured with Debian's Chromium 156 on a machine without a GPU:
 *   needed   --headless=new
 *            --no-sandbox              (the tests run as root; Chromium refuses to start otherwise)
 *            --enable-unsafe-webgpu    (WebGPU is blocklisted on Linux: requestAdapter() returns null without it)
 *   chosen   --use-webgpu-adapter=swiftshader  (without a GPU Chromium falls back to SwiftShader anyway;
 *                                              with one, this keeps the page on the same CPU adapter as
 *                                              Node's Dawn; BAYESGPU_CHROMIUM_ADAPTER=default drops it)
 *   quiet    --disable-background-networking --disable-component-update --disable-sync --no-first-run
 *            (no network traffic, nothing beyond 127.0.0.1 is reachable anyway)
 * --enable-features=Vulkan and --disable-gpu-sandbox made no difference here.
 * The page must come from http://127.0.0.1: about:blank is not a secure
 * context and has no navigator.gpu.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome-stable', '/usr/bin/google-chrome'];

/** The Chromium to drive: $CHROMIUM_PATH, else the first system install found. */
export function findChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return fromEnv;
  return CANDIDATES.find((p) => existsSync(p));
}

export interface LaunchOptions {
  /** Turn WebGPU on (default true); false leaves Chromium's Linux blocklist in force, so requestAdapter() finds nothing. */
  webgpu?: boolean;
  /** More switches, e.g. --host-resolver-rules to reach the test server under a name that is not a secure origin. */
  extraFlags?: string[];
}

export function chromiumFlags(env: NodeJS.ProcessEnv = process.env, options: LaunchOptions = {}): string[] {
  const flags = [
    '--headless=new',
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--no-default-browser-check',
  ];
  if (options.webgpu ?? true) {
    flags.push('--enable-unsafe-webgpu');
    const adapter = env.BAYESGPU_CHROMIUM_ADAPTER ?? 'swiftshader';
    if (adapter !== 'default') flags.push(`--use-webgpu-adapter=${adapter}`);
  }
  return [...flags, ...(options.extraFlags ?? [])];
}

export interface BrowserSession {
  browser: Browser;
  executablePath: string;
  close(): Promise<void>;
}

/** Starts Chromium with a fresh profile in a temporary directory (removed on close). */
export async function launchChromium(options: LaunchOptions = {}): Promise<BrowserSession> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(`no Chromium found (looked at $CHROMIUM_PATH, ${CANDIDATES.join(', ')}); install Debian's 'chromium' package`);
  const profile = mkdtempSync(join(tmpdir(), 'bayesgpu-chromium-'));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath,
      // Only our flags: puppeteer's defaults include --disable-gpu-related switches we do not want.
      ignoreDefaultArgs: true,
      args: [...chromiumFlags(process.env, options), `--user-data-dir=${profile}`],
      pipe: true,
      // Kernels on SwiftShader are slow; one page.evaluate may run many of them.
      protocolTimeout: 180_000,
      timeout: 60_000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    browser,
    executablePath,
    async close() {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface PageSession {
  page: Page;
  /** Page errors, console errors, failed requests and HTTP errors, in order; a test fails on any. */
  problems: string[];
  /** Every console message as `type: text`, for debugging. */
  console: string[];
}

/** Opens `url` in a new page, recording every problem, and waits for the load event. */
export async function openPage(browser: Browser, url: string): Promise<PageSession> {
  const page = await browser.newPage();
  const session: PageSession = { page, problems: [], console: [] };
  page.setDefaultTimeout(120_000);
  page.on('pageerror', (err) => session.problems.push(`page error: ${(err as Error).stack ?? err}`));
  page.on('error', (err) => session.problems.push(`page crashed: ${err.message}`));
  page.on('console', (msg) => {
    const line = `${msg.type()}: ${msg.text()}`;
    session.console.push(line);
    if (msg.type() === 'error') session.problems.push(`console ${line}`);
  });
  page.on('requestfailed', (req) => session.problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  page.on('response', (res) => {
    if (res.status() >= 400) session.problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  return session;
}
