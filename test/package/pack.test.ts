/**
 * The published package as a consumer gets it: `npm pack`, install the
 * tarball into a fresh project (dependencies from the npm cache), then
 *   - Node: `import { createContext } from 'bayesgpu'` runs a kernel (Dawn);
 *   - TypeScript: the consumer typechecks against dist/*.d.ts with skipLibCheck off;
 *   - browser: a tiny web app importing 'bayesgpu' is bundled by esbuild (the
 *     'browser' export condition picks dist/bayesgpu.browser.js) and runs a
 *     kernel in headless Chromium.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, checkBrowserBundle } from '../../scripts/build.mjs';
import { launchChromium, openPage } from '../browser/chromium.js';
import { serveStatic } from '../browser/server.js';
import { type Consumer, packAndInstall, run } from './consumer.js';

/** The kernel every consumer runs: relu through the public ops namespace. */
const CONSUMER_CODE = `
import { createContext, ops } from 'bayesgpu';

export async function run() {
  const ctx = await createContext();
  try {
    const input = [-2, -0.5, 0, 0.5, 3, -7, 11];
    const x = ctx.tensor(input, [input.length]);
    const y = ops.activationForward(x, { kind: 'relu' });
    return { adapter: ctx.adapterName, runtime: ctx.adapter.runtime, input, relu: Array.from(await y.read()) };
  } finally {
    ctx.destroy();
  }
}
`;

/** The same through the types: a consumer's TypeScript must see the public API. */
const CONSUMER_TS = `
import { BBBLeNet, BayesError, createContext, ops, type Context, type Prediction, type Tensor } from 'bayesgpu';

export async function relu(values: number[]): Promise<Float32Array> {
  const ctx: Context = await createContext();
  const x: Tensor = ctx.tensor(values, [values.length]);
  const options: ops.ActivationOptions = { kind: 'relu' };
  const y: Tensor<'f32'> = ops.activationForward(x, options);
  const out = await y.read();
  ctx.destroy();
  return out;
}
export async function classify(ctx: Context, pixels: Float32Array): Promise<number> {
  const p: Prediction = await BBBLeNet(ctx).predict({ data: pixels, shape: [1, 32, 32] }, { samples: 4 });
  return p.predicted[0];
}
export const isBayesError = (e: unknown): e is BayesError => e instanceof BayesError;
`;

describe('package: npm pack, install and use', () => {
  let installed: Consumer;
  let consumer: string;
  let packedFiles: string[];

  beforeAll(async () => {
    installed = await packAndInstall();
    consumer = installed.dir;
    packedFiles = installed.packedFiles;
  }, 150_000);

  afterAll(() => installed?.dispose());

  it('the tarball holds dist/ (JS, types, browser bundle, the bin) and shaders/, and no sources or tests', () => {
    for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/cli.js', 'dist/gpu/shader_files.js', 'dist/bayesgpu.browser.js', 'dist/bayesgpu.browser.js.map', 'shaders/activation.wgsl', 'shaders/common.wgsl']) {
      expect(packedFiles, f).toContain(f);
    }
    expect(packedFiles.filter((f) => /^(src|test|scripts|bench|demo)\//.test(f))).toEqual([]);
  });

  it("Node: import { createContext } from 'bayesgpu' runs a kernel", async () => {
    writeFileSync(join(consumer, 'kernel.mjs'), CONSUMER_CODE);
    writeFileSync(join(consumer, 'main.mjs'), "import { run } from './kernel.mjs';\nconsole.log(JSON.stringify(await run()));\n");
    const out = JSON.parse((await run(process.execPath, ['main.mjs'], consumer)).trim().split('\n').pop()!) as { runtime: string; adapter: string; input: number[]; relu: number[] };
    console.log(`consumer (node): ${out.adapter}`);
    expect(out.runtime).toBe('node');
    expect(out.relu).toEqual(out.input.map((v) => Math.max(v, 0)));
  });

  it('TypeScript: a consumer typechecks against the published declarations (skipLibCheck off)', async () => {
    writeFileSync(join(consumer, 'use.ts'), CONSUMER_TS);
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: ['@webgpu/types'], strict: true, noEmit: true, skipLibCheck: false },
        files: ['use.ts'],
      }),
    );
    const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], consumer);
  });

  it("browser: a web app bundling 'bayesgpu' gets the browser build and runs a kernel in Chromium", async () => {
    const site = join(consumer, 'site');
    mkdirSync(site);
    writeFileSync(join(consumer, 'kernel.mjs'), CONSUMER_CODE);
    writeFileSync(join(consumer, 'app.mjs'), "import { run } from './kernel.mjs';\nwindow.appResult = run().catch((e) => ({ error: String(e?.stack ?? e) }));\n");
    const outfile = join(site, 'app.js');
    const result = await esbuild.build({
      absWorkingDir: consumer,
      entryPoints: ['app.mjs'],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    expect(Object.keys(result.metafile.inputs)).toContain('node_modules/bayesgpu/dist/bayesgpu.browser.js');
    checkBrowserBundle(outfile, result.metafile, consumer);
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>consumer</title><script type="module" src="./app.js"></script>\n');
    expect(readFileSync(outfile, 'utf8').length).toBeGreaterThan(1000);

    const server = await serveStatic(site);
    const chromium = await launchChromium();
    try {
      const page = await openPage(chromium.browser, `${server.url}index.html`);
      await page.page.waitForFunction(() => 'appResult' in globalThis);
      const out = await page.page.evaluate(() => (globalThis as unknown as { appResult: Promise<{ error?: string; runtime: string; adapter: string; input: number[]; relu: number[] }> }).appResult);
      expect(out.error).toBeUndefined();
      console.log(`consumer (browser): ${out.adapter}`);
      expect(out.runtime).toBe('browser');
      expect(out.relu).toEqual(out.input.map((v) => Math.max(v, 0)));
      expect(page.problems, page.console.join('\n')).toEqual([]);
    } finally {
      await chromium.close();
      await server.close();
    }
  });
});
