/**
 * A whole training step of a tiny Bayesian CNN (both layer types) against
 * central finite differences of its float64 loss. The GPU generator's noise is
 * read back with drawNormal under the same (seed, step, stream, index), so the
 * reference sees exactly the forward's epsilon.
 */
import { describe, expect, it } from 'vitest';
import { context, expectClose, randomArray, relativeNumericGradient } from '../helpers.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { Flatten, MaxPool2d, Softplus } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import { lossAndGradients } from '../../src/train/step.js';
import { drawNormal } from '../../src/ops/sample.js';
import { type TinyDims, type TinyParams, tinyLossRef } from '../reference/model.js';
import { tinyStepNoise } from './tiny_noise.js';

const d: TinyDims = { batch: 3, samples: 2, inC: 2, size: 6, outC: 3, k: 3, classes: 4 };
const prior = { mu: 0, sigma: 0.1 };
const step = { seed: 11, step: 5, beta: 0.7, trainSize: 10 };

for (const layerType of ['lrt', 'bbb'] as const) {
  describe(`training step (${layerType})`, () => {
    it('gradients of ELBO = NLL * N + beta * KL match central finite differences of the float64 model', async () => {
      const ctx = await context();
      const model = new Sequential(ctx, {
        conv1: new BBBConv2d(d.inC, d.outC, d.k, { layerType, priors: { prior_mu: prior.mu, prior_sigma: prior.sigma }, seed: 1 }),
        act1: new Softplus(),
        pool1: new MaxPool2d(2),
        flatten: new Flatten(),
        fc1: new BBBLinear(null, d.classes, { layerType, priors: { prior_mu: prior.mu, prior_sigma: prior.sigma }, seed: 2 }),
      }, { inputShape: [d.inC, d.size, d.size] });
      // Parameters with rho spread out so sigma matters, mu large enough to make activations non-trivial.
      const params = {} as TinyParams;
      let seed = 100;
      for (const [name, p] of model.namedParameters()) {
        const v = name.endsWith('rho') ? randomArray(p.value.size, seed++, -3, -1) : randomArray(p.value.size, seed++, -0.6, 0.6);
        params[name as keyof TinyParams] = v;
        ctx.write(p.value, v);
      }
      const xs = randomArray(d.batch * d.inC * d.size * d.size, 7, 0, 1);
      const labels = [0, 3, 1];
      const x = ctx.tensor(xs, [d.batch, d.inC, d.size, d.size]);
      const y = ctx.tensor(labels, [d.batch], 'u32');
      const result = lossAndGradients(model, x, y, { samples: d.samples, beta: step.beta, trainSize: step.trainSize, seed: step.seed, step: step.step });

      // The noise the GPU used, by the layers' stream contract.
      const noise = await tinyStepNoise(ctx, d, layerType, step, { conv1: model.namedParameters().get('conv1.W_mu')!.value.size, fc1: model.namedParameters().get('fc1.W_mu')!.value.size });
      const loss = (p: TinyParams) => tinyLossRef(d, layerType, p, noise, xs, labels, { beta: step.beta, trainSize: step.trainSize, prior });

      // The loss itself: f32 GPU vs float64 (relative 1e-5: f32 rounding through two layers and a log).
      const gpuLoss = (await result.loss.read())[0];
      expect(Math.abs(gpuLoss - loss(params)) / Math.abs(loss(params))).toBeLessThan(1e-5);

      for (const [name, p] of model.namedParameters()) {
        const v = params[name as keyof TinyParams];
        const fd = relativeNumericGradient(() => loss(params), v);
        // Relative to the tensor's largest gradient: 2e-4 covers f32 accumulation in the GPU
        // backward (loss scaled by trainSize) against O(h^2) + rounding/h ~ 1e-8 in the differences.
        expectClose(await p.grad!.read(), fd, 2e-4, `${layerType} ${name}`);
      }
      model.dispose();
    });
  });
}
