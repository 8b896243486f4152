/**
 * ResNet-20 (He et al. 2016, sec. 4.2) and its pieces: global average pooling and the option-A
 * shortcut (forward and backward against float64 and central finite differences), residual blocks
 * with the identity and both projection shortcuts inside a model against central differences of
 * the float64 network, ResNet20's size and output shapes, whole training steps of a (narrow)
 * Bayesian ResNet-20 against central differences of its float64 ELBO, and a save/load round trip.
 */
import { describe, expect, it } from 'vitest';
import { context, dot, expectClose, numericGradient, randomArray, rng } from '../helpers.js';
import { roundToF32 } from '../browser/random.js';
import type { Context } from '../../src/gpu/context.js';
import { BayesError } from '../../src/errors.js';
import { globalAvgPool2dBackward, globalAvgPool2dForward } from '../../src/ops/pool.js';
import { zeroPadShortcutBackward, zeroPadShortcutForward } from '../../src/ops/shortcut.js';
import { drawNormal } from '../../src/ops/sample.js';
import { BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, ReLU, ZeroPadShortcut } from '../../src/nn/layers.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { Residual, Sequential } from '../../src/nn/sequential.js';
import { type Module } from '../../src/nn/module.js';
import { layerFromConfig } from '../../src/nn/registry.js';
import { BBBLeNet, BBBResNet20, LeNet, Model, ResNet20, resolveConfig } from '../../src/nn/models.js';
import { lossAndGradients } from '../../src/train/step.js';
import { loadModel, parameterCount, saveModel } from '../../src/io/checkpoint.js';
import { globalAvgPool2dBackwardRef, globalAvgPool2dRef } from '../reference/pool.js';
import { type ShortcutShape, zeroPadShortcutBackwardRef, zeroPadShortcutOutputShape, zeroPadShortcutRef } from '../reference/shortcut.js';
import { type NetworkRef, networkLossRef } from '../reference/resnet.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('globalAvgPool2d', () => {
  // The second shape has planes of 4,900 values: the sum splits over invocations (reduce.ts).
  for (const shape of [[3, 5, 7, 6], [2, 3, 70, 70], [4, 2, 1, 1]]) {
    it(`forward and backward match float64 and central differences: [${shape.join(', ')}]`, async () => {
      const ctx = await context();
      const xs = roundToF32(randomArray(size(shape), 3, -2, 2));
      const [N, C] = shape;
      const dys = roundToF32(randomArray(N * C, 4));
      const y = globalAvgPool2dForward(ctx.tensor(xs, shape));
      expect(y.shape).toEqual([N, C]);
      const want = globalAvgPool2dRef(xs, shape);
      // f32 sums of up to 4,900 values of magnitude <= 2, about 1e-7 relative each step.
      expectClose(await y.read(), want, 2e-6, 'y');
      const dx = globalAvgPool2dBackward(ctx.tensor(dys, [N, C]), { inputShape: shape });
      expect(dx.shape).toEqual(shape);
      const dxRef = globalAvgPool2dBackwardRef(dys, shape);
      // One f32 product of dy and the f32 of 1/(H*W).
      expectClose(await dx.read(), dxRef, 1e-6, 'dx');
      if (size(shape) < 1000) {
        const fd = numericGradient((v) => dot(globalAvgPool2dRef(v, shape), dys), Float64Array.from(xs));
        expectClose(dxRef, fd, 1e-8, 'dx reference vs central differences');
      }
    });
  }

  it('refuses bad shapes before any GPU work', async () => {
    const ctx = await context();
    expect(() => globalAvgPool2dForward(ctx.tensor([1, 2, 3], [3]))).toThrow(/globalAvgPool2dForward: argument 'x' expected shape \[N, C, H, W\], got \[3\]/);
    const dy = ctx.tensor([1, 2], [1, 2]);
    expect(() => globalAvgPool2dBackward(dy, { inputShape: [1, 3, 4, 4] })).toThrow(/argument 'dy' expected shape \[1, 3\]/);
    expect(() => globalAvgPool2dBackward(dy, { inputShape: [1, 2, 4] })).toThrow(/options.inputShape/);
  });
});

describe('zeroPadShortcut (He et al. option A)', () => {
  const cases: ShortcutShape[] = [
    { x: [2, 4, 8, 8], outChannels: 8, stride: 2 }, // ResNet's 16 -> 32 transition in miniature
    { x: [3, 3, 7, 5], outChannels: 6, stride: 2 }, // odd sizes keep ceil(H / 2) rows
    { x: [2, 3, 9, 10], outChannels: 6, stride: 3 }, // an odd channel gap: 1 in front, 2 behind
    { x: [1, 5, 4, 6], outChannels: 5, stride: 1 }, // the identity
  ];
  for (const s of cases) {
    it(`forward and backward match float64 and central differences: x [${s.x.join(', ')}] -> ${s.outChannels} channels, stride ${s.stride}`, async () => {
      const ctx = await context();
      const xs = roundToF32(randomArray(size(s.x), 5, -2, 2));
      const outShape = zeroPadShortcutOutputShape(s);
      const dys = roundToF32(randomArray(size(outShape), 6));
      const y = zeroPadShortcutForward(ctx.tensor(xs, s.x), { outChannels: s.outChannels, stride: s.stride });
      expect(y.shape).toEqual(outShape);
      // Copies and zeros: exact.
      expectClose(await y.read(), zeroPadShortcutRef(s, xs), 0, 'y');
      const dx = zeroPadShortcutBackward(ctx.tensor(dys, outShape), { inputShape: s.x, stride: s.stride });
      const dxRef = zeroPadShortcutBackwardRef(s, dys);
      expectClose(await dx.read(), dxRef, 0, 'dx');
      const fd = numericGradient((v) => dot(zeroPadShortcutRef(s, v), dys), Float64Array.from(xs));
      expectClose(dxRef, fd, 1e-8, 'dx reference vs central differences');
    });
  }

  it('pads half the new channels in front (the PyTorch reproduction of ResNet-20: planes // 4 on each side)', async () => {
    const ctx = await context();
    const y = await zeroPadShortcutForward(ctx.tensor([1, 2, 3, 4], [1, 1, 2, 2]), { outChannels: 3, stride: 2 }).read();
    expect([...y]).toEqual([0, 1, 0]);
  });

  it('refuses bad settings before any GPU work, and the layer checks its input', async () => {
    const ctx = await context();
    const x = ctx.tensor(new Float32Array(16), [1, 4, 2, 2]);
    expect(() => zeroPadShortcutForward(x, { outChannels: 2, stride: 2 })).toThrow(/options.outChannels' expected at least the 4 input channels/);
    expect(() => zeroPadShortcutForward(x, { outChannels: 8, stride: 0 })).toThrow(/options.stride' expected an integer >= 1/);
    const dy = ctx.tensor(new Float32Array(8), [1, 8, 1, 1]);
    expect(() => zeroPadShortcutBackward(dy, { inputShape: [1, 4, 4, 4], stride: 2 })).toThrow(/argument 'dy' expected shape \[1, Cout >= 4, 2, 2\]/);
    expect(() => new ZeroPadShortcut(8, 4)).toThrow(BayesError);
    expect(() => new ZeroPadShortcut(4, 8, { stride: 2 }).outputShape([3, 8, 8])).toThrow(/ZeroPadShortcut: input expected 4 channels, got 3/);
    expect(new ZeroPadShortcut(4, 8, { stride: 2 }).outputShape([4, 7, 8])).toEqual([8, 4, 4]);
    expect(new GlobalAvgPool2d().outputShape([5, 3, 3])).toEqual([5]);
    expect(() => new GlobalAvgPool2d().outputShape([5])).toThrow(/GlobalAvgPool2d: input expected \[C, H, W\]/);
    // Both rebuild from their configs.
    expect(layerFromConfig(new ZeroPadShortcut(4, 8, { stride: 2 }).getConfig()).getConfig()).toEqual({ type: 'ZeroPadShortcut', inChannels: 4, outChannels: 8, stride: 2 });
    expect(layerFromConfig({ type: 'GlobalAvgPool2d' })).toBeInstanceOf(GlobalAvgPool2d);
    expect(() => layerFromConfig({ type: 'ZeroPadShortcut', inChannels: 4 })).toThrow(/setting 'outChannels' expected a whole number/);
  });
});

// ------------------------------------------------------------------ whole networks against float64

/** Trainable parameters set to spread-out values (f32-exact); returns them by state-dict name. */
function scramble(ctx: Context, model: Module, seed: number): Record<string, Float64Array> {
  const params: Record<string, Float64Array> = {};
  for (const [name, p] of model.namedParameters()) {
    if (!p.trainable) continue;
    const n = p.value.size;
    const [layer, leaf] = name.split('.').slice(-2);
    // rho spread so that sigma matters; BatchNorm's gamma around 1; the rest large enough to make activations non-trivial.
    const [lo, hi] = leaf.endsWith('rho') ? [-3, -1] : /^bn\d*$/.test(layer) && leaf === 'weight' ? [0.5, 1.5] : [-0.6, 0.6];
    const v = roundToF32(randomArray(n, seed++, lo, hi));
    params[name] = v;
    ctx.write(p.value, v);
  }
  return params;
}

/** Bayesian layers of a model by state-dict prefix, with their first random stream. */
function bayesLayers(module: Module, prefix = '', out = new Map<string, number>()): Map<string, number> {
  if (module instanceof BBBConv2d || module instanceof BBBLinear) out.set(prefix.slice(0, -1), module.streamBase);
  for (const [name, child] of module.children()) bayesLayers(child, `${prefix}${name}.`, out);
  return out;
}

interface StepCase {
  seed: number; step: number; samples: number; beta: number; trainSize: number;
}

/**
 * A training step of `model` (lossAndGradients) against central differences of the float64 ELBO of
 * the same network (its configs, read by test/reference/resnet.ts) under the noise the GPU drew,
 * read back with drawNormal under the layers' keys. `pick` chooses the entries of each tensor to
 * difference (all of them for small networks).
 */
async function checkStep(ctx: Context, model: Sequential, xs: Float64Array, labels: number[], o: StepCase, pick: (name: string, n: number) => number[], tol: number): Promise<void> {
  const params = scramble(ctx, model, 100);
  const B = labels.length;
  const x = ctx.tensor(xs, [B, ...model.inputShape]);
  const y = ctx.tensor(labels, [B], 'u32');
  const result = lossAndGradients(model, x, y, { samples: o.samples, beta: o.beta, trainSize: o.trainSize, seed: o.seed, step: o.step });

  // The noise requests of the network (layer, kind, count) from one reference pass, then the GPU's draws.
  const streams = bayesLayers(model);
  const requests = new Map<string, number>();
  const config = model.getConfig();
  const prior = { mu: 0, sigma: 0.1 };
  const lossOptions = { beta: o.beta, trainSize: o.trainSize, prior };
  const r: NetworkRef = { params, samples: o.samples, sample: true, noise: (layer, what, count) => (requests.set(`${layer}|${what}`, count), new Float64Array(count)) };
  networkLossRef(config, model.inputShape, r, xs, labels, lossOptions);
  const noise = new Map<string, Float64Array>();
  for (const [key, count] of requests) {
    const [layer, what] = key.split('|');
    const stream = streams.get(layer)! + { out: 0, w: 1, b: 2 }[what as 'out' | 'w' | 'b'];
    noise.set(key, Float64Array.from(await drawNormal(ctx, [count], { key: { seed: o.seed, step: o.step, stream } }).read()));
  }
  r.noise = (layer, what) => noise.get(`${layer}|${what}`)!;
  const loss = () => networkLossRef(config, model.inputShape, r, xs, labels, lossOptions);

  const gpuLoss = (await result.loss.read())[0];
  const want = loss();
  expect(Math.abs(gpuLoss - want) / Math.abs(want), `loss ${gpuLoss} vs ${want}`).toBeLessThan(1e-5);

  for (const [name, p] of model.namedParameters()) {
    if (!p.trainable) continue;
    const v = params[name];
    const grad = await p.grad!.read();
    let scale = 0;
    for (const g of grad) scale = Math.max(scale, Math.abs(g));
    for (const i of pick(name, v.length)) {
      const old = v[i];
      const h = 1e-6 * Math.max(1, Math.abs(old));
      v[i] = old + h;
      const up = loss();
      v[i] = old - h;
      const down = loss();
      v[i] = old;
      const fd = (up - down) / (2 * h);
      // Relative to the tensor's largest gradient, as test/nn/training_step.test.ts: f32 accumulation
      // through the network's backward against O(h^2) + rounding / h in the differences.
      expect(Math.abs(grad[i] - fd) / Math.max(scale, 1e-30), `${name}[${i}]: GPU ${grad[i]}, central differences ${fd} (largest |grad| ${scale})`).toBeLessThan(tol);
    }
  }
}

const all = (_name: string, n: number) => Array.from({ length: n }, (_, i) => i);

describe('residual blocks in a model (float64 and central differences)', () => {
  const blocks: [string, () => Residual, number[]][] = [
    ['identity shortcut', () => new Residual(basicBody(3, 3, 1)), [3, 6, 6]],
    ['option A: zero-padding shortcut, stride 2', () => new Residual(basicBody(3, 6, 2), { shortcut: new ZeroPadShortcut(3, 6, { stride: 2 }) }), [3, 7, 7]],
    ['option B: 1x1 convolution of stride 2 and BatchNorm2d', () => new Residual(basicBody(3, 6, 2), { shortcut: new Sequential([['conv', new Conv2d(3, 6, 1, { stride: 2, bias: false })], ['bn', new BatchNorm2d(6)]]) }), [3, 7, 7]],
  ];
  for (const [name, block, inputShape] of blocks) {
    it(`${name}: the loss and every gradient`, async () => {
      const ctx = await context();
      const model = new Sequential(ctx, { block: block(), act: new ReLU(), pool: new GlobalAvgPool2d(), fc: new Linear(null, 4) }, { inputShape, seed: 2 });
      const xs = roundToF32(randomArray(2 * size(inputShape), 9, -1, 1));
      await checkStep(ctx, model, xs, [1, 3], { seed: 1, step: 0, samples: 1, beta: 0, trainSize: 5 }, all, 1e-4);
      model.dispose();
    });
  }
});

/** He et al.'s basic block body: conv3x3 - BN - ReLU - conv3x3 - BN (no conv bias). */
function basicBody(inC: number, outC: number, stride: number): Sequential {
  return new Sequential([
    ['conv1', new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false })],
    ['bn1', new BatchNorm2d(outC)],
    ['act1', new ReLU()],
    ['conv2', new Conv2d(outC, outC, 3, { padding: 1, bias: false })],
    ['bn2', new BatchNorm2d(outC)],
  ]);
}

// ------------------------------------------------------------------ ResNet-20

/**
 * ResNet-20's trainable parameters counted from the paper's description (sec. 4.2), for `c` input
 * channels and `k` classes, option A: 3x3 convolutions without bias, each followed by a BatchNorm
 * (gamma and beta per channel), a 64 x k fully connected layer with bias.
 */
function resnet20Count(c: number, k: number, shortcut: 'A' | 'B' = 'A'): number {
  const conv = (i: number, o: number, kk = 3) => i * o * kk * kk;
  const bn = (o: number) => 2 * o;
  let n = conv(c, 16) + bn(16);
  n += 6 * (conv(16, 16) + bn(16)); // stage 1: 3 blocks of two 16 -> 16 convs
  n += conv(16, 32) + bn(32) + 5 * (conv(32, 32) + bn(32)); // stage 2
  n += conv(32, 64) + bn(64) + 5 * (conv(64, 64) + bn(64)); // stage 3
  if (shortcut === 'B') n += conv(16, 32, 1) + bn(32) + conv(32, 64, 1) + bn(64);
  return n + 64 * k + k;
}

const trainable = (m: Module) => [...m.namedParameters().values()].filter((p) => p.trainable).reduce((a, p) => a + p.value.size, 0);

describe('ResNet20', () => {
  it('has 0.27M parameters for 10 classes and 3 channels (option A), as He et al. table 6; option B and the Bayesian one as counted', async () => {
    const ctx = await context();
    expect(resnet20Count(3, 10)).toBe(269722);
    const model = ResNet20(ctx, { inChannels: 3 });
    expect(trainable(model)).toBe(269722);
    expect(model.config).toMatchObject({ model: 'resnet20', bayesian: false, activation: 'relu', shortcut: 'A', inChannels: 3, classes: 10 });
    // The stage transitions: zero padding, no parameters.
    expect(model.namedParameters().has('layer2.block1.shortcut.conv.weight')).toBe(false);
    model.dispose();
    const b = ResNet20(ctx, { inChannels: 3, shortcut: 'B' });
    expect(trainable(b)).toBe(resnet20Count(3, 10, 'B'));
    expect(b.namedParameters().get('layer3.block1.shortcut.conv.weight')!.value.shape).toEqual([64, 32, 1, 1]);
    b.dispose();
    // Bayesian: mu and rho for every conv weight and the fc; BatchNorm's gamma and beta once.
    const bayes = BBBResNet20(ctx, { inChannels: 1, classes: 7 });
    const bnCount = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64);
    expect(trainable(bayes)).toBe(2 * (resnet20Count(1, 7) - bnCount) + bnCount);
    expect(bayes.config).toMatchObject({ model: 'resnet20', bayesian: true, layerType: 'lrt', activation: 'relu', shortcut: 'A' });
    expect(bayes.namedParameters().has('layer1.block2.body.conv1.W_rho')).toBe(true);
    expect(bayes.namedParameters().has('layer1.block2.body.bn1.weight')).toBe(true);
    // parameterCount (what loadModel checks a file against) agrees, running statistics included.
    expect(Number(parameterCount(bayes.config))).toBe([...bayes.namedParameters().values()].reduce((a, p) => a + p.value.size, 0));
    bayes.dispose();
  });

  for (const inChannels of [1, 3]) {
    it(`gives [B, classes] logits for ${inChannels}-channel 32x32 input (Bayesian and frequentist)`, async () => {
      const ctx = await context();
      for (const model of [BBBResNet20(ctx, { inChannels, classes: 10, seed: 4 }), ResNet20(ctx, { inChannels, classes: 5, shortcut: 'B' })]) {
        expect(model.inputShape).toEqual([inChannels, 32, 32]);
        const classes = model.config.classes;
        expect(model.outputShapeOf).toEqual([classes]);
        model.eval();
        const logits = await ctx.scope(() => model.run(ctx.tensor(randomArray(2 * inChannels * 1024, 8, 0, 1), [2, inChannels, 32, 32]), { samples: 2, sample: model.config.bayesian, seed: 3 }).logits).read();
        expect(logits.length).toBe(2 * 2 * classes);
        expect(logits.every(Number.isFinite)).toBe(true);
        model.dispose();
      }
    });
  }

  it('checks its options before anything is built', async () => {
    const ctx = await context();
    expect(() => BBBResNet20(ctx, { shortcut: 'C' as 'A' })).toThrow(/BBBResNet20: argument 'shortcut' expected one of 'A' \| 'B', got "C"/);
    expect(() => ResNet20(ctx, { width: 0 })).toThrow(/argument 'width' expected an integer >= 1/);
    expect(() => BBBLeNet(ctx, { shortcut: 'A' } as object)).toThrow(/only resnet20 takes a 'shortcut'/);
    expect(() => LeNet(ctx, { width: 4 } as object)).toThrow(/only resnet20 takes a 'width'/);
    // The seed's models keep their configs (no ResNet settings in them).
    expect(resolveConfig('t', 'lenet', true, {})).toEqual({ model: 'lenet', bayesian: true, layerType: 'lrt', activation: 'softplus', inChannels: 1, classes: 10, imageSize: 32 });
  });

  it('saves and loads (saveModel / loadModel): identical sampled logits, both shortcuts', async () => {
    const ctx = await context();
    for (const shortcut of ['A', 'B'] as const) {
      const model = BBBResNet20(ctx, { inChannels: 1, classes: 10, shortcut, layerType: shortcut === 'A' ? 'lrt' : 'bbb', seed: 5, priors: { prior_sigma: 0.2 } });
      scramble(ctx, model, 40);
      // Running statistics too: eval mode reads them.
      for (const [name, p] of model.namedParameters()) if (name.endsWith('running_var')) ctx.write(p.value, randomArray(p.value.size, 3, 0.5, 2));
      const xs = randomArray(3 * 1024, 11, 0, 1);
      const logitsOf = (m: Model) => ctx.scope(() => m.eval().run(ctx.tensor(xs, [3, 1, 32, 32]), { samples: 2, sample: true, seed: 9, step: 2 }).logits).read();
      const before = await logitsOf(model);
      const loaded = loadModel(ctx, await saveModel(model)) as Model;
      expect(loaded).toBeInstanceOf(Model);
      expect(loaded.config).toEqual(model.config);
      const after = await logitsOf(loaded);
      expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(true);
      model.dispose();
      loaded.dispose();
    }
  });
});

describe('a Bayesian ResNet-20 training step (float64 and central differences)', () => {
  // The builder's own network with 2, 4 and 8 channels in its stages (the internal width option) so
  // that each central difference, one float64 pass of the whole 20-layer network, stays quick.
  for (const [layerType, shortcut] of [['lrt', 'A'], ['bbb', 'B']] as const) {
    it(`layerType '${layerType}', shortcut ${shortcut}: the ELBO and a sample of every tensor's gradients`, async () => {
      const ctx = await context();
      const model = BBBResNet20(ctx, { inChannels: 1, classes: 10, width: 2, layerType, shortcut, priors: { prior_mu: 0, prior_sigma: 0.1 }, seed: 6 });
      expect(model.config.width).toBe(2);
      const xs = roundToF32(randomArray(2 * 1024, 12, 0, 1));
      const r = rng(7);
      // The last entry of every tensor and one at random.
      const pick = (_name: string, n: number) => [...new Set([n - 1, Math.floor(r() * n)])];
      await checkStep(ctx, model, xs, [3, 8], { seed: 11, step: 4, samples: 2, beta: 0.3, trainSize: 20 }, pick, 2e-4);
      model.dispose();
    }, 120_000);
  }
});
