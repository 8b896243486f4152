// Types of demo/serve.mjs for the tests that import it (tsconfig.test.json has no allowJs).
export const DEMO_DIR: string;
export const BUILD_DIR: string;
export const MODEL_FILE: string;
/** Bundles demo/main.ts and demo/worker.ts into `outDir` (default demo/build/); returns each bundle's size in bytes. */
export function buildDemo(options?: { outDir?: string; minify?: boolean }): Promise<Record<string, number>>;
