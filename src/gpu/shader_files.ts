/**
 * Loads the WGSL files of `shaders/` in Node and Deno (both provide
 * `node:fs/promises`). The browser bundle replaces this module with one that
 * holds the same files inlined (see scripts/build.mjs), so the browser never
 * reads a file and never references Node built-ins.
 */
export async function loadShaderFiles(): Promise<Record<string, string>> {
  const fs = await import('node:fs/promises');
  const dir = new URL('../../shaders/', import.meta.url);
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.wgsl')).sort();
  const out: Record<string, string> = {};
  for (const name of names) out[name] = await fs.readFile(new URL(name, dir), 'utf8');
  return out;
}
