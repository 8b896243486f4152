/**
 * The regression step body and data checks: a model whose task is 'regression' ends in two columns
 * per example, (mu, s) with s = log sigma^2, the parameters of N(y | mu, sigma^2) (a heteroscedastic
 * last layer, or 1 output followed by HomoscedasticNoise; src/uncertainty/regression.ts builds them).
 *
 * Training objective (Blundell et al. 2015, eq. 1-2, written as the seed's metrics.ELBO):
 *   loss = N * NLL + beta * KL(q || p),  NLL = (1/(T B)) sum_{t,b} -log N(y_b | mu_tb, sigma^2_tb)
 * NLL averages over the T Monte Carlo samples: (1/T) sum_t log p(y | w_t) is the standard unbiased
 * estimator of E_q[log p(y | w)], the ELBO's data term. (Classification in train/step.ts instead scores
 * log((1/T) sum_t p(y | w_t)), the log predictive, as the seed does; for T = 1 the two coincide.)
 * With the batch NLL scaled to the N training points, beta = 1 is the ELBO of the whole training set
 * for any batch size: every batch's loss is an unbiased estimate of it.
 */
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkInt, shapeError } from '../errors.js';
import { shapeString } from '../nn/module.js';
import type { Sequential } from '../nn/sequential.js';
import { addInto, scale, tile } from '../ops/elementwise.js';
import { gaussianNll, gaussianNllBackward } from '../ops/loss.js';
import { mergeHead, splitHead } from '../ops/regression.js';
import { checkRegressionModel } from '../uncertainty/regression.js';

/**
 * A regression data set: `count` examples (row-major in `x`) and one target each. One example is
 * `features` values, or of `shape` for a model with a multi-dimensional input.
 */
export interface RegressionData {
  x: Float32Array;
  y: Float32Array;
  count: number;
  features?: number;
  shape?: readonly number[];
}

/** One example's shape of a regression data set ([features], or its `shape`). */
export function regressionExampleShape(data: RegressionData): readonly number[] {
  return data.shape ?? [data.features as number];
}

export function checkRegressionData(op: string, model: Sequential, data: RegressionData): void {
  if (data === null || typeof data !== 'object') throw argumentError(op, 'data', '{ x, y, count, features }', data);
  const count = checkInt(op, 'data.count', data.count, 1);
  let shape: readonly number[];
  if (data.shape !== undefined) {
    if (!Array.isArray(data.shape) || data.shape.length === 0) throw argumentError(op, 'data.shape', "one example's shape such as [4]", data.shape);
    data.shape.forEach((d, i) => checkInt(op, `data.shape[${i}]`, d, 1));
    shape = data.shape;
  } else {
    shape = [checkInt(op, 'data.features', data.features, 1)];
  }
  const per = shape.reduce((a, b) => a * b, 1);
  if (!(data.x instanceof Float32Array)) throw argumentError(op, 'data.x', 'a Float32Array', data.x);
  if (!(data.y instanceof Float32Array)) throw argumentError(op, 'data.y', 'a Float32Array', data.y);
  const what = data.shape !== undefined ? `shape ${shapeString(shape)}` : `features ${per}`;
  if (data.x.length !== count * per) throw argumentError(op, 'data.x.length', `${count * per} (count ${count} x ${what})`, data.x.length);
  if (data.y.length !== count) throw argumentError(op, 'data.y.length', `${count} (one target per example)`, data.y.length);
  if (model.inputShape.length !== shape.length || shape.some((d, i) => d !== model.inputShape[i])) {
    const has = data.shape !== undefined ? `examples of shape ${shapeString(shape)}` : `${per} features per example`;
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'data' has ${has} but the model expects input ${shapeString(model.inputShape)}`);
  }
  // A NaN target would turn every parameter into NaN after one step; say where it is instead.
  const bad = (a: Float32Array) => a.findIndex((v) => !Number.isFinite(v));
  const bx = bad(data.x);
  if (bx >= 0) throw argumentError(op, `data.x[${bx}]`, 'a finite number', data.x[bx]);
  const by = bad(data.y);
  if (by >= 0) throw argumentError(op, `data.y[${by}]`, 'a finite number', data.y[by]);
}

/** Checks a regression batch's targets y: [B] or [B, 1], f32, one per row of x; and the model's head. */
export function checkRegressionTargets(op: string, model: Sequential, x: Tensor, y: Tensor): void {
  checkRegressionModel(op, model);
  model.ctx.own(op, 'y', y);
  const batch = x.shape[0];
  if (y.dtype !== 'f32') throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'y' expected dtype f32 (regression targets), got ${y.dtype}`);
  if (y.size !== batch || y.shape.length > 2 || (y.shape.length === 2 && y.shape[1] !== 1)) throw shapeError(op, 'y', `[${batch}] (one target per row of x)`, y.shape);
}

/**
 * The regression body: forward, loss and backward of one batch; afterwards every trainable parameter's
 * `grad` holds d loss / d parameter. x: [B, ...inputShape]; y: [B] (or [B, 1]), checked already. The
 * returned [1] tensors survive. In training mode (the caller's: trainStep sets it). Internal: trainStep runs it.
 */
export function regressionLossAndGradients(
  model: Sequential, x: Tensor, y: Tensor, o: { samples: number; beta: number; trainSize: number; seed: number; step: number },
): { loss: Tensor; nll: Tensor; kl: Tensor; correct: null } {
  const ctx = model.ctx;
  const batch = x.shape[0];
  const { samples, beta, trainSize } = o;
  const wasTraining = model.training;
  model.train();
  try {
    return ctx.scope(() => {
      const { logits: pred, kl, pass } = model.run(x, { samples, seed: o.seed, step: o.step }); // [T * B, 2]
      const { mu, logVar } = splitHead(pred);
      // Each of the T samples is scored against the same targets: tile y like the input.
      const target = samples > 1 ? tile(y, samples).reshape([samples * batch]) : y.reshape([batch]);
      const nll = gaussianNll(mu, logVar, target);
      const loss = scale(nll, trainSize);
      if (kl) addInto(loss, kl, beta);

      const { dMean, dLogVar } = gaussianNllBackward(mu, logVar, target, { scale: trainSize });
      model.backward(mergeHead(dMean, dLogVar), pass);
      if (kl && beta > 0) model.klBackward(pass, beta);
      return { loss, nll, kl: kl ?? ctx.zeros([1]), correct: null };
    });
  } finally {
    if (!wasTraining) model.eval();
  }
}

/**
 * Summed Gaussian NLL of a regression batch, [1], in eval mode (the mode is restored): B times the
 * mean over the T * B rows of -log N(y_b | mu_tb, sigma^2_tb), the estimator training uses for the
 * data term. Internal: evaluate's.
 */
export function regressionEvalBatch(
  model: Sequential, x: Tensor, y: Tensor, o: { samples: number; sample?: boolean; mcDropout?: boolean; seed: number; step: number },
): Tensor {
  const ctx = model.ctx;
  const batch = x.shape[0];
  // Posterior means without MC dropout: T identical passes, so run one.
  const samples = (!model.isBayesian || o.sample === false) && !o.mcDropout ? 1 : o.samples;
  const wasTraining = model.training;
  model.eval();
  try {
    return ctx.scope(() => {
      const { logits: pred } = model.run(x, { samples, sample: o.sample ?? true, mcDropout: o.mcDropout, seed: o.seed, step: o.step, kl: false });
      const { mu, logVar } = splitHead(pred);
      const target = samples > 1 ? tile(y, samples).reshape([samples * batch]) : y.reshape([batch]);
      return scale(gaussianNll(mu, logVar, target), batch);
    });
  } finally {
    if (wasTraining) model.train();
  }
}
