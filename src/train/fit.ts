/**
 * The training loop of PyTorch-BayesianCNN's main_bayesian.py: per epoch, train
 * with the ELBO over shuffled batches, validate, keep the parameters with the
 * lowest validation loss; Adam with a linear learning-rate decay. One loop for
 * every model: the model's task picks the step body (src/train/step.ts:
 * classification or regression), everything else (split, shuffles, batches,
 * pacing, mode, guard, abort, history) is shared.
 *
 * Readbacks: every read is a submit and a full wait for the GPU, and on a GPU a
 * LeNet step (~1 ms) is shorter than a readback. So nothing is read per step:
 * each step's loss, NLL, KL and correct count stay on the GPU, gathered into a
 * per-epoch tensor, and are read only when a figure is shown (a paced onBatch
 * report, see ReportPacer, or the epoch's summary). Per epoch that is the reports
 * (or one read without onBatch) plus one for the validation figures; the best
 * epoch's parameters are kept as GPU copies, not read back. The diagnostics (src/train/diagnostics.ts:
 * sigma = softplus(rho) per Bayesian layer) are reduced on the GPU after the epoch's last step into the
 * tail of that tensor and come back with its last read: no read of their own. The NLL and beta * KL
 * terms and the KL per weight are computed from the figures read anyway.
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
import { type CheckedStep, DEFAULT_BETA, type StepFigures, type StepGuard, checkModel, checkOptionNames, evalBatch, trainStepInto } from './step.js';
import { type RegressionData, checkRegressionData, regressionEvalBatch, regressionExampleShape } from './regression.js';
import { checkRegressionModel } from '../uncertainty/regression.js';
import { addInto } from '../ops/elementwise.js';
import { decodeNonFiniteFlags, describeKinds, flagWordsFromF32, flagsIntoF32, nonFiniteFlags, type NonFiniteRecord } from '../ops/finite.js';
import { sumInto } from '../ops/reduce.js';
import { Rng } from '../data/random.js';
import { permutation, splitTrainValid } from '../data/batches.js';
import { type RecoveryOptions, type TrainingSnapshot, cloneRng, runRecovering, takeSnapshot } from './recovery.js';
import { DEFAULT_CHANCE_WARNING_STEPS, type FitWarning, type LayerSigma, WarningWatch, sigmaProbe, variationalWeightCount } from './diagnostics.js';

/** Images already as floats in [0, 1], NCHW, with integer labels: a classifier's training data. */
export interface FloatDataset {
  x: Float32Array;
  labels: Uint8Array | Uint32Array;
  count: number;
  /** One example's shape: [C, H, W] for images, [features] for vectors (the model's inputShape). */
  shape: readonly number[];
  classes: number;
}

/** What fit and evaluate take: labelled examples for a classifier, targets for a regression model (the model's task decides). */
export type TrainingData = FloatDataset | RegressionData;

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
  /**
   * The learning rate the schedule starts from (default: the lr of `optimizer` when one is given, else
   * 1e-3). When resuming a 'linear' schedule, pass the run's lr: the restored optimizer holds the decayed one.
   */
  lr?: number;
  /** Adam's decoupled weight decay when fit makes the optimizer (default 0); for MC dropout it plays the prior's part (Gal & Ghahramani 2016). */
  weightDecay?: number;
  /**
   * 'constant' (default) keeps the learning rate, as the seed's recipe does over a few epochs (its
   * ReduceLROnPlateau never fires that early); 'linear' decays it linearly to lr * lrFinalFraction.
   */
  lrSchedule?: 'linear' | 'constant';
  lrFinalFraction?: number;
  /** The KL weight: a number or a schedule of train/elbo.ts (default 0.1, the seed's; 1 is the ELBO proper). */
  beta?: BetaSchedule;
  /** Monte Carlo samples per example and training step (default 1). */
  samples?: number;
  /** Monte Carlo samples per example of the validation pass (default 1). */
  validSamples?: number;
  /** Fraction of the training set held out for validation (the seed's valid_size, 0.2). */
  validFraction?: number;
  seed?: number;
  /** CPU augmentation applied to each training batch in place (e.g. random rotation). */
  augment?: (x: Float32Array, count: number, rng: Rng) => void;
  optimizer?: Adam;
  /**
   * Put the parameters of the epoch with the lowest validation loss back at the end (default true,
   * as the seed keeps its best checkpoint); false leaves the model as the last epoch made it.
   */
  restoreBest?: boolean;
  /**
   * Stops training when aborted. Checked before each step (a step is never cut in half) and before
   * each epoch's validation: fit then resolves with `stopped: 'aborted'`, the history of the epochs
   * completed, and the model as the last complete step left it (not the best epoch's). An already
   * aborted signal stops before any GPU work. An abort from an event handler (a worker's message, a
   * button) is seen at fit's next await: a report, a validation, a CPU copy or a callback.
   */
  signal?: AbortSignal;
  /**
   * Running figures of the epoch so far, after some batches and always after its last (awaited if it
   * returns a promise). Each call costs one readback (a GPU sync), so calls are paced: only after a
   * multiple of `reportEvery` batches, and no more often than about every `reportSeconds`
   * (ReportPacer). Without onBatch nothing is read during an epoch.
   */
  onBatch?: (p: BatchProgress) => void | Promise<void>;
  /** onBatch comes after a multiple of this many batches (default 10). */
  reportEvery?: number;
  /**
   * Least time between onBatch calls, about (default 0.25 s, four a second); 0 reports after every
   * `reportEvery` batches. On a GPU this is what keeps the readbacks from costing more than the steps.
   */
  reportSeconds?: number;
  /** Each epoch's summary, after its validation (awaited if it returns a promise). */
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
  /**
   * Each warning of a run that does not converge, at the end of the epoch it is seen at (after onEpoch;
   * awaited if it returns a promise): 'kl-dominates' (the beta * KL term outweighs the NLL term while
   * the data is not yet fit) and 'chance-accuracy' (training accuracy within a few standard errors of
   * chance after `chanceWarningSteps` steps). Each code is warned of at most once per fit call; the
   * warnings are also in FitResult.warnings. See WarningWatch (train/diagnostics.ts) for the tests.
   * Default: none (the warnings are still collected).
   */
  onWarning?: (w: FitWarning) => void | Promise<void>;
  /**
   * 'chance-accuracy' is looked for at the end of each epoch once this many training steps (the
   * optimizer's update count) are done (default 200, DEFAULT_CHANCE_WARNING_STEPS; 0: from the first epoch's end).
   */
  chanceWarningSteps?: number;
}

const FIT_OPTIONS = [
  'epochs', 'initialEpoch', 'bestValidLoss', 'batchSize', 'lr', 'weightDecay', 'lrSchedule', 'lrFinalFraction', 'beta', 'samples', 'validSamples',
  'validFraction', 'seed', 'augment', 'optimizer', 'restoreBest', 'signal', 'onBatch', 'reportEvery', 'reportSeconds', 'onEpoch', 'keepCpuCopyEvery',
  'onCpuCopy', 'resumeFrom', 'recoverDeviceLoss', 'nonFinite', 'nonFiniteCheckEvery', 'onWarning', 'chanceWarningSteps',
];

/** Where fit was when it took a CPU copy (TrainingSnapshot.progress). */
export interface FitProgress {
  /** The epoch (from 0) and the number of its batches done. */
  epoch: number;
  batch: number;
  /** The epoch's running sums over those batches, and the examples they saw. */
  lossSum: number;
  /** (Absent in copies taken before it was kept: 0.) */
  nllSum?: number;
  klSum: number;
  /** The sum of the steps' beta * KL (absent in copies taken before it was kept: beta * klSum for a constant beta). */
  klTermSum?: number;
  correctSum: number;
  seen: number;
  history: EpochSummary[];
  /** The warnings so far (absent in copies taken before they were kept: none). */
  warnings?: FitWarning[];
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
  /** Mean over the batches of the batch's mean NLL per example. */
  nll: number;
  kl: number;
  /** Fraction correct so far (classification; NaN for regression). */
  accuracy: number;
  samplesPerSecond: number;
  elapsedSeconds: number;
  /** Each step's own figures since the previous onBatch call (of this epoch), in step order. */
  stepFigures: StepFigures[];
}

export interface EpochSummary {
  epoch: number;
  epochs: number;
  trainLoss: number;
  /** Mean over the batches of the batch's mean NLL per example. */
  trainNll: number;
  /** NaN for regression. */
  trainAccuracy: number;
  validLoss: number;
  /** NaN for regression (and without a validation split). */
  validAccuracy: number;
  validNll: number;
  kl: number;
  /**
   * The two terms of trainLoss apart (loss = N * mean NLL + beta * KL, train/elbo.ts): the data term
   * N * trainNll (N the training examples) and the mean over the steps of beta * KL (beta of each
   * step's schedule, in float64). Their sum is trainLoss up to the float32 rounding of each step's loss.
   */
  nllTerm: number;
  klTerm: number;
  /** kl / the number of weights with a posterior (each a (mu, rho) pair): comparable across model sizes; NaN without one. */
  klPerWeight: number;
  /** sigma = softplus(rho) per Bayesian layer at the epoch's end, weights and bias apart (reduced on the GPU, read with the epoch's figures); [] without one. */
  sigma: LayerSigma[];
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
  /** The summaries of the epochs completed, in order. */
  history: EpochSummary[];
  best: EpochSummary | null;
  /** The optimizer trained with (fit's own unless one was passed); null only when fit was aborted before it began and none was passed. */
  optimizer: Adam | null;
  /** Training steps done (the optimizer's update count, which keys the noise). */
  steps: number;
  /** The context the model lives on now: the one passed in, or the last one recoverDeviceLoss opened. */
  context: Context;
  /** Device losses survived (recoverDeviceLoss). */
  recoveries: number;
  /** Steps skipped as non-finite over the history (nonFinite 'skip'). */
  skippedSteps: number;
  /** The warnings of the run (FitOptions.onWarning), in the order raised. */
  warnings: FitWarning[];
  /**
   * 'aborted' when `signal` stopped fit before its last epoch was done (the model is then as the
   * last complete step left it, and the best epoch is not restored); null when it ran every epoch.
   */
  stopped: 'aborted' | null;
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

/** The data set as fit's loop sees it: one example's shape and size, and the targets (labels or y). */
interface Examples {
  x: Float32Array;
  targets: ArrayLike<number>;
  count: number;
  shape: readonly number[];
  per: number;
  regression: boolean;
}

/** Checks `data` against the model's task and shape; before any GPU work. */
function examplesOf(op: string, model: Sequential, data: TrainingData): Examples {
  if (data === null || typeof data !== 'object') throw argumentError(op, 'data', model.task === 'regression' ? '{ x, y, count, features }' : '{ x, labels, count, shape, classes }', data);
  const regression = model.task === 'regression';
  if (regression) {
    if (!('y' in data)) throw argumentError(op, 'data', "regression targets { x, y, count, features } (the model's task is 'regression')", `a data set with ${'labels' in data ? 'labels' : 'no y'}`);
    checkRegressionModel(op, model);
    checkRegressionData(op, model, data);
    const shape = regressionExampleShape(data);
    return { x: data.x, targets: data.y, count: data.count, shape, per: shape.reduce((a, b) => a * b, 1), regression };
  }
  if (!('labels' in data)) throw argumentError(op, 'data', "labelled examples { x, labels, count, shape, classes } (the model's task is 'classification')", `a data set with ${'y' in data ? 'targets y' : 'no labels'}`);
  checkDataset(op, 'data', model, data);
  return { x: data.x, targets: data.labels, count: data.count, shape: data.shape, per: data.shape.reduce((a, b) => a * b, 1), regression };
}

/** Copies examples `indices[from..to)` into a batch buffer. */
function gather(data: Examples, indices: Uint32Array, from: number, to: number, x: Float32Array, targets: Uint32Array | Float32Array): void {
  const per = data.per;
  for (let i = from; i < to; i++) {
    const j = indices[i];
    x.set(data.x.subarray(j * per, (j + 1) * per), (i - from) * per);
    targets[i - from] = data.targets[j];
  }
}

/** Batch tensors by batch size, reused across steps: x, and the labels (u32) or targets (f32). */
class BatchSlots {
  private readonly slots = new Map<number, { x: Tensor; y: Tensor; hx: Float32Array; hy: Uint32Array | Float32Array }>();
  constructor(private readonly ctx: Context, private readonly data: Examples) {}
  get(n: number) {
    let s = this.slots.get(n);
    if (!s) {
      const ctx = this.ctx;
      const regression = this.data.regression;
      s = {
        x: ctx.keep(ctx.empty([n, ...this.data.shape])), y: ctx.keep(ctx.empty([n], regression ? 'f32' : 'u32')),
        hx: new Float32Array(n * this.data.per), hy: regression ? new Float32Array(n) : new Uint32Array(n),
      };
      this.slots.set(n, s);
    }
    return s;
  }
  /** Fills the batch of examples indices[from..to) and writes it to the GPU. */
  fill(data: Examples, indices: Uint32Array, from: number, to: number, augment?: (x: Float32Array, count: number) => void) {
    const s = this.get(to - from);
    gather(data, indices, from, to, s.hx, s.hy);
    augment?.(s.hx, to - from);
    this.ctx.write(s.x, s.hx);
    this.ctx.write(s.y, s.hy);
    return s;
  }
  dispose(): void {
    for (const s of this.slots.values()) {
      s.x.dispose();
      s.y.dispose();
    }
  }
}

export function checkDataset(op: string, argument: string, model: Sequential, data: FloatDataset): void {
  const per = data.shape.reduce((a, b) => a * b, 1);
  if (data.x.length !== data.count * per || data.labels.length !== data.count) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' holds ${data.x.length} values and ${data.labels.length} labels for ${data.count} images of shape [${data.shape.join(', ')}]`);
  }
  if (data.shape.length !== model.inputShape.length || data.shape.some((d, i) => d !== model.inputShape[i])) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' has images of shape [${data.shape.join(', ')}] but the model expects [${model.inputShape.join(', ')}] (input channels ${model.inputShape[0]}, the data set has ${data.shape[0]})`);
  }
}

export interface EvaluateOptions {
  /** Examples per GPU batch (default 256). */
  batchSize?: number;
  /** Monte Carlo samples per example (default 1). */
  samples?: number;
  /** Sample from the posterior (default true) or use the posterior means. */
  sample?: boolean;
  /** Keep dropout on (MC dropout, Gal & Ghahramani 2016). */
  mcDropout?: boolean;
  seed?: number;
  /** Random key step of the first batch (default 0); a batch starting at example k uses step + k. */
  step?: number;
  /** The examples to evaluate (default: all). */
  indices?: Uint32Array;
}

const EVALUATE_OPTIONS = ['batchSize', 'samples', 'sample', 'mcDropout', 'seed', 'step', 'indices'];

/**
 * Mean NLL per example and accuracy over `data` (or its `indices`), MC-averaged over `samples`, in
 * eval mode (the model's mode is restored). Classification: the NLL of the MC-averaged predictive;
 * regression: the mean over the samples of the Gaussian NLL, as training scores it (accuracy NaN).
 * One readback in all.
 */
export async function evaluate(model: Sequential, data: TrainingData, options: EvaluateOptions = {}): Promise<{ nll: number; accuracy: number; count: number }> {
  const op = 'evaluate';
  checkModel(op, model);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ batchSize?, samples?, sample?, mcDropout?, seed?, step?, indices? }', options);
  checkOptionNames(op, options, EVALUATE_OPTIONS);
  const examples = examplesOf(op, model, data);
  const batchSize = checkInt(op, 'batchSize', options.batchSize ?? 256, 1);
  const samples = checkInt(op, 'samples', options.samples ?? 1, 1);
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  const step0 = checkInt(op, 'step', options.step ?? 0, 0);
  const indices = options.indices ?? Uint32Array.from({ length: examples.count }, (_, i) => i);
  if (!(indices instanceof Uint32Array) || indices.some((i) => i >= examples.count)) throw argumentError(op, 'indices', `a Uint32Array of example indices below ${examples.count}`, options.indices);
  if (indices.length === 0) throw argumentError(op, 'indices', 'at least one example', 'none');
  const ctx = model.ctx;
  const slots = new BatchSlots(ctx, examples);
  const nllSum = ctx.zeros([1]);
  const correct = ctx.zeros([1]);
  const totals = ctx.empty([2]);
  try {
    for (let from = 0; from < indices.length; from += batchSize) {
      const to = Math.min(from + batchSize, indices.length);
      const s = slots.fill(examples, indices, from, to);
      ctx.scope(() => {
        const o = { samples, sample: options.sample ?? true, mcDropout: options.mcDropout, seed, step: step0 + from };
        if (examples.regression) {
          addInto(nllSum, regressionEvalBatch(model, s.x, s.y, o));
        } else {
          const r = evalBatch(model, s.x, s.y, o);
          addInto(nllSum, r.nll);
          addInto(correct, r.correct);
        }
      });
    }
    // Both sums in one tensor, so the result costs one readback (sumInto of a [1] tensor copies it exactly).
    sumInto(nllSum, totals, { index: 0 });
    sumInto(correct, totals, { index: 1 });
    const [nll, right] = await totals.read();
    const n = indices.length;
    return { nll: nll / n, accuracy: examples.regression ? NaN : right / n, count: n };
  } finally {
    nllSum.dispose();
    correct.dispose();
    totals.dispose();
    slots.dispose();
  }
}

/** fit's settings, checked before any GPU work. */
interface FitSettings {
  data: TrainingData;
  examples: Examples;
  epochs: number;
  initialEpoch: number;
  batchSize: number;
  step: Omit<CheckedStep, 'beta' | 'trainSize'>;
  validSamples: number;
  validFraction: number;
  lr0: number;
  lrFinal: number;
  lrSchedule: 'linear' | 'constant';
  weightDecay: number;
  seed: number;
  schedule: BetaSchedule;
  reportEvery: number;
  reportSeconds: number;
  bestValidLoss: number;
  copyEvery: number;
  nonFinite: 'throw' | 'skip' | 'off';
  checkEvery: number;
  restoreBest: boolean;
  chanceSteps: number;
}

function checkFitOptions(model: Sequential, data: TrainingData, options: FitOptions): FitSettings {
  const op = 'fit';
  checkModel(op, model);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ epochs, batchSize, ... }', options);
  checkOptionNames(op, options, FIT_OPTIONS);
  const examples = examplesOf(op, model, data);
  const epochs = checkInt(op, 'epochs', options.epochs, 1);
  const initialEpoch = checkInt(op, 'initialEpoch', options.initialEpoch ?? 0, 0);
  if (initialEpoch >= epochs) throw argumentError(op, 'initialEpoch', `an integer below epochs (${epochs})`, initialEpoch);
  const batchSize = checkInt(op, 'batchSize', options.batchSize, 1);
  const samples = checkInt(op, 'samples', options.samples ?? 1, 1);
  const validSamples = checkInt(op, 'validSamples', options.validSamples ?? 1, 1);
  const validFraction = checkNumber(op, 'validFraction', options.validFraction ?? 0.2, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const lr0 = checkNumber(op, 'lr', options.lr ?? (options.optimizer instanceof Adam ? options.optimizer.lr : 1e-3), (v) => v > 0 && Number.isFinite(v), 'a positive number');
  const weightDecay = checkNumber(op, 'weightDecay', options.weightDecay ?? 0, (v) => v >= 0 && Number.isFinite(v), 'a number >= 0');
  const lrSchedule = checkOneOf(op, 'lrSchedule', options.lrSchedule ?? 'constant', ['linear', 'constant'] as const);
  const lrFinal = checkNumber(op, 'lrFinalFraction', options.lrFinalFraction ?? 0.1, (v) => v >= 0 && v <= 1, 'a fraction in [0, 1]');
  const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
  const schedule = options.beta ?? DEFAULT_BETA;
  betaAt(schedule, 0, 1); // validates the schedule
  const reportEvery = checkInt(op, 'reportEvery', options.reportEvery ?? 10, 1);
  const reportSeconds = checkNumber(op, 'reportSeconds', options.reportSeconds ?? 0.25, (v) => v >= 0 && Number.isFinite(v), 'a number of seconds >= 0');
  const bestValidLoss = checkNumber(op, 'bestValidLoss', options.bestValidLoss ?? Infinity, (v) => !Number.isNaN(v), 'a number');
  const copyEvery = options.keepCpuCopyEvery === undefined ? 0 : checkInt(op, 'keepCpuCopyEvery', options.keepCpuCopyEvery, 1);
  const nonFinite = checkOneOf(op, 'nonFinite', options.nonFinite ?? 'throw', ['throw', 'skip', 'off'] as const);
  const checkEvery = checkInt(op, 'nonFiniteCheckEvery', options.nonFiniteCheckEvery ?? 0, 0);
  if (options.restoreBest !== undefined && typeof options.restoreBest !== 'boolean') throw argumentError(op, 'restoreBest', 'true or false', options.restoreBest);
  const chanceSteps = checkInt(op, 'chanceWarningSteps', options.chanceWarningSteps ?? DEFAULT_CHANCE_WARNING_STEPS, 0);
  for (const name of ['augment', 'onBatch', 'onEpoch', 'onCpuCopy', 'onWarning'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw argumentError(op, name, 'a function', options[name]);
  }
  const signal = options.signal;
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) throw argumentError(op, 'signal', 'an AbortSignal', signal);
  if (options.optimizer !== undefined) {
    if (!(options.optimizer instanceof Adam)) throw argumentError(op, 'optimizer', 'an Adam optimizer of the model', options.optimizer);
    const params = model.namedParameters();
    for (const [name, p] of options.optimizer.parameters) {
      if (params.get(name) !== p) throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'optimizer' updates parameter '${name}', which is not a parameter of this model`);
    }
  }
  const { train } = splitTrainValid(examples.count, validFraction, seed);
  if (train.length === 0) throw new BayesError('INVALID_ARGUMENT', `${op}: no training examples left after holding out ${validFraction} for validation`);
  return {
    data, examples, epochs, initialEpoch, batchSize, step: { samples, seed }, validSamples, validFraction, lr0, lrFinal, lrSchedule, weightDecay, seed, schedule,
    reportEvery, reportSeconds, bestValidLoss, copyEvery, nonFinite, checkEvery, restoreBest: options.restoreBest ?? true, chanceSteps,
  };
}

/**
 * Trains `model` on `data` with the loss of its task (classification: the seed's ELBO over the
 * log-mean-exp of T samples; regression: N * Gaussian NLL + beta * KL), by Adam over shuffled batches,
 * one trainStep each: per epoch, train, validate on the held-out split, keep the parameters with the
 * lowest validation loss. Frequentist and MC dropout models train the same way (their KL is 0).
 * See FitOptions for the callbacks, cancellation (`signal`), the non-finite guard and device loss.
 */
export async function fit(model: Sequential, data: TrainingData, options: FitOptions): Promise<FitResult> {
  const settings = checkFitOptions(model, data, options);
  const ctx = model.ctx;
  if (options.signal?.aborted) {
    // Nothing was done: no optimizer made, no tensor allocated.
    const resume = options.resumeFrom?.progress ?? null;
    const history = resume ? [...resume.history] : [];
    return {
      history, best: resume?.best ?? null, optimizer: options.optimizer ?? null, steps: options.optimizer?.step ?? 0, context: ctx, recoveries: 0,
      skippedSteps: history.reduce((a, e) => a + e.skippedSteps, 0), warnings: [...(resume?.warnings ?? [])], stopped: 'aborted',
    };
  }
  if (!options.recoverDeviceLoss) return fitFrom(ctx, model, settings, options);
  const optimizer = options.optimizer ?? new Adam(model, { lr: settings.lr0, weightDecay: settings.weightDecay });
  try {
    return await fitRecovering(ctx, model, settings, options, optimizer);
  } catch (e) {
    // An optimizer fit made cannot reach the caller: free it.
    if (!options.optimizer) optimizer.dispose();
    throw e;
  }
}

async function fitRecovering(ctx: Context, model: Sequential, settings: FitSettings, options: FitOptions, optimizer: Adam): Promise<FitResult> {
  const first = options.resumeFrom ?? (await takeSnapshot<FitProgress>(model, optimizer));
  const r = await runRecovering(ctx, model, optimizer, options.recoverDeviceLoss!, first, (current, from, keep) =>
    fitFrom(current, model, settings, {
      ...options, optimizer, resumeFrom: from,
      onCpuCopy: (copy) => {
        keep(copy);
        options.onCpuCopy?.(copy);
      },
    }, options.keepCpuCopyEvery ?? 100),
  );
  return { ...r.value, recoveries: r.recoveries };
}

async function fitFrom(ctx: Context, model: Sequential, settings: FitSettings, options: FitOptions, copyEveryOverride?: number): Promise<FitResult> {
  const { examples, epochs, initialEpoch, batchSize, validSamples, validFraction, lr0, lrFinal, seed, schedule, bestValidLoss, nonFinite, checkEvery, restoreBest } = settings;
  const copyEvery = copyEveryOverride ?? settings.copyEvery;
  const resume = options.resumeFrom?.progress ?? null;
  const signal = options.signal;
  const { train, valid } = splitTrainValid(examples.count, validFraction, seed);
  const trainSize = train.length;
  const batches = Math.ceil(trainSize / batchSize);
  const optimizer = options.optimizer ?? new Adam(model, { lr: lr0, weightDecay: settings.weightDecay });
  const slots = new BatchSlots(ctx, examples);
  // The non-finite guard: slot 0 the loss, slot 1 + j the gradient of the optimizer's parameter j.
  const slotNames = ['loss', ...optimizer.parameters.keys()];
  const guard: StepGuard | null = nonFinite === 'off' ? null : { flags: ctx.keep(nonFiniteFlags(ctx, slotNames.length)), mode: nonFinite === 'skip' ? 'skip' : 'hold' };
  const flagWords = guard ? guard.flags.size : 0;
  // Step b's loss, NLL, KL and correct count in slots 4b .. 4b + 3, for one epoch (trainStep's figures);
  // then the guard's flags as 16-bit halves (flagsIntoF32), written just before each read.
  // Then sigma = softplus(rho) statistics of each variational tensor (src/train/diagnostics.ts), written
  // after the epoch's last step and read with its figures (no read of their own).
  const probe = sigmaProbe(model);
  const sigmaAt = 4 * batches + 2 * flagWords;
  const stats = ctx.keep(ctx.empty([sigmaAt + (probe?.size ?? 0)]));
  // The parameters of the best epoch so far, as GPU copies (made lazily, on the first improvement).
  const bestParams = new Map<string, Tensor>();
  const pacer = new ReportPacer(settings.reportEvery, settings.reportSeconds);
  const rng = resume ? cloneRng(resume.rng) : new Rng(seed + 1);
  const augment = options.augment ? (x: Float32Array, n: number) => options.augment!(x, n, rng) : undefined;
  const history: EpochSummary[] = resume ? [...resume.history] : [];
  let best: EpochSummary | null = resume?.best ?? null;
  const firstStep = optimizer.step;
  // Steps found non-finite since this call began, as of the last read of the flags.
  let nonFiniteCount = 0;
  // The best epoch's parameters on the CPU too, for the copies (only with keepCpuCopyEvery).
  let bestCpu = resume?.bestParams ?? null;
  if (bestCpu && restoreBest) for (const [name, p] of model.namedParameters()) bestParams.set(name, ctx.keep(ctx.tensor(bestCpu.get(name)!, p.value.shape)));
  let stopped: 'aborted' | null = null;
  const warnings: FitWarning[] = [...(resume?.warnings ?? [])];
  const watch = new WarningWatch({
    regression: examples.regression, classes: examples.regression ? 0 : (settings.data as FloatDataset).classes,
    majorityShare: examples.regression ? 0 : majorityShare(examples.targets, train), chanceSteps: settings.chanceSteps, trainSize, raised: warnings.map((w) => w.code),
  });
  const weights = variationalWeightCount(model);

  try {
    epochs: for (let epoch = resume?.epoch ?? initialEpoch; epoch < epochs; epoch++) {
      const resumed = resume && epoch === resume.epoch ? resume : null;
      optimizer.lr = settings.lrSchedule === 'constant' ? lr0 : lr0 * (1 - (1 - lrFinal) * (epochs > 1 ? epoch / (epochs - 1) : 0));
      const order = permutation(trainSize, seed + 1000 + epoch).map((i) => train[i]);
      const started = performance.now();
      pacer.restart(started);
      let lossSum = resumed?.lossSum ?? 0;
      let nllSum = resumed?.nllSum ?? 0;
      let klSum = resumed?.klSum ?? 0;
      let klTermSum = !resumed ? 0 : resumed.klTermSum ?? (typeof schedule === 'number' ? schedule * klSum : NaN);
      let correctSum = resumed?.correctSum ?? 0;
      let added = resumed?.batch ?? 0; // steps whose figures are in the sums
      let seen = resumed?.seen ?? 0;
      // The epoch's first step (the key's counter), steps skipped before this call's flags began, and the
      // steps left out of the sums because their loss was non-finite (nonFinite 'skip'), with their examples.
      const epochFirstStep = optimizer.step - (resumed?.batch ?? 0);
      const skippedBase = nonFiniteCount - (resumed?.skippedSteps ?? 0);
      let dropped = resumed?.droppedSteps ?? 0;
      let droppedExamples = resumed?.droppedExamples ?? 0;
      // Each step's own figures since the last onBatch (only kept with onBatch).
      let pending: StepFigures[] = [];
      // The epoch's sigma figures, from the read that covers its last step.
      let sigma: LayerSigma[] | null = probe ? null : [];
      // What the flags say: count the skipped steps, and with 'throw' stop at the first non-finite step.
      const inspect = (words: ArrayLike<number>) => {
        const record = decodeNonFiniteFlags(words);
        nonFiniteCount = record.count;
        if (nonFinite === 'throw' && record.first !== null) {
          // No update was applied from that step on (the gate is sticky): the optimizer's t is set back to match.
          const after = optimizer.step - 1 - record.first;
          optimizer.step = record.first;
          throw nonFiniteError(record, slotNames, { epoch, epochs, batch: record.first - epochFirstStep, batches, after, atStart: record.first === firstStep });
        }
      };
      // One readback of the epoch's slots; the steps not yet added are added in order, in float64, as
      // they were when every step's figures were read, so the figures are the same to the bit.
      const drain = async (done: number) => {
        if (added >= done) return;
        if (guard) flagsIntoF32(guard.flags, stats, { offset: 4 * batches });
        const last = done === batches && probe !== null;
        if (last) probe!.record(stats, sigmaAt);
        const v = await stats.read();
        if (last) sigma = probe!.decode(v, sigmaAt);
        for (; added < done; added++) {
          const count = Math.min(batchSize, trainSize - added * batchSize);
          if (options.onBatch) {
            pending.push({ step: epochFirstStep + added, count, loss: v[4 * added], nll: v[4 * added + 1], kl: v[4 * added + 2], correct: examples.regression ? null : v[4 * added + 3] });
          }
          if (guard && !Number.isFinite(v[4 * added])) {
            dropped++;
            droppedExamples += count;
            continue;
          }
          lossSum += v[4 * added];
          nllSum += v[4 * added + 1];
          klSum += v[4 * added + 2];
          klTermSum += betaAt(schedule, added, batches, epoch, epochs) * v[4 * added + 2];
          if (!examples.regression) correctSum += v[4 * added + 3];
        }
        if (guard) inspect(flagWordsFromF32(v, 4 * batches, flagWords));
      };
      for (let b = resumed?.batch ?? 0; b < batches; b++) {
        // Between steps: an abort leaves the model as the last complete step made it.
        if (signal?.aborted) {
          stopped = 'aborted';
          // A non-finite step before the abort still stops fit with its error ('throw').
          if (guard && nonFinite === 'throw') inspect(await guard.flags.read());
          break epochs;
        }
        const from = b * batchSize;
        const to = Math.min(from + batchSize, trainSize);
        const s = slots.fill(examples, order, from, to, augment);
        const beta = betaAt(schedule, b, batches, epoch, epochs);
        trainStepInto(model, optimizer, s.x, s.y, { ...settings.step, beta, trainSize }, { figures: stats, offset: 4 * b, guard });
        // With tuning 'auto' (GPUs) a kernel shape seen for the first time runs a default variant
        // until the next read or sync measures the variants. Sync at once (a few times per fit), so
        // that which steps run which variant does not depend on when progress happens to be read.
        if (ctx.tuner.hasPending) await ctx.sync();
        seen += to - from;
        const step = optimizer.step;
        if (guard && nonFinite === 'throw' && checkEvery > 0 && step % checkEvery === 0) inspect(await guard.flags.read());
        if (copyEvery > 0 && step % copyEvery === 0) {
          await drain(b + 1);
          const progress: FitProgress = {
            epoch, batch: b + 1, lossSum, nllSum, klSum, klTermSum, correctSum, seen, history: [...history], warnings: [...warnings], best, bestParams: bestCpu, rng: cloneRng(rng),
            skippedSteps: nonFiniteCount - skippedBase, droppedSteps: dropped, droppedExamples,
          };
          options.onCpuCopy?.(await takeSnapshot(model, optimizer, progress));
        }
        if (options.onBatch && (pacer.due(b + 1) || b === batches - 1)) {
          await drain(b + 1);
          pacer.read(b + 1, performance.now());
          const elapsed = (performance.now() - started) / 1000;
          const counted = b + 1 - dropped;
          const stepFigures = pending;
          pending = [];
          await options.onBatch({
            epoch, batch: b + 1, batches, loss: lossSum / counted, nll: nllSum / counted, kl: klSum / counted,
            accuracy: examples.regression ? NaN : correctSum / (seen - droppedExamples), samplesPerSecond: seen / elapsed, elapsedSeconds: elapsed, stepFigures,
          });
        }
      }
      if (added < batches) await drain(batches);
      if (signal?.aborted) {
        // Every step of the epoch is done; its validation and summary are not.
        stopped = 'aborted';
        break;
      }
      const seconds = (performance.now() - started) / 1000;
      // Only a run resumed from a copy taken at the epoch's last step gets here without the sigma figures: one read of them.
      if (probe && sigma === null) {
        probe.record(stats, sigmaAt);
        sigma = probe.decode(await stats.read(), sigmaAt);
      }
      const v = valid.length > 0 ? await evaluate(model, settings.data, { batchSize, samples: validSamples, seed, step: 1 << 30, indices: valid }) : { nll: NaN, accuracy: NaN };
      // The figures are over the steps whose loss was finite: all of them unless nonFinite 'skip' skipped some.
      const counted = batches - dropped;
      const kl = klSum / counted;
      // The seed's validation loss: the ELBO on the held-out set with the epoch's mean beta.
      const meanBeta = typeof schedule === 'number' ? schedule : Array.from({ length: batches }, (_, b) => betaAt(schedule, b, batches, epoch, epochs)).reduce((a, c) => a + c, 0) / batches;
      const validLoss = valid.length > 0 ? v.nll * trainSize + meanBeta * kl : lossSum / counted;
      const improved = validLoss <= (best?.validLoss ?? bestValidLoss);
      const summary: EpochSummary = {
        epoch: epoch + 1, epochs, trainLoss: lossSum / counted, trainNll: nllSum / counted,
        trainAccuracy: examples.regression ? NaN : correctSum / (trainSize - droppedExamples), validLoss, validAccuracy: v.accuracy, validNll: v.nll,
        kl, nllTerm: (nllSum / counted) * trainSize, klTerm: klTermSum / counted, klPerWeight: weights > 0 ? kl / weights : NaN, sigma: sigma ?? [],
        lr: optimizer.lr, seconds, samplesPerSecond: trainSize / seconds, improved, skippedSteps: nonFiniteCount - skippedBase,
      };
      if (improved) {
        best = summary;
        if (restoreBest) {
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
      }
      history.push(summary);
      await options.onEpoch?.(summary);
      for (const w of watch.check(summary, optimizer.step, trainSize - droppedExamples)) {
        warnings.push(w);
        await options.onWarning?.(w);
      }
    }
    // Keep the model with the lowest validation loss, as the seed saves it (if no epoch beat
    // `bestValidLoss`, the model is left as the last epoch made it and `best` is null). An aborted fit
    // leaves the model as its last step made it.
    if (best && restoreBest && !stopped) for (const [name, p] of model.namedParameters()) ctx.copy(bestParams.get(name)!, p.value);
    return { history, best, optimizer, steps: optimizer.step, context: ctx, recoveries: 0, skippedSteps: history.reduce((a, e) => a + e.skippedSteps, 0), warnings, stopped };
  } catch (e) {
    // An optimizer fit made cannot reach the caller: free it.
    if (!options.optimizer) optimizer.dispose();
    throw e;
  } finally {
    stats.dispose();
    guard?.flags.dispose();
    for (const t of bestParams.values()) t.dispose();
    slots.dispose();
  }
}

/** The most frequent class's share of the examples `indices` (what a constant guess scores). */
function majorityShare(labels: ArrayLike<number>, indices: Uint32Array): number {
  const counts = new Map<number, number>();
  let most = 0;
  for (const i of indices) {
    const c = (counts.get(labels[i]) ?? 0) + 1;
    counts.set(labels[i], c);
    if (c > most) most = c;
  }
  return indices.length > 0 ? most / indices.length : 0;
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
