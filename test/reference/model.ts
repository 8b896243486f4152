/**
 * float64 reference of a tiny Bayesian CNN and its ELBO loss, built from the
 * per-kernel references: conv (BBB or LRT) -> softplus -> max-pool 2 -> flatten
 * -> linear (BBB or LRT), T Monte Carlo samples combined by log-mean-exp.
 * The noise is given (read from the GPU generator), so the loss is a
 * deterministic function of the parameters and central differences apply.
 */
import { conv2dRef, lrtConv2dRef } from './conv2d.js';
import { linearRef, lrtForwardRef } from './linear.js';
import { maxPool2dRef } from './pool.js';
import { softplusRef } from './activation.js';
import { logMeanExpRef, logSoftmaxRef, nllRef } from './loss.js';
import { klGaussianRef } from './kl.js';
import { sampleWeightsRef, sigmaSquaredRef } from './sample.js';
import { flipoutConv2dRef, flipoutLinearRef, perturbationRef } from './flipout.js';

export interface TinyDims {
  batch: number; samples: number; inC: number; size: number; outC: number; k: number; classes: number;
}

export type TinyParams = Record<'conv1.W_mu' | 'conv1.W_rho' | 'conv1.bias_mu' | 'conv1.bias_rho' | 'fc1.W_mu' | 'fc1.W_rho' | 'fc1.bias_mu' | 'fc1.bias_rho', Float64Array>;

/**
 * Noise per layer: LRT: output noise [T*B*outputs]; BBB: weight and bias noise [T * size];
 * Flipout: weight and bias noise as BBB's, and signs per row and input / output channel [T*B*channels].
 */
export interface TinyLayerNoise { out?: ArrayLike<number>; w?: ArrayLike<number>; b?: ArrayLike<number>; signIn?: ArrayLike<number>; signOut?: ArrayLike<number> }
export interface TinyNoise { conv1: TinyLayerNoise; fc1: TinyLayerNoise }

export function tinyLossRef(
  d: TinyDims, layerType: 'lrt' | 'bbb' | 'flipout', p: TinyParams, noise: TinyNoise, x: ArrayLike<number>, labels: ArrayLike<number>,
  o: { beta: number; trainSize: number; prior: { mu: number; sigma: number } },
): number {
  const T = d.samples;
  const rows = T * d.batch;
  const per = d.inC * d.size * d.size;
  const xt = new Float64Array(rows * per);
  for (let t = 0; t < T; t++) for (let i = 0; i < d.batch * per; i++) xt[t * d.batch * per + i] = x[i];
  const oh = d.size - d.k + 1;
  let h: Float64Array;
  if (layerType === 'flipout') {
    const n = noise.conv1;
    h = flipoutConv2dRef({ x: [rows, d.inC, d.size, d.size], w: [T, d.outC, d.inC, d.k, d.k] }, xt, p['conv1.W_mu'], perturbationRef(p['conv1.W_rho'], n.w!), p['conv1.bias_mu'], perturbationRef(p['conv1.bias_rho'], n.b!), { signIn: n.signIn!, signOut: n.signOut! });
  } else if (layerType === 'lrt') {
    h = lrtConv2dRef({ x: [rows, d.inC, d.size, d.size], w: [d.outC, d.inC, d.k, d.k] }, xt, p['conv1.W_mu'], sigmaSquaredRef(p['conv1.W_rho']), p['conv1.bias_mu'], sigmaSquaredRef(p['conv1.bias_rho']), noise.conv1.out!).y;
  } else {
    const w = sampleWeightsRef(tileArr(p['conv1.W_mu'], T), tileArr(p['conv1.W_rho'], T), noise.conv1.w!);
    const b = sampleWeightsRef(tileArr(p['conv1.bias_mu'], T), tileArr(p['conv1.bias_rho'], T), noise.conv1.b!);
    h = conv2dRef({ x: [rows, d.inC, d.size, d.size], w: [T, d.outC, d.inC, d.k, d.k] }, xt, w, b);
  }
  h = softplusRef(h);
  const pooled = maxPool2dRef(h, { shape: [rows, d.outC, oh, oh], kernel: [2, 2], stride: [2, 2], padding: [0, 0] }).y;
  const inF = d.outC * Math.floor(oh / 2) ** 2;
  let logits: Float64Array;
  if (layerType === 'flipout') {
    const n = noise.fc1;
    logits = flipoutLinearRef({ rows, inF, outF: d.classes, samples: T }, pooled, p['fc1.W_mu'], perturbationRef(p['fc1.W_rho'], n.w!), p['fc1.bias_mu'], perturbationRef(p['fc1.bias_rho'], n.b!), { signIn: n.signIn!, signOut: n.signOut! });
  } else if (layerType === 'lrt') {
    logits = lrtForwardRef(pooled, p['fc1.W_mu'], sigmaSquaredRef(p['fc1.W_rho']), p['fc1.bias_mu'], sigmaSquaredRef(p['fc1.bias_rho']), noise.fc1.out!, rows, inF, d.classes);
  } else {
    const w = sampleWeightsRef(tileArr(p['fc1.W_mu'], T), tileArr(p['fc1.W_rho'], T), noise.fc1.w!);
    const b = sampleWeightsRef(tileArr(p['fc1.bias_mu'], T), tileArr(p['fc1.bias_rho'], T), noise.fc1.b!);
    logits = linearRef(pooled, w, b, { rows, inF, outF: d.classes, samples: T });
  }
  const logp = logSoftmaxRef(logits, rows, d.classes);
  const combined = T > 1 ? logMeanExpRef(logp, T) : logp;
  const nll = nllRef(combined, labels, d.classes);
  let kl = 0;
  for (const layer of ['conv1', 'fc1'] as const) {
    kl += klGaussianRef(p[`${layer}.W_mu`], p[`${layer}.W_rho`], o.prior) + klGaussianRef(p[`${layer}.bias_mu`], p[`${layer}.bias_rho`], o.prior);
  }
  return nll * o.trainSize + o.beta * kl;
}

function tileArr(a: ArrayLike<number>, times: number): Float64Array {
  const out = new Float64Array(a.length * times);
  for (let t = 0; t < times; t++) for (let i = 0; i < a.length; i++) out[t * a.length + i] = a[i];
  return out;
}
