/**
 * Surviving a lost GPU device. Everything on a lost device is gone (WebGPU offers no way to
 * read it back), so training can only continue from something kept elsewhere: a checkpoint
 * file (src/io/checkpoint.ts) or a CPU copy taken every N steps (`takeSnapshot`, or fit's
 * `keepCpuCopyEvery`). The path is always the same:
 *
 *   1. the lost context's calls reject with a BayesError naming the loss (ctx.isLost is true);
 *   2. open a new context (createContext);
 *   3. `restoreSnapshot(newCtx, model, optimizer, copy)` moves the model's parameters and the Adam
 *      moments onto the new context, bit for bit as they were when the copy was taken;
 *   4. continue: `fit(model, data, { ...options, optimizer, resumeFrom: copy })` (the model now lives on
 *      newCtx), or let
 *      fit do steps 2–4 itself with `recoverDeviceLoss: { createContext }`.
 *
 * The training step's random key is (seed, step), and the copy holds the step count, so the
 * steps replayed after a restore draw the same noise as the lost ones did: on the same adapter
 * the recovered run ends with the parameters of a run that was never interrupted.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt } from '../errors.js';
import type { Sequential } from '../nn/sequential.js';
import type { Rng } from '../data/random.js';
import type { Adam } from './adam.js';

/** A CPU copy of what training needs to continue: parameters, optimizer state and the loop's own position. */
export interface TrainingSnapshot<P = unknown> {
  /** Updates done when the copy was taken (Adam's t, which keys the next step's noise). */
  step: number;
  /** Every model parameter by its state-dict name, BatchNorm running statistics included. */
  params: Map<string, Float32Array>;
  /** Adam's moments, step and learning rate, or null when no optimizer was copied. */
  optimizer: { step: number; lr: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> } | null;
  /** Where the loop that took the copy was (fit: epoch, batch, running sums, history); null: at its start. */
  progress: P | null;
}

/**
 * Copies the parameters and the optimizer state to the CPU with one readback (one GPU wait),
 * together with `progress`, which the caller owns and must not change afterwards.
 */
export async function takeSnapshot<P>(model: Sequential, optimizer: Adam | null, progress: P | null = null): Promise<TrainingSnapshot<P>> {
  const ctx = model.ctx;
  const params = [...model.namedParameters()];
  const moments = optimizer ? [...optimizer.state] : [];
  const tensors: Tensor[] = [...params.map(([, p]) => p.value), ...moments.flatMap(([, s]) => [s.m, s.v])];
  const data = (await ctx.readMany(tensors)) as Float32Array[];
  const snapshot: TrainingSnapshot<P> = { step: optimizer?.step ?? 0, params: new Map(params.map(([name], i) => [name, data[i]])), optimizer: null, progress };
  if (optimizer) {
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    moments.forEach(([name], i) => {
      m.set(name, data[params.length + 2 * i]);
      v.set(name, data[params.length + 2 * i + 1]);
    });
    snapshot.optimizer = { step: optimizer.step, lr: optimizer.lr, m, v };
  }
  return snapshot;
}

/**
 * Puts `snapshot` back into `model` and `optimizer` on `ctx`. Tensors already on `ctx` are
 * overwritten in place; tensors of another context (a lost one) are replaced by new tensors on
 * `ctx`, so the same model and optimizer objects carry on there (their old tensors are disposed,
 * and the gradients of the last backward are dropped). Everything is checked before anything is
 * written, so a mismatched snapshot changes nothing.
 */
export function restoreSnapshot(ctx: Context, model: Sequential, optimizer: Adam | null, snapshot: TrainingSnapshot): void {
  const op = 'restoreSnapshot';
  if (snapshot === null || typeof snapshot !== 'object' || !(snapshot.params instanceof Map)) throw argumentError(op, 'snapshot', 'a TrainingSnapshot from takeSnapshot', snapshot);
  const params = model.namedParameters();
  for (const [name, p] of params) {
    const data = snapshot.params.get(name);
    if (!data) throw new BayesError('CHECKPOINT_MISMATCH', `${op}: parameter '${name}' is missing from the snapshot (have: ${[...snapshot.params.keys()].join(', ')})`);
    if (data.length !== p.value.size) throw new BayesError('CHECKPOINT_MISMATCH', `${op}: parameter '${name}' has ${data.length} values in the snapshot, the model expects ${p.value.size} (shape [${p.value.shape.join(', ')}])`);
  }
  for (const name of snapshot.params.keys()) if (!params.has(name)) throw new BayesError('CHECKPOINT_MISMATCH', `${op}: snapshot parameter '${name}' is not a parameter of the model`);
  const o = snapshot.optimizer;
  if (optimizer) {
    if (!o) throw argumentError(op, 'snapshot', 'a snapshot taken with the optimizer (its Adam state)', 'one without');
    for (const [name, s] of optimizer.state) {
      const m = o.m.get(name);
      const v = o.v.get(name);
      if (!m || !v || m.length !== s.m.size || v.length !== s.v.size) throw new BayesError('CHECKPOINT_MISMATCH', `${op}: the snapshot's Adam moments for '${name}' are missing or of the wrong size (expected ${s.m.size} values)`);
    }
    checkInt(op, 'snapshot.optimizer.step', o.step, 0);
  }

  const put = (t: Tensor, data: Float32Array): Tensor => {
    if (t.ctx === ctx && !t.disposed) {
      ctx.write(t, data);
      return t;
    }
    const moved = ctx.keep(ctx.tensor(data, t.shape));
    t.dispose();
    return moved;
  };
  for (const [name, p] of params) {
    p.value = put(p.value, snapshot.params.get(name)!);
    if (p.grad && p.grad.ctx !== ctx) {
      p.grad.dispose();
      p.grad = null;
    }
  }
  if (optimizer && o) {
    for (const [name, s] of optimizer.state) optimizer.state.set(name, { m: put(s.m, o.m.get(name)!), v: put(s.v, o.v.get(name)!) });
    optimizer.step = o.step;
    optimizer.lr = o.lr;
    // The last trainStep's figures lived on the old context; they are gone with it.
    if (optimizer.stepFigures && optimizer.stepFigures.ctx !== ctx) {
      optimizer.stepFigures.dispose();
      optimizer.stepFigures = null;
    }
  }
  // Every parameter is on `ctx` now: the model trains and predicts there (fit, trainStep take no context).
  model.adoptContext(ctx);
}

/** True when `error` comes from the loss of `ctx`'s device (or, without `ctx`, names a device loss). */
export function isDeviceLost(error: unknown, ctx?: Context): boolean {
  if (ctx?.isLost) return true;
  return error instanceof BayesError && error.code === 'GPU_ERROR' && error.message.includes('the GPU device was lost');
}

export interface RecoveryOptions {
  /** Opens the context to continue on, e.g. `() => createContext()`. */
  createContext: () => Promise<Context>;
  /** Losses survived before the next one is thrown (default 3). */
  maxRecoveries?: number;
  /** Hears each recovery after the restore, before training continues (e.g. to log it, or to destroy the lost context). */
  onRecover?: (event: RecoveryEvent) => void | Promise<void>;
}

export interface RecoveryEvent {
  /** The loss's BayesError as the lost context threw it. */
  error: unknown;
  lost: Context;
  /** The context the model and optimizer now live on. */
  context: Context;
  /** The CPU copy they were restored from. */
  snapshot: TrainingSnapshot;
  /** Recoveries so far, this one included. */
  recoveries: number;
}

/**
 * Runs `run(ctx, from, keep)` and, when it fails because the device was lost, restores the last
 * snapshot passed to `keep` (or `first`) onto a new context and runs it again from there. `run`
 * must continue from `from` (null: from its start) and pass every new CPU copy to `keep`.
 * Used by fit's `recoverDeviceLoss`; a custom loop can use it the same way.
 */
export async function runRecovering<T, P>(
  ctx: Context,
  model: Sequential,
  optimizer: Adam,
  options: RecoveryOptions,
  first: TrainingSnapshot<P>,
  run: (ctx: Context, from: TrainingSnapshot<P>, keep: (copy: TrainingSnapshot<P>) => void) => Promise<T>,
): Promise<{ value: T; context: Context; recoveries: number }> {
  const op = 'recoverDeviceLoss';
  if (options === null || typeof options !== 'object' || typeof options.createContext !== 'function') throw argumentError(op, 'createContext', 'a function that opens a new context', options?.createContext);
  const max = checkInt(op, 'maxRecoveries', options.maxRecoveries ?? 3, 0);
  let current = ctx;
  let last = first;
  let recoveries = 0;
  for (;;) {
    try {
      const value = await run(current, last, (copy) => void (last = copy));
      return { value, context: current, recoveries };
    } catch (error) {
      if (!isDeviceLost(error, current) || recoveries >= max) throw error;
      const fresh = await options.createContext();
      restoreSnapshot(fresh, model, optimizer, last);
      recoveries++;
      await options.onRecover?.({ error, lost: current, context: fresh, snapshot: last, recoveries });
      current = fresh;
    }
  }
}

/** An independent copy of a host generator, at the same point of its stream (for a snapshot of a loop's augmentation). */
export function cloneRng(rng: Rng): Rng {
  return Object.assign(Object.create(Object.getPrototypeOf(rng) as object) as Rng, rng);
}
