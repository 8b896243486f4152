/**
 * One loop for every model: fit's cancellation (AbortSignal), callbacks and history, regression
 * through fit, the model's mode, trainStep's bookkeeping, and the checks before any GPU work.
 * Bit-for-bit references are written out step by step here: fit must equal that many trainSteps
 * (or regression step bodies and Adam updates) over its own split and shuffles.
 * Small runs: the tiny Bayesian MLP of tiny.ts, 48 images, 36 for training in batches of 8 (5 a epoch).
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import type { Sequential } from '../../src/nn/sequential.js';
import { Adam } from '../../src/train/adam.js';
import { type EpochSummary, type FloatDataset, evaluate, fit } from '../../src/train/fit.js';
import { lossAndGradients, trainStep } from '../../src/train/step.js';
import { type RegressionData, regressionLossAndGradients } from '../../src/train/regression.js';
import { bayesianRegressor } from '../../src/uncertainty/regression.js';
import { mcDropoutMLP } from '../../src/uncertainty/mcdropout.js';
import { permutation, splitTrainValid } from '../../src/data/batches.js';
import { noisySine } from '../../examples/regression.js';
import { context } from '../helpers.js';
import { tinyData, tinyModel } from './tiny.js';

async function weights(model: Sequential): Promise<Map<string, Uint32Array>> {
  const out = new Map<string, Uint32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, new Uint32Array(Float32Array.from(await p.value.read()).buffer));
  return out;
}

function expectSameWeights(got: Map<string, Uint32Array>, want: Map<string, Uint32Array>): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [name, w] of want) expect(got.get(name), name).toEqual(w);
}

/** fit's training order of epoch `epoch`: its split's training indices, shuffled per epoch. */
function fitOrder(count: number, validFraction: number, seed: number, epoch: number): Uint32Array {
  const { train } = splitTrainValid(count, validFraction, seed);
  return permutation(train.length, seed + 1000 + epoch).map((i) => train[i]);
}

/** Batch `b` of `order` as tensors: images [n, 1, 4, 4] and u32 labels. */
function classificationBatch(ctx: Context, data: FloatDataset, order: Uint32Array, from: number, to: number): { x: Tensor; y: Tensor } {
  const idx = Array.from(order.subarray(from, to));
  const x = Float32Array.from(idx.flatMap((j) => Array.from(data.x.subarray(j * 16, (j + 1) * 16))));
  return { x: ctx.tensor(x, [idx.length, 1, 4, 4]), y: ctx.tensor(Uint32Array.from(idx, (j) => data.labels[j]), [idx.length], 'u32') };
}

const untimed = (h: EpochSummary[]) => h.map((e) => ({ ...e, seconds: 0, samplesPerSecond: 0 }));
const gradientCount = (model: Sequential) => [...model.namedParameters().values()].filter((p) => p.grad).length;
const disposeGradients = (model: Sequential) => {
  for (const p of model.namedParameters().values()) {
    p.grad?.dispose();
    p.grad = null;
  }
};

describe('fit: cancellation', () => {
  it('an abort mid-epoch stops before the next step: the model equals that many trainSteps bit for bit, and nothing is left behind', async () => {
    const ctx = await context();
    const data = tinyData(48, 7);
    const seed = 3;
    const live = ctx.memory().liveTensors;
    const model = tinyModel(ctx);
    const optimizer = new Adam(model, { lr: 1e-2 });
    const withOptimizer = ctx.memory().liveTensors;
    const controller = new AbortController();
    const epochs: number[] = [];
    // Aborted in the report after epoch 2's second step: 5 + 2 = 7 steps done.
    const result = await fit(model, data, {
      epochs: 3, batchSize: 8, validFraction: 0.25, seed, optimizer, reportEvery: 1, reportSeconds: 0, signal: controller.signal,
      onBatch: (p) => {
        if (p.epoch === 1 && p.batch === 2) controller.abort();
      },
      onEpoch: (e) => void epochs.push(e.epoch),
    });
    expect(result.stopped).toBe('aborted');
    expect(result.steps).toBe(7);
    expect(optimizer.step).toBe(7);
    expect(result.history.map((e) => e.epoch)).toEqual([1]);
    expect(epochs).toEqual([1]);
    expect(result.optimizer).toBe(optimizer);
    // Only the gradients of the last backward are new: fit freed its batches, figures, flags and best-epoch copies.
    expect(ctx.memory().liveTensors).toBe(withOptimizer + gradientCount(model));
    const got = await weights(model);

    // The reference: the same 7 steps by hand, with the public trainStep over fit's split and shuffles.
    const twin = tinyModel(ctx);
    const twinOptimizer = new Adam(twin, { lr: 1e-2 });
    let steps = 0;
    for (let epoch = 0; epoch < 2; epoch++) {
      const order = fitOrder(48, 0.25, seed, epoch);
      for (let from = 0; from < order.length && steps < 7; from += 8, steps++) {
        ctx.scope(() => {
          const { x, y } = classificationBatch(ctx, data, order, from, Math.min(from + 8, order.length));
          trainStep(twin, twinOptimizer, x, y, { beta: 0.1, trainSize: 36, seed });
        });
      }
    }
    expectSameWeights(got, await weights(twin));

    for (const m of [model, twin]) {
      disposeGradients(m);
      m.dispose();
    }
    optimizer.dispose();
    twinOptimizer.dispose();
    expect(ctx.memory().liveTensors).toBe(live);
  });

  it('an already aborted signal stops before any GPU work: no optimizer made, no tensor allocated, no callback', async () => {
    const ctx = await context();
    const model = tinyModel(ctx);
    const before = await weights(model);
    const live = ctx.memory().liveTensors;
    const buffers = ctx.memory().liveBuffers;
    const controller = new AbortController();
    controller.abort();
    let calls = 0;
    const result = await fit(model, tinyData(24, 1), {
      epochs: 2, batchSize: 8, signal: controller.signal, onBatch: () => void calls++, onEpoch: () => void calls++,
    });
    expect(result.stopped).toBe('aborted');
    expect(result.history).toEqual([]);
    expect(result.optimizer).toBeNull();
    expect(result.steps).toBe(0);
    expect(calls).toBe(0);
    expect(ctx.memory().liveTensors).toBe(live);
    expect(ctx.memory().liveBuffers).toBe(buffers);
    expectSameWeights(await weights(model), before);
    model.dispose();
  });
});

describe('fit: callbacks, history and mode', () => {
  it('onBatch (paced) and onEpoch (awaited) come in order, with every step\'s figures once; the history is the epochs\' summaries; the mode is restored', async () => {
    const ctx = await context();
    const data = tinyData(48, 7);
    const model = tinyModel(ctx);
    model.eval();
    const events: string[] = [];
    const summaries: EpochSummary[] = [];
    const figures: { step: number; loss: number; count: number }[] = [];
    let epochDone = false;
    const result = await fit(model, data, {
      epochs: 2, batchSize: 8, validFraction: 0.25, seed: 3, lr: 1e-2, reportEvery: 2, reportSeconds: 0,
      onBatch: async (p) => {
        events.push(`batch ${p.epoch}:${p.batch} (${p.stepFigures.length} steps)${p.epoch === 1 && p.batch === 2 && !epochDone ? ' before onEpoch finished' : ''}`);
        for (const f of p.stepFigures) figures.push({ step: f.step, loss: f.loss, count: f.count });
        expect(model.training).toBe(false); // the caller's mode, between steps
        await new Promise((done) => setTimeout(done, 1));
      },
      onEpoch: async (e) => {
        events.push(`epoch ${e.epoch}`);
        summaries.push(e);
        await new Promise((done) => setTimeout(done, 5));
        epochDone = true;
      },
    });
    expect(events).toEqual([
      'batch 0:2 (2 steps)', 'batch 0:4 (2 steps)', 'batch 0:5 (1 steps)', 'epoch 1',
      'batch 1:2 (2 steps)', 'batch 1:4 (2 steps)', 'batch 1:5 (1 steps)', 'epoch 2',
    ]);
    expect(result.stopped).toBeNull();
    expect(result.history).toEqual(summaries);
    expect(result.history.map((e) => e.epoch)).toEqual([1, 2]);
    expect(figures.map((f) => f.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(figures.map((f) => f.count)).toEqual([8, 8, 8, 8, 4, 8, 8, 8, 8, 4]);
    // The epoch's loss is the float64 mean of its steps' losses, in step order.
    for (const [epoch, e] of result.history.entries()) {
      const mean = figures.slice(5 * epoch, 5 * epoch + 5).reduce((a, f) => a + f.loss, 0) / 5;
      expect(e.trainLoss).toBe(mean);
      expect(Number.isFinite(e.trainNll) && Number.isFinite(e.validNll) && Number.isFinite(e.trainAccuracy)).toBe(true);
    }
    expect(model.training).toBe(false);
    model.train();
    await evaluate(model, data, { batchSize: 16 });
    expect(model.training).toBe(true);
    result.optimizer!.dispose();
    model.dispose();
  });

  it('an MC dropout classifier (no KL) trains through the same fit', async () => {
    const ctx = await context();
    const n = 40;
    const x = Float32Array.from({ length: 2 * n }, (_, i) => ((i >> 1) % 2 === 0 ? -1 : 1) + 0.1 * Math.sin(i));
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 2);
    const model = mcDropoutMLP(ctx, { features: 2, hidden: [8], outputs: 2, dropout: 0.2, seed: 1 });
    const result = await fit(model, { x, labels, count: n, shape: [2], classes: 2 }, { epochs: 3, batchSize: 10, lr: 0.05, validFraction: 0 });
    expect(result.history.map((e) => e.kl)).toEqual([0, 0, 0]);
    expect(result.history.at(-1)!.trainLoss).toBeLessThan(result.history[0].trainLoss);
    result.optimizer!.dispose();
    model.dispose();
  });
});

describe('fit: regression', () => {
  it('trains a regression model by the Gaussian ELBO: the same steps, losses and parameters as the step body and Adam by hand', async () => {
    const ctx = await context();
    const data: RegressionData = noisySine(40, { seed: 2 });
    const o = { samples: 2, beta: 1, seed: 4 };
    const model = bayesianRegressor(ctx, { features: 1, hidden: [8], seed: 2 });
    const steps: number[] = [];
    const result = await fit(model, data, {
      epochs: 2, batchSize: 16, lr: 0.01, validFraction: 0, restoreBest: false, reportEvery: 1, reportSeconds: 0, ...o,
      onBatch: (p) => {
        for (const f of p.stepFigures) {
          expect(f.correct).toBeNull();
          steps.push(f.loss);
        }
        expect(Number.isNaN(p.accuracy)).toBe(true);
      },
    });
    expect(result.steps).toBe(6); // batches of 16, 16, 8
    const got = await weights(model);

    // What trainRegression did, step by step: regressionLossAndGradients, then one Adam update (keys (seed, step)).
    const twin = bayesianRegressor(ctx, { features: 1, hidden: [8], seed: 2 });
    const adam = new Adam(twin, { lr: 0.01 });
    const want: number[] = [];
    for (let epoch = 0; epoch < 2; epoch++) {
      const order = fitOrder(40, 0, o.seed, epoch);
      for (let from = 0; from < 40; from += 16) {
        const idx = Array.from(order.subarray(from, Math.min(from + 16, 40)));
        const loss = ctx.scope(() => {
          const x = ctx.tensor(Float32Array.from(idx, (j) => data.x[j]), [idx.length, 1]);
          const y = ctx.tensor(Float32Array.from(idx, (j) => data.y[j]), [idx.length]);
          const r = regressionLossAndGradients(twin, x, y, { samples: o.samples, beta: o.beta, trainSize: 40, seed: o.seed, step: adam.step });
          adam.update();
          return r.loss;
        });
        want.push((await loss.read())[0]);
        loss.dispose();
      }
    }
    expect(steps).toEqual(want);
    expectSameWeights(got, await weights(twin));
    expect(result.history[0].trainLoss).toBe((want[0] + want[1] + want[2]) / 3);
    expect(result.history.every((e) => Number.isNaN(e.trainAccuracy) && Number.isNaN(e.validAccuracy))).toBe(true);

    // With a validation split: the held-out Gaussian NLL per point.
    const held = await fit(model, data, { epochs: 1, batchSize: 16, validFraction: 0.25, ...o });
    expect(Number.isFinite(held.history[0].validNll)).toBe(true);
    for (const r of [result, held]) r.optimizer!.dispose();
    adam.dispose();
    model.dispose();
    twin.dispose();
  });
});

describe('trainStep', () => {
  it('keys each step by the optimizer\'s update count, restores the mode, and owns its figures until the next step', async () => {
    const ctx = await context();
    const data = tinyData(8, 5);
    const model = tinyModel(ctx);
    const live = ctx.memory().liveTensors;
    const adam = new Adam(model, { lr: 1e-2 });
    const x = ctx.tensor(data.x, [8, 1, 4, 4]);
    const y = ctx.tensor(Uint32Array.from(data.labels), [8], 'u32');
    const o = { samples: 2, beta: 0.5, trainSize: 40, seed: 9 };
    model.eval();
    const first = trainStep(model, adam, x, y, o);
    expect(model.training).toBe(false);
    expect([first.step, adam.step]).toEqual([0, 1]);
    const a = await first.read();
    const second = trainStep(model, adam, x, y, o);
    expect([second.step, adam.step]).toEqual([1, 2]);
    const b = await second.read();
    expect(b.count).toBe(8);
    expect(b.correct).toBeGreaterThanOrEqual(0);
    await expect(first.read()).rejects.toThrow(/trainStep: the figures of step 0 were freed by a later step/);
    // Live: x, y, Adam's moments, the gradients and the last step's figures (the optimizer's).
    expect(ctx.memory().liveTensors).toBe(live + 2 + 2 * adam.parameters.size + gradientCount(model) + 1);

    // By hand: the step body at keys (9, 0) and (9, 1), each followed by an update.
    const twin = tinyModel(ctx);
    const twinAdam = new Adam(twin, { lr: 1e-2 });
    const losses: number[] = [];
    for (const step of [0, 1]) {
      const r = lossAndGradients(twin, x, y, { ...o, step });
      losses.push((await r.loss.read())[0]);
      twinAdam.update();
      for (const t of [r.loss, r.nll, r.kl, r.correct!]) t.dispose();
    }
    expect([a.loss, b.loss]).toEqual(losses);
    expectSameWeights(await weights(model), await weights(twin));

    // A regression model's figures have no correct count.
    const reg = bayesianRegressor(ctx, { features: 1, hidden: [4] });
    const regAdam = new Adam(reg, { lr: 1e-2 });
    const regX = ctx.tensor([0.5, -1], [2, 1]);
    const regY = ctx.tensor([0.2, 0.1], [2]);
    const r = await trainStep(reg, regAdam, regX, regY, { beta: 1 }).read();
    regX.dispose();
    regY.dispose();
    expect(r.correct).toBeNull();
    expect(Number.isFinite(r.loss)).toBe(true);
    for (const m of [model, twin, reg]) disposeGradients(m);
    for (const opt of [adam, twinAdam, regAdam]) opt.dispose();
    twin.dispose();
    reg.dispose();
    x.dispose();
    y.dispose();
    expect(ctx.memory().liveTensors).toBe(live);
    model.dispose();
  });
});

describe('bad options', () => {
  it('fit, evaluate, trainStep and Adam reject them before any GPU work', async () => {
    const ctx = await context();
    const model = tinyModel(ctx);
    const other = tinyModel(ctx);
    const data = tinyData(12, 1);
    const sine = noisySine(12);
    const reg = bayesianRegressor(ctx, { features: 1, hidden: [4] });
    const otherAdam = new Adam(other, { lr: 1e-3 });
    const x = ctx.tensor(data.x.subarray(0, 32), [2, 1, 4, 4]);
    const y = ctx.tensor([0, 1], [2], 'u32');
    const adam = new Adam(model, { lr: 1e-3 });
    const before = await weights(model);
    const live = ctx.memory().liveTensors;
    const base = { epochs: 1, batchSize: 4 };
    await expect(fit(model, data, { ...base, trainSamples: 2 } as never)).rejects.toThrow(/^fit: unknown option 'trainSamples' \(the training Monte Carlo samples are 'samples'\); expected one of 'epochs', /);
    await expect(fit(model, data, { ...base, samples: 0 })).rejects.toThrow(/fit: argument 'samples' expected an integer >= 1, got 0/);
    await expect(fit(model, data, { ...base, signal: {} as AbortSignal })).rejects.toThrow(/fit: argument 'signal' expected an AbortSignal/);
    await expect(fit(model, data, { ...base, onBatch: 3 as never })).rejects.toThrow(/fit: argument 'onBatch' expected a function, got 3/);
    await expect(fit(model, data, { ...base, beta: -1 })).rejects.toThrow(/argument 'beta' expected a number >= 0/);
    await expect(fit(model, data, { ...base, lrSchedule: 'cosine' as never })).rejects.toThrow(/fit: argument 'lrSchedule' expected one of 'linear' \| 'constant', got "cosine"/);
    await expect(fit(model, data, { ...base, optimizer: otherAdam })).rejects.toThrow(/fit: argument 'optimizer' updates parameter 'fc1.W_mu', which is not a parameter of this model/);
    await expect(fit(model, sine as never, base)).rejects.toThrow(/fit: argument 'data' expected labelled examples \{ x, labels, count, shape, classes \} \(the model's task is 'classification'\), got "a data set with targets y"/);
    await expect(fit(reg, data, base)).rejects.toThrow(/fit: argument 'data' expected regression targets \{ x, y, count, features \} \(the model's task is 'regression'\), got "a data set with labels"/);
    await expect(fit(reg, { ...sine, y: sine.y.subarray(0, 11) }, base)).rejects.toThrow(/fit: argument 'data.y.length' expected 12 \(one target per example\), got 11/);
    const nan = Float32Array.from(sine.y);
    nan[3] = NaN;
    await expect(fit(reg, { ...sine, y: nan }, base)).rejects.toThrow(/fit: argument 'data.y\[3\]' expected a finite number, got NaN/);
    await expect(fit(reg, { ...sine, x: new Float32Array(24), features: 2 }, base)).rejects.toThrow(/fit: argument 'data' has 2 features per example but the model expects input \[1\]/);
    await expect(evaluate(model, data, { batchSize: 4, step: 1.5 })).rejects.toThrow(/evaluate: argument 'step' expected an integer >= 0, got 1.5/);
    await expect(evaluate(model, data, { trainSamples: 1 } as never)).rejects.toThrow(/evaluate: unknown option 'trainSamples'/);
    expect(() => trainStep(model, adam, x, y, { step: 3 } as never)).toThrow(/trainStep: unknown option 'step' \(the step is the optimizer's update count, Adam.step\)/);
    expect(() => trainStep(model, otherAdam, x, y)).toThrow(/trainStep: argument 'optimizer' updates parameter 'fc1.W_mu', which is not a parameter of this model/);
    expect(() => trainStep(model, adam, x, y, { samples: 0 })).toThrow(/trainStep: argument 'samples' expected an integer >= 1, got 0/);
    expect(() => trainStep(reg, new Adam(reg, { lr: 1 }), ctx.tensor([1, 2], [2, 1]), ctx.tensor([1, 2], [2], 'u32'))).toThrow(/trainStep: argument 'y' expected dtype f32 \(regression targets\), got u32/);
    expect(() => new Adam(ctx as never, { lr: 1 })).toThrow(/Adam: argument 'params' expected a model or its namedParameters\(\)/);
    expect(() => new Adam(model, { lr: 0 })).toThrow(/Adam: argument 'lr' expected a positive number, got 0/);
    expect(adam.step).toBe(0);
    expectSameWeights(await weights(model), before);
    // The regression checks above made tensors of their own ([2, 1], [2] and an Adam): nothing else is alive.
    expect(ctx.memory().liveTensors).toBe(live + 2 + 2 * reg.namedParameters().size);
    for (const opt of [adam, otherAdam]) opt.dispose();
    for (const m of [model, other, reg]) m.dispose();
  });
});
