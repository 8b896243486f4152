/**
 * bayesgpu in Deno: run by test/deno/deno.test.ts as
 *
 *   deno run --no-lock --sloppy-imports --allow-read=<repo> test/deno/smoke.ts --seed=N [--checks=a,b]
 *
 * Deno runs src/*.ts directly; --sloppy-imports resolves their `.js` import
 * suffixes (written for Node's resolution) to the `.ts` files. Shaders are read
 * from shaders/ through node:fs as in Node; WebGPU is Deno's own navigator.gpu
 * (wgpu). The smoke opens a context, runs the shared kernel checks
 * (test/browser/checks.ts) and Deno-only ones, runs the determinism
 * computations with the seed, destroys the device, and prints one line:
 *
 *   BAYESGPU_DENO_RESULT {"adapter":…,"checks":[…],"outputs":{…},"gpuErrors":[…]}
 *
 * The vitest side asserts; this script exits 0 whenever it could print.
 */
import { createContext, type Context } from '../../src/index.js';
import { type Check, checks, runChecks } from '../browser/checks.js';
import { runComputations } from '../browser/determinism.js';

export const RESULT_MARKER = 'BAYESGPU_DENO_RESULT ';

/** Checks for Deno alone, merged with the shared registry. */
const denoChecks: Record<string, Check> = {
  /** The context must report the Deno runtime (Deno's navigator.gpu, not a Node provider). */
  'deno.runtime': async (ctx: Context) => [
    { what: `adapter runtime is 'deno' (got '${ctx.adapter.runtime}')`, maxError: ctx.adapter.runtime === 'deno' ? 0 : 1, tolerance: 0, worst: null },
  ],
};

interface DenoGlobal {
  args: string[];
  exit(code: number): never;
}

async function main(): Promise<void> {
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  const option = (name: string) => deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const seed = Number(option('seed') ?? '1');
  const registry = { ...checks, ...denoChecks };
  const names = option('checks')?.split(',') ?? Object.keys(registry);

  const ctx = await createContext();
  const gpuErrors: string[] = [];
  ctx.device.addEventListener('uncapturederror', (ev) => gpuErrors.push((ev as GPUUncapturedErrorEvent).error.message));
  try {
    const results = await runChecks(ctx, registry, names);
    const outputs = await runComputations(ctx, seed);
    console.log(RESULT_MARKER + JSON.stringify({ adapter: { ...ctx.adapter, name: ctx.adapterName }, checks: results, outputs, gpuErrors }));
  } finally {
    // Destroying the device lets Deno's event loop drain, so the process exits by itself.
    ctx.destroy();
  }
}

await main();
