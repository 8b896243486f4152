/**
 * updateBatchNorm (src/train/batchnorm_stats.ts): one training-mode pass that sets every BatchNorm2d's
 * running mean and variance to the plain average of the per-batch statistics (torch's update_bn),
 * checked against float64 statistics of the same batches; nothing else changes.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm2d, Flatten, Linear } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/sequential.js';
import { updateBatchNorm } from '../../src/train/batchnorm_stats.js';
import { context, expectClose, randomArray } from '../helpers.js';

const C = 2;
const H = 3;
const HW = H * H;

/** Per channel, the average over batches [from, from + n) of the batch mean and the unbiased batch variance, in float64. */
function averagedStats(x: Float32Array, sizes: number[]): { mean: number[]; variance: number[] } {
  const mean = new Array(C).fill(0);
  const variance = new Array(C).fill(0);
  let from = 0;
  for (const n of sizes) {
    for (let c = 0; c < C; c++) {
      const values: number[] = [];
      for (let i = from; i < from + n; i++) for (let p = 0; p < HW; p++) values.push(x[(i * C + c) * HW + p]);
      const m = values.reduce((a, b) => a + b, 0) / values.length;
      const v = values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1);
      mean[c] += m / sizes.length;
      variance[c] += v / sizes.length;
    }
    from += n;
  }
  return { mean, variance };
}

describe('updateBatchNorm', () => {
  async function model() {
    const ctx = await context();
    // The second BatchNorm sits in a nested block, whose input is the first's output (an affine map of x).
    return new Sequential(ctx, {
      bn: new BatchNorm2d(C),
      block: new Sequential({ bn: new BatchNorm2d(C) }),
      flat: new Flatten(),
      fc: new Linear(C * HW, 3),
    }, { inputShape: [C, H, H], seed: 3 });
  }

  it('sets the running mean and unbiased variance to the average of the batch statistics (a last batch of one left out)', async () => {
    const m = await model();
    const ctx = m.ctx;
    m.eval();
    const x = Float32Array.from(randomArray(9 * C * HW, 11, -2, 3));
    // Off the defaults, so that a plain average (momentum 1/k from the first batch) is what is tested.
    const p = m.namedParameters();
    ctx.write(p.get('bn.running_mean')!.value, Float32Array.from([5, -5]));
    ctx.write(p.get('bn.weight')!.value, Float32Array.from([2, 0.5]));
    ctx.write(p.get('bn.bias')!.value, Float32Array.from([1, -1]));
    const fcBefore = await p.get('fc.weight')!.value.read();
    const updated = await updateBatchNorm(m, { x, count: 9, shape: [C, H, H], labels: new Uint32Array(9), classes: 3 } as never, { batchSize: 4 });
    expect(updated).toBe(2);
    const want = averagedStats(x, [4, 4]);
    expectClose(await p.get('bn.running_mean')!.value.read(), want.mean, 1e-5, 'bn running mean');
    expectClose(await p.get('bn.running_var')!.value.read(), want.variance, 1e-5, 'bn running var');
    // The block's BatchNorm sees the first one's training-mode output: gamma (x - mean_b) / sqrt(var_b + eps) + beta per batch,
    // whose batch mean is beta and whose unbiased variance is gamma^2 var_b / (var_b + eps) (M / (M - 1) biased-to-unbiased).
    const gamma = [2, 0.5];
    const beta = [1, -1];
    const blockMean = await p.get('block.bn.running_mean')!.value.read();
    const blockVar = await p.get('block.bn.running_var')!.value.read();
    for (let c = 0; c < C; c++) {
      expect(blockMean[c]).toBeCloseTo(beta[c], 5);
      // Per batch var_b (biased) of x; the block sees variance gamma^2 var_b / (var_b + eps), unbiased by M / (M - 1).
      let v = 0;
      for (const from of [0, 4]) {
        const values: number[] = [];
        for (let i = from; i < from + 4; i++) for (let q = 0; q < HW; q++) values.push(x[(i * C + c) * HW + q]);
        const mu = values.reduce((a, b) => a + b, 0) / values.length;
        const biased = values.reduce((a, b) => a + (b - mu) ** 2, 0) / values.length;
        v += ((gamma[c] ** 2 * biased) / (biased + 1e-5)) * (values.length / (values.length - 1)) / 2;
      }
      expect(Math.abs(blockVar[c] - v) / v).toBeLessThan(1e-5);
    }
    expect(await p.get('fc.weight')!.value.read()).toEqual(fcBefore);
    expect(m.training).toBe(false);
    for (const bn of [m.layers[0][1], (m.layers[1][1] as Sequential).layers[0][1]] as BatchNorm2d[]) expect(bn.momentumOverride).toBeNull();
    m.dispose();
  });

  it('a model in training mode stays in it; bad input is refused by name before any GPU work, the statistics unchanged', async () => {
    const m = await model();
    m.train();
    const x = Float32Array.from(randomArray(6 * C * HW, 12, 0, 1));
    const data = { x, count: 6, shape: [C, H, H] } as never;
    await updateBatchNorm(m, data, { batchSize: 3 });
    expect(m.training).toBe(true);
    const before = await m.namedParameters().get('bn.running_mean')!.value.read();
    await expect(updateBatchNorm(m, { x, count: 6, shape: [1, H, H] } as never)).rejects.toThrow(/updateBatchNorm: argument 'data.shape' expected the model's input shape \[2, 3, 3\], got/);
    await expect(updateBatchNorm(m, { x, count: 1, shape: [C, H, H] } as never)).rejects.toThrow(/argument 'data' expected a data set \{ x: Float32Array, count >= 2, shape \} of images, got "\{ x: Float32Array, count: 1 \}"/);
    await expect(updateBatchNorm(m, { x: Array.from(x), count: 6, shape: [C, H, H] } as never)).rejects.toThrow(/got "\{ x: Array, count: 6 \}"/);
    await expect(updateBatchNorm(m, data, { batchSize: 1 })).rejects.toThrow(/argument 'batchSize' expected an integer >= 2, got 1/);
    await expect(updateBatchNorm(m, data, { momentum: 0.5 } as never)).rejects.toThrow(/argument 'options' expected only the keys batchSize, seed, step, sample, got "unknown key 'momentum'"/);
    expect(await m.namedParameters().get('bn.running_mean')!.value.read()).toEqual(before);
    m.dispose();
  });
});
