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
export { saveModelFile, loadModelFile } from './io/checkpoint_files.js';
export { readImageFile, decodeImage } from './io/image_files.js';
export { loadOodSet, loadNamedOodSet, NAMED_OOD_SETS, type NamedOodSet, type OodLoadOptions } from './uncertainty/ood_files.js';
