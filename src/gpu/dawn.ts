/**
 * Dawn for Node (npm `webgpu`), loaded only when a Node program asks for a
 * device and has no `navigator.gpu`. Imported by the Node entry alone.
 *
 * With no Vulkan driver installed system-wide, Dawn finds no adapter. Where
 * Debian's Chromium ships SwiftShader, point the Vulkan loader at it before
 * Dawn starts, so that a machine without a GPU still runs every kernel.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SWIFTSHADER_ICD_CANDIDATES = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
];

/** True when the kernel exposes a GPU device node (DRM render node or NVIDIA's device files). */
function hasGpuDeviceNode(): boolean {
  try {
    if (readdirSync('/dev/dri').some((f) => f.startsWith('renderD'))) return true;
  } catch {
    /* no /dev/dri */
  }
  return existsSync('/dev/nvidia0') || existsSync('/dev/dxg');
}

/**
 * Sets VK_ICD_FILENAMES to SwiftShader when the user chose no Vulkan driver and
 * the machine has no GPU device node (installed Mesa drivers such as an old
 * lavapipe would otherwise be picked and fail), or when BAYESGPU_ADAPTER=swiftshader.
 * Sets XDG_RUNTIME_DIR when unset.
 */
export function configureVulkanEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `bayesgpu-xdg-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    env.XDG_RUNTIME_DIR = dir;
  }
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return;
  if (env.BAYESGPU_ADAPTER !== 'swiftshader' && hasGpuDeviceNode()) return;
  const swiftshader = SWIFTSHADER_ICD_CANDIDATES.find((p) => existsSync(p));
  if (swiftshader) env.VK_ICD_FILENAMES = swiftshader;
}

let cached: Promise<GPU> | undefined;

export function dawnProvider(): Promise<GPU> {
  cached ??= (async () => {
    configureVulkanEnvironment();
    let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
    try {
      mod = (await import('webgpu')) as unknown as typeof mod;
    } catch (e) {
      const { BayesError } = await import('../errors.js');
      throw new BayesError('NO_WEBGPU', `createContext: could not load Dawn from the npm package 'webgpu' (${(e as Error).message}). Install it with \`npm install webgpu\`.`);
    }
    // Dawn's constants (GPUBufferUsage, GPUMapMode, ...) become globals as in a browser.
    for (const [k, v] of Object.entries(mod.globals)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
    return mod.create([]);
  })();
  return cached;
}
