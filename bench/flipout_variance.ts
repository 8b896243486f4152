/**
 * Variance of the stochastic gradient of the ELBO under Flipout (Wen et al. 2018), plain Bayes by
 * Backprop (one weight sample per Monte Carlo sample, shared by the batch) and the local
 * reparameterization trick (Kingma et al. 2015), for the same batch and the same parameters: the
 * gradient dL/dmu and dL/drho of each parameter tensor is computed under `--keys` random keys
 * (training steps 0..keys-1) and its per-element variance over the keys compared.
 * Flipout's expected gradient is BBB's (each example sees weights with the same marginal); only
 * the variance differs: BBB's one weight sample per batch correlates the examples' gradients, which
 * Flipout's signs decorrelate (Wen et al. 2018's variance analysis).
 *
 *   node bench/run.mjs flipout_variance [--keys 64] [--batch 32] [--rho -3]
 *
 * Prints per tensor: the mean over its elements of var(flipout) / var(bbb) and var(lrt) / var(bbb),
 * the mean variances themselves, and how far the mean gradients of the estimators are apart
 * (relative to BBB's standard error of the mean) as a check that they estimate the same gradient.
 */
import { createContext } from '../src/node.js';
import type { Context } from '../src/gpu/context.js';
import { BBBConv2d, BBBLinear, type LayerType } from '../src/nn/bayes.js';
import { Flatten, MaxPool2d, Softplus } from '../src/nn/layers.js';
import { Sequential } from '../src/nn/sequential.js';
import { lossAndGradients } from '../src/train/step.js';
import { Prng } from '../src/util/prng.js';

const TYPES: LayerType[] = ['bbb', 'flipout', 'lrt'];

/** A LeNet-sized first block: conv 1 -> 6 (5 x 5), softplus, max-pool 2, then a dense layer to 10 classes. */
function net(ctx: Context, layerType: LayerType, rho: number): Sequential {
  const priors = { prior_mu: 0, prior_sigma: 0.1, posterior_rho_initial: [rho, 0.1] as [number, number] };
  return new Sequential(ctx, {
    conv1: new BBBConv2d(1, 6, 5, { layerType, priors, seed: 1 }),
    act1: new Softplus(),
    pool1: new MaxPool2d(2),
    flatten: new Flatten(),
    fc1: new BBBLinear(null, 10, { layerType, priors, seed: 2 }),
  }, { inputShape: [1, 16, 16] });
}

/** Per-element running mean and sum of squared deviations (Welford). */
class Moments {
  readonly mean: Float64Array;
  readonly m2: Float64Array;
  count = 0;
  constructor(n: number) {
    this.mean = new Float64Array(n);
    this.m2 = new Float64Array(n);
  }
  add(v: ArrayLike<number>): void {
    this.count++;
    for (let i = 0; i < v.length; i++) {
      const d = v[i] - this.mean[i];
      this.mean[i] += d / this.count;
      this.m2[i] += d * (v[i] - this.mean[i]);
    }
  }
  variance(i: number): number {
    return this.m2[i] / (this.count - 1);
  }
}

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const keys = Number(arg('keys', '64'));
  const batch = Number(arg('batch', '32'));
  const rho = Number(arg('rho', '-3'));
  const ctx = await createContext();
  const prng = new Prng(7);
  const xs = Float32Array.from({ length: batch * 256 }, () => prng.next());
  const labels = Uint32Array.from({ length: batch }, (_, i) => i % 10);
  const t0 = performance.now();
  const moments = new Map<LayerType, Map<string, Moments>>();
  for (const layerType of TYPES) {
    const model = net(ctx, layerType, rho);
    const m = new Map<string, Moments>();
    const x = ctx.tensor(xs, [batch, 1, 16, 16]);
    const y = ctx.tensor(labels, [batch], 'u32');
    for (let step = 0; step < keys; step++) {
      // beta 0: the KL's gradient is deterministic and would not change the variance.
      lossAndGradients(model, x, y, { samples: 1, beta: 0, trainSize: 1, seed: 1234, step });
      for (const [name, grad] of model.gradients()) {
        const v = await grad!.read();
        if (!m.has(name)) m.set(name, new Moments(v.length));
        m.get(name)!.add(v);
      }
    }
    moments.set(layerType, m);
    x.dispose();
    y.dispose();
    model.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(`adapter: ${ctx.adapterName}; batch ${batch}, ${keys} keys, rho ${rho} (sigma ${Math.log1p(Math.exp(rho)).toExponential(2)}), 1 MC sample; ${seconds.toFixed(1)} s`);
  console.log('mean per-element variance ratio over the keys (lower is better), and the mean variances:');
  const header = ['parameter', 'flipout/bbb', 'lrt/bbb', 'var bbb', 'var flipout', 'var lrt', 'max |mean diff| / se'];
  const rows: string[][] = [];
  const bbb = moments.get('bbb')!;
  for (const [name, b] of bbb) {
    const f = moments.get('flipout')!.get(name)!;
    const l = moments.get('lrt')!.get(name)!;
    let ratioF = 0;
    let ratioL = 0;
    let counted = 0;
    const sum = { b: 0, f: 0, l: 0 };
    let worstZ = 0;
    for (let i = 0; i < b.mean.length; i++) {
      const vb = b.variance(i);
      sum.b += vb;
      sum.f += f.variance(i);
      sum.l += l.variance(i);
      if (!(vb > 0)) continue;
      counted++;
      ratioF += f.variance(i) / vb;
      ratioL += l.variance(i) / vb;
      // The mean gradients of flipout and bbb estimate the same expectation: their difference over
      // its standard error is of order 1 (the largest of many elements a few).
      const se = Math.sqrt((vb + f.variance(i)) / keys);
      if (se > 0) worstZ = Math.max(worstZ, Math.abs(f.mean[i] - b.mean[i]) / se);
    }
    const n = b.mean.length;
    rows.push([name, (ratioF / counted).toFixed(3), (ratioL / counted).toFixed(3), (sum.b / n).toExponential(3), (sum.f / n).toExponential(3), (sum.l / n).toExponential(3), worstZ.toFixed(2)]);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  for (const r of [header, ...rows]) console.log(r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  '));
  ctx.destroy();
}
