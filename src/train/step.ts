/**
 * One training step and one evaluation pass, written out in order: no hidden
 * tape. The T Monte Carlo samples run as one GPU batch of T * B.
 *
 * The two step bodies, chosen by the model's task:
 * - classification: the T log-softmax outputs are combined by log-mean-exp as the seed does
 *   (train_model: `log_outputs = utils.logmeanexp(outputs, dim=2)`), loss = N * NLL + beta * KL;
 * - regression: loss = N * mean Gaussian NLL + beta * KL (Blundell et al. 2015, eq. 1-2;
 *   src/train/regression.ts).
 *
 * `trainStep` is public and is the step `fit` runs. It does the bookkeeping: the random key's step is
 * the optimizer's update count (Adam.step, which the update advances), the model is put in training
 * mode for the step and left in the mode it had, and the step's figures stay on the GPU in one small
 * tensor that the optimizer owns (freed by the next trainStep or optimizer.dispose()), so nothing is
 * read per step unless the caller asks: `await result.read()`.
 */
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, checkNumber, shapeError } from '../errors.js';
import { addInto, scale } from '../ops/elementwise.js';
import { checkFiniteInto, countNonFiniteStep, nonFiniteGate } from '../ops/finite.js';
import { correctCount, logMeanExp, logMeanExpBackward, logSoftmax, logSoftmaxBackward, nllLoss, nllLossBackward } from '../ops/loss.js';
import { sumInto } from '../ops/reduce.js';
import { Sequential } from '../nn/sequential.js';
import { Adam } from './adam.js';
import { checkRegressionTargets, regressionLossAndGradients } from './regression.js';

/** The KL weight when none is given (fit, trainStep): the seed's CLI default. */
export const DEFAULT_BETA = 0.1;

export interface StepOptions {
  /** Monte Carlo samples per example (the seed's num_ens / train_ens; default 1). */
  samples?: number;
  /** KL weight of this step (default 0.1, DEFAULT_BETA). */
  beta?: number;
  /** N, the number of training examples: the batch's mean NLL is scaled to the whole set (default: the batch size). */
  trainSize?: number;
  /** Seed of the random key (seed, step); the step is the optimizer's update count. Default 0. */
  seed?: number;
}

/** What a step computed, read back as plain numbers. */
export interface StepFigures {
  /** The step's random key step: the optimizer's update count before it (0 for the first). */
  step: number;
  /** Examples in the batch. */
  count: number;
  /** N * NLL + beta * KL. */
  loss: number;
  /** Mean NLL per example: of the MC-averaged predictive (classification) or the mean Gaussian NLL over the T samples (regression). */
  nll: number;
  /** KL(q || p), 0 for a frequentist model. */
  kl: number;
  /** Correct predictions in the batch (classification), null for regression. */
  correct: number | null;
}

/**
 * What trainStep returns. Nothing to dispose: `figures` belongs to the optimizer and is freed by its
 * next trainStep (or optimizer.dispose()), so read it before then. Reading is one GPU sync.
 */
export interface StepResult {
  /** The step's random key step (the optimizer's update count before it). */
  step: number;
  /** Examples in the batch. */
  count: number;
  /** [4] on the GPU: loss, nll, kl, correct (0 for regression). */
  figures: Tensor;
  /** One readback of `figures`. */
  read(): Promise<StepFigures>;
}

/**
 * A flag tensor of src/ops/finite.ts with 1 + P slots: slot 0 for the loss, slot 1 + j for the
 * gradient of the optimizer's parameter j (Adam.parameters order). Internal: fit's `nonFinite`.
 */
export interface StepGuard {
  flags: Tensor<'u32'>;
  /**
   * 'skip': a non-finite step's update is not applied, later steps are. 'hold': neither is any step
   * after the first non-finite one, so the model keeps the values of the last finite step until the
   * caller reads the flags and stops (fit's 'throw').
   */
  mode: 'skip' | 'hold';
}

/** The step's settings, checked. */
export interface CheckedStep {
  samples: number;
  beta: number;
  trainSize: number;
  seed: number;
}

const STEP_OPTIONS = ['samples', 'beta', 'trainSize', 'seed'];

/** Throws unless `options` holds only the names in `known` (a misspelt option would be ignored silently). */
export function checkOptionNames(op: string, options: object, known: readonly string[]): void {
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      const hint = name === 'trainSamples' ? " (the training Monte Carlo samples are 'samples')" : name === 'step' ? ' (the step is the optimizer\'s update count, Adam.step)' : '';
      throw new BayesError('INVALID_ARGUMENT', `${op}: unknown option '${name}'${hint}; expected one of ${known.map((k) => `'${k}'`).join(', ')}`);
    }
  }
}

export function checkStepOptions(op: string, options: StepOptions | undefined, batch: number): CheckedStep {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ samples?, beta?, trainSize?, seed? }', options);
  checkOptionNames(op, options, STEP_OPTIONS);
  return {
    samples: checkInt(op, 'samples', options.samples ?? 1, 1),
    beta: checkNumber(op, 'beta', options.beta ?? DEFAULT_BETA, (v) => v >= 0 && Number.isFinite(v), 'a number >= 0'),
    trainSize: checkInt(op, 'trainSize', options.trainSize ?? batch, 1),
    seed: checkInt(op, 'seed', options.seed ?? 0, 0),
  };
}

/** Throws unless `model` is a model (built on a context). */
export function checkModel(op: string, model: Sequential): void {
  if (!(model instanceof Sequential) || !model.isModel) throw argumentError(op, 'model', 'a model (new Sequential(ctx, layers, { inputShape }) or a named model)', model);
}

/** Checks a batch for the model's task: x [B, ...inputShape]; labels u32 [B] (classification) or targets [B] (regression). */
export function checkBatch(op: string, model: Sequential, x: Tensor, y: Tensor): number {
  const ctx = model.ctx;
  ctx.own(op, 'x', x);
  model.checkInput(op, x);
  if (model.task === 'regression') {
    checkRegressionTargets(op, model, x, y);
    return x.shape[0];
  }
  ctx.own(op, 'labels', y);
  if (y.dtype !== 'u32') throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'labels' expected dtype u32, got ${y.dtype}`);
  if (y.shape.length !== 1 || y.shape[0] !== x.shape[0]) throw shapeError(op, 'labels', `[${x.shape[0]}] (one label per image)`, y.shape);
  return x.shape[0];
}

/** The four [1] figures of a step body; the first three of every task, `correct` of classification only. */
export interface StepTensors {
  loss: Tensor;
  nll: Tensor;
  kl: Tensor;
  correct: Tensor | null;
}

/** Runs `fn` in training mode and puts the model back in the mode it had. */
export function inTrainingMode<T>(model: Sequential, fn: () => T): T {
  const wasTraining = model.training;
  model.train();
  try {
    return fn();
  } finally {
    if (!wasTraining) model.eval();
  }
}

/**
 * The classification body: forward, ELBO loss, backward and the beta-weighted KL gradient; afterwards
 * every trainable parameter's `grad` holds d loss / d parameter. The returned tensors survive; every
 * intermediate is freed. In training mode for the step (the mode is restored). Internal: trainStep runs it.
 */
export function lossAndGradients(model: Sequential, x: Tensor, labels: Tensor, o: CheckedStep & { step: number }): StepTensors {
  const ctx = model.ctx;
  return inTrainingMode(model, () => ctx.scope(() => {
    const { samples, beta, trainSize } = o;
    const { logits, kl, pass } = model.run(x, { samples, seed: o.seed, step: o.step });
    const logp = logSoftmax(logits); // [T * B, C]
    const combined = samples > 1 ? logMeanExp(logp, { samples }) : logp; // [B, C]
    const nll = nllLoss(combined, labels);
    const loss = scale(nll, trainSize);
    if (kl) addInto(loss, kl, beta);

    // d loss / d combined = trainSize * d meanNLL / d combined
    const dCombined = nllLossBackward(combined, labels, { scale: trainSize });
    const dLogp = samples > 1 ? logMeanExpBackward(dCombined, logp, combined, { samples }) : dCombined;
    const dLogits = logSoftmaxBackward(dLogp, logp);
    model.backward(dLogits, pass);
    if (kl && beta > 0) model.klBackward(pass, beta);
    return { loss, nll, kl: kl ?? ctx.zeros([1]), correct: correctCount(combined, labels) };
  }));
}

/**
 * trainStep's body, checked already: the task's loss and gradients, then one Adam update, with the
 * figures written into `figures` at [offset, offset + 4) (loss, nll, kl, correct; correct is left
 * as it is for regression). With `guard`, between the two the loss and every gradient are checked for
 * NaN and infinities on the GPU (no readback), and the update is applied only if the guard's gate is
 * open (see StepGuard); it changes nothing else, so a finite step computes the same bits with or
 * without it. Internal: fit writes every step's figures into one per-epoch tensor this way.
 */
export function trainStepInto(
  model: Sequential, optimizer: Adam, x: Tensor, y: Tensor, o: CheckedStep,
  into: { figures: Tensor; offset: number; guard?: StepGuard | null },
): void {
  const ctx = model.ctx;
  const step = optimizer.step;
  ctx.scope(() => {
    const r = model.task === 'regression' ? regressionLossAndGradients(model, x, y, { ...o, step }) : lossAndGradients(model, x, y, { ...o, step });
    const guard = into.guard;
    if (!guard) {
      optimizer.update();
    } else {
      const checked = [r.loss];
      for (const [name, p] of optimizer.parameters) {
        if (!p.grad) throw new BayesError('INVALID_ARGUMENT', `trainStep: parameter '${name}' has no gradient; run backward first`);
        checked.push(p.grad);
      }
      checkFiniteInto(checked, guard.flags, { slot: 0, step });
      countNonFiniteStep(guard.flags, { step });
      optimizer.update(nonFiniteGate(guard.flags, step, guard.mode === 'hold'));
    }
    // sumInto of a [1] tensor copies its value exactly.
    sumInto(r.loss, into.figures, { index: into.offset });
    sumInto(r.nll, into.figures, { index: into.offset + 1 });
    sumInto(r.kl, into.figures, { index: into.offset + 2 });
    if (r.correct) sumInto(r.correct, into.figures, { index: into.offset + 3 });
  });
}

/**
 * One training step of `model` on the batch (x, y) with `optimizer`: the loss of the model's task and
 * its gradients, then one Adam update. x: [B, ...inputShape]; y: the labels (u32 [B]) of a
 * classifier or the targets (f32 [B]) of a regression model. The random key is (seed, optimizer.step),
 * so two calls draw new noise without a counter of the caller's. The model is in training mode for
 * the step and left in the mode it had. Nothing is read back: the figures stay on the GPU until
 * `await result.read()`, and nothing needs disposing (see StepResult). Every check comes before any
 * GPU work: a failed call changes neither the model nor the optimizer.
 */
export function trainStep(model: Sequential, optimizer: Adam, x: Tensor, y: Tensor, options?: StepOptions): StepResult {
  const op = 'trainStep';
  checkModel(op, model);
  if (!(optimizer instanceof Adam)) throw argumentError(op, 'optimizer', 'an Adam optimizer of the model (new Adam(model, { lr }))', optimizer);
  const params = model.namedParameters();
  for (const [name, p] of optimizer.parameters) {
    if (params.get(name) !== p) throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'optimizer' updates parameter '${name}', which is not a parameter of this model`);
  }
  const count = checkBatch(op, model, x, y);
  const o = checkStepOptions(op, options, count);
  const ctx = model.ctx;
  const step = optimizer.step;
  const figures = ctx.keep(ctx.zeros([4]));
  try {
    trainStepInto(model, optimizer, x, y, o, { figures, offset: 0 });
  } catch (e) {
    figures.dispose();
    throw e;
  }
  optimizer.stepFigures?.dispose();
  optimizer.stepFigures = figures;
  const regression = model.task === 'regression';
  return {
    step, count, figures,
    read: async () => {
      if (figures.disposed) throw new BayesError('INVALID_ARGUMENT', `trainStep: the figures of step ${step} were freed by a later step (or optimizer.dispose()); read them before the next trainStep`);
      const [loss, nll, kl, correct] = await figures.read();
      return { step, count, loss, nll, kl, correct: regression ? null : correct };
    },
  };
}

export interface EvalOptions {
  samples: number;
  /** Sample from the posterior (true) or use the posterior means (false). */
  sample?: boolean;
  mcDropout?: boolean;
  seed: number;
  step: number;
}

/** MC-averaged log-probabilities [B, C] of a batch, in eval mode (the mode is restored). Internal: evaluate's. */
export function predictLogProbs(model: Sequential, x: Tensor, o: EvalOptions): Tensor {
  const requested = checkInt('predict', 'samples', o.samples, 1);
  // A deterministic pass (no variational layer, or posterior means, and no MC dropout) gives T
  // identical copies, whose log-mean-exp is the one pass: run it once.
  const samples = (!model.isBayesian || o.sample === false) && !o.mcDropout ? 1 : requested;
  const wasTraining = model.training;
  model.eval();
  try {
    return model.ctx.scope(() => {
      const { logits } = model.run(x, { samples, sample: o.sample ?? true, mcDropout: o.mcDropout, seed: o.seed, step: o.step, kl: false });
      const logp = logSoftmax(logits);
      return samples > 1 ? logMeanExp(logp, { samples }) : logp;
    });
  } finally {
    if (wasTraining) model.train();
  }
}

/** Summed NLL and correct count of a classification batch: [1] tensors, to be accumulated without readbacks. Internal: evaluate's. */
export function evalBatch(model: Sequential, x: Tensor, labels: Tensor, o: EvalOptions): { nll: Tensor; correct: Tensor } {
  const n = checkBatch('evaluate', model, x, labels);
  return model.ctx.scope(() => {
    const logp = predictLogProbs(model, x, o);
    return { nll: scale(nllLoss(logp, labels), n), correct: correctCount(logp, labels) };
  });
}
