/**
 * A tiny Bayesian MLP (LRT) on 1x4x4 inputs with 3 classes, and a separable data set for it:
 * small enough that thousands of fit steps take seconds on SwiftShader (the long-run and
 * device-loss tests).
 */
import type { Context } from '../../src/gpu/context.js';
import { BBBLinear } from '../../src/nn/bayes.js';
import { Flatten, ReLU } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import type { FloatDataset } from '../../src/train/fit.js';
import { rng } from '../helpers.js';

export function tinyModel(ctx: Context): Sequential {
  return new Sequential(ctx, { flatten: new Flatten(), fc1: new BBBLinear(16, 8, { seed: 1 }), relu: new ReLU(), fc2: new BBBLinear(8, 3, { seed: 2 }) }, { inputShape: [1, 4, 4] });
}

/** `count` images: class i % 3, with the pixels j of j % 3 == class raised by 0.5 over noise from rng(seed). */
export function tinyData(count: number, seed: number): FloatDataset {
  const r = rng(seed);
  const x = new Float32Array(count * 16);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 3;
    for (let j = 0; j < 16; j++) x[i * 16 + j] = r() * 0.5 + (j % 3 === labels[i] ? 0.5 : 0);
  }
  return { x, labels, count, shape: [1, 4, 4], classes: 3 };
}
