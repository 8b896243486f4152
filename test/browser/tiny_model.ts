/**
 * The tiny Bayesian CNN of test/nn/training_step.test.ts, shared by the
 * in-page/Deno checks (checks.ts) and the cross-runtime computations
 * (determinism.ts):
 *
 *   conv1 BBBConv2d(2 -> 3, 3x3) -> act1 softplus -> pool1 max 2x2 -> flatten -> fc1 BBBLinear(12 -> 4)
 *
 * on 6x6 images with two channels. Its parameters are fixed values written with
 * ctx.write (not the layers' own initialisation), so every runtime starts from
 * the same numbers; the GPU generator's noise is read back with drawNormal
 * under the layers' stream contract, so the float64 references of
 * test/reference/ see exactly the forward's epsilon.
 *
 * This file must stay runtime-neutral: no vitest, no Node built-ins, no DOM.
 */
import type { Context } from '../../src/index.js';
import { BBBConv2d, BBBLinear, type LayerType } from '../../src/nn/bayes.js';
import { STREAMS_PER_LAYER } from '../../src/nn/module.js';
import { Flatten, MaxPool2d, Softplus } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import { drawNormal } from '../../src/ops/sample.js';
import { softplusRef } from '../reference/activation.js';
import { conv2dRef, lrtConv2dRef } from '../reference/conv2d.js';
import { linearRef, lrtForwardRef } from '../reference/linear.js';
import type { TinyDims, TinyNoise, TinyParams } from '../reference/model.js';
import { maxPool2dRef } from '../reference/pool.js';
import { sampleWeightsRef, sigmaSquaredRef } from '../reference/sample.js';
import { randomArray, roundToF32 } from './random.js';

/** Batch 3, 2 Monte Carlo samples, 2 x 6 x 6 inputs, 3 conv channels, 3x3 kernel, 4 classes (as training_step.test.ts). */
export const TINY: TinyDims = { batch: 3, samples: 2, inC: 2, size: 6, outC: 3, k: 3, classes: 4 };
export const TINY_PRIOR = { mu: 0, sigma: 0.1 };
export const TINY_LABELS = [0, 3, 1];
/** The shape of the batch `xs` of a TinyModel. */
export const TINY_INPUT_SHAPE = [TINY.batch, TINY.inC, TINY.size, TINY.size];

/** Positions of the Bayesian layers in the Sequential: their streams start at position * STREAMS_PER_LAYER. */
const CONV1_POSITION = 0;
const FC1_POSITION = 4;
/** Stream offsets inside a layer (src/nn/bayes.ts): LRT output noise, BBB weight and bias samples. */
const STREAM_ACTIVATION = 0;
const STREAM_WEIGHT = 1;
const STREAM_BIAS = 2;

export interface TinyModel {
  model: Sequential;
  /** The values written into the parameters, by state-dict name. */
  params: TinyParams;
  /** The inputs [batch, inC, size, size] in [0, 1]. */
  xs: Float64Array;
  dispose(): void;
}

/**
 * Builds the tiny model and writes parameters derived from `seed`: rho in
 * [-3, -1] so that sigma matters, mu in [-0.6, 0.6] so that the activations
 * are not trivial.
 */
export function tinyModel(ctx: Context, layerType: LayerType, seed: number): TinyModel {
  const d = TINY;
  const priors = { prior_mu: TINY_PRIOR.mu, prior_sigma: TINY_PRIOR.sigma };
  const model = new Sequential(ctx, {
    conv1: new BBBConv2d(d.inC, d.outC, d.k, { layerType, priors, seed: 1 }),
    act1: new Softplus(),
    pool1: new MaxPool2d(2),
    flatten: new Flatten(),
    fc1: new BBBLinear(null, d.classes, { layerType, priors, seed: 2 }),
  }, { inputShape: [d.inC, d.size, d.size] });
  const params = {} as TinyParams;
  let s = seed;
  for (const [name, p] of model.namedParameters()) {
    const v = roundToF32(name.endsWith('rho') ? randomArray(p.value.size, s++, -3, -1) : randomArray(p.value.size, s++, -0.6, 0.6));
    params[name as keyof TinyParams] = v;
    ctx.write(p.value, v);
  }
  const xs = roundToF32(randomArray(d.batch * d.inC * d.size * d.size, seed + 50, 0, 1));
  return { model, params, xs, dispose: () => model.dispose() };
}

/**
 * The noise a pass of `samples` Monte Carlo samples with key (seed, step)
 * used, read back from the generator: LRT output noise per layer, or BBB
 * weight and bias samples.
 */
export async function tinyNoise(ctx: Context, t: TinyModel, layerType: LayerType, key: { seed: number; step: number }, samples: number): Promise<TinyNoise> {
  const d = TINY;
  const draw = async (n: number, position: number, offset: number) =>
    Float64Array.from(await drawNormal(ctx, [n], { key: { seed: key.seed, step: key.step, stream: position * STREAMS_PER_LAYER + offset } }).read());
  const rows = samples * d.batch;
  const oh = d.size - d.k + 1;
  if (layerType === 'lrt') {
    return {
      conv1: { out: await draw(rows * d.outC * oh * oh, CONV1_POSITION, STREAM_ACTIVATION) },
      fc1: { out: await draw(rows * d.classes, FC1_POSITION, STREAM_ACTIVATION) },
    };
  }
  return {
    conv1: { w: await draw(samples * t.params['conv1.W_mu'].length, CONV1_POSITION, STREAM_WEIGHT), b: await draw(samples * d.outC, CONV1_POSITION, STREAM_BIAS) },
    fc1: { w: await draw(samples * t.params['fc1.W_mu'].length, FC1_POSITION, STREAM_WEIGHT), b: await draw(samples * d.classes, FC1_POSITION, STREAM_BIAS) },
  };
}

const tiled = (a: ArrayLike<number>, times: number) => {
  const out = new Float64Array(a.length * times);
  for (let t = 0; t < times; t++) out.set(Array.from(a), t * a.length);
  return out;
};

/**
 * float64 logits [samples * batch, classes] of the tiny model for given noise:
 * the forward half of test/reference/model.ts tinyLossRef, built from the same
 * per-kernel references (Kingma et al. 2015, eq. 6 for the LRT; Blundell et al.
 * 2015, section 3.2 for sampled weights).
 */
export function tinyLogitsRef(layerType: LayerType, p: TinyParams, noise: TinyNoise, x: ArrayLike<number>, samples: number): Float64Array {
  const d = TINY;
  const T = samples;
  const rows = T * d.batch;
  const xt = tiled(x, T);
  const oh = d.size - d.k + 1;
  let h: Float64Array;
  if (layerType === 'lrt') {
    h = lrtConv2dRef({ x: [rows, d.inC, d.size, d.size], w: [d.outC, d.inC, d.k, d.k] }, xt, p['conv1.W_mu'], sigmaSquaredRef(p['conv1.W_rho']), p['conv1.bias_mu'], sigmaSquaredRef(p['conv1.bias_rho']), noise.conv1.out!).y;
  } else {
    const w = sampleWeightsRef(tiled(p['conv1.W_mu'], T), tiled(p['conv1.W_rho'], T), noise.conv1.w!);
    const b = sampleWeightsRef(tiled(p['conv1.bias_mu'], T), tiled(p['conv1.bias_rho'], T), noise.conv1.b!);
    h = conv2dRef({ x: [rows, d.inC, d.size, d.size], w: [T, d.outC, d.inC, d.k, d.k] }, xt, w, b);
  }
  h = softplusRef(h);
  const pooled = maxPool2dRef(h, { shape: [rows, d.outC, oh, oh], kernel: [2, 2], stride: [2, 2], padding: [0, 0] }).y;
  const inF = d.outC * Math.floor(oh / 2) ** 2;
  if (layerType === 'lrt') {
    return lrtForwardRef(pooled, p['fc1.W_mu'], sigmaSquaredRef(p['fc1.W_rho']), p['fc1.bias_mu'], sigmaSquaredRef(p['fc1.bias_rho']), noise.fc1.out!, rows, inF, d.classes);
  }
  const w = sampleWeightsRef(tiled(p['fc1.W_mu'], T), tiled(p['fc1.W_rho'], T), noise.fc1.w!);
  const b = sampleWeightsRef(tiled(p['fc1.bias_mu'], T), tiled(p['fc1.bias_rho'], T), noise.fc1.b!);
  return linearRef(pooled, w, b, { rows, inF, outF: d.classes, samples: T });
}
