/**
 * Finding a WebGPU implementation and opening a device.
 *
 * Browsers and Deno expose `navigator.gpu`. Node has none, so the Node entry
 * (`src/node.ts`) registers a provider that loads Dawn (npm `webgpu`) lazily;
 * this file never names Dawn, which keeps it out of the browser bundle.
 */
import { BayesError } from '../errors.js';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** 'browser' | 'node' | 'deno': where the device was opened. */
  runtime: string;
}

export type GpuProvider = () => Promise<GPU>;

let provider: GpuProvider | undefined;

/** Used by the Node entry to supply Dawn; a browser or Deno never needs it. */
export function setGpuProvider(p: GpuProvider | undefined): void {
  provider = p;
}

export function detectRuntime(): string {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } }; window?: unknown; WorkerGlobalScope?: unknown };
  if (g.Deno) return 'deno';
  if (g.process?.versions?.node && !g.window) return 'node';
  return 'browser';
}

/** Which browser family a user agent string belongs to, for advice on enabling WebGPU. */
function browserFamily(userAgent: string): 'firefox' | 'safari' | 'chromium' | 'unknown' {
  if (/Firefox\//.test(userAgent)) return 'firefox';
  if (/(Chrome|Chromium|CriOS|Edg)\//.test(userAgent)) return 'chromium';
  if (/Safari\//.test(userAgent) && /Version\//.test(userAgent)) return 'safari';
  return 'unknown';
}

/** How to turn WebGPU on in the browser that runs this page, from its user agent. */
function browserHelp(): string {
  const nav = (globalThis as { navigator?: { userAgent?: string } }).navigator;
  const userAgent = nav?.userAgent ?? '';
  const linux = /Linux/.test(userAgent) && !/Android/.test(userAgent);
  switch (browserFamily(userAgent)) {
    case 'chromium':
      return (
        'Chrome and Edge 113+ ship WebGPU on Windows, macOS and ChromeOS; ' +
        (linux
          ? 'on Linux it is blocklisted on most setups: start the browser with --enable-unsafe-webgpu (without a GPU also --use-webgpu-adapter=swiftshader), or enable chrome://flags/#enable-unsafe-webgpu. '
          : 'where it is blocklisted, enable chrome://flags/#enable-unsafe-webgpu (or start the browser with --enable-unsafe-webgpu). ') +
        'chrome://gpu shows the status of WebGPU.'
      );
    case 'firefox':
      return 'In Firefox, WebGPU is on by default from version 141 on Windows; elsewhere set dom.webgpu.enabled to true in about:config.';
    case 'safari':
      return 'Safari 26+ has WebGPU on by default; in Safari 18 enable it under Develop > Feature Flags > WebGPU.';
    default:
      return 'Use a browser with WebGPU: Chrome or Edge 113+, Firefox 141+ or Safari 26+ (on Linux, Chromium needs --enable-unsafe-webgpu).';
  }
}

/** Why navigator.gpu is missing and how to get it, for the runtime that asked. */
function missingGpuHelp(runtime: string): string {
  switch (runtime) {
    case 'node':
      return "Node has no WebGPU of its own: import from 'bayesgpu' in Node (its Node entry registers Dawn, the npm package 'webgpu'), or pass a WebGPU implementation to setGpuProvider(() => Promise<GPU>).";
    case 'deno':
      return 'WebGPU is built into Deno 2; Deno 1.x needs the --unstable-webgpu flag.';
    default: {
      const g = globalThis as { isSecureContext?: boolean; location?: { origin?: string } };
      if (g.isSecureContext === false) {
        return `This page is not a secure context (origin ${g.location?.origin ?? 'unknown'}), and browsers expose WebGPU only to secure ones: serve it over https, or from http://localhost or http://127.0.0.1.`;
      }
      return browserHelp();
    }
  }
}

/** Why requestAdapter() found nothing and what to do, for the runtime that asked. */
function noAdapterHelp(runtime: string): string {
  switch (runtime) {
    case 'node':
      return 'Dawn (npm package \'webgpu\') found no GPU adapter. Install a Vulkan driver (Linux: mesa-vulkan-drivers, or the GPU vendor\'s); on a machine without a GPU, install Debian\'s chromium package, whose SwiftShader (a CPU Vulkan) bayesgpu then selects, or point VK_ICD_FILENAMES at a Vulkan ICD file such as lavapipe\'s.';
    case 'deno':
      return "Deno's WebGPU (wgpu) found no adapter. Install a Vulkan, Metal or Direct3D 12 driver; on Linux without a GPU, point VK_ICD_FILENAMES at a software Vulkan ICD (SwiftShader's vk_swiftshader_icd.json from Debian's chromium package, or lavapipe's).";
    default:
      return `The browser offers WebGPU but no adapter: WebGPU is disabled or the GPU is blocklisted. ${browserHelp()}`;
  }
}

export async function requestGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (provider) return provider();
  const runtime = detectRuntime();
  throw new BayesError('NO_WEBGPU', `createContext: WebGPU is not available in this ${runtime} runtime (navigator.gpu is undefined). ${missingGpuHelp(runtime)}`);
}

/** Limits the kernels rely on; requestDevice asks for the adapter's maxima of these. */
export const REQUIRED_LIMITS: Readonly<Record<string, number>> = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
};

export interface OpenedDevice {
  device: GPUDevice;
  adapter: AdapterDescription;
}

export interface DeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Ask for the fallback (software) adapter where the runtime offers one. */
  forceFallbackAdapter?: boolean;
  /** Ask for the optional 'timestamp-query' feature where the adapter has it (GPU-side timing in bench/). */
  timestampQuery?: boolean;
}

export async function openDevice(options: DeviceOptions = {}): Promise<OpenedDevice> {
  const gpu = await requestGpu();
  const runtime = detectRuntime();
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
    forceFallbackAdapter: options.forceFallbackAdapter ?? false,
  });
  if (!adapter) {
    throw new BayesError('NO_WEBGPU', `createContext: requestAdapter() returned no adapter in this ${runtime} runtime. ${noAdapterHelp(runtime)}`);
  }
  const info = (adapter.info ?? {}) as Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean };
  const legacyFallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const description: AdapterDescription = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? legacyFallback ?? false),
    runtime,
  };
  // Every shortfall at once, each naming the limit, what the adapter offers and what the kernels need.
  const requiredLimits: Record<string, number> = {};
  const shortfalls: string[] = [];
  const limits = (adapter.limits ?? {}) as unknown as Record<string, number | undefined>;
  for (const [name, needed] of Object.entries(REQUIRED_LIMITS)) {
    const has = limits[name];
    if (typeof has !== 'number') shortfalls.push(`'${name}' is not reported (bayesgpu needs at least ${needed})`);
    else if (has < needed) shortfalls.push(`'${name}' is ${has}, but bayesgpu needs at least ${needed}`);
    else requiredLimits[name] = has;
  }
  if (shortfalls.length > 0) {
    throw new BayesError(
      'ADAPTER_LIMIT',
      `createContext: the adapter ${describeAdapter(description)} is too limited: ${shortfalls.join('; ')}. Try another adapter (powerPreference), a newer browser or driver.`,
    );
  }
  if (typeof limits.maxBufferSize === 'number') requiredLimits.maxBufferSize = limits.maxBufferSize;
  const requiredFeatures: GPUFeatureName[] = options.timestampQuery && adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  return { device, adapter: description };
}

export function describeAdapter(a: AdapterDescription): string {
  const parts = [a.vendor || 'unknown vendor', a.architecture, a.device, a.description].filter((s) => s);
  return `${parts.join(' / ')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''} [${a.runtime}]`;
}
