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
 *
 * Device loss (src/train/recovery.ts): with `keepCpuCopyEvery` a CPU copy of the parameters, the
 * Adam state and the loop's position is taken every N steps (one more readback each); with
 * `recoverDeviceLoss` fit opens a new context when the device is lost, restores the last copy and
 * carries on from its step, mid-epoch.
 *
 * Non-finite guard (`nonFinite`, default 'throw'): each step checks its loss and every gradient for NaN
 * and infinities on the GPU into a small flag tensor (src/ops/finite.ts), and its Adam update reads the
 * flag and is skipped there when the step was non-finite: the model never takes a non-finite update,
 * and nothing is read per step. The flags travel in the tail of the epoch's figures, so fit learns of
 * such a step at its next read of them (a report, the epoch's end, a CPU copy) or, with
 * `nonFiniteCheckEvery`, at most that many steps later (one small read each). 'throw' then stops with
 * a NON_FINITE BayesError before the epoch's validation and onEpoch; from the first non-finite step on
 * no update is applied, so the model and the optimizer hold the values after the last finite step.
 * 'skip' goes on, leaving out just the non-finite steps' updates, and counts them in the history.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf } from '../errors.js';
import type { Sequential } from '../nn/sequential.js';
import { Adam } from './adam.js';
import { type BetaSchedule, beta as betaAt } from './elbo.js';
import { type StepGuard, evalBatch, trainStep } from './step.js';
import { addInto } from '../ops/elementwise.js';
import { decodeNonFiniteFlags, describeKinds, flagWordsFromF32, flagsIntoF32, nonFiniteFlags, type NonFiniteRecord } from '../ops/finite.js';
import { sumInto } from '../ops/reduce.js';
import { Rng } from '../data/random.js';
import { permutation, splitTrainValid } from '../data/batches.js';
import { type RecoveryOptions, type TrainingSnapshot, cloneRng, runRecovering, takeSnapshot } from './recovery.js';

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
  /**
   * Take a CPU copy of the parameters, the Adam state and the loop's position after every
   * multiple of this many steps (one readback each) and pass it to `onCpuCopy`; restore it with
   * restoreSnapshot and continue with `resumeFrom`. Default: none, or 100 with recoverDeviceLoss.
   */
  keepCpuCopyEvery?: number;
  onCpuCopy?: (copy: FitSnapshot) => void;
  /**
   * Continue from a CPU copy, mid-epoch: its epoch, batch, running figures, history and best
   * epoch. Restore the model and optimizer from it first (restoreSnapshot) and pass that optimizer.
   */
  resumeFrom?: FitSnapshot;
  /**
   * Survive a lost device: open a new context with `createContext`, move the model and optimizer
   * onto it from the last CPU copy and continue from there. The model then lives on
   * `result.context`; progress callbacks of the steps replayed since the copy come again.
   */
  recoverDeviceLoss?: RecoveryOptions;
  /**
   * A step whose loss or any gradient holds a NaN or an infinity is never applied (the GPU skips its
   * Adam update). 'throw' (default): fit stops with a NON_FINITE BayesError naming the step, the epoch
   * and the first parameter affected, once it next reads its figures; no update is applied from that
   * step on, so the model and the optimizer are left at the values after the last finite step (not the
   * best epoch's) and no onEpoch sees the failed epoch. 'skip': such steps are skipped and training
   * goes on; EpochSummary.skippedSteps counts them, and the epoch's figures leave out the steps whose
   * loss was non-finite. 'off': no check, as before the guard (a non-finite step is applied).
   */
  nonFinite?: 'throw' | 'skip' | 'off';
  /**
   * With 'throw': also read the flags after every multiple of this many steps (one small readback each),
   * bounding how many steps run after a non-finite one before fit stops. Default 0: only when fit reads
   * its figures anyway (each onBatch report, each epoch's end, each CPU copy).
   */
  nonFiniteCheckEvery?: number;
}

/** Where fit was when it took a CPU copy (TrainingSnapshot.progress). */
export interface FitProgress {
  /** The epoch (from 0) and the number of its batches done. */
  epoch: number;
  batch: number;
  /** The epoch's running sums over those batches, and the examples they saw. */
  lossSum: number;
  klSum: number;
  correctSum: number;
  seen: number;
  history: EpochSummary[];
  best: EpochSummary | null;
  /** The best epoch's parameters, or null before the first improvement. */
  bestParams: Map<string, Float32Array> | null;
  /** The augmentation generator at that point. */
  rng: Rng;
  /** nonFinite 'skip': steps of the epoch skipped so far, and those left out of the sums (loss non-finite) with their examples. */
  skippedSteps?: number;
  droppedSteps?: number;
  droppedExamples?: number;
}

export type FitSnapshot = TrainingSnapshot<FitProgress>;

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
  /**
   * Steps of the epoch whose update was not applied because their loss or a gradient was non-finite
   * (nonFinite 'skip'; otherwise 0). The figures above leave out the steps whose loss was non-finite.
   */
  skippedSteps: number;
}

export interface FitResult {
  history: EpochSummary[];
  best: EpochSummary | null;
  optimizer: Adam;
  /** Training steps done (the random key's step counter). */
  steps: number;
  /** The context the model lives on now: the one passed in, or the last one recoverDeviceLoss opened. */
  context: Context;
  /** Device losses survived (recoverDeviceLoss). */
  recoveries: number;
  /** Steps skipped as non-finite over the history (nonFinite 'skip'). */
  skippedSteps: number;
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
        addInto(nllSum, r.nll);
        addInto(correct, r.correct);
      });
    }
    // Both sums in one tensor, so the result costs one readback (sumInto of a [1] tensor copies it exactly).
    sumInto(nllSum, totals, { index: 0 });
    sumInto(correct, totals, { index: 1 });
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
  if (!options?.recoverDeviceLoss) return fitFrom(ctx, model, data, options);
  const optimizer = options.optimizer ?? new Adam(ctx, model.namedParameters(), { lr: checkNumber('fit', 'lr', options.lr ?? 1e-3, (v) => v > 0, 'a positive number') });
  const first = options.resumeFrom ?? (await takeSnapshot<FitProgress>(ctx, model, optimizer));
  const r = await runRecovering(ctx, model, optimizer, options.recoverDeviceLoss, first, (current, from, keep) =>
    fitFrom(current, model, data, {
      ...options, optimizer, resumeFrom: from, keepCpuCopyEvery: options.keepCpuCopyEvery ?? 100,
      onCpuCopy: (copy) => {
        keep(copy);
        options.onCpuCopy?.(copy);
      },
    }),
  );
  return { ...r.value, recoveries: r.recoveries };
}

async function fitFrom(ctx: Context, model: Sequential, data: FloatDataset, options: FitOptions): Promise<FitResult> {
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
  const copyEvery = options.keepCpuCopyEvery === undefined ? 0 : checkInt(op, 'keepCpuCopyEvery', options.keepCpuCopyEvery, 1);
  const resume = options.resumeFrom?.progress ?? null;
  const nonFinite = checkOneOf(op, 'nonFinite', options.nonFinite ?? 'throw', ['throw', 'skip', 'off'] as const);
  const checkEvery = checkInt(op, 'nonFiniteCheckEvery', options.nonFiniteCheckEvery ?? 0, 0);

  const { train, valid } = splitTrainValid(data.count, validFraction, seed);
  if (train.length === 0) throw new BayesError('INVALID_ARGUMENT', `${op}: no training examples left after holding out ${validFraction} for validation`);
  const trainSize = train.length;
  const batches = Math.ceil(trainSize / batchSize);
  const optimizer = options.optimizer ?? new Adam(ctx, model.namedParameters(), { lr: lr0 });
  const slots = new BatchSlots(ctx, data.shape);
  // The non-finite guard: slot 0 the loss, slot 1 + j the gradient of the optimizer's parameter j.
  const slotNames = ['loss', ...optimizer.parameters.keys()];
  const guard: StepGuard | null = nonFinite === 'off' ? null : { flags: ctx.keep(nonFiniteFlags(ctx, slotNames.length)), mode: nonFinite === 'skip' ? 'skip' : 'hold' };
  const flagWords = guard ? guard.flags.size : 0;
  // Step b's loss, KL and correct count, in slots b, batches + b and 2 * batches + b, for one epoch;
  // then the guard's flags as 16-bit halves (flagsIntoF32), written just before each read.
  const stats = ctx.keep(ctx.empty([3 * batches + 2 * flagWords]));
  // The parameters of the best epoch so far, as GPU copies (made lazily, on the first improvement).
  const bestParams = new Map<string, Tensor>();
  const pacer = new ReportPacer(reportEvery, reportSeconds);
  const rng = resume ? cloneRng(resume.rng) : new Rng(seed + 1);
  const history: EpochSummary[] = resume ? [...resume.history] : [];
  let best: EpochSummary | null = resume?.best ?? null;
  let step = optimizer.step;
  const firstStep = step;
  // Steps found non-finite since this call began, as of the last read of the flags.
  let nonFiniteCount = 0;
  // The best epoch's parameters on the CPU too, for the copies (only with keepCpuCopyEvery).
  let bestCpu = resume?.bestParams ?? null;
  if (bestCpu) for (const [name, p] of model.namedParameters()) bestParams.set(name, ctx.keep(ctx.tensor(bestCpu.get(name)!, p.value.shape)));

  try {
    for (let epoch = resume?.epoch ?? initialEpoch; epoch < epochs; epoch++) {
      const resumed = resume && epoch === resume.epoch ? resume : null;
      optimizer.lr = (options.lrSchedule ?? 'constant') === 'constant' ? lr0 : lr0 * (1 - (1 - lrFinal) * (epochs > 1 ? epoch / (epochs - 1) : 0));
      const order = permutation(trainSize, seed + 1000 + epoch).map((i) => train[i]);
      const started = performance.now();
      pacer.restart(started);
      let lossSum = resumed?.lossSum ?? 0;
      let klSum = resumed?.klSum ?? 0;
      let correctSum = resumed?.correctSum ?? 0;
      let added = resumed?.batch ?? 0; // steps whose figures are in the sums
      let seen = resumed?.seen ?? 0;
      // The epoch's first step (the key's counter), steps skipped before this call's flags began, and the
      // steps left out of the sums because their loss was non-finite (nonFinite 'skip'), with their examples.
      const epochFirstStep = step - (resumed?.batch ?? 0);
      const skippedBase = nonFiniteCount - (resumed?.skippedSteps ?? 0);
      let dropped = resumed?.droppedSteps ?? 0;
      let droppedExamples = resumed?.droppedExamples ?? 0;
      // What the flags say: count the skipped steps, and with 'throw' stop at the first non-finite step.
      const inspect = (words: ArrayLike<number>) => {
        const record = decodeNonFiniteFlags(words);
        nonFiniteCount = record.count;
        if (nonFinite === 'throw' && record.first !== null) {
          // No update was applied from that step on (the gate is sticky): the optimizer's t is set back to match.
          const after = step - 1 - record.first;
          optimizer.step = record.first;
          throw nonFiniteError(record, slotNames, { epoch, epochs, batch: record.first - epochFirstStep, batches, after, atStart: record.first === firstStep });
        }
      };
      // One readback of the epoch's slots; the steps not yet added are added in order, in float64, as
      // they were when every step's three scalars were read, so the figures are the same to the bit.
      const drain = async (done: number) => {
        if (added >= done) return;
        if (guard) flagsIntoF32(guard.flags, stats, { offset: 3 * batches });
        const v = await stats.read();
        for (; added < done; added++) {
          if (guard && !Number.isFinite(v[added])) {
            dropped++;
            droppedExamples += Math.min(batchSize, trainSize - added * batchSize);
            continue;
          }
          lossSum += v[added];
          klSum += v[batches + added];
          correctSum += v[2 * batches + added];
        }
        if (guard) inspect(flagWordsFromF32(v, 3 * batches, flagWords));
      };
      for (let b = resumed?.batch ?? 0; b < batches; b++) {
        const from = b * batchSize;
        const to = Math.min(from + batchSize, trainSize);
        const s = slots.get(to - from);
        gather(data, order, from, to, s.hx, s.hl);
        options.augment?.(s.hx, to - from, rng);
        ctx.write(s.x, s.hx);
        ctx.write(s.labels, s.hl);
        const beta = betaAt(schedule, b, batches, epoch, epochs);
        ctx.scope(() => {
          const r = trainStep(ctx, model, optimizer, s.x, s.labels, { samples: trainSamples, beta, trainSize, seed, step: step++, guard: guard ?? undefined });
          sumInto(r.loss, stats, { index: b });
          sumInto(r.kl, stats, { index: batches + b });
          sumInto(r.correct, stats, { index: 2 * batches + b });
        });
        // With tuning 'auto' (GPUs) a kernel shape seen for the first time runs a default variant
        // until the next read or sync measures the variants. Sync at once (a few times per fit), so
        // that which steps run which variant does not depend on when progress happens to be read.
        if (ctx.tuner.hasPending) await ctx.sync();
        seen += to - from;
        if (guard && nonFinite === 'throw' && checkEvery > 0 && step % checkEvery === 0) inspect(await guard.flags.read());
        if (copyEvery > 0 && step % copyEvery === 0) {
          await drain(b + 1);
          const progress: FitProgress = {
            epoch, batch: b + 1, lossSum, klSum, correctSum, seen, history: [...history], best, bestParams: bestCpu, rng: cloneRng(rng),
            skippedSteps: nonFiniteCount - skippedBase, droppedSteps: dropped, droppedExamples,
          };
          options.onCpuCopy?.(await takeSnapshot(ctx, model, optimizer, progress));
        }
        if (options.onBatch && (pacer.due(b + 1) || b === batches - 1)) {
          await drain(b + 1);
          pacer.read(b + 1, performance.now());
          const elapsed = (performance.now() - started) / 1000;
          const counted = b + 1 - dropped;
          options.onBatch({ epoch, batch: b + 1, batches, loss: lossSum / counted, kl: klSum / counted, accuracy: correctSum / (seen - droppedExamples), samplesPerSecond: seen / elapsed, elapsedSeconds: elapsed });
        }
      }
      if (added < batches) await drain(batches);
      const seconds = (performance.now() - started) / 1000;
      const v = valid.length > 0 ? await evaluate(ctx, model, data, { batchSize, samples: validSamples, seed, step: 1 << 30, indices: valid }) : { nll: NaN, accuracy: NaN };
      // The figures are over the steps whose loss was finite: all of them unless nonFinite 'skip' skipped some.
      const counted = batches - dropped;
      const kl = klSum / counted;
      // The seed's validation loss: the ELBO on the held-out set with the epoch's mean beta.
      const meanBeta = typeof schedule === 'number' ? schedule : Array.from({ length: batches }, (_, b) => betaAt(schedule, b, batches, epoch, epochs)).reduce((a, c) => a + c, 0) / batches;
      const validLoss = valid.length > 0 ? v.nll * trainSize + meanBeta * kl : lossSum / counted;
      const improved = validLoss <= (best?.validLoss ?? bestValidLoss);
      const summary: EpochSummary = {
        epoch: epoch + 1, epochs, trainLoss: lossSum / counted, trainAccuracy: correctSum / (trainSize - droppedExamples), validLoss, validAccuracy: v.accuracy, validNll: v.nll,
        kl, lr: optimizer.lr, seconds, samplesPerSecond: trainSize / seconds, improved, skippedSteps: nonFiniteCount - skippedBase,
      };
      if (improved) {
        best = summary;
        for (const [name, p] of model.namedParameters()) {
          let copy = bestParams.get(name);
          if (!copy) bestParams.set(name, (copy = ctx.keep(ctx.empty(p.value.shape))));
          ctx.copy(p.value, copy);
        }
        if (copyEvery > 0) {
          const params = [...model.namedParameters()];
          const values = (await ctx.readMany(params.map(([, p]) => p.value))) as Float32Array[];
          bestCpu = new Map(params.map(([name], i) => [name, values[i]]));
        }
      }
      history.push(summary);
      await options.onEpoch?.(summary);
    }
    // Keep the model with the lowest validation loss, as the seed saves it (if no epoch beat
    // `bestValidLoss`, the model is left as the last epoch made it and `best` is null).
    if (best) for (const [name, p] of model.namedParameters()) ctx.copy(bestParams.get(name)!, p.value);
    return { history, best, optimizer, steps: step, context: ctx, recoveries: 0, skippedSteps: history.reduce((a, e) => a + e.skippedSteps, 0) };
  } finally {
    stats.dispose();
    guard?.flags.dispose();
    for (const t of bestParams.values()) t.dispose();
    slots.dispose();
  }
}

/** The NON_FINITE error of 'throw': the step, where it was, what was non-finite, and what the model holds. */
function nonFiniteError(
  record: NonFiniteRecord, slotNames: string[], at: { epoch: number; epochs: number; batch: number; batches: number; after: number; atStart: boolean },
): BayesError {
  const step = record.first!;
  const hit = record.slots.map((s, k) => (s !== null && s.step === step ? k : -1)).filter((k) => k >= 0);
  const loss = record.slots[0];
  const lossText = loss !== null && loss.step === step ? `its loss was ${describeKinds(loss.kinds)}` : 'its loss was finite';
  const params = hit.filter((k) => k > 0);
  const paramText = params.length === 0
    ? 'every gradient was finite'
    : `the gradients of ${params.length} of ${slotNames.length - 1} parameters were non-finite, the first '${slotNames[params[0]]}' (${describeKinds(record.slots[params[0]]!.kinds)})`;
  const notApplied = at.after > 0 ? `Its update and those of the ${at.after} step${at.after === 1 ? '' : 's'} after it were not applied` : 'Its update was not applied';
  return new BayesError(
    'NON_FINITE',
    `fit: training step ${step} (epoch ${at.epoch + 1} of ${at.epochs}, batch ${at.batch + 1} of ${at.batches}) was non-finite: ${lossText}, and ${paramText}. ` +
      `${notApplied}: the model and the optimizer hold ${at.atStart ? 'the values fit began with' : `the values after step ${step - 1}, the last finite one`}. ` +
      "Lower the learning rate (or check the data for NaN), or pass nonFinite: 'skip' to train on without such steps.",
  );
}
