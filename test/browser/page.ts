/**
 * The in-page test harness. browser.test.ts bundles this file with the shaders
 * inlined (scripts/build.mjs bundleForBrowser) into harness.js, serves it with
 * index.html from 127.0.0.1, and calls `window.bayesgpuHarness` through
 * page.evaluate. Everything crosses back as JSON.
 *
 * Checks live in checks.ts (shared with the Deno smoke); checks that only make
 * sense in a page go into `pageChecks` below.
 */
import { createContext, type AdapterDescription, type Context } from '../../src/index.js';
import { type Check, type CheckResult, checks, runChecks } from './checks.js';
import { type Outputs, runComputations } from './determinism.js';

/** Checks for the page alone, merged with the shared registry. */
const pageChecks: Record<string, Check> = {
  /** The context must report a browser runtime and must not be Node's Dawn. */
  'page.runtime': async (ctx) => [
    {
      what: `adapter runtime is 'browser' (got '${ctx.adapter.runtime}')`,
      maxError: ctx.adapter.runtime === 'browser' ? 0 : 1,
      tolerance: 0,
      worst: null,
    },
  ],
};

const registry: Record<string, Check> = { ...checks, ...pageChecks };

let context: Promise<Context> | undefined;
const gpuErrors: string[] = [];

function getContext(): Promise<Context> {
  context ??= createContext().then((ctx) => {
    // The Context turns uncaptured errors into failures of its next read; this
    // listener also records them for the test, which fails on any.
    ctx.device.addEventListener('uncapturederror', (ev) => {
      const message = (ev as GPUUncapturedErrorEvent).error.message;
      gpuErrors.push(message);
      console.error(`WebGPU uncaptured error: ${message}`);
    });
    return ctx;
  });
  return context;
}

export interface Harness {
  /** Names of every check the page can run. */
  list(): string[];
  adapter(): Promise<AdapterDescription & { name: string; features: string[] }>;
  /** Runs the named checks (all when omitted). */
  run(names?: string[]): Promise<CheckResult[]>;
  /** Runs the named determinism computations with `seed` (see determinism.ts). */
  compute(seed: number, names?: string[]): Promise<Record<string, Outputs>>;
  /** WebGPU uncaptured errors seen so far. */
  gpuErrors(): string[];
  /** Destroys the device (the page can open a new one afterwards). */
  close(): Promise<void>;
}

const harness: Harness = {
  list: () => Object.keys(registry),
  async adapter() {
    const ctx = await getContext();
    return { ...ctx.adapter, name: ctx.adapterName, features: [...ctx.device.features].sort() };
  },
  async run(names) {
    return runChecks(await getContext(), registry, names ?? Object.keys(registry));
  },
  async compute(seed, names) {
    return runComputations(await getContext(), seed, names);
  },
  gpuErrors: () => [...gpuErrors],
  async close() {
    const ctx = await context;
    context = undefined;
    ctx?.destroy();
  },
};

(globalThis as { bayesgpuHarness?: Harness }).bayesgpuHarness = harness;
document.documentElement.dataset.harness = 'ready';
