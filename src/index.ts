/** The universal entry of bayesgpu (browsers, Deno; Node goes through node.ts). */
export { BayesError, type BayesErrorCode } from './errors.js';
export { Context, createContext, grid, type Kernel, type MemoryInfo, type ContextOptions } from './gpu/context.js';
export { Tensor, type DType } from './gpu/tensor.js';
export { type AdapterDescription, describeAdapter, setGpuProvider } from './gpu/device.js';
