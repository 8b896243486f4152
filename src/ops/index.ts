/**
 * Every op wrapper, for writing layers of your own (forward and backward on these).
 *
 * The conventions every op follows:
 * - **No context argument.** An op runs on the context of its tensor operands, which must all be
 *   live tensors of one context (checked before any GPU work). Only what makes a tensor from
 *   nothing takes a context: `drawNormal(ctx, shape, { key })`, `drawUniform`, `nonFiniteFlags`.
 * - **Operands positional, settings in one options object.** Operands are the tensors, and the
 *   scalar an arithmetic op combines them with (`scale(x, alpha)`, `addInto(target, x, alpha)`,
 *   `fill(t, value)`, `tile(x, times)`); every other setting (kind, random key, probability,
 *   sample count, stride, which gradients to compute) goes in the last argument, camelCase.
 * - **Backward ops take `dy` first**, then what their forward saved, then the options:
 *   `conv2dBackward(dy, x, w, { stride, needInput })`, `activationBackward(dy, x, { kind })`.
 * - **Gradients are named `d` + the operand**: `{ dx, dWeight, dBias }` for conv2d and linear,
 *   `{ dx, dWeightMu, dWeightSigma2, dBiasMu, dBiasSigma2 }` for their LRT forms, `{ dMu, dRho }`
 *   for sampled weights, `{ dx, dGamma, dBeta }` for batchnorm, `{ dMean, dLogVar }` for the
 *   Gaussian likelihood. A layer's parameter gradients are found by state-dict name:
 *   `model.gradients().get('conv1.W_mu')`.
 * - **Bad input is an error before any work**: a BayesError naming the op, the argument, what
 *   was expected and what was given; nothing is allocated or dispatched.
 */
export * from './activation.js';
export * from './adam.js';
export * from './batchnorm.js';
export * from './conv2d.js';
export * from './dropout.js';
export * from './elementwise.js';
export * from './flipout.js';
export * from './kl.js';
export * from './linear.js';
export * from './loss.js';
export * from './pool.js';
export { type RandomKey } from './random.js';
export { type GradientNeeds } from './check.js';
export * from './reduce.js';
export * from './regression.js';
export * from './sample.js';
export * from './shortcut.js';
export * from './uncertainty.js';
