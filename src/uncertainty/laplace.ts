/**
 * Last-layer Laplace approximation (Daxberger et al. 2021, "Laplace Redux -- Effortless Bayesian Deep
 * Learning", sec. 3; MacKay 1992): a trained classifier stays as it is, and only its last linear layer
 * (W, b) gets a Gaussian posterior N(theta*, (H + delta I)^-1) around the trained weights theta*.
 *
 *   const la = await fitLaplace(model, train);                      // KFAC, prior precision by marginal likelihood
 *   const p = await la.predict(test, { method: 'probit' });          // a Prediction, as model.predict gives
 *   la.priorPrecision; la.logMarginalLikelihood;
 *
 * What is computed where:
 * - The features phi(x), the input of the last linear layer, on the GPU: the layers before it run
 *   with their mean weights (sample: false) in eval mode (no dropout, BatchNorm running statistics),
 *   and the model's mode is restored. Only phi [N, D] is read back.
 * - Everything else in float64 on the CPU: with D + 1 = 85 inputs and C = 10 classes for LeNet the
 *   last layer has P = C (D + 1) = 850 parameters, and the KFAC factors are 10 x 10 and 85 x 85.
 *
 * Parameters: theta = vec of [W | b] in row-major order, theta[c * (D + 1) + d] = W[c, d] and
 * theta[c * (D + 1) + D] = b[c]; phi~ = [phi; 1] (without a bias, phi~ = phi). For a Bayesian last
 * layer (BBBLinear of any layerType) theta* is its posterior mean mu (W_mu, bias_mu): the MAP point of
 * the network that predicts with sample: false, and its sigma is ignored.
 *
 * Curvature. The logits are linear in theta, f_n = (I_C kron phi~_n^T) theta, so the Hessian of the
 * softmax cross-entropy w.r.t. theta is exactly its generalized Gauss-Newton (= the Fisher for this
 * likelihood): with Lambda_n = diag(p_n) - p_n p_n^T (p_n = softmax(f_n)),
 *   H = sum_n Lambda_n kron phi~_n phi~_n^T                                  (Laplace Redux, eq. 4)
 *   'diag': H_diag[(c, d)] = sum_n Lambda_n[c, c] phi~_n[d]^2
 *   'kron': H ~ B kron A, B = sum_n Lambda_n, A = (1/N) sum_n phi~_n phi~_n^T (KFAC; Martens & Grosse
 *           2015, Ritter et al. 2018): the expectation of the product replaced by the product of the
 *           expectations, scaled so that it is exact when every example is the same.
 * Scaling: the likelihood is the SUM over the N training examples, log p(D | theta) = -sum_n CE_n, as
 * the posterior needs, whatever the training loss was (fit trains on the batch mean of the cross-entropy;
 * a mean loss would shrink H by N and inflate the posterior N times).
 *
 * Prior N(0, delta^-1 I) over all P parameters, the bias included. Its precision delta is chosen by the
 * Laplace approximation of the marginal likelihood (Laplace Redux, eq. 5; MacKay 1992, eq. 4.2):
 *   log p(D | delta) ~ log p(D | theta*) - delta/2 ||theta*||^2 + P/2 log delta - 1/2 log det(H + delta I)
 * (the 2 pi terms of the prior and of the Laplace integral cancel), maximised over log delta in
 * [1e-4, 1e4]: a grid of quarter decades, then golden-section search around the best grid point. The
 * determinant is exact for either curvature: diag from its entries, kron from the eigendecompositions
 * B = U diag(lambda) U^T, A = V diag(mu) V^T (symmetric Jacobi, float64), since
 * B kron A + delta I = (U kron V) diag(lambda_i mu_j + delta) (U kron V)^T. theta* is kept fixed (the
 * post-hoc setting of Laplace Redux, sec. 4.1).
 *
 * Predictive (linearised, function space; Laplace Redux sec. 3 "predictive", Immer et al. 2021): for a
 * new x, f = W phi + b and Sigma_f = J Sigma J^T (C x C) with J = I_C kron phi~^T and
 * Sigma = (H + delta I)^-1 of the chosen curvature. Two ways to turn N(f, Sigma_f) into probabilities:
 * - 'mc': T draws f_t = f + L eps_t (Sigma_f = L L^T, Cholesky), p_t = softmax(f_t), and the same
 *   decomposition as model.predict over the T samples (mean, epistemic, aleatoric, entropies, MI).
 * - 'probit' (default; the multiclass probit approximation, MacKay 1992, Laplace Redux sec. 3):
 *   p = softmax(f_c / sqrt(1 + pi/8 Sigma_f[c, c])). It has no samples, so its uncertainty parts
 *   are the second-order (delta-method) approximations of what 'mc' estimates, linearised at the MAP
 *   probabilities p* = softmax(f) with G = diag(p*) - p* p*^T (the softmax Jacobian, also the Fisher):
 *     epistemic_c = (G Sigma_f G)[c, c]                         (Var[p_c] to first order)
 *     aleatoric_c = max(0, p_c (1 - p_c) - epistemic_c)         (so epistemic + aleatoric = p (1 - p),
 *                                                               the identity the sampled parts obey)
 *     mutualInformation = min(H[p], 1/2 tr(G Sigma_f))         (E_f KL(softmax(f) || p*) to second
 *                                                               order: KL's Hessian is G)
 *     expectedEntropy = H[p] - mutualInformation.
 *   `samples` is 1 in its Prediction.
 *
 * The LastLayerLaplace holds CPU arrays only (nothing to dispose) and a reference to the model, whose
 * layers before the last compute the features of new inputs: do not train the model after fitting.
 */
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf } from '../errors.js';
import type { Tensor } from '../gpu/tensor.js';
import { BBBLinear } from '../nn/bayes.js';
import { type ModelInput, inputBatches } from '../nn/input.js';
import { Linear } from '../nn/layers.js';
import { shapeString } from '../nn/module.js';
import type { Prediction, PredictProgress } from '../nn/predict.js';
import { Sequential } from '../nn/sequential.js';
import { Prng } from '../util/prng.js';

/** How the last layer's GGN is approximated: its diagonal, or KFAC (a Kronecker product of two factors). */
export type LaplaceCurvature = 'diag' | 'kron';
/** Every curvature, in the order error messages name them. */
export const LAPLACE_CURVATURES: readonly LaplaceCurvature[] = ['diag', 'kron'];

/** How the Gaussian over the logits becomes probabilities: the probit approximation or Monte Carlo. */
export type LaplacePredictMethod = 'probit' | 'mc';
/** Every predictive method, in the order error messages name them. */
export const LAPLACE_PREDICT_METHODS: readonly LaplacePredictMethod[] = ['probit', 'mc'];

/** Labelled training examples: a FloatDataset `{ x, labels, count, shape }` (labels required). */
export interface LaplaceData {
  x: Float32Array;
  labels: ArrayLike<number>;
  count: number;
  /** One example's shape: the model's input shape. */
  shape: readonly number[];
}

export interface LaplaceOptions {
  /** 'kron' (default, KFAC) or 'diag'. */
  curvature?: LaplaceCurvature;
  /** The prior precision delta, a positive number, or 'marglik' (default): maximise the marginal likelihood. */
  priorPrecision?: number | 'marglik';
  /** Examples per GPU batch of the feature pass (default 256). */
  batchSize?: number;
  /** Called after each batch of the feature pass. */
  onProgress?: (progress: PredictProgress) => void | Promise<void>;
}

export interface LaplacePredictOptions {
  /** 'probit' (default) or 'mc'. */
  method?: LaplacePredictMethod;
  /** Monte Carlo draws of the logits per example ('mc' only; default 100). */
  samples?: number;
  /** Seed of the Monte Carlo draws ('mc'; default 0; 'probit' ignores it). The draws go in example order, so batchSize does not change them. */
  seed?: number;
  /** Examples per GPU batch of the feature pass (default 256). */
  batchSize?: number;
  /** Called after each batch of the feature pass. */
  onProgress?: (progress: PredictProgress) => void | Promise<void>;
}

/**
 * The last layer's curvature H (float64), in the layout of the parameters theta (see the module comment):
 * 'diag': `diagonal` [P]; 'kron': H ~ outputFactor kron inputFactor, with B = sum_n Lambda_n [C, C] and
 * A = (1/N) sum_n phi~ phi~^T [D~, D~] (D~ = D + 1 with a bias).
 */
export type LaplaceHessian =
  | { kind: 'diag'; diagonal: Float64Array }
  | { kind: 'kron'; outputFactor: Float64Array; inputFactor: Float64Array };

/** The features and labels of a data set, as fitLaplace reads them. */
export interface LastLayerFeatures {
  /** [N, D] the inputs of the last linear layer (float32 from the GPU). */
  phi: Float32Array;
  count: number;
  features: number;
  /** [N] the data set's labels, or null when the input had none. */
  labels: Uint32Array | null;
}

/** The Gaussian over the logits of N examples: its mean f [N, C] and covariance Sigma_f [N, C, C]. */
export interface LaplaceFunctionSpace {
  mean: Float64Array;
  covariance: Float64Array;
}

const FIT_OPTIONS = ['curvature', 'priorPrecision', 'batchSize', 'onProgress'];
const PREDICT_OPTIONS = ['method', 'samples', 'seed', 'batchSize', 'onProgress'];
/** Search interval of the prior precision (Laplace Redux's experiments search about the same decades). */
const LOG_DELTA_MIN = Math.log(1e-4);
const LOG_DELTA_MAX = Math.log(1e4);

// ---------------------------------------------------------------------------------------------------
// Float64 linear algebra: a symmetric eigen solver and a Cholesky factorisation, both small.

/**
 * Eigendecomposition of a symmetric n x n matrix (row-major) by cyclic Jacobi rotations (Jacobi 1846;
 * Golub & Van Loan, sec. 8.5): each rotation zeroes one off-diagonal pair, and sweeps repeat until the
 * off-diagonal mass is negligible. Returns the eigenvalues and the eigenvectors as the columns of
 * `vectors` (row-major n x n), so that a = vectors diag(values) vectors^T. Unsorted.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a as ArrayLike<number>);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += m[i] * m[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        // Rotation J (J_pp = J_qq = c, J_pq = s, J_qp = -s) with (J^T m J)_pq = 0: t = s / c solves
        // t^2 + 2 theta t - 1 = 0, theta = (m_qq - m_pp) / (2 m_pq); the smaller root keeps |angle| <= pi/4.
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i];
  return { values, vectors: v };
}

/**
 * Lower Cholesky factor L of a symmetric positive definite n x n matrix (a = L L^T, row-major). A
 * covariance that rounding left barely indefinite gets a jitter of 1e-12 times its largest diagonal
 * entry added, tenfold until it factors.
 */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array {
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(a[i * n + i]));
  for (let jitter = 0, tries = 0; tries < 12; tries++, jitter = jitter === 0 ? 1e-12 * (scale || 1) : jitter * 10) {
    const L = new Float64Array(n * n);
    let ok = true;
    for (let j = 0; j < n && ok; j++) {
      let d = a[j * n + j] + jitter;
      for (let k = 0; k < j; k++) d -= L[j * n + k] * L[j * n + k];
      if (!(d > 0)) {
        ok = false;
        break;
      }
      const ljj = Math.sqrt(d);
      L[j * n + j] = ljj;
      for (let i = j + 1; i < n; i++) {
        let s = a[i * n + j];
        for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
        L[i * n + j] = s / ljj;
      }
    }
    if (ok) return L;
  }
  throw new BayesError('NON_FINITE', `cholesky: a ${n} x ${n} covariance is not positive definite (non-finite logits or features?)`);
}

// ---------------------------------------------------------------------------------------------------
// Checks and the feature pass.

/** The model's last layer when it is a linear layer (frequentist or Bayesian), with its MAP weights' tensors. */
function lastLinear(op: string, model: unknown): { index: number; name: string; weight: Tensor; bias: Tensor | null; inFeatures: number; classes: number } {
  if (!(model instanceof Sequential) || !model.isModel) throw argumentError(op, 'model', 'a Sequential classifier built on a context (e.g. LeNet(ctx))', model);
  if (model.task === 'regression') {
    throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'model' expected a classifier (task 'classification'; the Laplace posterior here is for the softmax likelihood), got a regression model`);
  }
  const out = model.outputShapeOf;
  if (out.length !== 1) throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'model' expected a classifier with outputs [classes] per example, got ${shapeString(out)}`);
  const index = model.layers.length - 1;
  const [name, layer] = model.layers[index];
  if (layer instanceof Linear) {
    if (!layer.weight || layer.inFeatures === null) throw argumentError(op, 'model', 'a built model', 'an unbuilt last layer');
    return { index, name, weight: layer.weight.value, bias: layer.bias?.value ?? null, inFeatures: layer.inFeatures, classes: layer.outFeatures };
  }
  if (layer instanceof BBBLinear) {
    // A Bayesian last layer: its posterior mean mu is the point the Laplace approximation expands around.
    if (!layer.W || layer.inFeatures === null) throw argumentError(op, 'model', 'a built model', 'an unbuilt last layer');
    return { index, name, weight: layer.W.mu.value, bias: layer.b?.mu.value ?? null, inFeatures: layer.inFeatures, classes: layer.outFeatures };
  }
  throw new BayesError(
    'INVALID_ARGUMENT',
    `${op}: argument 'model' expected a model whose last layer is a Linear or BBBLinear (the last-layer Laplace approximation puts its posterior on that layer), got last layer '${name}' (${layer.constructor.name})`,
  );
}

function checkOptionKeys(op: string, options: unknown, allowed: string[]): void {
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', `an options object { ${allowed.join(', ')} }`, options);
  for (const key of Object.keys(options)) if (!allowed.includes(key)) throw argumentError(op, 'options', `only the keys ${allowed.join(', ')}`, `unknown key '${key}'`);
}

function checkProgress(op: string, f: unknown): ((p: PredictProgress) => void | Promise<void>) | null {
  if (f !== undefined && typeof f !== 'function') throw argumentError(op, 'onProgress', 'a function ({ done, total }) => void', f);
  return (f as ((p: PredictProgress) => void | Promise<void>) | undefined) ?? null;
}

/** Runs the checked input's batches through every layer before the last (mean weights, eval mode) and reads phi back. */
async function featurePass(model: Sequential, lastIndex: number, features: number, batches: ReturnType<typeof inputBatches>, batchSize: number, onProgress: ((p: PredictProgress) => void | Promise<void>) | null): Promise<Float32Array> {
  const ctx = model.ctx;
  const { count } = batches;
  const phi = new Float32Array(count * features);
  const body = model.layers.slice(0, lastIndex).map(([, layer]) => layer);
  for (let from = 0; from < count; from += batchSize) {
    const n = Math.min(batchSize, count - from);
    const x = await batches.batch(from, n);
    let h: Tensor | null = null;
    try {
      // Eval mode while the batch is recorded (synchronously), the model's own mode at every await,
      // as predict does (nn/predict.ts, eachBatch).
      const wasTraining = model.training;
      model.eval();
      try {
        h = ctx.scope(() => {
          const pass = model.makePass({ samples: 1, sample: false, mcDropout: false });
          let y = x;
          for (const layer of body) y = layer.forward(y, pass);
          return y === x ? y.reshape([n, features]) : y;
        });
      } finally {
        if (wasTraining) model.train();
      }
      if (h.size !== n * features) throw new BayesError('SHAPE_MISMATCH', `lastLayerFeatures: the layers before the last gave ${shapeString(h.shape)} for ${n} examples, expected [${n}, ${features}]`);
      phi.set((await ctx.read(h)) as Float32Array, from * features);
    } finally {
      if (h && h !== x) h.dispose();
      batches.release(x);
    }
    await onProgress?.({ done: from + n, total: count });
  }
  return phi;
}

/**
 * The inputs phi(x) of the model's last linear layer for `input` (anything model.predict takes),
 * computed on the GPU with the mean weights in eval mode (the model's mode is restored); [N, D] floats.
 */
export async function lastLayerFeatures(model: Sequential, input: ModelInput, options: { batchSize?: number; onProgress?: (p: PredictProgress) => void | Promise<void> } = {}): Promise<LastLayerFeatures> {
  const op = 'lastLayerFeatures';
  const last = lastLinear(op, model);
  checkOptionKeys(op, options, ['batchSize', 'onProgress']);
  const batchSize = checkInt(op, 'batchSize', options.batchSize ?? 256, 1);
  const onProgress = checkProgress(op, options.onProgress);
  const batches = inputBatches(op, model, input);
  const phi = await featurePass(model, last.index, last.inFeatures, batches, batchSize, onProgress);
  return { phi, count: batches.count, features: last.inFeatures, labels: batches.labels };
}

// ---------------------------------------------------------------------------------------------------
// Curvature, marginal likelihood and the posterior.

/** softmax of z[from .. from + C) into out. */
function softmaxInto(z: ArrayLike<number>, from: number, C: number, out: Float64Array): void {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[from + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += (out[c] = Math.exp(z[from + c] - m));
  for (let c = 0; c < C; c++) out[c] /= s;
}

function entropyOf(p: ArrayLike<number>, from: number, C: number): number {
  let h = 0;
  for (let c = 0; c < C; c++) {
    const v = p[from + c];
    if (v > 0) h -= v * Math.log(v);
  }
  return h;
}

/** Maximises a function of log delta over [LOG_DELTA_MIN, LOG_DELTA_MAX]: a grid, then golden-section search around its best point. */
function maximiseLogDelta(f: (logDelta: number) => number): { logDelta: number; value: number } {
  const steps = Math.round((LOG_DELTA_MAX - LOG_DELTA_MIN) / (Math.LN10 / 4)); // quarter decades
  const h = (LOG_DELTA_MAX - LOG_DELTA_MIN) / steps;
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i <= steps; i++) {
    const v = f(LOG_DELTA_MIN + i * h);
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  let lo = LOG_DELTA_MIN + Math.max(0, best - 1) * h;
  let hi = LOG_DELTA_MIN + Math.min(steps, best + 1) * h;
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = hi - g * (hi - lo);
  let x2 = lo + g * (hi - lo);
  let f1 = f(x1);
  let f2 = f(x2);
  while (hi - lo > 1e-7) {
    if (f1 >= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = f(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = f(x2);
    }
  }
  const candidates: [number, number][] = [[LOG_DELTA_MIN + best * h, bestValue], [x1, f1], [x2, f2]];
  candidates.sort((a, b) => b[1] - a[1]);
  return { logDelta: candidates[0][0], value: candidates[0][1] };
}

/** What the fitted posterior keeps: the MAP weights, the curvature and its eigendecomposition. */
interface Posterior {
  classes: number;
  features: number;
  /** D~ = D + 1 with a bias, D without. */
  inputs: number;
  hasBias: boolean;
  /** [C, D~] the MAP weights [W | b] in float64. */
  theta: Float64Array;
  hessian: LaplaceHessian;
  /** kron: B = U diag(lambda) U^T and A = V diag(mu) V^T. */
  eigen: { lambda: Float64Array; U: Float64Array; mu: Float64Array; V: Float64Array } | null;
}

/**
 * A last-layer Laplace posterior N(theta*, (H + delta I)^-1) over a classifier's last linear layer
 * (see the module comment). Made by fitLaplace; holds CPU arrays only.
 */
export class LastLayerLaplace {
  /** The GGN approximation used: 'diag' or 'kron'. */
  readonly curvature: LaplaceCurvature;
  /** The prior precision delta (given, or the marginal likelihood's maximiser). */
  readonly priorPrecision: number;
  /** The Laplace approximation of log p(D | delta) at priorPrecision (Laplace Redux, eq. 5). */
  readonly logMarginalLikelihood: number;
  /** Training examples N the posterior was fitted on. */
  readonly count: number;
  /** D: inputs of the last linear layer. */
  readonly features: number;
  readonly classes: number;
  /** log p(D | theta*) = -sum_n CE_n at the MAP weights (float64). */
  readonly logLikelihood: number;
  /** The model whose layers before the last compute the features of new inputs. */
  readonly model: Sequential;
  private readonly post: Posterior;

  /** @internal Use fitLaplace. */
  constructor(model: Sequential, post: Posterior, fitted: { curvature: LaplaceCurvature; priorPrecision: number; logMarginalLikelihood: number; count: number; logLikelihood: number }) {
    this.model = model;
    this.post = post;
    this.curvature = fitted.curvature;
    this.priorPrecision = fitted.priorPrecision;
    this.logMarginalLikelihood = fitted.logMarginalLikelihood;
    this.count = fitted.count;
    this.logLikelihood = fitted.logLikelihood;
    this.features = post.features;
    this.classes = post.classes;
  }

  /** The curvature H of the sum of the N examples' NLL (a copy), in theta's layout. */
  get hessian(): LaplaceHessian {
    const h = this.post.hessian;
    return h.kind === 'diag' ? { kind: 'diag', diagonal: h.diagonal.slice() } : { kind: 'kron', outputFactor: h.outputFactor.slice(), inputFactor: h.inputFactor.slice() };
  }

  /** [C, D~] the MAP weights theta* = [W | b] (W_mu, bias_mu for a Bayesian last layer), float64 (a copy). */
  get mapWeights(): Float64Array {
    return this.post.theta.slice();
  }

  /** The Laplace approximation of log p(D | delta) at any prior precision delta > 0 (the function fitLaplace maximises). */
  logMarginalLikelihoodAt(priorPrecision: number): number {
    checkNumber('LastLayerLaplace.logMarginalLikelihoodAt', 'priorPrecision', priorPrecision, (v) => Number.isFinite(v) && v > 0, 'a positive finite number');
    return logMarginal(this.post, this.logLikelihood, Math.log(priorPrecision));
  }

  /**
   * The Gaussian over the logits of N feature vectors phi [N, D]: f = W phi + b and
   * Sigma_f = J (H + delta I)^-1 J^T with J = I_C kron phi~^T (float64).
   */
  functionSpace(phi: ArrayLike<number>, count: number): LaplaceFunctionSpace {
    const op = 'LastLayerLaplace.functionSpace';
    checkInt(op, 'count', count, 1);
    if (phi === null || typeof phi !== 'object' || typeof (phi as ArrayLike<number>).length !== 'number') throw argumentError(op, 'phi', `an array of ${count} x ${this.features} features`, phi);
    if (phi.length !== count * this.features) throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'phi' expected ${count * this.features} values (${count} x ${this.features}), got ${phi.length}`);
    const C = this.classes;
    const mean = new Float64Array(count * C);
    const covariance = new Float64Array(count * C * C);
    const f = new Float64Array(C);
    const S = new Float64Array(C * C);
    for (let n = 0; n < count; n++) {
      this.logitsGaussian(phi, n, f, S);
      mean.set(f, n * C);
      covariance.set(S, n * C * C);
    }
    return { mean, covariance };
  }

  /** f and Sigma_f of example n of phi, into f [C] and S [C, C]. */
  private logitsGaussian(phi: ArrayLike<number>, n: number, f: Float64Array, S: Float64Array): void {
    const { classes: C, features: D, inputs: Dt, hasBias, theta, hessian, eigen } = this.post;
    const delta = this.priorPrecision;
    const x = new Float64Array(Dt);
    for (let d = 0; d < D; d++) x[d] = phi[n * D + d];
    if (hasBias) x[D] = 1;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let d = 0; d < Dt; d++) s += theta[c * Dt + d] * x[d];
      f[c] = s;
    }
    S.fill(0);
    if (hessian.kind === 'diag') {
      // Sigma diagonal: Sigma_f[c, c] = sum_d phi~_d^2 / (H[(c, d)] + delta), no covariance between classes.
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let d = 0; d < Dt; d++) s += (x[d] * x[d]) / (hessian.diagonal[c * Dt + d] + delta);
        S[c * C + c] = s;
      }
      return;
    }
    // Sigma = (U kron V) diag(1 / (lambda_i mu_j + delta)) (U kron V)^T, so with v = V^T phi~:
    // Sigma_f = U diag(s) U^T, s_i = sum_j v_j^2 / (lambda_i mu_j + delta).
    const { lambda, U, mu, V } = eigen!;
    const v = new Float64Array(Dt);
    for (let j = 0; j < Dt; j++) {
      let s = 0;
      for (let d = 0; d < Dt; d++) s += V[d * Dt + j] * x[d];
      v[j] = s;
    }
    for (let i = 0; i < C; i++) {
      let s = 0;
      for (let j = 0; j < Dt; j++) s += (v[j] * v[j]) / (lambda[i] * mu[j] + delta);
      for (let a = 0; a < C; a++) {
        const ua = U[a * C + i] * s;
        for (let b = 0; b < C; b++) S[a * C + b] += ua * U[b * C + i];
      }
    }
  }

  /**
   * The posterior predictive of `input` (anything model.predict takes) as a Prediction: 'probit'
   * (default) or 'mc' with `samples` draws of the logits (see the module comment for both). The
   * features come from the GPU, the rest from float64 on the CPU. Prediction.method is 'softmax'
   * (how logits become probabilities); the Laplace method is the option given.
   */
  async predict(input: ModelInput, options: LaplacePredictOptions = {}): Promise<Prediction> {
    const op = 'LastLayerLaplace.predict';
    checkOptionKeys(op, options, PREDICT_OPTIONS);
    const method = checkOneOf(op, 'method', options.method ?? 'probit', LAPLACE_PREDICT_METHODS);
    if (method === 'probit' && options.samples !== undefined) throw argumentError(op, 'samples', "nothing with method 'probit' (it draws no samples; use method: 'mc')", options.samples);
    const T = method === 'mc' ? checkInt(op, 'samples', options.samples ?? 100, 1) : 1;
    const seed = checkInt(op, 'seed', options.seed ?? 0, 0);
    const batchSize = checkInt(op, 'batchSize', options.batchSize ?? 256, 1);
    const onProgress = checkProgress(op, options.onProgress);
    const last = lastLinear(op, this.model);
    if (last.inFeatures !== this.features || last.classes !== this.classes) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: the model's last layer is now ${last.inFeatures} -> ${last.classes}, but the posterior was fitted for ${this.features} -> ${this.classes}`);
    }
    const batches = inputBatches(op, this.model, input);
    const phi = await featurePass(this.model, last.index, this.features, batches, batchSize, onProgress);
    const N = batches.count;
    const C = this.classes;
    const out: Prediction = {
      mean: new Float32Array(N * C), epistemic: new Float32Array(N * C), aleatoric: new Float32Array(N * C),
      predictiveEntropy: new Float32Array(N), expectedEntropy: new Float32Array(N), mutualInformation: new Float32Array(N),
      maxProb: new Float32Array(N), predicted: new Uint32Array(N), labels: batches.labels, probs: null, count: N, classes: C, samples: T, method: 'softmax',
    };
    const f = new Float64Array(C);
    const S = new Float64Array(C * C);
    const p = new Float64Array(C);
    const pbar = new Float64Array(C);
    const ep = new Float64Array(C);
    const al = new Float64Array(C);
    const ft = new Float64Array(C);
    const z = new Float64Array(C);
    const draws = new Float64Array(T * C);
    const prng = new Prng(seed);
    for (let n = 0; n < N; n++) {
      this.logitsGaussian(phi, n, f, S);
      let hp: number;
      let mi: number;
      if (method === 'probit') {
        // MacKay 1992: E[softmax(f)] ~ softmax(f_c / sqrt(1 + pi/8 Sigma_f[c, c])).
        for (let c = 0; c < C; c++) z[c] = f[c] / Math.sqrt(1 + (Math.PI / 8) * S[c * C + c]);
        softmaxInto(z, 0, C, pbar);
        hp = entropyOf(pbar, 0, C);
        // Delta method at p* = softmax(f), G = diag(p*) - p* p*^T (see the module comment).
        softmaxInto(f, 0, C, p);
        let trace = 0;
        for (let c = 0; c < C; c++) {
          // (G S G)[c, c] = sum_{a,b} G[c, a] S[a, b] G[b, c]; tr(G S) = sum_{a,b} G[a, b] S[b, a].
          let v = 0;
          for (let a = 0; a < C; a++) {
            const gca = (a === c ? p[c] : 0) - p[c] * p[a];
            if (gca === 0) continue;
            let row = 0;
            for (let b = 0; b < C; b++) row += S[a * C + b] * ((b === c ? p[c] : 0) - p[b] * p[c]);
            v += gca * row;
            trace += gca * S[a * C + c];
          }
          ep[c] = Math.max(0, v);
          al[c] = Math.max(0, pbar[c] * (1 - pbar[c]) - ep[c]);
        }
        mi = Math.min(hp, Math.max(0, trace / 2));
      } else {
        const L = cholesky(S, C);
        pbar.fill(0);
        let expected = 0;
        for (let t = 0; t < T; t++) {
          for (let c = 0; c < C; c++) z[c] = prng.normal();
          for (let a = 0; a < C; a++) {
            let s = f[a];
            for (let b = 0; b <= a; b++) s += L[a * C + b] * z[b];
            ft[a] = s;
          }
          softmaxInto(ft, 0, C, p);
          draws.set(p, t * C);
          for (let c = 0; c < C; c++) pbar[c] += p[c] / T;
          expected += entropyOf(p, 0, C) / T;
        }
        // The decomposition of uncertainty.wgsl (Kwon et al. 2020, eq. 4), deviations from the finished mean.
        ep.fill(0);
        al.fill(0);
        for (let t = 0; t < T; t++) {
          for (let c = 0; c < C; c++) {
            const q = draws[t * C + c];
            ep[c] += ((q - pbar[c]) * (q - pbar[c])) / T;
            al[c] += (q - q * q) / T;
          }
        }
        hp = entropyOf(pbar, 0, C);
        mi = hp - expected;
      }
      let best = 0;
      for (let c = 0; c < C; c++) {
        out.mean[n * C + c] = pbar[c];
        out.epistemic[n * C + c] = ep[c];
        out.aleatoric[n * C + c] = al[c];
        if (pbar[c] > pbar[best]) best = c;
      }
      out.predicted[n] = best;
      out.maxProb[n] = pbar[best];
      out.predictiveEntropy[n] = hp;
      out.mutualInformation[n] = mi;
      out.expectedEntropy[n] = hp - mi;
    }
    return out;
  }

  /** Nothing to free: the posterior lives in CPU arrays. Present so a LastLayerLaplace can be handled like the other objects. */
  dispose(): void {}
}

/** log p(D | delta) of the Laplace approximation (Laplace Redux, eq. 5) at log delta. */
function logMarginal(post: Posterior, logLikelihood: number, logDelta: number): number {
  const delta = Math.exp(logDelta);
  const { theta, hessian, eigen } = post;
  const P = theta.length;
  let norm = 0;
  for (let i = 0; i < P; i++) norm += theta[i] * theta[i];
  let logDet = 0;
  if (hessian.kind === 'diag') {
    for (let i = 0; i < P; i++) logDet += Math.log(hessian.diagonal[i] + delta);
  } else {
    const { lambda, mu } = eigen!;
    for (let i = 0; i < lambda.length; i++) for (let j = 0; j < mu.length; j++) logDet += Math.log(lambda[i] * mu[j] + delta);
  }
  return logLikelihood - 0.5 * delta * norm + 0.5 * P * logDelta - 0.5 * logDet;
}

/**
 * Fits a last-layer Laplace approximation to a trained classifier (see the module comment): reads the
 * features of `data` on the GPU, then computes the curvature of the last layer, the prior precision
 * and the posterior in float64 on the CPU. The model is not changed (its mode is restored).
 *
 * @example
 * const model = LeNet(ctx); await fit(model, train, { epochs: 5, batchSize: 128 });
 * const la = await fitLaplace(model, train, { curvature: 'kron' });   // priorPrecision: 'marglik'
 * const p = await la.predict(test, { method: 'probit' });
 * classificationMetrics(p.mean, test.labels, p.classes);
 */
export async function fitLaplace(model: Sequential, data: LaplaceData, options: LaplaceOptions = {}): Promise<LastLayerLaplace> {
  const op = 'fitLaplace';
  const last = lastLinear(op, model);
  checkOptionKeys(op, options, FIT_OPTIONS);
  const curvature = checkOneOf(op, 'curvature', options.curvature ?? 'kron', LAPLACE_CURVATURES);
  const given = options.priorPrecision ?? 'marglik';
  if (given !== 'marglik') checkNumber(op, 'priorPrecision', given, (v) => Number.isFinite(v) && v > 0, "a positive finite number or 'marglik'");
  const batchSize = checkInt(op, 'batchSize', options.batchSize ?? 256, 1);
  const onProgress = checkProgress(op, options.onProgress);
  if (data === null || typeof data !== 'object' || !('x' in data) || !('count' in data)) throw argumentError(op, 'data', 'a labelled data set { x, labels, count, shape }', data);
  if (data.labels === undefined || data.labels === null) throw argumentError(op, 'data.labels', 'the labels of the training examples (the likelihood needs them)', data.labels);
  const batches = inputBatches(op, model, data);
  const labels = batches.labels!;
  const C = last.classes;
  for (let i = 0; i < labels.length; i++) if (labels[i] >= C) throw argumentError(op, `data.labels[${i}]`, `a class index below ${C} (the model's classes)`, labels[i]);

  const [w, b] = (await model.ctx.readMany(last.bias ? [last.weight, last.bias] : [last.weight])) as Float32Array[];
  const phi = await featurePass(model, last.index, last.inFeatures, batches, batchSize, onProgress);
  const N = batches.count;
  const D = last.inFeatures;
  const hasBias = last.bias !== null;
  const Dt = D + (hasBias ? 1 : 0);
  const theta = new Float64Array(C * Dt);
  for (let c = 0; c < C; c++) {
    for (let d = 0; d < D; d++) theta[c * Dt + d] = w[c * D + d];
    if (hasBias) theta[c * Dt + D] = b[c];
  }

  // One pass over the examples: the log likelihood and the curvature's sums.
  const diagonal = curvature === 'diag' ? new Float64Array(C * Dt) : null;
  const outputFactor = curvature === 'kron' ? new Float64Array(C * C) : null;
  const inputFactor = curvature === 'kron' ? new Float64Array(Dt * Dt) : null;
  const x = new Float64Array(Dt);
  const f = new Float64Array(C);
  const p = new Float64Array(C);
  let logLikelihood = 0;
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < D; d++) x[d] = phi[n * D + d];
    if (hasBias) x[D] = 1;
    let m = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let d = 0; d < Dt; d++) s += theta[c * Dt + d] * x[d];
      f[c] = s;
      m = Math.max(m, s);
    }
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(f[c] - m);
    logLikelihood += f[labels[n]] - m - Math.log(z);
    softmaxInto(f, 0, C, p);
    if (diagonal) {
      for (let c = 0; c < C; c++) {
        const l = p[c] * (1 - p[c]); // Lambda_n[c, c]
        for (let d = 0; d < Dt; d++) diagonal[c * Dt + d] += l * x[d] * x[d];
      }
    } else {
      for (let a = 0; a < C; a++) for (let c = 0; c < C; c++) outputFactor![a * C + c] += (a === c ? p[a] : 0) - p[a] * p[c];
      for (let i = 0; i < Dt; i++) {
        const xi = x[i] / N;
        for (let j = 0; j < Dt; j++) inputFactor![i * Dt + j] += xi * x[j];
      }
    }
  }

  let hessian: LaplaceHessian;
  let eigen: Posterior['eigen'] = null;
  if (diagonal) {
    hessian = { kind: 'diag', diagonal };
  } else {
    hessian = { kind: 'kron', outputFactor: outputFactor!, inputFactor: inputFactor! };
    const eB = symmetricEigen(outputFactor!, C);
    const eA = symmetricEigen(inputFactor!, Dt);
    // Both factors are positive semidefinite (B is singular: Lambda_n 1 = 0); rounding can leave an
    // eigenvalue a hair below 0, which would make lambda mu + delta < delta: clamp to 0.
    eigen = { lambda: eB.values.map((v) => Math.max(0, v)), U: eB.vectors, mu: eA.values.map((v) => Math.max(0, v)), V: eA.vectors };
  }
  const post: Posterior = { classes: C, features: D, inputs: Dt, hasBias, theta, hessian, eigen };
  let priorPrecision: number;
  let logMarginalLikelihood: number;
  if (given === 'marglik') {
    const best = maximiseLogDelta((logDelta) => logMarginal(post, logLikelihood, logDelta));
    priorPrecision = Math.exp(best.logDelta);
    logMarginalLikelihood = best.value;
  } else {
    priorPrecision = given;
    logMarginalLikelihood = logMarginal(post, logLikelihood, Math.log(given));
  }
  return new LastLayerLaplace(model, post, { curvature, priorPrecision, logMarginalLikelihood, count: N, logLikelihood });
}
