/**
 * The Node entry of bayesgpu: everything the universal entry exports, with
 * Dawn (npm `webgpu`) registered as the WebGPU implementation. Dawn itself is
 * loaded lazily, on the first createContext.
 */
import { setGpuProvider } from './gpu/device.js';
import { dawnProvider } from './gpu/dawn.js';

setGpuProvider(dawnProvider);

export * from './index.js';
export { loadMnist, loadCifar, type MnistOptions, type CifarOptions } from './data/node_files.js';
export { saveFile, readFile, saveSafetensorsFile, loadSafetensorsFile } from './io/node_files.js';
export { saveCheckpointFile, loadCheckpointFile } from './io/checkpoint_files.js';
export { loadOodSet, loadNamedOodSet, NAMED_OOD_SETS } from './uncertainty/ood_files.js';
