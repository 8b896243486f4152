/**
 * The Node entry of bayesgpu: everything the universal entry exports, with
 * Dawn (npm `webgpu`) registered as the WebGPU implementation. Dawn itself is
 * loaded lazily, on the first createContext.
 */
import { setGpuProvider } from './gpu/device.js';
import { dawnProvider } from './gpu/dawn.js';

setGpuProvider(dawnProvider);

export * from './index.js';
