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

function enableHelp(runtime: string): string {
  switch (runtime) {
    case 'node':
      return "In Node, import 'bayesgpu' (its Node entry loads Dawn from the npm package 'webgpu'; install it with `npm install webgpu`).";
    case 'deno':
      return 'In Deno, WebGPU is built in since Deno 2; older versions need `--unstable-webgpu`.';
    default:
      return 'In Chrome and Edge 113+ WebGPU is on by default on secure origins (https or http://127.0.0.1); on Linux start Chromium with --enable-unsafe-webgpu (and --use-webgpu-adapter=swiftshader without a GPU). In Firefox 141+ and Safari 26+ it is on by default; older versions need dom.webgpu.enabled or the WebGPU feature flag.';
  }
}

export async function requestGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (provider) return provider();
  const runtime = detectRuntime();
  throw new BayesError('NO_WEBGPU', `createContext: WebGPU is not available in this ${runtime} runtime (navigator.gpu is undefined). ${enableHelp(runtime)}`);
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
}

export async function openDevice(options: DeviceOptions = {}): Promise<OpenedDevice> {
  const gpu = await requestGpu();
  const runtime = detectRuntime();
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
    forceFallbackAdapter: options.forceFallbackAdapter ?? false,
  });
  if (!adapter) {
    throw new BayesError('NO_WEBGPU', `createContext: navigator.gpu.requestAdapter() returned no adapter in this ${runtime} runtime. ${enableHelp(runtime)}`);
  }
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const [name, needed] of Object.entries(REQUIRED_LIMITS)) {
    const has = limits[name];
    if (has === undefined || has < needed) {
      throw new BayesError('ADAPTER_LIMIT', `createContext: the adapter's limit '${name}' is ${has}, but bayesgpu needs at least ${needed}`);
    }
    requiredLimits[name] = has;
  }
  requiredLimits.maxBufferSize = limits.maxBufferSize;
  const device = await adapter.requestDevice({ requiredLimits });
  const info = (adapter.info ?? {}) as Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean };
  const legacyFallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    device,
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? legacyFallback ?? false),
      runtime,
    },
  };
}

export function describeAdapter(a: AdapterDescription): string {
  const parts = [a.vendor || 'unknown vendor', a.architecture, a.device, a.description].filter((s) => s);
  return `${parts.join(' / ')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''} [${a.runtime}]`;
}
