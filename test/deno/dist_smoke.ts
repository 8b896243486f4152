/**
 * The built package in Deno: dist/index.js is what the package's "deno" export
 * condition serves (`import ... from 'npm:bayesgpu'`). Run by deno.test.ts as
 *
 *   deno run --no-lock --allow-read=<repo> test/deno/dist_smoke.ts
 *
 * (no --sloppy-imports: dist/ is plain JS with real .js paths). It opens a
 * context, runs relu through the public ops namespace, and prints one JSON line.
 */
type Api = typeof import('../../src/index.js');

// A computed specifier, so that typechecking does not need dist/ to exist.
const { createContext, ops } = (await import(new URL('../../dist/index.js', import.meta.url).href)) as Api;

const ctx = await createContext();
try {
  const input = [-2, -0.5, 0, 0.5, 3, -7, 11];
  const x = ctx.tensor(input, [input.length]);
  const y = ops.activationForward(x, { kind: 'relu' });
  console.log(`BAYESGPU_DENO_DIST ${JSON.stringify({ runtime: ctx.adapter.runtime, adapter: ctx.adapterName, input, relu: Array.from(await y.read()) })}`);
} finally {
  ctx.destroy();
}
