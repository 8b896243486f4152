/**
 * layerType 'flipout' (Wen et al. 2018, eq. 3) in BBBConv2d and BBBLinear: a whole training step of
 * a tiny Bayesian CNN against central finite differences of its float64 loss, with the eps and the
 * signs read back from the generator under the layers' stream contract; T single passes with
 * sample offsets 0..T-1 against one T-sample pass; a saveModel -> loadModel round trip with
 * identical outputs; and the layer type checked wherever layer types are.
 */
import { describe, expect, it } from 'vitest';
import { context, expectClose, randomArray, relativeNumericGradient } from '../helpers.js';
import type { Context } from '../../src/gpu/context.js';
import { BayesError } from '../../src/errors.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { Flatten, MaxPool2d, Softplus } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import { BBBLeNet } from '../../src/nn/models.js';
import { layerFromConfig } from '../../src/nn/registry.js';
import { lossAndGradients } from '../../src/train/step.js';
import { drawNormal, drawUniform } from '../../src/ops/sample.js';
import { STREAMS_PER_LAYER } from '../../src/nn/module.js';
import { loadModel, saveModel } from '../../src/io/checkpoint.js';
import { type TinyDims, type TinyNoise, type TinyParams, tinyLossRef } from '../reference/model.js';
import { flipoutConv2dBackwardRef, flipoutConv2dRef, perturbationRef, signsFromUniformsRef } from '../reference/flipout.js';
import { sampleWeightsBackwardRef } from '../reference/sample.js';

const d: TinyDims = { batch: 3, samples: 2, inC: 2, size: 6, outC: 3, k: 3, classes: 4 };
const prior = { mu: 0, sigma: 0.1 };
const priors = { prior_mu: prior.mu, prior_sigma: prior.sigma };

function tinyNet(ctx: Context): Sequential {
  return new Sequential(ctx, {
    conv1: new BBBConv2d(d.inC, d.outC, d.k, { layerType: 'flipout', priors, seed: 1 }),
    act1: new Softplus(),
    pool1: new MaxPool2d(2),
    flatten: new Flatten(),
    fc1: new BBBLinear(null, d.classes, { layerType: 'flipout', priors, seed: 2 }),
  }, { inputShape: [d.inC, d.size, d.size] });
}

/** Parameters spread out so that sigma matters (rho in [-3, -1]) and the activations are non-trivial. */
function setParams(ctx: Context, model: Sequential): TinyParams {
  const params = {} as TinyParams;
  let seed = 100;
  for (const [name, p] of model.namedParameters()) {
    const v = name.endsWith('rho') ? randomArray(p.value.size, seed++, -3, -1) : randomArray(p.value.size, seed++, -0.6, 0.6);
    params[name as keyof TinyParams] = v;
    ctx.write(p.value, v);
  }
  return params;
}

describe("layerType 'flipout'", () => {
  it('a training step: gradients of ELBO = NLL * N + beta * KL match central finite differences of the float64 model', async () => {
    const ctx = await context();
    const step = { seed: 11, step: 5, beta: 0.7, trainSize: 10 };
    const model = tinyNet(ctx);
    const params = setParams(ctx, model);
    const xs = randomArray(d.batch * d.inC * d.size * d.size, 7, 0, 1);
    const labels = [0, 3, 1];
    const result = lossAndGradients(model, ctx.tensor(xs, [d.batch, d.inC, d.size, d.size]), ctx.tensor(labels, [d.batch], 'u32'), { samples: d.samples, beta: step.beta, trainSize: step.trainSize, seed: step.seed, step: step.step });

    // The noise the GPU used, by the layers' stream contract (streamBase = layer index * STREAMS_PER_LAYER):
    // eps of the weights and biases on streams 1 and 2 (as BBB), the signs in and out on 5 and 6.
    const key = (layer: number, offset: number) => ({ seed: step.seed, step: step.step, stream: layer * STREAMS_PER_LAYER + offset });
    const normals = async (n: number, layer: number, offset: number) => Float64Array.from(await drawNormal(ctx, [n], { key: key(layer, offset) }).read());
    const signs = async (n: number, layer: number, offset: number) => signsFromUniformsRef(await drawUniform(ctx, [n], { key: key(layer, offset) }).read());
    const rows = d.samples * d.batch;
    const fcIn = d.outC * Math.floor((d.size - d.k + 1) / 2) ** 2;
    const noise: TinyNoise = {
      conv1: { w: await normals(d.samples * d.outC * d.inC * d.k * d.k, 0, 1), b: await normals(d.samples * d.outC, 0, 2), signIn: await signs(rows * d.inC, 0, 5), signOut: await signs(rows * d.outC, 0, 6) },
      fc1: { w: await normals(d.samples * d.classes * fcIn, 4, 1), b: await normals(d.samples * d.classes, 4, 2), signIn: await signs(rows * fcIn, 4, 5), signOut: await signs(rows * d.classes, 4, 6) },
    };
    const loss = (p: TinyParams) => tinyLossRef(d, 'flipout', p, noise, xs, labels, { beta: step.beta, trainSize: step.trainSize, prior });

    // The loss: f32 GPU vs float64 (relative 1e-5: f32 rounding through two layers and a log).
    const gpuLoss = (await result.loss.read())[0];
    expect(Math.abs(gpuLoss - loss(params)) / Math.abs(loss(params))).toBeLessThan(1e-5);
    // The signs matter: the same loss with every sign +1 differs.
    const plus = (n: TinyNoise['conv1']) => ({ ...n, signIn: new Float64Array(n.signIn!.length).fill(1), signOut: new Float64Array(n.signOut!.length).fill(1) });
    const unsigned = tinyLossRef(d, 'flipout', params, { conv1: plus(noise.conv1), fc1: plus(noise.fc1) }, xs, labels, { beta: step.beta, trainSize: step.trainSize, prior });
    expect(Math.abs(gpuLoss - unsigned) / Math.abs(unsigned)).toBeGreaterThan(1e-4);

    for (const [name, p] of model.namedParameters()) {
      const v = params[name as keyof TinyParams];
      const fd = relativeNumericGradient(() => loss(params), v);
      // As test/nn/training_step.test.ts: 2e-4 of the tensor's largest gradient covers f32
      // accumulation in the GPU backward against O(h^2) + rounding / h in the differences.
      expectClose(await p.grad!.read(), fd, 2e-4, `flipout ${name}`);
    }
    model.dispose();
  });

  it('BBBConv2d forward and backward (dx, dmu, drho) match float64 given the eps and signs read back, at sample offset 2', async () => {
    const ctx = await context();
    const [B, T, cin, cout, size, k] = [2, 2, 3, 4, 5, 3];
    const layer = new BBBConv2d(cin, cout, k, { layerType: 'flipout', padding: 1, priors, seed: 4 });
    const model = new Sequential(ctx, { conv: layer }, { inputShape: [cin, size, size] });
    const p = {
      wMu: randomArray(cout * cin * k * k, 40, -0.5, 0.5), wRho: randomArray(cout * cin * k * k, 41, -3, 0),
      bMu: randomArray(cout, 42), bRho: randomArray(cout, 43, -3, 0),
    };
    ctx.write(layer.W!.mu.value, p.wMu);
    ctx.write(layer.W!.rho.value, p.wRho);
    ctx.write(layer.b!.mu.value, p.bMu);
    ctx.write(layer.b!.rho.value, p.bRho);
    const rows = T * B;
    const xs = randomArray(rows * cin * size * size, 44);
    const pass = { training: true, sample: true, samples: T, mcDropout: false, seed: 9, step: 3, sampleOffset: 2, needInputGrad: true };
    const x = ctx.tensor(xs, [rows, cin, size, size]);
    const y = model.forward(x, pass);
    const dys = randomArray(y.size, 45);
    const dx = model.backward(ctx.tensor(dys, y.shape), pass)!;
    // The draws of samples 2 and 3 of the stream contract: eps at offset 2 * (one sample's draws), signs
    // at 2 * (one sample's rows * channels).
    const key = (stream: number, offset: number) => ({ seed: pass.seed, step: pass.step, stream, offset });
    const wEps = await drawNormal(ctx, [T * p.wMu.length], { key: key(1, 2 * p.wMu.length) }).read();
    const bEps = await drawNormal(ctx, [T * cout], { key: key(2, 2 * cout) }).read();
    const signs = {
      signIn: signsFromUniformsRef(await drawUniform(ctx, [rows * cin], { key: key(5, 2 * B * cin) }).read()),
      signOut: signsFromUniformsRef(await drawUniform(ctx, [rows * cout], { key: key(6, 2 * B * cout) }).read()),
    };
    const s = { x: [rows, cin, size, size], w: [T, cout, cin, k, k], padding: 1 };
    const wDelta = perturbationRef(p.wRho, wEps);
    // Tolerance 1e-5 of the largest value: f32 sums of 27 products, twice.
    expectClose(await y.read(), flipoutConv2dRef(s, xs, p.wMu, wDelta, p.bMu, perturbationRef(p.bRho, bEps), signs), 1e-5, 'y');
    const r = flipoutConv2dBackwardRef(s, xs, p.wMu, wDelta, dys, signs);
    expectClose(await dx.read(), r.dx, 1e-5, 'dx');
    expectClose(await layer.W!.mu.grad!.read(), r.dWeightMu, 1e-5, 'dW_mu');
    // d rho = sum_s dWeightDelta_s * eps_s * sigmoid(rho) (Blundell et al. 2015, sec. 3.2, with the mean left out).
    expectClose(await layer.W!.rho.grad!.read(), sampleWeightsBackwardRef(p.wRho, r.dWeightDelta, wEps).dRho, 1e-5, 'dW_rho');
    expectClose(await layer.b!.mu.grad!.read(), r.dBiasMu, 1e-5, 'dbias_mu');
    expectClose(await layer.b!.rho.grad!.read(), sampleWeightsBackwardRef(p.bRho, r.dBiasDelta, bEps).dRho, 1e-5, 'dbias_rho');
    model.dispose();
  });

  it('T single passes with sample offsets 0..T-1 reproduce one T-sample pass', async () => {
    const ctx = await context();
    const model = tinyNet(ctx);
    setParams(ctx, model);
    const x = ctx.tensor(randomArray(d.batch * d.inC * d.size * d.size, 8, 0, 1), [d.batch, d.inC, d.size, d.size]);
    const T = 3;
    const run = (o: { samples: number; sampleOffset?: number }) => ctx.scope(async () => (await model.run(x, { ...o, sample: true, seed: 21, step: 4, kl: false }).logits.read()) as Float32Array);
    const batched = await run({ samples: T });
    const per = d.batch * d.classes;
    for (let t = 0; t < T; t++) {
      // Tolerance 1e-6: the same draws and the same summation order; only the batch size differs.
      expectClose(await run({ samples: 1, sampleOffset: t }), batched.subarray(t * per, (t + 1) * per), 1e-6, `sample ${t}`);
    }
    // The samples really differ (a perturbation per sample and signs per row).
    expect(() => expectClose(batched.subarray(0, per), batched.subarray(per, 2 * per), 1e-3)).toThrow();
    model.dispose();
  });

  it('saveModel -> loadModel keeps the layer type and gives identical outputs under one key', async () => {
    const ctx = await context();
    const model = BBBLeNet(ctx, { imageSize: 16, classes: 4, layerType: 'flipout', seed: 3 });
    const x = ctx.tensor(randomArray(2 * 16 * 16, 9, 0, 1), [2, 1, 16, 16]);
    const logits = (m: Sequential) => ctx.scope(async () => (await m.run(x, { samples: 2, sample: true, seed: 5, step: 6, kl: false }).logits.read()) as Float32Array);
    const before = await logits(model);
    const again = loadModel(ctx, await saveModel(model));
    for (const [name, layer] of again.children()) {
      if (layer instanceof BBBConv2d || layer instanceof BBBLinear) expect(layer.layerType, name).toBe('flipout');
    }
    const after = await logits(again);
    expect(Array.from(after)).toEqual(Array.from(before));
    model.dispose();
    again.dispose();
  });

  it('an unknown layer type is refused with an error naming all three, in layers, models and configs', async () => {
    const ctx = await context();
    const names = ["'lrt'", "'bbb'", "'flipout'"];
    const refused = (f: () => unknown) => {
      let error: unknown;
      try {
        f();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BayesError);
      for (const n of names) expect((error as Error).message).toContain(n);
      expect((error as Error).message).toContain('lrtt');
    };
    refused(() => new BBBConv2d(1, 2, 3, { layerType: 'lrtt' as never }));
    refused(() => new BBBLinear(4, 2, { layerType: 'lrtt' as never }));
    refused(() => BBBLeNet(ctx, { layerType: 'lrtt' as never }));
    refused(() => layerFromConfig({ type: 'BBBLinear', inFeatures: 4, outFeatures: 2, layerType: 'lrtt' }));
    expect((layerFromConfig({ type: 'BBBLinear', inFeatures: 4, outFeatures: 2, layerType: 'flipout' }) as BBBLinear).layerType).toBe('flipout');
  });
});
