/**
 * The training loop end to end on real data, and its bad-input checks.
 * The CI-sized run: BBB-LRT LeNet (relu) on the first 2,000 MNIST training
 * images; the KL weight is scaled down (beta 0.01) because with 2,000 images
 * the data term NLL * N is 30x smaller than on full MNIST, while KL is not.
 */
import { describe, expect, it, vi } from 'vitest';
import { context } from '../helpers.js';
import { BBBLeNet, LeNet } from '../../src/nn/models.js';
import { type BatchProgress, ReportPacer, evaluate, fit, type FloatDataset } from '../../src/train/fit.js';
import { loadDataset } from '../../src/cli/datasets.js';

describe('fit', () => {
  it('lowers the loss and reaches >= 90% test accuracy on a 2,000-image MNIST subset', async () => {
    const ctx = await context();
    const train = await loadDataset('mnist', 'train', { limit: 2000 });
    const test = await loadDataset('mnist', 'test', { limit: 1000 });
    const model = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: 1 });
    const losses: number[] = [];
    const result = await fit(model, train, {
      epochs: 6, batchSize: 32, lr: 2e-3, lrSchedule: 'linear', beta: 0.01, validFraction: 0.1, seed: 1,
      onEpoch: (e) => void losses.push(e.trainLoss),
    });
    expect(result.history).toHaveLength(6);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    const r = await evaluate(model, test, { batchSize: 250, samples: 4, seed: 3 });
    console.log(`fit test: train loss ${losses.map((l) => l.toFixed(0)).join(' -> ')}; test accuracy ${(r.accuracy * 100).toFixed(1)}% (1,000 images, 4 MC samples); NLL ${r.nll.toFixed(3)}`);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.9);
    model.dispose();
  }, 600_000);

  it('reads back only for the figures it shows: one read per onBatch call and one per validation, none per step', async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 96 });
    // 72 training images in 12 batches of 6, 24 held out; 2 epochs.
    const run = async (o: { onBatch: boolean; reportEvery?: number; reportSeconds?: number }) => {
      const model = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: 1 });
      const calls: BatchProgress[] = [];
      const read = vi.spyOn(ctx, 'read');
      try {
        const result = await fit(model, data, {
          epochs: 2, batchSize: 6, validFraction: 0.25, seed: 1, lr: 2e-3, reportEvery: o.reportEvery, reportSeconds: o.reportSeconds,
          onBatch: o.onBatch ? (p) => void calls.push(p) : undefined,
        });
        const weights = new Map<string, Float32Array>();
        const reads = read.mock.calls.length;
        for (const [name, p] of model.namedParameters()) weights.set(name, (await p.value.read()) as Float32Array);
        return { reads, calls, history: result.history.map((e) => ({ ...e, seconds: 0, samplesPerSecond: 0 })), weights };
      } finally {
        read.mockRestore();
        model.dispose();
      }
    };
    // Every 4th batch and the last of each epoch: 4, 8, 12.
    const every4 = await run({ onBatch: true, reportEvery: 4, reportSeconds: 0 });
    expect(every4.calls.map((p) => `${p.epoch}:${p.batch}`)).toEqual(['0:4', '0:8', '0:12', '1:4', '1:8', '1:12']);
    expect(every4.reads).toBe(every4.calls.length + 2);
    // No onBatch: the epoch's figures (one read) and the validation (one read), for 12 steps.
    const silent = await run({ onBatch: false });
    expect(silent.reads).toBe(2 * 2);
    // Paced by time: the first report after reportEvery batches, then (every LeNet step here takes
    // far less than 1000 s) only each epoch's last.
    const paced = await run({ onBatch: true, reportEvery: 2, reportSeconds: 1000 });
    expect(paced.calls.map((p) => `${p.epoch}:${p.batch}`)).toEqual(['0:2', '0:12', '1:12']);
    expect(paced.reads).toBe(paced.calls.length + 2);
    // The figures shown and the training are the same whatever is read when.
    for (const r of [silent, paced]) {
      expect(r.history).toEqual(every4.history);
      for (const [name, w] of every4.weights) expect(r.weights.get(name), name).toEqual(w);
    }
    const last = (r: typeof every4) => r.calls.filter((p) => p.batch === 12).map(({ loss, kl, accuracy }) => ({ loss, kl, accuracy }));
    expect(last(paced)).toEqual(last(every4));
    expect(every4.calls[1].loss).not.toBe(every4.calls[2].loss);
  }, 600_000);

  it('ReportPacer: a stride of reportEvery steps while steps are slow, about `seconds` worth of steps when they are fast', () => {
    const slow = new ReportPacer(5, 0.25);
    slow.restart(0);
    expect([4, 5, 6].map((d) => slow.due(d))).toEqual([false, true, false]);
    slow.read(5, 5 * 400); // 0.4 s a step (SwiftShader)
    expect(slow.due(10)).toBe(true);
    const fast = new ReportPacer(5, 0.25);
    fast.restart(1000);
    fast.read(5, 1005); // 1 ms a step (a GPU): 250 steps to a quarter second
    expect(fast.due(250)).toBe(false);
    expect(fast.due(255)).toBe(true);
    expect(fast.due(256)).toBe(false);
    fast.restart(2000);
    expect(fast.due(250)).toBe(true); // the stride carries over to the next epoch
    const untimed = new ReportPacer(3, 0);
    untimed.restart(0);
    untimed.read(3, 3);
    expect(untimed.due(6)).toBe(true);
  });

  it('rejects bad input before any GPU work', async () => {
    const ctx = await context();
    const model = LeNet(ctx);
    const data: FloatDataset = { x: new Float32Array(4 * 1024), labels: new Uint8Array(4), count: 4, shape: [1, 32, 32], classes: 10 };
    const before = ctx.memory().liveTensors;
    await expect(fit(model, data, { epochs: 1, batchSize: 0 })).rejects.toThrow(/fit: argument 'batchSize' expected an integer >= 1, got 0/);
    await expect(fit(model, data, { epochs: 0, batchSize: 2 })).rejects.toThrow(/argument 'epochs' expected an integer >= 1/);
    await expect(fit(model, data, { epochs: 2, initialEpoch: 2, batchSize: 2 })).rejects.toThrow(/fit: argument 'initialEpoch' expected an integer below epochs \(2\), got 2/);
    await expect(fit(model, data, { epochs: 1, batchSize: 2, reportSeconds: -1 })).rejects.toThrow(/fit: argument 'reportSeconds' expected a number of seconds >= 0, got -1/);
    const rgb: FloatDataset = { ...data, x: new Float32Array(4 * 3 * 1024), shape: [3, 32, 32] };
    await expect(fit(model, rgb, { epochs: 1, batchSize: 2 })).rejects.toThrow(/model expects \[1, 32, 32\] \(input channels 1, the data set has 3\)/);
    await expect(fit(model, { ...data, count: 5 }, { epochs: 1, batchSize: 2 })).rejects.toThrow(/holds 4096 values and 4 labels for 5 images/);
    await expect(loadDataset('mnist', 'train', { dataDir: '/nonexistent/mnist' })).rejects.toThrow(/nonexistent/);
    await expect(loadDataset('svhn', 'train')).rejects.toThrow(/argument 'dataset' expected one of 'mnist'/);
    expect(ctx.memory().liveTensors).toBe(before);
    model.dispose();
  });
});
