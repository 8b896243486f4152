/**
 * The training loop end to end on real data, and its bad-input checks.
 * The CI-sized run: BBB-LRT LeNet (relu) on the first 2,000 MNIST training
 * images; the KL weight is scaled down (beta 0.01) because with 2,000 images
 * the data term NLL * N is 30x smaller than on full MNIST, while KL is not.
 */
import { describe, expect, it } from 'vitest';
import { context } from '../helpers.js';
import { BBBLeNet, LeNet } from '../../src/nn/models.js';
import { evaluate, fit, type FloatDataset } from '../../src/train/fit.js';
import { loadDataset } from '../../src/cli/datasets.js';

describe('fit', () => {
  it('lowers the loss and reaches >= 90% test accuracy on a 2,000-image MNIST subset', async () => {
    const ctx = await context();
    const train = await loadDataset('mnist', 'train', { limit: 2000 });
    const test = await loadDataset('mnist', 'test', { limit: 1000 });
    const model = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: 1 });
    const losses: number[] = [];
    const result = await fit(ctx, model, train, {
      epochs: 6, batchSize: 32, lr: 2e-3, lrSchedule: 'linear', beta: 0.01, validFraction: 0.1, seed: 1,
      onEpoch: (e) => void losses.push(e.trainLoss),
    });
    expect(result.history).toHaveLength(6);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    const r = await evaluate(ctx, model, test, { batchSize: 250, samples: 4, seed: 3 });
    console.log(`fit test: train loss ${losses.map((l) => l.toFixed(0)).join(' -> ')}; test accuracy ${(r.accuracy * 100).toFixed(1)}% (1,000 images, 4 MC samples); NLL ${r.nll.toFixed(3)}`);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.9);
    model.dispose();
  }, 600_000);

  it('rejects bad input before any GPU work', async () => {
    const ctx = await context();
    const model = LeNet(ctx);
    const data: FloatDataset = { x: new Float32Array(4 * 1024), labels: new Uint8Array(4), count: 4, shape: [1, 32, 32], classes: 10 };
    const before = ctx.memory().liveTensors;
    await expect(fit(ctx, model, data, { epochs: 1, batchSize: 0 })).rejects.toThrow(/fit: argument 'batchSize' expected an integer >= 1, got 0/);
    await expect(fit(ctx, model, data, { epochs: 0, batchSize: 2 })).rejects.toThrow(/argument 'epochs' expected an integer >= 1/);
    await expect(fit(ctx, model, data, { epochs: 2, initialEpoch: 2, batchSize: 2 })).rejects.toThrow(/fit: argument 'initialEpoch' expected an integer below epochs \(2\), got 2/);
    const rgb: FloatDataset = { ...data, x: new Float32Array(4 * 3 * 1024), shape: [3, 32, 32] };
    await expect(fit(ctx, model, rgb, { epochs: 1, batchSize: 2 })).rejects.toThrow(/model expects \[1, 32, 32\] \(input channels 1, the data set has 3\)/);
    await expect(fit(ctx, model, { ...data, count: 5 }, { epochs: 1, batchSize: 2 })).rejects.toThrow(/holds 4096 values and 4 labels for 5 images/);
    await expect(loadDataset('mnist', 'train', { dataDir: '/nonexistent/mnist' })).rejects.toThrow(/nonexistent/);
    await expect(loadDataset('svhn', 'train')).rejects.toThrow(/argument 'dataset' expected one of 'mnist'/);
    expect(ctx.memory().liveTensors).toBe(before);
    model.dispose();
  });
});
