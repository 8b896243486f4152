/** Every op wrapper, for writing layers of your own (forward and backward on these). */
export * from './activation.js';
export * from './adam.js';
export * from './batchnorm.js';
export * from './conv2d.js';
export * from './dropout.js';
export * from './elementwise.js';
export * from './finite.js';
export * from './kl.js';
export * from './linear.js';
export * from './loss.js';
export * from './pool.js';
export * from './random.js';
export * from './reduce.js';
export * from './sample.js';
