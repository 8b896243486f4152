/**
 * The training loop of PyTorch-BayesianCNN's main_bayesian.py: per epoch, train
 * with the ELBO over shuffled batches, validate, keep the parameters with the
 * lowest validation loss; Adam with a linear learning-rate decay.
 *
 * Readbacks: every read is a submit and a full wait for the GPU, and on a GPU a
 * LeNet step (~1 ms) is shorter than a readback. So nothing is read per step:
 * each step's loss, KL and correct count stay on the GPU, gathered into a
 * per-epoch tensor, and are read only when a figure is shown (a paced onBatch
 * report, see ReportPacer, or the epoch's summary). Per epoch that is the reports
 * (or one read without onBatch) plus one for the validation figures; the best
 * epoch's parameters are kept as GPU copies, not read back.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber } from '../errors.js';
import type { Sequential } from '../nn/sequential.js';
import { Adam } from './adam.js';
import { type BetaSchedule, beta as betaAt } from './elbo.js';
import { evalBatch, trainStep } from './step.js';
import { addInto } from '../ops/elementwise.js';
import { sumInto } from '../ops/reduce.js';
import { Rng } from '../data/random.js';
import { permutation, splitTrainValid } from '../data/batches.js';

/** Images already as floats in [0, 1], NCHW, with integer labels. */
export interface FloatDataset {
  x: Float32Array;
  labels: Uint8Array | Uint32Array;
  count: number;
  /** One example's shape [C, H, W]. */
  shape: [number, number, number];
  classes: number;
}

export interface FitOptions {
  /** The epoch to stop after, counted from the start of training (Keras' `epochs`). */
  epochs: number;
  /**
   * Epochs already done when resuming (Keras' `initial_epoch`, default 0): training runs epochs
   * initialEpoch + 1 .. epochs, with the shuffles, beta and lr schedules of those epochs. Pass the
   * optimizer restored from the checkpoint so the moments and the noise's step counter continue.
   */
  initialEpoch?: number;
  /**
   * When resuming: the validation loss of the checkpoint's epoch, so an epoch counts as `improved`
   * (and is kept as the best) only if it beats it. Without it the first epoch run is the best so far.
   */
  bestValidLoss?: number;
  batchSize: number;
  lr?: number;
  /**
   * 'constant' (default) keeps the learning rate, as the seed's recipe does over a few epochs (its
   * ReduceLROnPlateau never fires that early); 'linear' decays it linearly to lr * lrFinalFraction.
   */
  lrSchedule?: 'linear' | 'constant';
  lrFinalFraction?: number;
  beta?: BetaSchedule;
  trainSamples?: number;
  validSamples?: number;
  /** Fraction of the training set held out for validation (the seed's valid_size, 0.2). */
  validFraction?: number;
  seed?: number;
  /** CPU augmentation applied to each training batch in place (e.g. random rotation). */
  augment?: (x: Float32Array, count: number, rng: Rng) => void;
  optimizer?: Adam;
  /**
   * Running figures of the epoch so far, after some batches and always after its last. Each call
   * costs one readback (a GPU sync), so calls are paced: only after a multiple of `reportEvery`
   * batches, and no more often than about every `reportSeconds` (ReportPacer). Without onBatch
   * nothing is read during an epoch.
   */
  onBatch?: (p: BatchProgress) => void;
  /** onBatch comes after a multiple of this many batches (default 10). */
  reportEvery?: number;
  /**
   * Least time between onBatch calls, about (default 0.25 s, four a second); 0 reports after every
   * `reportEvery` batches. On a GPU this is what keeps the readbacks from costing more than the steps.
   */
  reportSeconds?: number;
  onEpoch?: (e: EpochSummary) => void | Promise<void>;
}

/** The epoch's running figures, exactly as reading every step would give them (float64 sums in step order). */
export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  kl: number;
  accuracy: number;
  samplesPerSecond: number;
  elapsedSeconds: number;
}

export interface EpochSummary {
  epoch: number;
  epochs: number;
  trainLoss: number;
  trainAccuracy: number;
  validLoss: number;
  validAccuracy: number;
  validNll: number;
  kl: number;
  lr: number;
  seconds: number;
  samplesPerSecond: number;
  improved: boolean;
}

export interface FitResult {
  history: EpochSummary[];
  best: EpochSummary | null;
  optimizer: Adam;
  /** Training steps done (the random key's step counter). */
  steps: number;
}

/**
 * When to read progress back. A report is due after a multiple of `every` steps, and at least
 * `stride` steps after the last read, where the stride (a multiple of `every`) keeps reads about
 * `seconds` apart. The clock alone cannot decide it without reading: between reads the CPU records
 * steps far ahead of the GPU, so the time since the last read says little about the GPU's progress.
 * A read waits for the GPU, though, so the time between two reads over the steps between them is the
 * device's pace per step; after each read the next stride is chosen from it. On SwiftShader (a
 * LeNet step takes longer than `seconds`) the stride stays `every`; on a GPU it grows to hundreds.
 */
export class ReportPacer {
  private stride: number;
  private lastStep = 0;
  private lastTime = 0;

  /** `every` >= 1 steps; `seconds` >= 0 (0: every `every` steps). */
  constructor(private readonly every: number, private readonly seconds: number) {
    this.stride = every;
  }

  /** Counts steps from 0 again (an epoch's start), at time `now` in milliseconds. */
  restart(now: number): void {
    this.lastStep = 0;
    this.lastTime = now;
  }

  /** Whether a report (and so a read) is due after `done` steps since the restart. */
  due(done: number): boolean {
    return done % this.every === 0 && done - this.lastStep >= this.stride;
  }

  /** Records a read after `done` steps, at time `now` in milliseconds (after the read), and sets the next stride. */
  read(done: number, now: number): void {
    const steps = done - this.lastStep;
    const perStep = (now - this.lastTime) / 1000 / steps;
    if (this.seconds > 0 && steps > 0 && perStep > 0 && Number.isFinite(perStep)) {
      this.stride = this.every * Math.max(1, Math.ceil(this.seconds / (this.every * perStep)));
    }
    this.lastStep = done;
    this.lastTime = now;
  }
}

/** Copies examples `indices[from..to)` into a batch buffer. */
export function gather(data: FloatDataset, indices: Uint32Array, from: number, to: number, x: Float32Array, labels: Uint32Array): void {
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  for (let i = from; i < to; i++) {
    const j = indices[i];
    x.set(data.x.subarray(j * per, (j + 1) * per), (i - from) * per);
    labels[i - from] = data.labels[j];
  }
}

/** Batch tensors by batch size, reused across steps. */
class BatchSlots {
  private readonly slots = new Map<number, { x: Tensor; labels: Tensor; hx: Float32Array; hl: Uint32Array }>();
  constructor(private readonly ctx: Context, private readonly shape: readonly number[]) {}
  get(n: number) {
    let s = this.slots.get(n);
    if (!s) {
      const per = this.shape.reduce((a, b) => a * b, 1);
      s = { x: this.ctx.keep(this.ctx.empty([n, ...this.shape])), labels: this.ctx.keep(this.ctx.empty([n], 'u32')), hx: new Float32Array(n * per), hl: new Uint32Array(n) };
      this.slots.set(n, s);
    }
    return s;
  }
  dispose(): void {
    for (const s of this.slots.values()) {
      s.x.dispose();
      s.labels.dispose();
    }
  }
}

export function checkDataset(op: string, argument: string, model: Sequential, data: FloatDataset): void {
  const per = data.shape.reduce((a, b) => a * b, 1);
  if (data.x.length !== data.count * per || data.labels.length !== data.count) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' holds ${data.x.length} values and ${data.labels.length} labels for ${data.count} images of shape [${data.shape.join(', ')}]`);
  }
  if (data.shape.some((d, i) => d !== model.inputShape[i])) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' has images of shape [${data.shape.join(', ')}] but the model expects [${model.inputShape.join(', ')}] (input channels ${model.inputShape[0]}, the data set has ${data.shape[0]})`);
  }
}

/** Mean NLL, accuracy over `indices` of `data`, MC-averaged with `samples` samples. */
export async function evaluate(
  ctx: Context,
  model: Sequential,
  data: FloatDataset,
  o: { batchSize: number; samples: number; sample?: boolean; seed?: number; step?: number; indices?: Uint32Array; mcDropout?: boolean },
): Promise<{ nll: number; accuracy: number; count: number }> {
  checkDataset('evaluate', 'data', model, data);
  const batchSize = checkInt('evaluate', 'batchSize', o.batchSize, 1);
  const indices = o.indices ?? Uint32Array.from({ length: data.count }, (_, i) => i);
  const slots = new BatchSlots(ctx, data.shape);
  const nllSum = ctx.zeros([1]);
  const correct = ctx.zeros([1]);
  const totals = ctx.empty([2]);
  try {
    for (let from = 0; from < indices.length; from += batchSize) {
      const to = Math.min(from + batchSize, indices.length);
      const s = slots.get(to - from);
      gather(data, indices, from, to, s.hx, s.hl);
      ctx.write(s.x, s.hx);
      ctx.write(s.labels, s.hl);
      ctx.scope(() => {
        const r = evalBatch(ctx, model, s.x, s.labels, { samples: o.samples, sample: o.sample ?? true, mcDropout: o.mcDropout, seed: o.seed ?? 0, step: (o.step ?? 0) + from });
        addInto(ctx, nllSum, r.nll);
        addInto(ctx, correct, r.correct);
      });
    }
    // Both sums in one tensor, so the result costs one readback (sumInto of a [1] tensor copies it exactly).
    sumInto(ctx, nllSum, totals, 0);
    sumInto(ctx, correct, totals, 1);
    const [nll, right] = await totals.read();
    const n = indices.length;
    return { nll: nll / n, accuracy: right / n, count: n };
  } finally {
    nllSum.dispose();
    correct.dispose();
    totals.dispose();
    slots.dispose();
  }
}

export async function fit(ctx: Context, model: Sequential, data: FloatDataset, options: FitOptions): Promise<FitResult> {
  const op = 'fit';
  checkDataset(op, 'data', model, data);
  const epochs = checkInt(op, 'epochs', options.epochs, 1);
  const initialEpoch = checkInt(op, 'initialEpoch', options.initialEpoch ?? 0, 0);
  if (initialEpoch >= epochs) throw argumentError(op, 'initialEpoch', `an integer below epochs (${epochs})`, initialEpoch);
  const batchSize = checkInt(op, 'batchSize', options.batchSize, 1);
  const trainSamples = checkInt(op, 'trainSamples', options.trainSamples ?? 1, 1);
  const validSamples = checkInt(op, 'validSamples', options.validSamples ?? 1, 1);
  const validFraction = checkNumber(op, 'validFraction', options.validFraction ?? 0.2, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const lr0 = checkNumber(op, 'lr', options.lr ?? 1e-3, (v) => v > 0, 'a positive number');
  const lrFinal = checkNumber(op, 'lrFinalFraction', options.lrFinalFraction ?? 0.1, (v) => v >= 0 && v <= 1, 'a fraction in [0, 1]');
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  const schedule = options.beta ?? 0.1;
  const reportEvery = checkInt(op, 'reportEvery', options.reportEvery ?? 10, 1);
  const reportSeconds = checkNumber(op, 'reportSeconds', options.reportSeconds ?? 0.25, (v) => v >= 0 && Number.isFinite(v), 'a number of seconds >= 0');
  const bestValidLoss = checkNumber(op, 'bestValidLoss', options.bestValidLoss ?? Infinity, (v) => !Number.isNaN(v), 'a number');

  const { train, valid } = splitTrainValid(data.count, validFraction, seed);
  if (train.length === 0) throw new BayesError('INVALID_ARGUMENT', `${op}: no training examples left after holding out ${validFraction} for validation`);
  const trainSize = train.length;
  const batches = Math.ceil(trainSize / batchSize);
  const optimizer = options.optimizer ?? new Adam(ctx, model.namedParameters(), { lr: lr0 });
  const slots = new BatchSlots(ctx, data.shape);
  // Step b's loss, KL and correct count, in slots b, batches + b and 2 * batches + b, for one epoch.
  const stats = ctx.keep(ctx.empty([3, batches]));
  // The parameters of the best epoch so far, as GPU copies (made lazily, on the first improvement).
  const bestParams = new Map<string, Tensor>();
  const pacer = new ReportPacer(reportEvery, reportSeconds);
  const rng = new Rng(seed + 1);
  const history: EpochSummary[] = [];
  let best: EpochSummary | null = null;
  let step = optimizer.step;

  try {
    for (let epoch = initialEpoch; epoch < epochs; epoch++) {
      optimizer.lr = (options.lrSchedule ?? 'constant') === 'constant' ? lr0 : lr0 * (1 - (1 - lrFinal) * (epochs > 1 ? epoch / (epochs - 1) : 0));
      const order = permutation(trainSize, seed + 1000 + epoch).map((i) => train[i]);
      const started = performance.now();
      pacer.restart(started);
      let lossSum = 0;
      let klSum = 0;
      let correctSum = 0;
      let added = 0; // steps whose figures are in the sums
      let seen = 0;
      // One readback of the epoch's slots; the steps not yet added are added in order, in float64, as
      // they were when every step's three scalars were read, so the figures are the same to the bit.
      const drain = async (done: number) => {
        const v = await stats.read();
        for (; added < done; added++) {
          lossSum += v[added];
          klSum += v[batches + added];
          correctSum += v[2 * batches + added];
        }
      };
      for (let b = 0; b < batches; b++) {
        const from = b * batchSize;
        const to = Math.min(from + batchSize, trainSize);
        const s = slots.get(to - from);
        gather(data, order, from, to, s.hx, s.hl);
        options.augment?.(s.hx, to - from, rng);
        ctx.write(s.x, s.hx);
        ctx.write(s.labels, s.hl);
        const beta = betaAt(schedule, b, batches, epoch, epochs);
        ctx.scope(() => {
          const r = trainStep(ctx, model, optimizer, s.x, s.labels, { samples: trainSamples, beta, trainSize, seed, step: step++ });
          sumInto(ctx, r.loss, stats, b);
          sumInto(ctx, r.kl, stats, batches + b);
          sumInto(ctx, r.correct, stats, 2 * batches + b);
        });
        // With tuning 'auto' (GPUs) a kernel shape seen for the first time runs a default variant
        // until the next read or sync measures the variants. Sync at once (a few times per fit), so
        // that which steps run which variant does not depend on when progress happens to be read.
        if (ctx.tuner.hasPending) await ctx.sync();
        seen += to - from;
        if (options.onBatch && (pacer.due(b + 1) || b === batches - 1)) {
          await drain(b + 1);
          pacer.read(b + 1, performance.now());
          const elapsed = (performance.now() - started) / 1000;
          options.onBatch({ epoch, batch: b + 1, batches, loss: lossSum / (b + 1), kl: klSum / (b + 1), accuracy: correctSum / seen, samplesPerSecond: seen / elapsed, elapsedSeconds: elapsed });
        }
      }
      if (added < batches) await drain(batches);
      const seconds = (performance.now() - started) / 1000;
      const v = valid.length > 0 ? await evaluate(ctx, model, data, { batchSize, samples: validSamples, seed, step: 1 << 30, indices: valid }) : { nll: NaN, accuracy: NaN };
      const kl = klSum / batches;
      // The seed's validation loss: the ELBO on the held-out set with the epoch's mean beta.
      const meanBeta = typeof schedule === 'number' ? schedule : Array.from({ length: batches }, (_, b) => betaAt(schedule, b, batches, epoch, epochs)).reduce((a, c) => a + c, 0) / batches;
      const validLoss = valid.length > 0 ? v.nll * trainSize + meanBeta * kl : lossSum / batches;
      const improved = validLoss <= (best?.validLoss ?? bestValidLoss);
      const summary: EpochSummary = {
        epoch: epoch + 1, epochs, trainLoss: lossSum / batches, trainAccuracy: correctSum / trainSize, validLoss, validAccuracy: v.accuracy, validNll: v.nll,
        kl, lr: optimizer.lr, seconds, samplesPerSecond: trainSize / seconds, improved,
      };
      if (improved) {
        best = summary;
        for (const [name, p] of model.namedParameters()) {
          let copy = bestParams.get(name);
          if (!copy) bestParams.set(name, (copy = ctx.keep(ctx.empty(p.value.shape))));
          ctx.copy(p.value, copy);
        }
      }
      history.push(summary);
      await options.onEpoch?.(summary);
    }
    // Keep the model with the lowest validation loss, as the seed saves it (if no epoch beat
    // `bestValidLoss`, the model is left as the last epoch made it and `best` is null).
    if (best) for (const [name, p] of model.namedParameters()) ctx.copy(bestParams.get(name)!, p.value);
    return { history, best, optimizer, steps: step };
  } finally {
    stats.dispose();
    for (const t of bestParams.values()) t.dispose();
    slots.dispose();
  }
}
