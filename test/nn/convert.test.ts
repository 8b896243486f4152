/**
 * toBayesian (src/nn/convert.ts): a trained frequentist network to a Bayesian one with MOPED priors
 * (Krishnan et al. 2020). The converted parameters against the formula in float64, the deterministic
 * forward against the frequentist model's bit for bit, a training step of a converted model (with its
 * per-weight priors in the KL) against central finite differences of the float64 loss, the save/load
 * round trip with the prior tensors, and the bad inputs, refused before anything is allocated.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { context, expectClose, randomArray, relativeNumericGradient } from '../helpers.js';
import { BBBConv2d, BBBLinear, LAYER_TYPES } from '../../src/nn/bayes.js';
import { MOPED_SIGMA_MIN, inverseSoftplus, toBayesian } from '../../src/nn/convert.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, HomoscedasticNoise, Linear, MaxPool2d, ReLU, Softplus } from '../../src/nn/layers.js';
import { LeNet } from '../../src/nn/models.js';
import { type BuildState, type LayerConfig, type Parameter, Module, createParameter } from '../../src/nn/module.js';
import { layerFromConfig, registerLayer } from '../../src/nn/registry.js';
import { Regressor, Residual, Sequential } from '../../src/nn/sequential.js';
import { loadModel, saveModel } from '../../src/io/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { lossAndGradients } from '../../src/train/step.js';
import { softplusRef } from '../reference/activation.js';
import { klGaussianTensorRef } from '../reference/kl.js';
import { type TinyDims, type TinyParams, tinyLossRef } from '../reference/model.js';
import { tinyStepNoise } from './tiny_noise.js';

const d: TinyDims = { batch: 3, samples: 2, inC: 2, size: 6, outC: 3, k: 3, classes: 4 };

/**
 * The tiny frequentist CNN of training_step.test.ts, its weights set to `seed`-drawn values: one exactly 0,
 * or, with `minAbs`, every |w| >= minAbs (a well-conditioned prior N(w, (delta |w|)^2) for finite differences).
 */
async function tinyFrequentist(ctx: Context, seed = 1, minAbs = 0): Promise<Sequential> {
  const model = new Sequential(ctx, {
    conv1: new Conv2d(d.inC, d.outC, d.k), act1: new Softplus(), pool1: new MaxPool2d(2), flatten: new Flatten(), fc1: new Linear(null, d.classes),
  }, { inputShape: [d.inC, d.size, d.size], classNames: ['a', 'b', 'c', 'd'], preprocessing: { invert: true } });
  let s = seed;
  for (const [, p] of model.namedParameters()) {
    const v = Float32Array.from(randomArray(p.value.size, s++, -0.6, 0.6), (e) => Math.sign(e) * (minAbs + Math.abs(e)));
    ctx.write(p.value, v);
  }
  if (minAbs > 0) return model;
  const w = model.namedParameters().get('conv1.weight')!.value;
  const values = (await w.read()) as Float32Array;
  values[4] = 0;
  ctx.write(w, values);
  return model;
}

async function values(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, Float32Array.from((await p.value.read()) as Float32Array));
  return out;
}

describe('toBayesian: the converted parameters', () => {
  for (const priorSigma of ['delta', 0.05] as const) {
    it(`mu = w exactly, softplus(rho) = delta |w| to f32 rounding, prior mean = w, prior sigma ${priorSigma === 'delta' ? '= delta |w|' : '= 0.05'}`, async () => {
      const ctx = await context();
      const freq = await tinyFrequentist(ctx);
      const before = await values(freq);
      const delta = 0.1;
      const bnn = await toBayesian(freq, { layerType: 'lrt', moped: { delta, priorSigma } });
      const got = await values(bnn);
      expect([...got.keys()]).toEqual([
        'conv1.W_mu', 'conv1.W_rho', 'conv1.bias_mu', 'conv1.bias_rho', 'conv1.prior_W_mu', 'conv1.prior_W_sigma', 'conv1.prior_bias_mu', 'conv1.prior_bias_sigma',
        'fc1.W_mu', 'fc1.W_rho', 'fc1.bias_mu', 'fc1.bias_rho', 'fc1.prior_W_mu', 'fc1.prior_W_sigma', 'fc1.prior_bias_mu', 'fc1.prior_bias_sigma',
      ]);
      for (const layer of ['conv1', 'fc1']) {
        for (const [old, v] of [['weight', 'W'], ['bias', 'bias']] as const) {
          const w = before.get(`${layer}.${old}`)!;
          const mu = got.get(`${layer}.${v}_mu`)!;
          const rho = got.get(`${layer}.${v}_rho`)!;
          expect(mu, `${layer}.${v}_mu`).toEqual(w);
          expect(got.get(`${layer}.prior_${v}_mu`), `${layer}.prior_${v}_mu`).toEqual(w);
          const sigma = softplusRef(rho);
          for (let i = 0; i < w.length; i++) {
            const want = Math.max(delta * Math.abs(w[i]), MOPED_SIGMA_MIN);
            // rho is the float64 inverse rounded to f32 (half an ulp, 2^-24 |rho| relative); softplus moves
            // that by sigmoid(rho) / softplus(rho) <= 1 per unit of rho, relative to sigma.
            expect(rho[i]).toBe(Math.fround(inverseSoftplus(want)));
            expect(Math.abs(sigma[i] - want) / want, `${layer}.${v}_rho[${i}]`).toBeLessThanOrEqual(2 ** -24 * Math.abs(rho[i]) * 1.01 + 1e-15);
            const sp = got.get(`${layer}.prior_${v}_sigma`)![i];
            expect(sp).toBe(Math.fround(priorSigma === 'delta' ? want : priorSigma));
          }
        }
      }
      // The zero weight gets the floor.
      expect(got.get('conv1.W_rho')![4]).toBe(Math.fround(inverseSoftplus(MOPED_SIGMA_MIN)));
      // The input is unchanged and still usable; the result has its options, on its context.
      expect(await values(freq)).toEqual(before);
      expect(bnn.ctx).toBe(ctx);
      expect(bnn.modelOptions).toEqual(freq.modelOptions);
      expect(bnn.isBayesian).toBe(true);
      const priors = priorSigma === 'delta' ? {} : { priors: { prior_sigma: 0.05 } };
      const config = bnn.getConfig().layers as [string, unknown][];
      expect(config[0]).toEqual(['conv1', { type: 'BBBConv2d', inChannels: 2, outChannels: 3, kernel: [3, 3], layerType: 'lrt', bias: true, ...priors, priorTensors: true }]);
      expect(config[4]).toEqual(['fc1', { type: 'BBBLinear', inFeatures: 12, outFeatures: 4, layerType: 'lrt', bias: true, ...priors, priorTensors: true }]);
      expect(config.slice(1, 4)).toEqual((freq.getConfig().layers as unknown[]).slice(1, 4));
      // With priorSigma 'delta' the posterior starts at the prior: KL = 0 up to the f32 rounding of rho.
      if (priorSigma === 'delta') {
        const kl = (await bnn.run(ctx.tensor(new Float32Array(d.inC * d.size * d.size), [1, d.inC, d.size, d.size]), { sample: false }).kl!.read())[0];
        expect(Math.abs(kl)).toBeLessThan(1e-4);
      }
      bnn.dispose();
      freq.dispose();
    });
  }
});

describe('toBayesian: the deterministic forward equals the frequentist model', () => {
  it('a network with BatchNorm2d, Residual, Dropout and a bias-free strided conv: the same logits bit for bit (sample: false)', async () => {
    const ctx = await context();
    const layers = () => ({
      conv1: new Conv2d(3, 4, 3, { padding: 1 }), bn1: new BatchNorm2d(4), act1: new ReLU(),
      block: new Residual(new Sequential({ c: new Conv2d(4, 4, 3, { padding: 1, bias: false }), a: new ReLU() }), { shortcut: new Conv2d(4, 4, 1, { stride: 1 }) }),
      down: new Conv2d(4, 2, 3, { stride: 2, dilation: 1, bias: false }),
      flatten: new Flatten(), drop: new Dropout(0.3), fc: new Linear(null, 5),
    });
    const freq = new Sequential(ctx, layers(), { inputShape: [3, 8, 8], seed: 3 });
    // Train-like running statistics, so that copying them matters.
    let s = 40;
    for (const [name, p] of freq.namedParameters()) {
      if (name.endsWith('num_batches_tracked')) continue;
      ctx.write(p.value, randomArray(p.value.size, s++, name.endsWith('running_var') ? 0.5 : -0.5, name.endsWith('running_var') ? 2 : 0.5));
    }
    const before = await values(freq);
    const bnn = await toBayesian(freq, { layerType: 'bbb', moped: { delta: 0.2 } });
    freq.eval();
    bnn.eval();
    const x = ctx.tensor(randomArray(2 * 3 * 8 * 8, 9, -1, 1), [2, 3, 8, 8]);
    const want = await freq.run(x, { sample: false, kl: false }).logits.read();
    const got = await bnn.run(x, { sample: false, kl: false }).logits.read();
    expect(got).toEqual(want);
    // The kept layers' parameters (BatchNorm's running statistics included) are copied.
    const after = await values(bnn);
    for (const name of ['bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']) expect(after.get(name), name).toEqual(before.get(name));
    expect(after.get('block.shortcut.W_mu')).toEqual(before.get('block.shortcut.weight'));
    expect(after.has('down.bias_mu')).toBe(false);
    expect((bnn.layers[3][1] as BBBConv2d).options).toEqual((freq.layers[3][1] as Conv2d).options);
    expect(await values(freq)).toEqual(before);
    bnn.dispose();
    freq.dispose();
  });

  for (const layerType of LAYER_TYPES) {
    it(`the tiny CNN converted to ${layerType} layers: the same logits bit for bit (sample: false), a finite sampled forward`, async () => {
      const ctx = await context();
      const freq = await tinyFrequentist(ctx, 70);
      const bnn = await toBayesian(freq, { layerType, moped: { delta: 0.1 } });
      expect((bnn.layers[0][1] as BBBConv2d).layerType).toBe(layerType);
      const x = ctx.tensor(randomArray(2 * d.inC * d.size * d.size, 5, 0, 1), [2, d.inC, d.size, d.size]);
      expect(await bnn.run(x, { sample: false, kl: false }).logits.read()).toEqual(await freq.run(x, { sample: false, kl: false }).logits.read());
      const sampled = await bnn.run(x, { sample: true, samples: 2, seed: 3 }).logits.read();
      expect(sampled.every(Number.isFinite)).toBe(true);
      bnn.dispose();
      freq.dispose();
    });
  }

  it('a named LeNet (classes, class names, preprocessing kept) and a Regressor with HomoscedasticNoise', async () => {
    const ctx = await context();
    const lenet = LeNet(ctx, { classes: 3, classNames: ['x', 'y', 'z'], preprocessing: { invert: true }, seed: 5 });
    const bnn = await toBayesian(lenet, { moped: { delta: 0.1 } });
    const x = ctx.tensor(randomArray(2 * 32 * 32, 3, 0, 1), [2, 1, 32, 32]);
    expect(await bnn.run(x, { sample: false, kl: false }).logits.read()).toEqual(await lenet.run(x, { sample: false, kl: false }).logits.read());
    expect(bnn.modelOptions).toEqual(lenet.modelOptions);
    expect([...bnn.namedParameters().keys()].filter((k) => k.endsWith('.W_mu'))).toEqual(['conv1.W_mu', 'conv2.W_mu', 'fc1.W_mu', 'fc2.W_mu', 'fc3.W_mu']);
    expect((bnn.layers[0][1] as BBBConv2d).layerType).toBe('lrt');
    bnn.dispose();
    lenet.dispose();

    const reg = new Regressor(ctx, { fc1: new Linear(1, 8), act: new ReLU(), out: new Linear(8, 1), noise: new HomoscedasticNoise({ std: 0.3 }) }, { inputShape: [1] });
    const breg = await toBayesian(reg, { moped: { delta: 0.05 } });
    expect(breg).toBeInstanceOf(Regressor);
    expect(breg.task).toBe('regression');
    const xr = ctx.tensor([0.5, -1, 2], [3, 1]);
    expect(await breg.run(xr, { sample: false, kl: false }).logits.read()).toEqual(await reg.run(xr, { sample: false, kl: false }).logits.read());
    breg.dispose();
    reg.dispose();
  });
});

for (const layerType of ['lrt', 'bbb'] as const) {
  describe(`toBayesian: a training step of a converted model (${layerType})`, () => {
    it('gradients of NLL * N + beta * KL(q || N(w, sigma_p^2)) match central finite differences of the float64 model', async () => {
      const ctx = await context();
      const freq = await tinyFrequentist(ctx, 20, 0.1);
      const bnn = await toBayesian(freq, { layerType, moped: { delta: 0.3 } });
      const trained = await values(bnn);
      // Move the posterior off the prior (as training does), so that the KL and its gradients are not 0.
      const params = {} as TinyParams;
      let seed = 300;
      for (const [name, p] of bnn.namedParameters()) {
        if (!p.trainable) continue;
        const base = trained.get(name)!;
        const v = name.endsWith('rho') ? randomArray(p.value.size, seed++, -3, -1) : Float64Array.from(randomArray(p.value.size, seed++, -0.1, 0.1), (e, i) => base[i] + e);
        params[name as keyof TinyParams] = Float64Array.from(Float32Array.from(v));
        ctx.write(p.value, v);
      }
      const priorOf = (layer: string, v: string) => [trained.get(`${layer}.prior_${v}_mu`)!, trained.get(`${layer}.prior_${v}_sigma`)!] as const;
      const step = { seed: 11, step: 5, beta: 0.7, trainSize: 10 };
      const xs = randomArray(d.batch * d.inC * d.size * d.size, 7, 0, 1);
      const labels = [0, 3, 1];
      const result = lossAndGradients(bnn, ctx.tensor(xs, [d.batch, d.inC, d.size, d.size]), ctx.tensor(labels, [d.batch], 'u32'), { samples: d.samples, beta: step.beta, trainSize: step.trainSize, seed: step.seed, step: step.step });

      const noise = await tinyStepNoise(ctx, d, layerType, step, { conv1: params['conv1.W_mu'].length, fc1: params['fc1.W_mu'].length });
      // The data term of the tiny model's reference (beta 0) plus beta times the per-weight-prior KL.
      const loss = (p: TinyParams) => {
        let kl = 0;
        for (const layer of ['conv1', 'fc1'] as const) {
          kl += klGaussianTensorRef(p[`${layer}.W_mu`], p[`${layer}.W_rho`], ...priorOf(layer, 'W'));
          kl += klGaussianTensorRef(p[`${layer}.bias_mu`], p[`${layer}.bias_rho`], ...priorOf(layer, 'bias'));
        }
        return tinyLossRef(d, layerType, p, noise, xs, labels, { beta: 0, trainSize: step.trainSize, prior: { mu: 0, sigma: 1 } }) + step.beta * kl;
      };
      // The loss: f32 GPU vs float64 (relative 1e-5, as training_step.test.ts).
      const gpuLoss = (await result.loss.read())[0];
      expect(Math.abs(gpuLoss - loss(params)) / Math.abs(loss(params))).toBeLessThan(1e-5);
      for (const [name, p] of bnn.namedParameters()) {
        if (!p.trainable) {
          expect(p.grad, `${name} is not trained`).toBeNull();
          continue;
        }
        const v = params[name as keyof TinyParams];
        const fd = relativeNumericGradient(() => loss(params), v);
        // The tolerance of training_step.test.ts: 2e-4 of the tensor's largest gradient (f32 accumulation).
        expectClose(await p.grad!.read(), fd, 2e-4, `${layerType} ${name}`);
      }
      bnn.dispose();
      freq.dispose();
    });
  });
}

describe('toBayesian: save and load', () => {
  it('saveModel -> loadModel keeps the prior tensors (non-trainable, in the file), the config and the KL', async () => {
    const ctx = await context();
    const freq = await tinyFrequentist(ctx, 50);
    const bnn = await toBayesian(freq, { layerType: 'bbb', moped: { delta: 0.1 } });
    // Off the prior, so that the KL depends on every tensor.
    ctx.write(bnn.namedParameters().get('fc1.W_rho')!.value, randomArray(48, 2, -4, -2));
    const bytes = await saveModel(bnn);
    const file = decodeSafetensors(bytes);
    for (const name of ['conv1.prior_W_mu', 'conv1.prior_W_sigma', 'fc1.prior_bias_mu', 'fc1.prior_bias_sigma']) expect(file.tensors.has(name), name).toBe(true);
    const loaded = loadModel(ctx, bytes);
    expect(loaded.getConfig()).toEqual(bnn.getConfig());
    expect(loaded.modelOptions).toEqual(bnn.modelOptions);
    expect(await values(loaded)).toEqual(await values(bnn));
    for (const [name, p] of loaded.namedParameters()) expect(p.trainable, name).toBe(!name.includes('prior_'));
    const x = ctx.tensor(randomArray(2 * d.inC * d.size * d.size, 4, 0, 1), [2, d.inC, d.size, d.size]);
    const a = bnn.run(x, { sample: false });
    const b = loaded.run(x, { sample: false });
    expect(await b.kl!.read()).toEqual(await a.kl!.read());
    expect(await b.logits.read()).toEqual(await a.logits.read());
    // The layer config alone rebuilds a layer with prior tensors.
    const layer = layerFromConfig(bnn.layers[4][1].getConfig()) as BBBLinear;
    expect(layer.hasPriorTensors).toBe(true);
    expect(() => layerFromConfig({ ...bnn.layers[4][1].getConfig(), priorTensors: 'yes' })).toThrow(/priorTensors/);
    loaded.dispose();
    bnn.dispose();
    freq.dispose();
  });

  it('loadModel refuses a file whose per-weight prior sigma is 0, negative or NaN, by tensor and index, allocating nothing', async () => {
    const ctx = await context();
    const freq = await tinyFrequentist(ctx, 51);
    const bnn = await toBayesian(freq, { layerType: 'lrt', moped: { delta: 0.1 } });
    const file = decodeSafetensors(await saveModel(bnn));
    bnn.dispose();
    freq.dispose();
    for (const [name, bad] of [['fc1.prior_W_sigma', 0], ['conv1.prior_bias_sigma', -0.5], ['fc1.prior_bias_sigma', NaN]] as const) {
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const [n, t] of file.tensors) tensors[n] = { dtype: 'F32', shape: t.shape, data: Float32Array.from(t.data) };
      tensors[name].data[1] = bad;
      const bytes = encodeSafetensors(tensors, file.metadata);
      const live = ctx.memory().liveTensors;
      const pattern = Number.isNaN(bad) ? new RegExp(`tensor '${name.replace('.', '\\.')}' holds NaN at index 1 .*must be finite`) : new RegExp(`tensor '${name.replace('.', '\\.')}' holds ${bad} at index 1 .*a prior's sigma must be > 0`);
      expect(() => loadModel(ctx, bytes), name).toThrow(pattern);
      expect(ctx.memory().liveTensors).toBe(live);
    }
  });

  it('a BBB layer built with priorTensors starts every element at the scalar prior; a mixture prior is refused', async () => {
    const ctx = await context();
    const model = new Sequential(ctx, { fc: new BBBLinear(3, 2, { priors: { prior_mu: 0.2, prior_sigma: 0.3 }, priorTensors: true }) }, { inputShape: [3] });
    const p = model.namedParameters();
    expect(await p.get('fc.prior_W_mu')!.value.read()).toEqual(new Float32Array(6).fill(0.2));
    expect(await p.get('fc.prior_bias_sigma')!.value.read()).toEqual(new Float32Array(2).fill(Math.fround(0.3)));
    model.dispose();
    expect(() => new BBBLinear(3, 2, { priors: { mixture: { pi: 0.5, sigma1: 1, sigma2: 0.01 } }, priorTensors: true })).toThrow(/BBBLinear: argument 'priorTensors'/);
  });
});

describe('toBayesian: bad input, refused by name before anything is allocated', () => {
  it('refuses non-positive or non-finite delta, an unknown layer type, unconvertible networks and blocks', async () => {
    const ctx = await context();
    const freq = await tinyFrequentist(ctx, 60);
    const before = await values(freq);
    const bayes = new Sequential(ctx, { fc: new BBBLinear(4, 2) }, { inputShape: [4] });
    const plain = new Sequential(ctx, { act: new ReLU(), flatten: new Flatten() }, { inputShape: [2, 2] });
    const live = ctx.memory().liveTensors;
    for (const delta of [0, -0.1, Number.NaN, Number.POSITIVE_INFINITY, undefined, '0.1']) {
      await expect(toBayesian(freq, { moped: { delta: delta as number } }), `delta ${String(delta)}`).rejects.toThrow(/toBayesian: argument 'options.moped.delta' expected a finite number > 0/);
    }
    await expect(toBayesian(freq, {} as never)).rejects.toThrow(/toBayesian: argument 'options.moped'/);
    await expect(toBayesian(freq, { moped: { delta: 0.1, priorSigma: 0 } })).rejects.toThrow(/toBayesian: argument 'options.moped.priorSigma'/);
    await expect(toBayesian(freq, { moped: { delta: 0.1 }, extra: 1 } as never)).rejects.toThrow(/toBayesian: argument 'options' expected only the keys/);
    // The error names the layer types that exist.
    await expect(toBayesian(freq, { layerType: 'gaussian' as never, moped: { delta: 0.1 } })).rejects.toThrow(new RegExp(`toBayesian: argument 'options.layerType' expected one of ${LAYER_TYPES.map((t) => `'${t}'`).join(' \\| ')}`));
    await expect(toBayesian(bayes, { moped: { delta: 0.1 } })).rejects.toThrow(/toBayesian: argument 'model' expected a network with at least one Conv2d or Linear layer to convert, got a network whose layers are all Bayesian already/);
    await expect(toBayesian(plain, { moped: { delta: 0.1 } })).rejects.toThrow(/got a network without Conv2d or Linear layers/);
    await expect(toBayesian(new Sequential({ fc: new Linear(2, 2) }), { moped: { delta: 0.1 } })).rejects.toThrow(/toBayesian: argument 'model' expected a model built on a context/);
    await expect(toBayesian({} as never, { moped: { delta: 0.1 } })).rejects.toThrow(/toBayesian: argument 'model'/);
    expect(ctx.memory().liveTensors, 'GPU tensors allocated by a refused call').toBe(live);
    expect(await values(freq)).toEqual(before);
    bayes.dispose();
    plain.dispose();
    freq.dispose();
  });
});

/** A user's own layer: the identity, holding one parameter of its own (to see it copied). */
class Tagged extends Module {
  constructor(readonly type: string) {
    super();
  }
  tag: Parameter | null = null;
  override build(ctx: Parameters<Module['build']>[0], input: readonly number[], state: BuildState): void {
    super.build(ctx, input, state);
    this.tag = createParameter(ctx, [1, 2, 3], [3]);
  }
  override parameters(): Map<string, Parameter> {
    return this.tag ? new Map([['tag', this.tag]]) : new Map();
  }
  override outputShape(input: readonly number[]): number[] {
    return [...input];
  }
  override forward(x: Parameters<Module['forward']>[0]) {
    return x;
  }
  override backward(dy: Parameters<Module['backward']>[0]) {
    return dy;
  }
  override getConfig(): LayerConfig {
    return { type: this.type };
  }
}

describe('toBayesian: layers of the user\'s own types', () => {
  it('keeps a registered layer with its parameters, and refuses an unregistered one by its place, the input unchanged', async () => {
    const ctx = await context();
    registerLayer('ConvertTestTagged', () => new Tagged('ConvertTestTagged'));
    const model = new Sequential(ctx, { fc: new Linear(2, 3), tagged: new Tagged('ConvertTestTagged') }, { inputShape: [2] });
    ctx.write((model.layers[1][1] as Tagged).tag!.value, [7, 8, 9]);
    const bnn = await toBayesian(model, { moped: { delta: 0.1 } });
    expect(await bnn.namedParameters().get('tagged.tag')!.value.read()).toEqual(Float32Array.from([7, 8, 9]));
    bnn.dispose();
    model.dispose();
    const block = new Sequential(ctx, { inner: new Sequential({ fc: new Linear(2, 3), own: new Tagged('ConvertTestUnregistered') }) }, { inputShape: [2] });
    const live = ctx.memory().liveTensors;
    await expect(toBayesian(block, { moped: { delta: 0.1 } })).rejects.toThrow(/toBayesian: layer 'inner\.own' \(Tagged\) cannot be copied: .*unknown layer type "ConvertTestUnregistered"/);
    expect(ctx.memory().liveTensors).toBe(live);
    block.dispose();
  });
});
