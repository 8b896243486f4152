// Bayesian regression on a noisy sine (examples/regression.ts): node bench/run.mjs regression [--head homoscedastic]
export { main } from '../examples/regression.js';
