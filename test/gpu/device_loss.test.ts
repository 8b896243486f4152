/**
 * Device loss: the GPUDevice is destroyed underneath a context (ctx.device.destroy(), as a
 * driver reset or a removed GPU would lose it) while readbacks, syncs, a prediction or a fit
 * are in flight. Every pending call must reject within a few seconds with a BayesError naming
 * the loss, nothing may hang, and fit must recover onto a new context from its last CPU copy
 * and end exactly where an uninterrupted run ends.
 */
import { describe, expect, it } from 'vitest';
import { BayesError } from '../../src/errors.js';
import { type Context, createContext } from '../../src/node.js';
import { Sequential } from '../../src/nn/sequential.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { activationForward } from '../../src/ops/activation.js';
import { type FitSnapshot, fit } from '../../src/train/fit.js';
import { Adam } from '../../src/train/adam.js';
import { isDeviceLost, restoreSnapshot, takeSnapshot } from '../../src/train/recovery.js';
import { tinyData, tinyModel } from '../train/tiny.js';
import type { Rng } from '../../src/data/random.js';

/** Rejects with 'HUNG' if `p` has not settled after `ms`: a pending call must never outlive the device. */
function within<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('HUNG')), ms)))]).finally(() => clearTimeout(timer));
}

const LOST = /the GPU device was lost \(reason 'destroyed'/;

async function expectLost(p: Promise<unknown>, op: string): Promise<void> {
  const started = performance.now();
  const error = await within(p).then(() => null, (e: unknown) => e);
  expect(error, `${op} should reject`).toBeInstanceOf(BayesError);
  expect((error as BayesError).code).toBe('GPU_ERROR');
  expect((error as BayesError).message).toMatch(new RegExp(`^${op}: `));
  expect((error as BayesError).message).toMatch(LOST);
  expect(performance.now() - started, `${op} rejected promptly`).toBeLessThan(5000);
}


/** The float32 bit patterns, so that -0 and NaN payloads count too. */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function expectSameState(got: FitSnapshot, want: FitSnapshot, what: string): void {
  expect([...got.params.keys()], what).toEqual([...want.params.keys()]);
  for (const [name, w] of want.params) expect(bits(got.params.get(name)!), `${what}: ${name}`).toEqual(bits(w));
  for (const [name, w] of want.optimizer!.m) expect(bits(got.optimizer!.m.get(name)!), `${what}: optimizer.m.${name}`).toEqual(bits(w));
  for (const [name, w] of want.optimizer!.v) expect(bits(got.optimizer!.v.get(name)!), `${what}: optimizer.v.${name}`).toEqual(bits(w));
  expect(got.optimizer!.step, what).toBe(want.optimizer!.step);
}

function untimed<T extends { seconds: number; samplesPerSecond: number }>(history: T[]): T[] {
  return history.map((e) => ({ ...e, seconds: 0, samplesPerSecond: 0 }));
}

async function weights(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) out.set(name, (await p.value.read()) as Float32Array);
  return out;
}

describe('device loss', () => {
  it('pending read, readMany, sync and predict reject promptly naming the loss; later calls throw; nothing hangs', async () => {
    const ctx = await createContext();
    try {
      const x = ctx.tensor(new Float32Array(4096).fill(1), [4096]);
      let y: Tensor = x;
      for (let i = 0; i < 20; i++) y = activationForward(y, { kind: 'relu' });
      const model = tinyModel(ctx);
      const input = ctx.tensor(new Float32Array(2 * 16).fill(0.5), [2, 1, 4, 4]);
      const pending = [
        expectLost(y.read(), 'read'),
        expectLost(ctx.readMany([x, y]), 'readMany'),
        expectLost(ctx.sync(), 'sync'),
        expectLost(model.predict(input, { samples: 4 }), 'readMany'),
      ];
      ctx.device.destroy();
      await Promise.all(pending);
      expect(ctx.isLost).toBe(true);
      // Every later call fails at once, naming the call and the loss.
      expect(() => ctx.tensor([1, 2], [2])).toThrow(/^empty: the GPU device was lost/);
      expect(() => activationForward(x, { kind: 'relu' })).toThrow(LOST);
      expect(() => ctx.write(x, new Float32Array(4096))).toThrow(/^write: the GPU device was lost/);
      await expectLost(x.read(), 'read');
      await expectLost(ctx.sync(), 'sync');
      expect(isDeviceLost(await x.read().catch((e: unknown) => e))).toBe(true);
      // The bookkeeping still works: tensors dispose, nothing is pooled on the dead device.
      const live = ctx.memory().liveTensors;
      x.dispose();
      expect(ctx.memory().liveTensors).toBe(live - 1);
      expect(ctx.memory().pooledBuffers).toBe(0);
    } finally {
      ctx.destroy();
    }
  });

  it('destroy() with a readback pending rejects it at once, naming the destroy', async () => {
    const ctx = await createContext();
    const pending = within(ctx.tensor([1, 2, 3], [3]).read()).then(() => null, (e: unknown) => e);
    ctx.destroy();
    const error = await pending;
    expect(error).toBeInstanceOf(BayesError);
    expect((error as BayesError).message).toMatch(/^read: the context was destroyed while the call was pending/);
    expect(ctx.isLost).toBe(false);
  });

  it('a loss in the middle of fit rejects fit promptly; without recovery nothing is retried', async () => {
    const ctx = await createContext();
    try {
      const model = tinyModel(ctx);
      const run = fit(model, tinyData(48, 7), {
        epochs: 3, batchSize: 8, validFraction: 0.25, seed: 3, reportEvery: 1, reportSeconds: 0,
        onBatch: (p) => {
          if (p.epoch === 1 && p.batch === 2) ctx.device.destroy();
        },
      });
      const error = await within(run).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(BayesError);
      expect((error as BayesError).message).toMatch(LOST);
    } finally {
      ctx.destroy();
    }
  });

  it('recoverDeviceLoss: lose the device mid-fit, restore the last CPU copy on a new context, continue to the same end bit for bit', async () => {
    // 48 images, 12 held out: 36 training images, 5 batches of 8 (the last of 4) per epoch, 3 epochs = 15 steps.
    const data = tinyData(48, 7);
    // The augmentation draws from fit's host generator, so the copies must carry its state too.
    const jitter = (x: Float32Array, count: number, r: Rng) => {
      for (let i = 0; i < count * 16; i++) x[i] += (r.nextUint32() / 2 ** 32 - 0.5) * 0.1;
    };
    const options = { epochs: 3, batchSize: 8, validFraction: 0.25, seed: 3, keepCpuCopyEvery: 4, reportEvery: 1, reportSeconds: 0, augment: jitter };

    // The uninterrupted run, taking the same copies (they cost readbacks, not results).
    const reference = await createContext();
    const referenceCopies: FitSnapshot[] = [];
    let expected: { history: unknown; end: FitSnapshot; steps: number };
    try {
      const model = tinyModel(reference);
      const optimizer = new Adam(model, { lr: 1e-2 });
      const r = await fit(model, data, { ...options, optimizer, onCpuCopy: (c) => void referenceCopies.push(c) });
      expected = { history: untimed(r.history), end: (await takeSnapshot(model, optimizer)) as FitSnapshot, steps: r.steps };
    } finally {
      reference.destroy();
    }
    expect(referenceCopies.map((c) => c.step)).toEqual([4, 8, 12]);
    expect(referenceCopies.map((c) => `${c.progress!.epoch}:${c.progress!.batch}`)).toEqual(['0:4', '1:3', '2:2']);

    const first = await createContext();
    const contexts: Context[] = [first];
    try {
      const model = tinyModel(first);
      const optimizer = new Adam(model, { lr: 1e-2 });
      let destroyed = false;
      const restores: { copy: FitSnapshot; now: FitSnapshot }[] = [];
      const result = await fit(model, data, {
        ...options,
        optimizer,
        // After epoch 1's 5th batch (step 10); the last copy was taken at step 8 (epoch 1, batch 3).
        onBatch: (p) => {
          if (p.epoch === 1 && p.batch === 5 && !destroyed) {
            destroyed = true;
            first.device.destroy();
          }
        },
        recoverDeviceLoss: {
          createContext: async () => {
            const c = await createContext();
            contexts.push(c);
            return c;
          },
          onRecover: async (e) => {
            expect(e.lost).toBe(first);
            expect(e.lost.isLost).toBe(true);
            expect(isDeviceLost(e.error)).toBe(true);
            // What the model and optimizer hold on the new context right after the restore.
            restores.push({ copy: e.snapshot as FitSnapshot, now: (await takeSnapshot(model, optimizer)) as FitSnapshot });
          },
        },
      });
      expect(destroyed).toBe(true);
      expect(result.recoveries).toBe(1);
      expect(contexts).toHaveLength(2);
      expect(result.context).toBe(contexts[1]);
      for (const [, p] of model.namedParameters()) expect(p.value.ctx).toBe(result.context);

      // The restore point: the copy at step 8, which is the uninterrupted run's copy at step 8,
      // and the parameters and Adam moments on the new context are that copy bit for bit.
      expect(restores).toHaveLength(1);
      const { copy, now } = restores[0];
      expect(copy.step).toBe(8);
      expectSameState(copy, referenceCopies[1], 'the copy at step 8');
      expectSameState(now, copy, 'restored on the new context');
      expect(now.optimizer!.step).toBe(8);

      // Training continued from there to the uninterrupted run's end, bit for bit.
      expect(result.steps).toBe(expected.steps);
      expect(untimed(result.history)).toEqual(expected.history);
      expectSameState((await takeSnapshot(model, optimizer)) as FitSnapshot, expected.end, 'the end');
      model.dispose();
      optimizer.dispose();
    } finally {
      for (const c of contexts) c.destroy();
    }
  });

  it('the manual path: a CPU copy restored onto a new context by restoreSnapshot carries on with resumeFrom', async () => {
    const data = tinyData(24, 7);
    const options = { epochs: 2, batchSize: 6, validFraction: 0, seed: 5, keepCpuCopyEvery: 3 };
    const a = await createContext();
    const b = await createContext();
    try {
      const model = tinyModel(a);
      const optimizer = new Adam(model, { lr: 1e-3 });
      const copies: FitSnapshot[] = [];
      const whole = await fit(model, data, { ...options, optimizer, onCpuCopy: (c) => void copies.push(c) });
      const end = await weights(model);
      // Back to the copy at step 3 (epoch 0, batch 3 of 4), on another context, and on from there.
      const copy = copies[0];
      expect(copy.step).toBe(3);
      restoreSnapshot(b, model, optimizer, copy);
      for (const [, p] of model.namedParameters()) expect(p.value.ctx).toBe(b);
      expect(optimizer.step).toBe(3);
      const resumed = await fit(model, data, { ...options, optimizer, resumeFrom: copy });
      expect(resumed.steps).toBe(whole.steps);
      expect(resumed.history.map((e) => e.trainLoss)).toEqual(whole.history.map((e) => e.trainLoss));
      const again = await weights(model);
      for (const [name, w] of end) expect(bits(again.get(name)!), name).toEqual(bits(w));
      // On the context the tensors already live on, a restore writes in place (e.g. to roll back a bad step).
      const tensors = [...model.namedParameters().values()].map((p) => p.value);
      restoreSnapshot(b, model, optimizer, copy);
      expect([...model.namedParameters().values()].map((p) => p.value)).toEqual(tensors);
      const back = await weights(model);
      for (const [name, w] of copy.params) expect(bits(back.get(name)!), name).toEqual(bits(w));
      // A snapshot that does not fit the model changes nothing.
      const wrong = { ...copy, params: new Map([...copy.params].slice(1)) };
      expect(() => restoreSnapshot(b, model, optimizer, wrong)).toThrow(/restoreSnapshot: parameter 'fc1.W_mu' is missing from the snapshot/);
      model.dispose();
      optimizer.dispose();
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
