/**
 * The browser bundle: every shader is inlined, and nothing of Node or Dawn
 * gets in (the build checks this; these tests check the checks).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Metafile } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { BROWSER_BUNDLE, ROOT, bundleForBrowser, checkBrowserBundle, ensureBuilt, readShaderFiles } from '../../scripts/build.mjs';

const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-bundle-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A metafile for one output file with the given imports, as esbuild writes it (paths relative to its working directory, ROOT). */
function metafileFor(outfile: string, imports: Metafile['outputs'][string]['imports'], inputs: string[] = []): Metafile {
  const key = relative(ROOT, outfile);
  return {
    inputs: Object.fromEntries(inputs.map((i) => [i, { bytes: 1, imports: [] }])),
    outputs: { [key]: { bytes: 1, inputs: {}, imports, exports: [], entryPoint: undefined } },
  } as Metafile;
}

describe('browser bundle', () => {
  it('the plugin replaces src/gpu/shader_files.ts by every shaders/*.wgsl, byte for byte', async () => {
    const entry = join(scratch, 'entry.ts');
    writeFileSync(entry, `export { loadShaderFiles } from ${JSON.stringify(join(ROOT, 'src/gpu/shader_files.ts'))};\n`);
    const outfile = join(scratch, 'shader_files.js');
    await bundleForBrowser({ entry, outfile });
    const { loadShaderFiles } = (await import(pathToFileURL(outfile).href)) as { loadShaderFiles(): Promise<Record<string, string>> };
    const inlined = await loadShaderFiles();
    expect(Object.keys(inlined).length).toBeGreaterThan(0);
    expect(inlined).toEqual(readShaderFiles());
    expect(readFileSync(outfile, 'utf8').includes('readdir')).toBe(false);
  });

  it('dist/bayesgpu.browser.js names every shader file and has a source map', async () => {
    await ensureBuilt();
    const text = readFileSync(BROWSER_BUNDLE, 'utf8');
    const missing = Object.keys(readShaderFiles()).filter((name) => !text.includes(JSON.stringify(name)));
    expect(missing).toEqual([]);
    expect(/\/\/# sourceMappingURL=bayesgpu\.browser\.js\.map\s*$/.test(text)).toBe(true);
    const map = JSON.parse(readFileSync(`${BROWSER_BUNDLE}.map`, 'utf8')) as { sources: string[] };
    expect(map.sources.some((s) => s.endsWith('src/gpu/context.ts'))).toBe(true);
    expect(checkBrowserBundle(BROWSER_BUNDLE, metafileFor(BROWSER_BUNDLE, []), ROOT)).toBeUndefined();
  });

  it('fails to bundle the Node entry (it reaches Dawn and node: built-ins)', async () => {
    await expect(bundleForBrowser({ entry: join(ROOT, 'src/node.ts'), outfile: join(scratch, 'node.js'), logLevel: 'silent' })).rejects.toThrow(/node:|dawn|webgpu/);
  });

  it('rejects external node: and webgpu imports, Dawn inputs and Dawn references in the text', () => {
    const out = join(scratch, 'fake.js');
    writeFileSync(out, 'export const x = 1;\n');
    expect(() => checkBrowserBundle(out, metafileFor(out, [{ path: 'node:fs', kind: 'import-statement', external: true }]), ROOT)).toThrow(/external import 'node:fs'/);
    expect(() => checkBrowserBundle(out, metafileFor(out, [], ['node_modules/webgpu/index.js']), ROOT)).toThrow(/Dawn/);
    expect(() => checkBrowserBundle(out, metafileFor(out, [], ['src/gpu/dawn.ts']), ROOT)).toThrow(/Dawn/);
    for (const line of ["import { readFile } from 'node:fs/promises';", 'const m = await import("node:fs");', "import { create } from 'webgpu';", 'const p = dawnProvider;']) {
      writeFileSync(out, `${line}\n`);
      expect(() => checkBrowserBundle(out, metafileFor(out, []), ROOT), line).toThrow(/must not reach Node or Dawn/);
    }
    // Prose naming Dawn in an error message is fine.
    writeFileSync(out, `const help = "its Node entry loads Dawn from the npm package 'webgpu'";\n`);
    expect(checkBrowserBundle(out, metafileFor(out, []), ROOT)).toBeUndefined();
  });
});
