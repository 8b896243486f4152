/**
 * The training loop of PyTorch-BayesianCNN's main_bayesian.py: per epoch, train
 * with the ELBO over shuffled batches, validate, keep the parameters with the
 * lowest validation loss; Adam with a linear learning-rate decay.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber } from '../errors.js';
import type { Sequential } from '../nn/sequential.js';
import { Adam } from './adam.js';
import { type BetaSchedule, beta as betaAt } from './elbo.js';
import { type StepResult, evalBatch, trainStep } from './step.js';
import { addInto } from '../ops/elementwise.js';
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
  /** Progress after every `reportEvery` batches (reading values back costs a GPU sync). */
  onBatch?: (p: BatchProgress) => void;
  reportEvery?: number;
  onEpoch?: (e: EpochSummary) => void | Promise<void>;
}

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
    const n = indices.length;
    return { nll: (await nllSum.read())[0] / n, accuracy: (await correct.read())[0] / n, count: n };
  } finally {
    nllSum.dispose();
    correct.dispose();
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
  const bestValidLoss = checkNumber(op, 'bestValidLoss', options.bestValidLoss ?? Infinity, (v) => !Number.isNaN(v), 'a number');

  const { train, valid } = splitTrainValid(data.count, validFraction, seed);
  if (train.length === 0) throw new BayesError('INVALID_ARGUMENT', `${op}: no training examples left after holding out ${validFraction} for validation`);
  const trainSize = train.length;
  const batches = Math.ceil(trainSize / batchSize);
  const optimizer = options.optimizer ?? new Adam(ctx, model.namedParameters(), { lr: lr0 });
  const slots = new BatchSlots(ctx, data.shape);
  const rng = new Rng(seed + 1);
  const history: EpochSummary[] = [];
  let best: EpochSummary | null = null;
  let bestParams: Map<string, Float32Array> | null = null;
  let step = optimizer.step;

  try {
    for (let epoch = initialEpoch; epoch < epochs; epoch++) {
      optimizer.lr = (options.lrSchedule ?? 'constant') === 'constant' ? lr0 : lr0 * (1 - (1 - lrFinal) * (epochs > 1 ? epoch / (epochs - 1) : 0));
      const order = permutation(trainSize, seed + 1000 + epoch).map((i) => train[i]);
      const started = performance.now();
      let pending: StepResult[] = [];
      let lossSum = 0;
      let klSum = 0;
      let correctSum = 0;
      let seen = 0;
      const drain = async () => {
        for (const r of pending) {
          lossSum += (await r.loss.read())[0];
          klSum += (await r.kl.read())[0];
          correctSum += (await r.correct.read())[0];
          for (const t of Object.values(r)) t.dispose();
        }
        pending = [];
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
        const r = trainStep(ctx, model, optimizer, s.x, s.labels, { samples: trainSamples, beta, trainSize, seed, step: step++ });
        for (const t of Object.values(r)) ctx.keep(t);
        pending.push(r);
        seen += to - from;
        if ((b + 1) % reportEvery === 0 || b === batches - 1) {
          await drain();
          const elapsed = (performance.now() - started) / 1000;
          options.onBatch?.({ epoch, batch: b + 1, batches, loss: lossSum / (b + 1), kl: klSum / (b + 1), accuracy: correctSum / seen, samplesPerSecond: seen / elapsed, elapsedSeconds: elapsed });
        }
      }
      await drain();
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
        bestParams = new Map();
        for (const [name, p] of model.namedParameters()) bestParams.set(name, (await p.value.read()) as Float32Array);
      }
      history.push(summary);
      await options.onEpoch?.(summary);
    }
    // Keep the model with the lowest validation loss, as the seed saves it (if no epoch beat
    // `bestValidLoss`, the model is left as the last epoch made it and `best` is null).
    if (bestParams) for (const [name, p] of model.namedParameters()) ctx.write(p.value, bestParams.get(name)!);
    return { history, best, optimizer, steps: step };
  } finally {
    slots.dispose();
  }
}
