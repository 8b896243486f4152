/**
 * fit's non-finite guard: a NaN injected into one batch (through `augment`) or a diverging learning
 * rate stops fit with a NON_FINITE error naming the step, the epoch and the first parameter, and leaves
 * the model exactly at the parameters after the last finite step; 'skip' trains on without the bad
 * updates and counts them; without non-finite steps the guard changes no bit of the training.
 * Small runs: BBB-LRT LeNet on 48 MNIST images, 36 for training in 6 batches of 6.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import { BayesError } from '../../src/errors.js';
import { BBBLeNet } from '../../src/nn/models.js';
import { Adam } from '../../src/train/adam.js';
import { type EpochSummary, type FitOptions, type FloatDataset, fit } from '../../src/train/fit.js';
import { loadDataset } from '../../src/cli/datasets.js';
import { permutation, splitTrainValid } from '../../src/data/batches.js';
import { context } from '../helpers.js';

const BASE = { batchSize: 6, validFraction: 0.25, seed: 1, lr: 2e-3 } as const;

async function weights(model: ReturnType<typeof BBBLeNet>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

/** An augment hook that puts a NaN into the batches of the given calls (0-based: call k is step k here). */
function nanAt(calls: number[], stopAt?: number): FitOptions['augment'] {
  let call = 0;
  return (x) => {
    if (call === stopAt) throw new Error('stopped before this step');
    if (calls.includes(call)) x[123] = NaN;
    call++;
  };
}

async function run(ctx: Context, data: FloatDataset, o: Partial<FitOptions>) {
  const model = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: 1 });
  const optimizer = new Adam(model, { lr: o.lr ?? BASE.lr });
  const epochs: { summary: EpochSummary; weights: Map<string, Float32Array> }[] = [];
  let error: unknown = null;
  let result = null;
  try {
    result = await fit(model, data, {
      ...BASE, epochs: 3, optimizer, ...o,
      onEpoch: async (e) => void epochs.push({ summary: e, weights: await weights(model) }),
    });
  } catch (e) {
    error = e;
  }
  const w = await weights(model);
  const step = optimizer.step;
  optimizer.dispose();
  model.dispose();
  return { result, error, epochs, weights: w, step };
}

const allFinite = (w: Map<string, Float32Array>) => [...w.values()].every((a) => a.every(Number.isFinite));

describe('fit: the non-finite guard', () => {
  it("'throw': names step, epoch and parameter; the model is left at the last finite step; the last onEpoch is intact", async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 48 });
    // Step 8 is epoch 2, batch 3. The reference stops fit just before it (augment throws), so its
    // model holds the parameters after step 7.
    const reference = await run(ctx, data, { augment: nanAt([], 8) });
    expect((reference.error as Error).message).toBe('stopped before this step');
    const failed = await run(ctx, data, { augment: nanAt([8]) });
    expect(failed.error).toBeInstanceOf(BayesError);
    expect((failed.error as BayesError).code).toBe('NON_FINITE');
    const message = (failed.error as BayesError).message;
    console.log(`nonfinite test: ${message}`);
    // Read at the epoch's end (no onBatch): steps 9-11 ran after it, none was applied.
    // The NaN pixel does not reach the loss (relu's max(NaN, 0) may give 0 on a GPU) but does reach conv1's
    // weight gradients (x * dy): the gradient checks catch it.
    expect(message).toMatch(/^fit: training step 8 \(epoch 2 of 3, batch 3 of 6\) was non-finite: its loss was (NaN|finite), and the gradients of \d+ of 20 parameters were non-finite, the first 'conv1\.W_mu' \(NaN\)\. Its update and those of the 3 steps after it were not applied: the model and the optimizer hold the values after step 7, the last finite one\./);
    expect(failed.weights).toEqual(reference.weights);
    expect(allFinite(failed.weights)).toBe(true);
    expect(failed.step).toBe(8);
    // Epoch 1's onEpoch (where the CLI saves) saw the same model as without the NaN; epoch 2's never came.
    expect(failed.epochs.map((e) => e.summary.epoch)).toEqual([1]);
    expect(failed.epochs[0].weights).toEqual(reference.epochs[0].weights);
  }, 600_000);

  it("'throw' with nonFiniteCheckEvery: 1 stops right after the step (one small read per step)", async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 48 });
    const reads = { n: 0 };
    const read = ctx.read.bind(ctx);
    ctx.read = ((t: Parameters<typeof read>[0]) => (reads.n++, read(t))) as typeof ctx.read;
    try {
      const failed = await run(ctx, data, { augment: nanAt([2]), nonFiniteCheckEvery: 1 });
      expect((failed.error as BayesError).message).toMatch(/^fit: training step 2 \(epoch 1 of 3, batch 3 of 6\) was non-finite: .* Its update was not applied: the model and the optimizer hold the values after step 1, the last finite one\./);
      expect(failed.step).toBe(2);
    } finally {
      ctx.read = read;
    }
    // Steps 0, 1 and 2 were read after (3 reads), then the weights (20 reads); nothing else.
    expect(reads.n).toBe(3 + 20);
  }, 600_000);

  it("'throw' on a diverging learning rate (Adam lr 1e6: the second step's gradients overflow)", async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 48 });
    const r = await run(ctx, data, { lr: 1e6 });
    expect((r.error as BayesError).code).toBe('NON_FINITE');
    console.log(`nonfinite test (lr 1e6): ${(r.error as Error).message}`);
    expect((r.error as Error).message).toMatch(/^fit: training step \d+ \(epoch 1 of 3, batch \d of 6\) was non-finite: /);
    expect(allFinite(r.weights)).toBe(true);
  }, 600_000);

  it("'throw' names the loss when it is the loss that is NaN (a label out of range)", async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 48 });
    const labels = Uint8Array.from(data.labels);
    labels[0] = 10; // loss.wgsl: a label >= C makes that row's loss NaN
    const r = await run(ctx, { ...data, labels }, {});
    expect((r.error as BayesError).code).toBe('NON_FINITE');
    expect((r.error as Error).message).toMatch(/^fit: training step \d+ \(epoch 1 of 3, batch \d of 6\) was non-finite: its loss was NaN, and the gradients of \d+ of 20 parameters were non-finite, the first 'conv1\.W_mu' \(NaN\)/);
    expect(allFinite(r.weights)).toBe(true);
  }, 600_000);

  it("'skip' skips the non-finite steps, counts them, and leaves the NaN losses out of the figures", async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 48 });
    // Image 0 gets a label out of range (its step's loss is NaN, once per epoch), and step 7 a NaN pixel
    // (its conv1 gradients are NaN). Which step holds image 0 follows from fit's split and shuffles.
    const labels = Uint8Array.from(data.labels);
    labels[0] = 10;
    const { train } = splitTrainValid(48, BASE.validFraction, BASE.seed);
    const labelSteps = [0, 1, 2].map((epoch) => {
      const order = permutation(train.length, BASE.seed + 1000 + epoch);
      const position = Array.from(order).findIndex((i) => train[i] === 0);
      return 6 * epoch + Math.floor(position / BASE.batchSize);
    });
    const bad = new Set([...labelSteps, 7]);
    const r = await run(ctx, { ...data, labels }, { augment: nanAt([7]), nonFinite: 'skip' });
    expect(r.error).toBeNull();
    expect(r.result!.history.map((e) => e.skippedSteps)).toEqual([0, 1, 2].map((epoch) => [...bad].filter((s) => Math.floor(s / 6) === epoch).length));
    expect(r.result!.skippedSteps).toBe(bad.size);
    expect(r.step).toBe(18);
    // Without leaving the NaN losses out, every epoch's trainLoss would be NaN.
    for (const e of r.result!.history) for (const v of [e.trainLoss, e.trainAccuracy, e.kl, e.validLoss]) expect(Number.isFinite(v)).toBe(true);
    expect(allFinite(r.weights)).toBe(true);
  }, 600_000);

  it('without non-finite steps the guard changes no bit: throw, skip and off train alike', async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 48 });
    const results = [];
    for (const nonFinite of [undefined, 'skip', 'off'] as const) results.push(await run(ctx, data, { epochs: 2, nonFinite }));
    const strip = (h: EpochSummary[]) => h.map((e) => ({ ...e, seconds: 0, samplesPerSecond: 0 }));
    for (const r of results.slice(1)) {
      expect(strip(r.result!.history)).toEqual(strip(results[0].result!.history));
      for (const [name, w] of results[0].weights) expect(r.weights.get(name), name).toEqual(w);
    }
    expect(results[0].result!.skippedSteps).toBe(0);
  }, 600_000);

  it('rejects bad options', async () => {
    const ctx = await context();
    const data = await loadDataset('mnist', 'train', { limit: 12 });
    const model = BBBLeNet(ctx, { layerType: 'lrt' });
    await expect(fit(model, data, { epochs: 1, batchSize: 4, nonFinite: 'ignore' as never })).rejects.toThrow(/fit: argument 'nonFinite' expected one of 'throw' \| 'skip' \| 'off', got "ignore"/);
    await expect(fit(model, data, { epochs: 1, batchSize: 4, nonFiniteCheckEvery: -1 })).rejects.toThrow(/fit: argument 'nonFiniteCheckEvery' expected an integer >= 0, got -1/);
    model.dispose();
  });
});
