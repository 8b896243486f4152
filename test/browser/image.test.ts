/**
 * Images straight from the page, in headless Chromium: a canvas, an ImageData, an ImageBitmap, an
 * OffscreenCanvas, an image and a VideoFrame (where Chromium offers them; a skipped one prints
 * why) reach the GPU through copyExternalImageToTexture and must give exactly the tensor of the
 * same pixels given as a RawImage (the same bytes through the same kernel: no tolerance), and
 * exactly the logits of that tensor given as a Tensor, and model.predict of the source exactly
 * model.predict of that Tensor; all of them in one call give one batch.
 * The bad sources only a page can make are each one BayesError with nothing left allocated.
 * The page (test/browser/image_page.ts) is bundled from src with the shaders inlined.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, bundleForBrowser } from '../../scripts/build.mjs';
import { type BrowserSession, type PageSession, launchChromium, openPage } from './chromium.js';
import type { ImageReport } from './image_page.js';
import { type StaticServer, serveStatic } from './server.js';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>bayesgpu images</title>
<script type="module" src="./image_harness.js"></script></head>
<body><p>bayesgpu image input: driven by test/browser/image.test.ts through window.imageHarness.</p></body></html>
`;

describe('browser: images from the page (headless Chromium)', () => {
  let site: string;
  let server: StaticServer;
  let chromium: BrowserSession;
  let session: PageSession;
  let report: ImageReport;

  beforeAll(async () => {
    site = mkdtempSync(join(tmpdir(), 'bayesgpu-images-'));
    await bundleForBrowser({ entry: join(ROOT, 'test/browser/image_page.ts'), outfile: join(site, 'image_harness.js') });
    writeFileSync(join(site, 'index.html'), PAGE);
    server = await serveStatic(site);
    chromium = await launchChromium();
    session = await openPage(chromium.browser, `${server.url}index.html`);
    await session.page.waitForFunction(() => document.documentElement.dataset.harness === 'ready');
    report = await session.page.evaluate(() => (globalThis as unknown as { imageHarness: { run: () => Promise<ImageReport> } }).imageHarness.run());
  });

  afterAll(async () => {
    await chromium?.close();
    await server?.close();
    if (site) rmSync(site, { recursive: true, force: true });
  });

  it('every browser source gives the RawImage tensor of the same pixels and the Tensor path logits', () => {
    console.log(`image sources on ${report.adapter}`);
    for (const [label, results] of Object.entries(report.sources)) {
      for (const r of results) {
        if (r.skipped) {
          console.log(`  ${label}: ${r.name} skipped: ${r.skipped}`);
          continue;
        }
        console.log(`  ${label}: ${r.name} tensor diff ${r.tensorDiff}, logits diff ${r.logitsDiff}, predict diff ${r.predictDiff}${r.note ? ` (${r.note})` : ''}`);
        expect(r.isImageSource, `${label}: ${r.name} is an image source`).toBe(true);
        expect(r.tensorDiff, `${label}: ${r.name} vs the RawImage`).toBe(0);
        expect(r.logitsDiff, `${label}: ${r.name} logits vs the Tensor path`).toBe(0);
        expect(r.predictDiff, `${label}: model.predict(${r.name}) vs model.predict(Tensor)`).toBe(0);
      }
      const tested = results.filter((r) => !r.skipped).map((r) => r.name);
      // Chromium has all of these but VideoFrame, which only some builds lack.
      for (const name of ['HTMLCanvasElement', 'ImageData', 'ImageBitmap', 'OffscreenCanvas', 'HTMLImageElement']) expect(tested).toContain(name);
    }
    expect(report.batchDiff, 'all sources in one call vs the RawImage').toBe(0);
    expect(session.problems, session.console.join('\n')).toEqual([]);
  });

  it('bad sources: one BayesError each, naming what the model expects and what was given; nothing allocated', () => {
    const byName = Object.fromEntries(report.errors.map((e) => [e.name, e]));
    const expected: Record<string, RegExp> = {
      'video without a frame': /^imagesToTensor: argument 'sources\[0\]' expected an image with pixels, got an HTMLVideoElement with no frame yet \(readyState 0 < HAVE_CURRENT_DATA \(2\), videoWidth 0\); wait for its 'loadeddata' event$/,
      'closed ImageBitmap': /^imagesToTensor: argument 'sources\[0\]' expected an image with pixels, got a closed or empty ImageBitmap/,
      'closed VideoFrame': /^imagesToTensor: argument 'sources\[0\]' expected an image with pixels, got a closed VideoFrame/,
      'zero-sized canvas': /^imagesToTensor: argument 'sources\[0\]' expected an image with pixels, got a zero-sized HTMLCanvasElement \(0 x 150\)$/,
      'colour canvas for a grey model': /^imagesToTensor: argument 'sources\[1\]' is a colour image \(\d+ of its 851 pixels have R, G, B not all equal; a HTMLCanvasElement of 37 x 23\), but the model's input \[1, 16, 12\] \(grey images, any size\) is grey; pass \{ grey: true \}/,
      'a canvas 2D context instead of the canvas': /^imagesToTensor: argument 'sources\[0\]' expected an image source \(ImageData, ImageBitmap, HTMLCanvasElement, .*\) for the model's input \[1, 16, 12\] \(grey images, any size\), got CanvasRenderingContext2D$/,
    };
    for (const [name, pattern] of Object.entries(expected)) {
      const e = byName[name];
      if (!e && name === 'closed VideoFrame') {
        console.log('closed VideoFrame skipped: VideoFrame is not defined in this browser');
        continue;
      }
      expect(e, name).toBeDefined();
      expect(e.code, `${name}: ${e.message}`).toMatch(/^(INVALID_ARGUMENT|SHAPE_MISMATCH)$/);
      expect(e.message, name).toMatch(pattern);
      expect(e.leaked, `${name}: tensors left allocated`).toBe(0);
    }
  });
});
