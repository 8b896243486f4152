/**
 * float64 references for Bayesian regression: the predictive moments of T Monte Carlo samples
 * (law of total variance, Kendall & Gal 2017, eq. 9) and a whole Bayesian MLP forward pass with
 * its random draws recovered from the generator reference, so that the ELBO loss can be
 * differentiated by central finite differences. Written from the definitions, independent of
 * shaders/regression.wgsl and src/uncertainty/regression.ts.
 */
import { softplusRef } from './activation.js';
import { gaussianNllRef } from './loss.js';
import { klGaussianRef } from './kl.js';
import { linearRef, lrtForwardRef } from './linear.js';
import { sampleWeightsRef, sigmaSquaredRef } from './sample.js';

/** pred [T * B, 2] rows (mu, log sigma^2), sample-major -> per point mean, epistemic and aleatoric variance, std. */
export function predictiveMomentsRef(pred: ArrayLike<number>, samples: number): { mean: Float64Array; epistemic: Float64Array; aleatoric: Float64Array; std: Float64Array } {
  const B = pred.length / 2 / samples;
  const mean = new Float64Array(B);
  const epistemic = new Float64Array(B);
  const aleatoric = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const mus = Array.from({ length: samples }, (_, t) => pred[2 * (t * B + b)]);
    const m = mus.reduce((a, v) => a + v, 0) / samples;
    mean[b] = m;
    epistemic[b] = mus.reduce((a, v) => a + (v - m) ** 2, 0) / samples;
    let noise = 0;
    for (let t = 0; t < samples; t++) noise += Math.exp(pred[2 * (t * B + b) + 1]);
    aleatoric[b] = noise / samples;
  }
  return { mean, epistemic, aleatoric, std: Float64Array.from(mean, (_, b) => Math.sqrt(epistemic[b] + aleatoric[b])) };
}

/** One Bayesian linear layer's variational parameters (PyTorch layout, W [outF, inF]). */
export interface BayesLinearRef {
  kind: 'linear';
  wMu: Float64Array;
  wRho: Float64Array;
  bMu: Float64Array;
  bRho: Float64Array;
  inF: number;
  outF: number;
  /** Sequential's stream base of the layer: 8 * its position in the layer list. */
  streamBase: number;
}

export type MlpLayerRef = BayesLinearRef | { kind: 'softplus' | 'relu' };

export interface MlpDrawsRef {
  samples: number;
  layerType: 'bbb' | 'lrt';
  /** The first `count` standard normal draws of `stream` under the pass's key: element i is normal(key, i, stream). */
  eps(stream: number, count: number): ArrayLike<number>;
}

/**
 * Forward pass of a Bayesian MLP on x [rows, inF] (rows = T * B, tiled input), with the random draws
 * indexed as the GPU indexes them:
 * - 'bbb': weight sample s, element k: eps = normal(key, s * n + k, streamBase + 1) (bias: stream + 2),
 *   w = mu + softplus(rho) eps (Blundell et al. 2015); rows [s B, (s + 1) B) use sample s;
 * - 'lrt': pre-activation (r, o): mean + sqrt(var) * eps, eps = normal(key, r * outF + o, streamBase)
 *   (Kingma et al. 2015, eq. 6).
 * The draws themselves come from `draws.eps` (the tests pass the GPU's own: WGSL's cos is only accurate
 * to 2^-11, so float64 Box-Muller would differ from them by up to ~3e-3).
 */
export function bayesMlpForwardRef(layers: MlpLayerRef[], x: ArrayLike<number>, rows: number, draws: MlpDrawsRef): Float64Array {
  let h: Float64Array = Float64Array.from(x);
  for (const layer of layers) {
    if (layer.kind === 'relu') h = h.map((v) => Math.max(v, 0));
    else if (layer.kind === 'softplus') h = softplusRef(h);
    else if (layer.kind === 'linear') {
      const { inF, outF, streamBase } = layer;
      if (draws.layerType === 'bbb') {
        const w = sampleWeightsRef(layer.wMu, layer.wRho, draws.eps(streamBase + 1, draws.samples * outF * inF));
        const b = sampleWeightsRef(layer.bMu, layer.bRho, draws.eps(streamBase + 2, draws.samples * outF));
        h = linearRef(h, w, b, { rows, inF, outF, samples: draws.samples });
      } else {
        h = lrtForwardRef(h, layer.wMu, sigmaSquaredRef(layer.wRho), layer.bMu, sigmaSquaredRef(layer.bRho), draws.eps(streamBase, rows * outF), rows, inF, outF);
      }
    }
  }
  return h;
}

/**
 * The regression ELBO loss N * NLL + beta * KL for targets y [B] tiled over the T samples. The network
 * output is [rows, 2] (mu, log sigma^2) for the heteroscedastic head, or [rows, 1] (mu) with the shared
 * `logVar` for the homoscedastic head. KL: closed form against the Gaussian prior.
 */
export function regressionLossRef(
  layers: MlpLayerRef[], x: ArrayLike<number>, y: ArrayLike<number>, draws: MlpDrawsRef, o: { trainSize: number; beta: number; prior: { mu: number; sigma: number }; logVar: number | null },
): { loss: number; nll: number; kl: number } {
  const B = y.length;
  const rows = draws.samples * B;
  const out = bayesMlpForwardRef(layers, x, rows, draws);
  const mu = new Float64Array(rows);
  const logVar = new Float64Array(rows);
  const target = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (o.logVar === null) {
      mu[r] = out[2 * r];
      logVar[r] = out[2 * r + 1];
    } else {
      mu[r] = out[r];
      logVar[r] = o.logVar;
    }
    target[r] = y[r % B];
  }
  const nll = gaussianNllRef(mu, logVar, target);
  let kl = 0;
  for (const layer of layers) {
    if (layer.kind === 'linear') kl += klGaussianRef(layer.wMu, layer.wRho, o.prior) + klGaussianRef(layer.bMu, layer.bRho, o.prior);
  }
  return { loss: o.trainSize * nll + o.beta * kl, nll, kl };
}
