// Types of scripts/build.mjs for the tests that import it (tsconfig.test.json has no allowJs).
import type { BuildResult, Metafile, Plugin } from 'esbuild';

export const ROOT: string;
export const DIST: string;
export const BROWSER_BUNDLE: string;
export function readShaderFiles(dir?: string): Record<string, string>;
export function inlineShaders(options?: { shadersDir?: string; replaced?: { count: number } }): Plugin;
export function checkBrowserBundle(outfile: string, metafile: Metafile, absWorkingDir?: string): void;
export function bundleForBrowser(options: { entry: string; outfile: string; minify?: boolean; logLevel?: 'silent' | 'error' | 'warning' | 'info'; absWorkingDir?: string }): Promise<BuildResult & { metafile: Metafile }>;
export function isStale(): boolean;
export function build(options?: { log?: (line: string) => void }): Promise<void>;
export function ensureBuilt(options?: { log?: (line: string) => void }): Promise<boolean>;
