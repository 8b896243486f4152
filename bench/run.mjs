// Runs a TypeScript benchmark of bench/ under Node 20, which cannot run TypeScript itself
// (and tsx / vite-node are not dependencies):
//
//   node bench/run.mjs kernels [--quick] [other args passed to the bench]
//
// esbuild (a dev dependency) bundles bench/<name>.ts with the library sources into
// node_modules/.bench/<name>.mjs, leaving npm packages (webgpu, wgsl_reflect) as imports, then
// this script imports it and calls its exported `main(args)`. The bundle sits two directories
// below the repository root, as src/gpu/shader_files.ts does, so that file's
// `new URL('../../shaders/', import.meta.url)` still finds the WGSL sources.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const [name, ...args] = process.argv.slice(2);
const entry = name && join(root, 'bench', `${name}.ts`);
if (!entry || !existsSync(entry)) {
  console.error(`usage: node bench/run.mjs <name> [args]   (runs bench/<name>.ts; got ${name ?? 'no name'})`);
  process.exit(2);
}
const outfile = join(root, 'node_modules', '.bench', `${name}.mjs`);
await build({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', sourcemap: 'inline', logLevel: 'warning' });
const mod = await import(pathToFileURL(outfile).href);
if (typeof mod.main !== 'function') {
  console.error(`bench/${name}.ts exports no main(args)`);
  process.exit(2);
}
await mod.main(args);
