/**
 * The interactive demo (demo/) in headless Chromium with WebGPU on SwiftShader:
 * every tab is opened and used as a person would (a stroke drawn with the
 * mouse, the train button pressed for a few steps, a gallery image clicked),
 * and the numbers it shows must appear, be sane and change. Any page error,
 * console error (the demo logs every failure there), failed request or HTTP
 * error fails the test during which it happened.
 *
 * Step counts are small for the software adapter: the query string presets
 * the tabs' selects (fewer images, fewer epochs).
 *
 * Screenshots go to a temporary folder (printed). UPDATE_DEMO_SCREENSHOT=1
 * trains longer on the Digits tab and copies its screenshot to
 * demo/screenshot.png for the README.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DIR, buildDemo } from '../../demo/serve.mjs';
import { type DemoServer, serveStatic } from '../../demo/server.mjs';
import { type BrowserSession, type PageSession, launchChromium, openPage } from '../browser/chromium.js';

const UPDATE_SCREENSHOT = process.env.UPDATE_DEMO_SCREENSHOT === '1';
/** Training steps on the Digits tab (each is a batch of 32 on the software adapter, about 0.4 s). */
const TRAIN_STEPS = UPDATE_SCREENSHOT ? 80 : 6;

describe('demo: the interactive page in headless Chromium', () => {
  let server: DemoServer;
  let chromium: BrowserSession;
  let shots: string;
  const sessions: PageSession[] = [];

  beforeAll(async () => {
    const started = performance.now();
    const sizes = await buildDemo();
    console.log(`demo bundles: ${Object.entries(sizes).map(([n, b]) => `${n}.js ${(b / 1024).toFixed(0)} KiB`).join(', ')} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    server = await serveStatic(DEMO_DIR);
    chromium = await launchChromium();
    shots = mkdtempSync(join(tmpdir(), 'bayesgpu-demo-shots-'));
    console.log(`demo screenshots: ${shots}`);
  });

  afterAll(async () => {
    await chromium?.close();
    await server?.close();
  });

  afterEach(async () => {
    for (const s of sessions.splice(0)) {
      // Taken before closing, so that a late error still fails this test.
      const problems = s.problems.splice(0);
      await s.page.close();
      expect(problems, `problems in the page; console:\n${s.console.join('\n')}`).toEqual([]);
    }
  });

  /** Opens the demo at `path` (e.g. '?ood-samples=10#ood') in a 1280 x 900 window and waits until it started. */
  async function open(path: string): Promise<Page> {
    const session = await openPage(chromium.browser, `${server.url}index.html${path}`);
    sessions.push(session);
    await session.page.setViewport({ width: 1280, height: 900 });
    await session.page.waitForFunction(() => document.documentElement.dataset.demo !== undefined);
    return session.page;
  }

  const screenshot = async (page: Page, name: string) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return path;
  };

  /** A stroke through `points` (pad coordinates, 280 x 280) with mouse events, as a person draws. */
  async function stroke(page: Page, points: [number, number][]): Promise<void> {
    const box = (await (await page.$('#pad'))!.boundingBox())!;
    await page.mouse.move(box.x + points[0][0], box.y + points[0][1]);
    await page.mouse.down();
    for (const [x, y] of points.slice(1)) await page.mouse.move(box.x + x, box.y + y, { steps: 5 });
    await page.mouse.up();
  }

  /** Waits until the pad has shown more than `after` predictions and none is pending; returns its numbers. */
  async function settledPrediction(page: Page, after: number) {
    await page.waitForFunction(
      (n) => {
        const d = document.getElementById('digit-summary')!.dataset;
        return Number(d.updates) > n && d.busy === 'false';
      },
      {},
      after,
    );
    return page.evaluate(() => {
      const d = document.getElementById('digit-summary')!.dataset;
      const values = (kind: string) => Array.from(document.querySelectorAll(`#digit-bars rect.${kind}`), (r) => Number(r.getAttribute('data-value')));
      return {
        updates: Number(d.updates), prediction: Number(d.prediction), entropy: Number(d.entropy), mutualInformation: Number(d.mutualInformation),
        text: document.getElementById('digit-summary')!.textContent ?? '',
        mean: values('mean'), epistemic: values('epistemic'), aleatoric: values('aleatoric'),
      };
    });
  }

  it('opens WebGPU and shows the adapter (the software fallback adapter here)', async () => {
    const page = await open('');
    const adapter = await page.$eval('#adapter', (e) => ({ state: (e as HTMLElement).dataset.state, fallback: (e as HTMLElement).dataset.fallback, text: e.textContent ?? '' }));
    console.log(`demo page adapter: ${adapter.text}`);
    expect(adapter.state).toBe('ready');
    expect(adapter.text).toMatch(/^WebGPU adapter: .+\[browser\]/);
    if ((process.env.BAYESGPU_CHROMIUM_ADAPTER ?? 'swiftshader') === 'swiftshader') {
      expect(adapter.text.toLowerCase()).toContain('swiftshader');
      expect(adapter.fallback).toBe('true');
    }
    expect(await page.$eval('#no-webgpu', (e) => (e as HTMLElement).hidden)).toBe(true);
  });

  it('Digits: a drawn stroke is classified live, with per-class epistemic and aleatoric variances', async () => {
    const page = await open('#digits');
    await page.waitForFunction(() => /lenet/.test(document.getElementById('shipped-info')!.textContent ?? ''));
    // A "7": the top bar, then the long diagonal.
    await stroke(page, [[80, 60], [200, 60], [150, 160], [115, 240]]);
    const first = await settledPrediction(page, 0);
    expect(first.prediction).toBeGreaterThanOrEqual(0);
    expect(first.prediction).toBeLessThanOrEqual(9);
    expect(first.mean).toHaveLength(10);
    expect(first.epistemic).toHaveLength(10);
    expect(first.aleatoric).toHaveLength(10);
    // p̄ is a distribution (f32 sums of 10 terms: 1e-5).
    expect(Math.abs(first.mean.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    // Per class, epistemic + aleatoric = p̄ (1 - p̄) (the variance of the class indicator); f32 moments: 1e-5.
    first.mean.forEach((p, c) => expect(Math.abs(first.epistemic[c] + first.aleatoric[c] - p * (1 - p)), `class ${c}`).toBeLessThan(1e-5));
    expect(first.entropy).toBeGreaterThanOrEqual(0);
    expect(first.entropy).toBeLessThanOrEqual(Math.log(10) + 1e-5);
    expect(first.mutualInformation).toBeGreaterThanOrEqual(-1e-6);
    expect(first.mutualInformation).toBeLessThanOrEqual(first.entropy + 1e-6);
    expect(first.text).toContain('T = 20 samples');
    // The model input preview shows ink.
    const ink = await page.$eval('#pad-input', (c) => {
      const d = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 32, 32).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++;
      return n;
    });
    expect(ink).toBeGreaterThan(20);
    console.log(`demo digits: a drawn 7 -> ${first.prediction} (p ${first.mean[first.prediction].toFixed(3)}, H ${first.entropy.toFixed(3)}, MI ${first.mutualInformation.toFixed(4)})`);

    // A second stroke changes the drawing, and so the numbers.
    await stroke(page, [[70, 170], [210, 130]]);
    const second = await settledPrediction(page, first.updates);
    expect(second.updates).toBeGreaterThan(first.updates);
    expect(second.mean).not.toEqual(first.mean);
    await screenshot(page, 'digits');

    // A finger draws too (touch events become pointer events; the pad has touch-action: none).
    const box = (await (await page.$('#pad'))!.boundingBox())!;
    await page.touchscreen.touchStart(box.x + 60, box.y + 230);
    for (let k = 1; k <= 8; k++) await page.touchscreen.touchMove(box.x + 60 + k * 20, box.y + 230);
    await page.touchscreen.touchEnd();
    const touched = await settledPrediction(page, second.updates);
    expect(touched.mean).not.toEqual(second.mean);

    // Clear empties the pad and the bars.
    await page.click('#pad-clear');
    await page.waitForFunction(() => document.getElementById('digit-summary')!.textContent === 'Draw a digit on the pad.');
    expect(await page.$$eval('#digit-bars rect', (r) => r.length)).toBe(0);
  });

  it(`Digits: "Train" trains a fresh model in a worker for ${TRAIN_STEPS} steps, and the pad then uses it`, async () => {
    const page = await open(`?train-epochs=${UPDATE_SCREENSHOT ? 3 : 1}#digits`);
    await page.waitForFunction(() => /lenet/.test(document.getElementById('shipped-info')!.textContent ?? ''));
    await stroke(page, [[80, 60], [200, 60], [150, 160], [115, 240]]);
    const before = await settledPrediction(page, 0);
    const started = performance.now();
    await page.click('#train-start');
    const nll: number[] = [];
    for (let step = 1; step <= TRAIN_STEPS; step++) {
      await page.waitForFunction((s) => Number(document.getElementById('train-status')!.dataset.step) >= s, { timeout: 120_000 }, step);
      nll.push(await page.$eval('#train-status', (e) => Number((e as HTMLElement).dataset.nll)));
    }
    const seconds = (performance.now() - started) / 1000;
    // Training runs in the worker: meanwhile the page answers at once, and the pad still predicts.
    const ping = performance.now();
    const mainThreadDelay = await page.evaluate(() => new Promise<number>((ok) => {
      const t = performance.now();
      setTimeout(() => ok(performance.now() - t), 0);
    }));
    const roundTrip = performance.now() - ping;
    const trainingStep = await page.$eval('#train-status', (e) => Number((e as HTMLElement).dataset.step));
    await stroke(page, [[200, 60], [230, 40]]);
    const during = await settledPrediction(page, before.updates);
    const stillTraining = await page.$eval('#train-stop', (b) => !(b as HTMLButtonElement).disabled);
    console.log(`demo while training (step ${trainingStep}): setTimeout(0) fired after ${mainThreadDelay.toFixed(1)} ms, evaluate round trip ${roundTrip.toFixed(0)} ms; pad predicted ${during.prediction}`);
    expect(mainThreadDelay).toBeLessThan(100);
    expect(stillTraining).toBe(true);
    expect(during.text).toContain('pretrained model');
    // Each step's NLL is a finite number near log 10 at the start, and they are not all the same.
    for (const v of nll) expect(v).toBeGreaterThan(0);
    for (const v of nll) expect(v).toBeLessThan(20);
    expect(new Set(nll).size).toBeGreaterThan(1);
    const status = await page.$eval('#train-status', (e) => e.textContent ?? '');
    expect(status).toMatch(/step \d+: NLL \d+\.\d+/);
    expect(status).toMatch(/images\/s/);
    const curve = await page.$eval('#train-loss svg .series', (g) => ({ count: Number(g.getAttribute('data-count')), last: Number(g.getAttribute('data-last')) }));
    expect(curve.count).toBeGreaterThanOrEqual(2);
    expect(Number.isFinite(curve.last)).toBe(true);
    await page.click('#train-stop');
    await page.waitForFunction(() => document.getElementById('train-status')!.dataset.done !== undefined, { timeout: 120_000 });
    const done = await page.$eval('#train-status', (e) => ({ text: e.textContent ?? '', heldOut: Number((e as HTMLElement).dataset.heldOut), steps: Number((e as HTMLElement).dataset.done) }));
    console.log(`demo training: ${TRAIN_STEPS} steps observed in ${seconds.toFixed(1)} s; ${done.text}`);
    expect(done.steps).toBeGreaterThanOrEqual(TRAIN_STEPS);
    expect(done.heldOut).toBeGreaterThanOrEqual(0);
    expect(done.heldOut).toBeLessThanOrEqual(1);
    // The trained model is selected and the pad predicts with it.
    const radio = await page.$eval('input[name="digit-model"][value="browser"]', (r) => ({ disabled: (r as HTMLInputElement).disabled, checked: (r as HTMLInputElement).checked }));
    expect(radio).toEqual({ disabled: false, checked: true });
    const after = await settledPrediction(page, during.updates);
    expect(after.text).toContain('model trained in this browser');
    expect(after.mean).not.toEqual(during.mean);
    const path = await screenshot(page, 'digits-trained');
    if (UPDATE_SCREENSHOT) {
      copyFileSync(path, join(DEMO_DIR, 'screenshot.png'));
      console.log(`demo: wrote ${join(DEMO_DIR, 'screenshot.png')}`);
    }
  });

  it('Out of distribution: entropy and mutual information rise on Fashion-MNIST and noise', async () => {
    const page = await open('?ood-samples=10#ood');
    await page.waitForFunction(() => document.getElementById('ood-status')!.dataset.done !== undefined, { timeout: 120_000 });
    const rows = await page.$$eval('#ood-table tbody tr', (trs) => trs.map((tr) => ({
      set: tr.getAttribute('data-set'), entropy: Number(tr.getAttribute('data-entropy')), mi: Number(tr.getAttribute('data-mi')),
      aurocEntropy: Number(tr.children[5].textContent),
    })));
    console.log(`demo OOD (T = 10): ${rows.map((r) => `${r.set}: H ${r.entropy.toFixed(3)}, MI ${r.mi.toFixed(4)}`).join('; ')}`);
    expect(rows.map((r) => r.set)).toEqual(['MNIST digits', 'Fashion-MNIST', 'blank canvas', 'uniform noise']);
    const [mnist, fashion, blank, noise] = rows;
    for (const r of rows) {
      expect(r.entropy).toBeGreaterThanOrEqual(0);
      expect(r.entropy).toBeLessThanOrEqual(Math.log(10) + 1e-5);
      expect(r.mi).toBeGreaterThanOrEqual(-1e-6);
    }
    expect(fashion.entropy).toBeGreaterThan(mnist.entropy);
    expect(noise.entropy).toBeGreaterThan(mnist.entropy);
    expect(fashion.mi).toBeGreaterThan(mnist.mi);
    expect(fashion.aurocEntropy).toBeGreaterThan(0.5);
    expect(Number.isFinite(blank.entropy)).toBe(true);
    expect(await page.$$eval('#ood-scatter circle', (c) => c.length)).toBe(100 + 100 + 1 + 20);
    // A click on a gallery image shows its per-class bars.
    const figures = await page.$$('#ood-gallery figure');
    expect(figures.length).toBeGreaterThanOrEqual(13);
    await figures[7].click();
    await page.waitForFunction(() => document.querySelectorAll('#ood-detail rect.epistemic').length === 10);
    expect(await page.$eval('#ood-detail svg .title', (t) => t.textContent)).toMatch(/^Fashion-MNIST/);
    await screenshot(page, 'ood');
  });

  it('Regression: the noisy sine trains live in a worker; the band is wide outside the data', async () => {
    const page = await open('?reg-epochs=50#regression');
    await page.waitForFunction(() => Number(document.getElementById('reg-chart')!.dataset.frames) >= 2, { timeout: 120_000 });
    const early = await page.$eval('#reg-chart polyline.mean', (p) => p.getAttribute('points'));
    await page.waitForFunction(() => document.getElementById('reg-status')!.dataset.done !== undefined, { timeout: 120_000 });
    const end = await page.$eval('#reg-chart', (c) => ({
      epoch: Number((c as HTMLElement).dataset.epoch), frames: Number((c as HTMLElement).dataset.frames),
      inside: Number((c as HTMLElement).dataset.stdInside), outside: Number((c as HTMLElement).dataset.stdOutside),
      mean: c.querySelector('polyline.mean')!.getAttribute('points'), points: c.querySelectorAll('circle').length,
    }));
    console.log(`demo regression: ${end.frames} frames to epoch ${end.epoch}; predictive std ${end.inside.toFixed(3)} at x = 0, ${end.outside.toFixed(3)} at |x| = 6.5; ${await page.$eval('#reg-status', (e) => e.textContent)}`);
    expect(end.epoch).toBe(50);
    expect(end.frames).toBeGreaterThanOrEqual(10);
    expect(end.mean).not.toBe(early);
    expect(end.points).toBe(512);
    // Inside the data the std approaches the noise (0.1); outside it the sampled networks disagree.
    expect(end.inside).toBeGreaterThan(0.03);
    expect(end.inside).toBeLessThan(0.5);
    expect(end.outside).toBeGreaterThan(2 * end.inside);
    await screenshot(page, 'regression');
  });

  it('Calibration: the reliability diagram of the shipped model fills in batch by batch', async () => {
    const page = await open('?cal-count=200#calibration');
    await page.waitForFunction(() => document.getElementById('cal-chart')!.dataset.images === '100', { timeout: 120_000 });
    const firstEce = await page.$eval('#cal-chart', (c) => Number((c as HTMLElement).dataset.ece));
    await page.waitForFunction(() => document.getElementById('cal-status')!.dataset.done === '200', { timeout: 120_000 });
    const result = await page.evaluate(() => {
      const metric = (k: string) => document.querySelector(`#cal-metrics [data-metric="${k}"]`)!.textContent ?? '';
      const svg = document.querySelector('#cal-chart svg')!;
      return {
        images: metric('images'), accuracy: parseFloat(metric('accuracy')), ece: Number(svg.getAttribute('data-ece')),
        counts: Array.from(svg.querySelectorAll('rect.bin'), (r) => Number(r.getAttribute('data-count'))),
      };
    });
    console.log(`demo calibration: 200 images, accuracy ${result.accuracy}%, ECE ${result.ece.toFixed(4)} (after 100 images: ${firstEce.toFixed(4)})`);
    expect(result.images).toBe('200');
    expect(result.counts).toHaveLength(15);
    expect(result.counts.reduce((a, b) => a + b, 0)).toBe(200);
    expect(result.accuracy).toBeGreaterThan(50);
    expect(result.ece).toBeGreaterThanOrEqual(0);
    expect(result.ece).toBeLessThanOrEqual(1);
    expect(Number.isFinite(firstEce)).toBe(true);
    await screenshot(page, 'calibration');
  });

  it('without WebGPU the page says so and how to turn it on', async () => {
    for (const [how, setup] of [
      ['no navigator.gpu', () => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true })],
      ['no adapter', () => Object.defineProperty(GPU.prototype, 'requestAdapter', { value: async () => null, configurable: true })],
    ] as const) {
      const session = await openPage(chromium.browser, 'about:blank');
      sessions.push(session);
      await session.page.evaluateOnNewDocument(setup);
      await session.page.goto(`${server.url}index.html`, { waitUntil: 'load' });
      await session.page.waitForFunction(() => document.documentElement.dataset.demo === 'no-webgpu');
      const shown = await session.page.evaluate(() => ({
        hidden: document.getElementById('no-webgpu')!.hidden,
        reason: document.getElementById('no-webgpu-reason')!.textContent ?? '',
        text: document.getElementById('no-webgpu')!.textContent ?? '',
        adapter: document.getElementById('adapter')!.textContent,
        tabsHidden: Array.from(document.querySelectorAll('[role="tabpanel"]'), (p) => (p as HTMLElement).hidden),
      }));
      expect(shown.hidden, how).toBe(false);
      expect(shown.adapter).toBe('WebGPU: not available');
      expect(shown.text).toContain('--enable-unsafe-webgpu');
      expect(shown.text).toContain('chrome://flags/#enable-unsafe-webgpu');
      expect(shown.tabsHidden).toEqual([true, true, true, true]);
      expect(shown.reason).toMatch(how === 'no adapter' ? /requestAdapter\(\) returned no adapter/ : /navigator\.gpu is undefined/);
      if (how === 'no adapter') await screenshot(session.page, 'no-webgpu');
    }
  });
});
