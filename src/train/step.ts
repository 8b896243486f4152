/**
 * One training step and one evaluation pass, written out in order: no hidden
 * tape. The T Monte Carlo samples run as one GPU batch of T * B; their
 * log-softmax outputs are combined by log-mean-exp as the seed does
 * (train_model: `log_outputs = utils.logmeanexp(outputs, dim=2)`).
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, checkInt, checkNumber, shapeError } from '../errors.js';
import { addInto, scale } from '../ops/elementwise.js';
import { checkFiniteInto, countNonFiniteStep, nonFiniteGate } from '../ops/finite.js';
import { correctCount, logMeanExp, logMeanExpBackward, logSoftmax, logSoftmaxBackward, nllLoss, nllLossBackward } from '../ops/loss.js';
import type { Sequential } from '../nn/sequential.js';
import type { Adam } from './adam.js';

export interface StepOptions {
  /** Monte Carlo samples per example (the seed's num_ens / train_ens). */
  samples: number;
  /** KL weight of this step. */
  beta: number;
  /** Number of training examples: the NLL of the batch mean is scaled to the whole set. */
  trainSize: number;
  seed: number;
  step: number;
  /**
   * The non-finite guard (fit's `nonFinite` option): trainStep checks the loss and every gradient into
   * `flags` on the GPU and skips the update there if one holds a NaN or an infinity. Nothing is read.
   */
  guard?: StepGuard;
}

/**
 * A flag tensor of src/ops/finite.ts with 1 + P slots: slot 0 for the loss, slot 1 + j for the
 * gradient of the optimizer's parameter j (Adam.parameters order).
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

export interface StepResult {
  /** [1] the ELBO loss: mean NLL * trainSize + beta * KL. */
  loss: Tensor;
  /** [1] mean NLL of the MC-averaged predictive distribution. */
  nll: Tensor;
  /** [1] KL(q || p), or zero for a frequentist model. */
  kl: Tensor;
  /** [1] number of correct predictions in the batch. */
  correct: Tensor;
}

function checkBatch(op: string, model: Sequential, x: Tensor, labels: Tensor): number {
  model.checkInput(op, x);
  const ctx = x.ctx;
  ctx.own(op, 'labels', labels);
  if (labels.dtype !== 'u32') throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'labels' expected dtype u32, got ${labels.dtype}`);
  if (labels.shape.length !== 1 || labels.shape[0] !== x.shape[0]) throw shapeError(op, 'labels', `[${x.shape[0]}] (one label per image)`, labels.shape);
  return x.shape[0];
}

/**
 * Forward, ELBO loss, backward and the beta-weighted KL gradient: afterwards
 * every trainable parameter's `grad` holds d loss / d parameter. The returned
 * tensors survive; every intermediate is freed.
 */
export function lossAndGradients(ctx: Context, model: Sequential, x: Tensor, labels: Tensor, o: StepOptions): StepResult {
  const op = 'trainStep';
  checkBatch(op, model, x, labels);
  const samples = checkInt(op, 'samples', o.samples, 1);
  const beta = checkNumber(op, 'beta', o.beta, (v) => v >= 0 && Number.isFinite(v), 'a number >= 0');
  const trainSize = checkInt(op, 'trainSize', o.trainSize, 1);
  if (!model.training) model.train();
  return ctx.scope(() => {
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
  });
}

/**
 * One training step: lossAndGradients, then one Adam update. With `o.guard`, between the two the loss
 * and every gradient are checked for NaN and infinities on the GPU (one read of each, no readback), and
 * the update is applied only if the guard's gate is open (see StepGuard); it changes nothing else, so a
 * finite step computes the same bits with or without it.
 */
export function trainStep(ctx: Context, model: Sequential, optimizer: Adam, x: Tensor, labels: Tensor, o: StepOptions): StepResult {
  const result = lossAndGradients(ctx, model, x, labels, o);
  const guard = o.guard;
  if (!guard) {
    optimizer.update(ctx);
    return result;
  }
  const checked = [result.loss];
  for (const [name, p] of optimizer.parameters) {
    if (!p.grad) throw new BayesError('INVALID_ARGUMENT', `trainStep: parameter '${name}' has no gradient; run backward first`);
    checked.push(p.grad);
  }
  checkFiniteInto(checked, guard.flags, { slot: 0, step: o.step });
  countNonFiniteStep(guard.flags, { step: o.step });
  optimizer.update(ctx, nonFiniteGate(guard.flags, o.step, guard.mode === 'hold'));
  return result;
}

export interface EvalOptions {
  samples: number;
  /** Sample from the posterior (true) or use the posterior means (false). */
  sample?: boolean;
  mcDropout?: boolean;
  seed: number;
  step: number;
}

/** MC-averaged log-probabilities [B, C] of a batch, in eval mode. */
export function predictLogProbs(ctx: Context, model: Sequential, x: Tensor, o: EvalOptions): Tensor {
  const requested = checkInt('predict', 'samples', o.samples, 1);
  // A deterministic pass (no variational layer, or posterior means, and no MC dropout) gives T
  // identical copies, whose log-mean-exp is the one pass: run it once.
  const samples = (!model.isBayesian || o.sample === false) && !o.mcDropout ? 1 : requested;
  if (model.training) model.eval();
  return ctx.scope(() => {
    const { logits } = model.run(x, { samples, sample: o.sample ?? true, mcDropout: o.mcDropout, seed: o.seed, step: o.step, kl: false });
    const logp = logSoftmax(logits);
    return samples > 1 ? logMeanExp(logp, { samples }) : logp;
  });
}

/** Summed NLL and correct count of a batch: [1] tensors, to be accumulated without readbacks. */
export function evalBatch(ctx: Context, model: Sequential, x: Tensor, labels: Tensor, o: EvalOptions): { nll: Tensor; correct: Tensor } {
  const n = checkBatch('evalBatch', model, x, labels);
  return ctx.scope(() => {
    const logp = predictLogProbs(ctx, model, x, o);
    return { nll: scale(nllLoss(logp, labels), n), correct: correctCount(logp, labels) };
  });
}
