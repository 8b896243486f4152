/**
 * Long runs leak nothing: 2,000 training steps of a tiny Bayesian MLP through fit, then 1,000
 * predict calls. After the first steps the live tensors, buffers and bytes (ctx.memory()) are
 * the same at every check, and so are the pool's buffers and bytes: every step frees what it
 * made and re-uses pooled buffers rather than creating new ones. Small on purpose (1x4x4
 * inputs, batch 4) so that it takes seconds on SwiftShader.
 */
import { describe, expect, it } from 'vitest';
import { context } from '../helpers.js';
import type { MemoryInfo } from '../../src/gpu/context.js';
import { fit } from '../../src/train/fit.js';
import { tinyData, tinyModel } from './tiny.js';

const STEPS = 2000;
const PREDICTIONS = 1000;


/** The counters that must stay flat (peakLiveBytes only ever grows, poolLimitBytes follows it). */
function counters(m: MemoryInfo) {
  return { liveTensors: m.liveTensors, liveBuffers: m.liveBuffers, liveBytes: m.liveBytes, pooledBuffers: m.pooledBuffers, pooledBytes: m.pooledBytes };
}

describe('long runs', () => {
  it(`${STEPS} training steps and ${PREDICTIONS} predict calls keep live and pooled memory flat`, async () => {
    const ctx = await context();
    const before = counters(ctx.memory());
    const model = tinyModel(ctx);
    // 400 images in batches of 4, nothing held out: 100 steps an epoch, 20 epochs.
    const data = tinyData(400, 11);
    const samples: { step: number; memory: ReturnType<typeof counters> }[] = [];
    const started = performance.now();
    const result = await fit(model, data, {
      epochs: STEPS / 100, batchSize: 4, validFraction: 0, seed: 1, lr: 1e-2, reportEvery: 25, reportSeconds: 0,
      onBatch: (p) => void samples.push({ step: p.epoch * p.batches + p.batch, memory: counters(ctx.memory()) }),
    });
    const trainSeconds = (performance.now() - started) / 1000;
    expect(result.steps).toBe(STEPS);
    expect(samples).toHaveLength(STEPS / 25);
    // Flat from the end of the first epoch on (the best epoch's GPU copies are made at its end).
    const settled = samples.filter((s) => s.step > 100);
    for (const s of settled) expect(s.memory, `memory at step ${s.step}`).toEqual(settled[0].memory);
    expect(samples[0].memory.liveTensors).toBeLessThanOrEqual(settled[0].memory.liveTensors);
    expect(result.history[result.history.length - 1].trainLoss).toBeLessThan(result.history[0].trainLoss);

    const x = ctx.tensor(data.x.subarray(0, 8 * 16), [8, 1, 4, 4]);
    await model.predict(x, { samples: 4, step: 0 });
    const afterFirst = counters(ctx.memory());
    const t0 = performance.now();
    let mean = 0;
    for (let i = 1; i < PREDICTIONS; i++) {
      const p = await model.predict(x, { samples: 4, step: i });
      mean += p.mean[0];
      if (i % 100 === 0) expect(counters(ctx.memory()), `memory after ${i + 1} predict calls`).toEqual(afterFirst);
    }
    const predictSeconds = (performance.now() - t0) / 1000;
    expect(counters(ctx.memory())).toEqual(afterFirst);
    expect(mean / (PREDICTIONS - 1)).toBeGreaterThan(0);

    const m = ctx.memory();
    console.log(
      `long run: ${STEPS} steps in ${trainSeconds.toFixed(1)} s (loss ${result.history[0].trainLoss.toFixed(1)} -> ${result.history[result.history.length - 1].trainLoss.toFixed(1)}), ` +
        `${PREDICTIONS} predict calls in ${predictSeconds.toFixed(1)} s; settled: ${settled[0].memory.liveTensors} live tensors / ${settled[0].memory.liveBuffers} buffers / ${settled[0].memory.liveBytes} B, ` +
        `pool ${settled[0].memory.pooledBuffers} buffers / ${settled[0].memory.pooledBytes} B; after predicting: ${JSON.stringify(counters(m))}, peak ${m.peakLiveBytes} B, pool limit ${m.poolLimitBytes} B`,
    );
    x.dispose();
    model.dispose();
    result.optimizer!.dispose();
    for (const [, p] of model.namedParameters()) p.grad?.dispose();
    expect(ctx.memory().liveTensors).toBe(before.liveTensors);
  }, 300_000);
});
