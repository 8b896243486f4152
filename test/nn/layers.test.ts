/**
 * Layers wired into models: the seed README's example network
 * (conv -> batch norm -> relu -> flatten -> linear), frequentist and with BBB
 * layers swapped in, checked end to end against float64 references; shape
 * inference; bad input before GPU work.
 */
import { describe, expect, it } from 'vitest';
import { context, randomArray } from '../helpers.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU } from '../../src/nn/layers.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { Sequential } from '../../src/nn/sequential.js';
import { lossAndGradients } from '../../src/train/step.js';
import { BBBAlexNet, BBB3Conv3FC, BBBLeNet, LeNet } from '../../src/nn/models.js';
import { conv2dRef } from '../reference/conv2d.js';
import { batchNormTrainRef } from '../reference/batchnorm.js';
import { reluRef } from '../reference/activation.js';
import { linearRef } from '../reference/linear.js';
import { logSoftmaxRef, nllRef } from '../reference/loss.js';

const N = 3, C = 2, S = 5, OUT = 4, K = 3, CLASSES = 3;

function seedExampleLossRef(p: Record<string, Float64Array>, x: ArrayLike<number>, labels: number[], trainSize: number): number {
  const oh = S; // padding 1 keeps the size
  let h = conv2dRef({ x: [N, C, S, S], w: [OUT, C, K, K], padding: 1 }, x, p['conv1.weight'], p['conv1.bias']);
  h = batchNormTrainRef(h, p['bn1.weight'], p['bn1.bias'], { N, C: OUT, HW: oh * oh }, 1e-5);
  h = reluRef(h);
  const logits = linearRef(h, p['fc1.weight'], p['fc1.bias'], { rows: N, inF: OUT * oh * oh, outF: CLASSES, samples: 1 });
  return nllRef(logSoftmaxRef(logits, N, CLASSES), labels, CLASSES) * trainSize;
}

describe('layers in a network', () => {
  it("the seed README's example network: loss gradients match central finite differences of float64", async () => {
    const ctx = await context();
    const model = new Sequential(ctx, {
      conv1: new Conv2d(C, OUT, K, { padding: 1 }),
      bn1: new BatchNorm2d(OUT),
      act1: new ReLU(),
      flatten: new Flatten(),
      fc1: new Linear(null, CLASSES),
    }, { inputShape: [C, S, S] });
    expect(model.outputShapeOf).toEqual([CLASSES]);
    const p: Record<string, Float64Array> = {};
    let seed = 1;
    for (const [name, param] of model.namedParameters()) {
      if (!param.trainable) continue;
      p[name] = name === 'bn1.weight' ? randomArray(param.value.size, seed++, 0.5, 1.5) : randomArray(param.value.size, seed++, -0.5, 0.5);
      ctx.write(param.value, p[name]);
    }
    const xs = randomArray(N * C * S * S, 99, -1, 1);
    const labels = [2, 0, 1];
    lossAndGradients(model, ctx.tensor(xs, [N, C, S, S]), ctx.tensor(labels, [N], 'u32'), { samples: 1, beta: 0, trainSize: 7, seed: 0, step: 0 });
    const fds = new Map<string, Float64Array>();
    let scale = 0;
    for (const [name, param] of model.namedParameters()) {
      if (!param.trainable) continue;
      const v = p[name];
      const fd = Float64Array.from(v, (old, i) => {
        const h = 1e-6;
        v[i] = old + h;
        const up = seedExampleLossRef(p, xs, labels, 7);
        v[i] = old - h;
        const down = seedExampleLossRef(p, xs, labels, 7);
        v[i] = old;
        return (up - down) / (2 * h);
      });
      fds.set(name, fd);
      for (const g of fd) scale = Math.max(scale, Math.abs(g));
    }
    for (const [name, fd] of fds) {
      const got = await model.namedParameters().get(name)!.grad!.read();
      // 1e-4 relative to the network's largest gradient: f32 through conv, batch-norm statistics and
      // softmax. (The conv bias before batch norm has an exactly zero gradient: BN removes the channel
      // mean, so its f32 residue is judged against the network's scale, not against zero.)
      for (let i = 0; i < fd.length; i++) expect(Math.abs(got[i] - fd[i]) / scale, `${name}[${i}]`).toBeLessThan(1e-4);
    }
    model.dispose();
  });

  it('the same network made Bayesian by swapping in BBB layers trains without WGSL', async () => {
    const ctx = await context();
    const model = new Sequential(ctx, {
      conv1: new BBBConv2d(C, OUT, K, { padding: 1 }),
      bn1: new BatchNorm2d(OUT),
      act1: new ReLU(),
      flatten: new Flatten(),
      fc1: new BBBLinear(null, CLASSES),
    }, { inputShape: [C, S, S] });
    expect([...model.namedParameters().keys()]).toEqual([
      'conv1.W_mu', 'conv1.W_rho', 'conv1.bias_mu', 'conv1.bias_rho',
      'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      'fc1.W_mu', 'fc1.W_rho', 'fc1.bias_mu', 'fc1.bias_rho',
    ]);
    const { kl } = model.run(ctx.tensor(randomArray(N * C * S * S, 3), [N, C, S, S]), { samples: 2 });
    expect((await kl!.read())[0]).toBeGreaterThan(0);
    model.dispose();
  });

  it('Flatten infers sizes: the models build for 32x32 inputs with the seed shapes', async () => {
    const ctx = await context();
    const lenet = BBBLeNet(ctx, { inChannels: 3, classes: 100 });
    const shapes = Object.fromEntries([...lenet.namedParameters()].map(([n, p]) => [n, [...p.value.shape]]));
    expect(shapes['conv1.W_mu']).toEqual([6, 3, 5, 5]);
    expect(shapes['conv2.W_mu']).toEqual([16, 6, 5, 5]);
    expect(shapes['fc1.W_mu']).toEqual([120, 400]);
    expect(shapes['fc2.W_mu']).toEqual([84, 120]);
    expect(shapes['fc3.W_mu']).toEqual([100, 84]);
    const alex = BBBAlexNet(ctx, { inChannels: 3 });
    expect([...alex.namedParameters().get('classifier.W_mu')!.value.shape]).toEqual([10, 128]);
    const three = BBB3Conv3FC(ctx, { inChannels: 3 });
    expect([...three.namedParameters().get('fc1.W_mu')!.value.shape]).toEqual([1000, 512]);
    for (const m of [lenet, alex, three]) m.dispose();
  });

  it('rejects bad input before any GPU work', async () => {
    const ctx = await context();
    const model = LeNet(ctx);
    const wrong = ctx.tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
    expect(() => model.run(wrong)).toThrow(/forward: argument 'x' expected shape \[B, 1, 32, 32\], got \[2, 3, 32, 32\]/);
    expect(() => model.run(ctx.tensor(new Float32Array(1024), [1, 1, 32, 32]), { samples: 0 })).toThrow(/argument 'samples' expected an integer >= 1/);
    expect(() => new Sequential(ctx, { fc: new Linear(10, 2) }, { inputShape: [3, 4, 4] })).toThrow(/layer 'fc' \(Linear\) with input \[3, 4, 4\].*put a Flatten before it/);
    expect(() => new Sequential(ctx, { pool: new MaxPool2d(5) }, { inputShape: [1, 4, 4] })).toThrow(/smaller than the kernel/);
    expect(() => new Dropout(1)).toThrow(/Dropout: argument 'p' expected a probability in \[0, 1\)/);
    expect(() => new Conv2d(1, 2, 3, { stride: 0 })).toThrow(/Conv2d: argument 'stride' expected an integer >= 1, got 0/);
    expect(() => new BBBConv2d(1, 2, 3, { layerType: 'xyz' as never })).toThrow(/BBBConv2d: argument 'layerType' expected one of 'lrt' \| 'bbb'/);
    expect(() => new BBBLinear(4, 2, { priors: { prior_sigma: 0 } })).toThrow(/priors.prior_sigma' expected a positive number, got 0/);
    model.dispose();
  });
});
