#!/usr/bin/env node
/**
 * Builds and serves the interactive demo:
 *
 *   node demo/serve.mjs [--port N] [--build-only]
 *
 * 1. Bundles demo/main.ts (the page) and demo/worker.ts (the training worker)
 *    into demo/build/ with scripts/build.mjs's bundleForBrowser: the shaders are
 *    inlined by its esbuild plugin, and the result is checked to reach neither
 *    Node nor the native WebGPU of Node.
 * 2. Serves demo/ on http://127.0.0.1:PORT/ (default 8080) with demo/server.mjs
 *    and prints the URL. Nothing outside demo/ is served.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT, bundleForBrowser } from '../scripts/build.mjs';
import { serveStatic } from './server.mjs';

export const DEMO_DIR = dirname(fileURLToPath(import.meta.url));
export const BUILD_DIR = join(DEMO_DIR, 'build');
export const MODEL_FILE = join(DEMO_DIR, 'model', 'lenet_lrt.safetensors');

/** The two bundles the page loads: build/main.js and build/worker.js (the page starts the worker from it). */
const ENTRIES = ['main', 'worker'];

/** Bundles the page and the worker into demo/build/; returns the bundle sizes in bytes. */
export async function buildDemo({ outDir = BUILD_DIR, minify = true } = {}) {
  mkdirSync(outDir, { recursive: true });
  const sizes = {};
  for (const name of ENTRIES) {
    const outfile = join(outDir, `${name}.js`);
    await bundleForBrowser({ entry: join(DEMO_DIR, `${name}.ts`), outfile, minify });
    sizes[name] = statSync(outfile).size;
  }
  return sizes;
}

async function main() {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '8080' }, 'build-only': { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false } },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`option '--port' expected an integer in 0..65535, got ${JSON.stringify(values.port)}`);
  const started = performance.now();
  const sizes = await buildDemo();
  const kib = Object.entries(sizes).map(([n, b]) => `${n}.js ${(b / 1024).toFixed(0)} KiB`).join(', ');
  console.log(`demo: bundled ${relative(ROOT, BUILD_DIR)}/ (${kib}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (!existsSync(MODEL_FILE)) {
    console.warn(`demo: ${relative(ROOT, MODEL_FILE)} is missing, so the Digits, Out-of-distribution and Calibration tabs have no pretrained model.\n` +
      `      Train one: node scripts/build.mjs --if-stale && node dist/cli.js train --out model.safetensors && node scripts/export_checkpoint.mjs model.safetensors ${relative(ROOT, MODEL_FILE)}`);
  }
  if (values['build-only']) return;
  let server;
  try {
    server = await serveStatic(DEMO_DIR, { port, log: values.verbose ? console.log : undefined });
  } catch (e) {
    if (e.code === 'EADDRINUSE') throw new Error(`port ${port} on 127.0.0.1 is in use; pick another with --port N (0 picks a free one)`);
    throw e;
  }
  console.log(`demo: serving ${relative(ROOT, DEMO_DIR)}/ at ${server.url}  (open it in a browser with WebGPU; Ctrl+C stops)`);
  const stop = () => server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(`demo: ${e.message}`);
    process.exit(1);
  });
}
