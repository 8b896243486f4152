/**
 * Deep ensembles (Lakshminarayanan et al. 2017, "Simple and Scalable Predictive Uncertainty
 * Estimation using Deep Ensembles"): M independently trained classifiers, frequentist or Bayesian,
 * whose predictive distribution is the uniform mixture of theirs (their section 2.4). A Bayesian
 * member contributes its own T Monte Carlo samples, so the mixture is over M * T sampled networks.
 *
 *   const ensemble = new Ensemble([LeNet(ctx, { seed: 1 }), LeNet(ctx, { seed: 2 }), LeNet(ctx, { seed: 3 })]);
 *   // ... train every member with fit(member, data, options) ...
 *   const p = await ensemble.predict(testSet, { batchSize: 500 });
 *   p.mutualInformation;   // the members' disagreement (BALD across members)
 *
 * How the members' predictions combine (float64, on the CPU, from each member's `model.predict`):
 * every member has weight 1/M and each of its T samples 1/(M T), so the ensemble's sample set is
 * the M * T per-sample distributions p_{m,t} with equal weights, and the law of total variance
 * splits the ensemble's moments into within-member and between-member parts:
 *   mean              p_bar      = (1/M) sum_m p_bar_m
 *   aleatoric         (1/M) sum_m aleatoric_m                    (mean of p - p^2 is linear in the samples)
 *   epistemic         (1/M) sum_m [epistemic_m + (p_bar_m - p_bar)^2]
 *   expected entropy  (1/M) sum_m expectedEntropy_m
 *   predictive entropy H[p_bar]   (nats, 0 log 0 = 0)
 *   mutual information H[p_bar] - expected entropy               (Houlsby et al. 2011, eq. 2)
 * For deterministic members the epistemic part is the members' variance around p_bar and the
 * mutual information the Jensen-Shannon divergence of the members: "mutual information across members".
 *
 * Deterministic members: model.predict runs a deterministic network once (samples = 1, whatever
 * was asked), because its T samples would be equal. The ensemble counts that one sample as the T
 * equal samples it stands for, so each member keeps its weight 1/M whether it samples or not;
 * `samples` is M * T with T the largest member count, and with keepSamples the deterministic
 * member's probabilities appear T times in `probs` [M * T, N, C], which makes the fields above
 * exactly the equal-weight decomposition of the rows of `probs`.
 *
 * Random keys: every member predicts with the options given, the same seed and step included. The
 * members are different networks, so their draws are still independent in the sense that matters
 * (each member's MC average is unbiased for its own predictive), and a member's part of the
 * ensemble equals `member.predict(input, options)`. Identical members with the same posterior
 * would draw identical samples: use different initialisation seeds, as a deep ensemble does anyway.
 */
import { BayesError, argumentError } from '../errors.js';
import type { ModelInput } from '../nn/input.js';
import { type PredictOptions, type PredictProgress, type Prediction, droppingLayers } from '../nn/predict.js';
import { Sequential } from '../nn/sequential.js';

const showShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * The members as an ensemble needs them: at least one, every one a classifier Sequential built on
 * the context of members[0], with the class count and input shape of members[0]. Throws before any GPU work.
 */
function checkMembers(op: string, members: unknown): Sequential[] {
  if (!Array.isArray(members) || members.length === 0) throw argumentError(op, 'members', 'a non-empty array of classifier models (Sequential)', members);
  for (let i = 0; i < members.length; i++) {
    const m: unknown = members[i];
    if (!(m instanceof Sequential) || !m.isModel) throw argumentError(op, `members[${i}]`, 'a classifier model built on a context (new Sequential(ctx, layers, { inputShape }), LeNet(ctx), ...)', m);
    if (m.task !== 'classification') throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'members[${i}]' expected a classifier (task 'classification'; an ensemble of regressors is not supported), got a model of task '${m.task}'`);
    const out = m.outputShapeOf;
    if (out.length !== 1) throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'members[${i}]' expected a classifier that outputs [classes] per example, got output shape ${showShape(out)}`);
  }
  const first = members[0] as Sequential;
  for (let i = 1; i < members.length; i++) {
    const m = members[i] as Sequential;
    if (m.ctx !== first.ctx) {
      throw new BayesError('WRONG_DEVICE', `${op}: argument 'members[${i}]' is a model on another device/context than argument 'members[0]' (${m.ctx.adapterName}); build it on the same context, or move it with model.to(ctx)`);
    }
    if (m.outputShapeOf[0] !== first.outputShapeOf[0]) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'members[${i}]' has ${m.outputShapeOf[0]} classes, members[0] has ${first.outputShapeOf[0]}; every member must predict the same classes`);
    }
    const a = m.inputShape;
    const b = first.inputShape;
    if (a.length !== b.length || a.some((d, k) => d !== b[k])) {
      throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'members[${i}]' has input shape ${showShape(a)}, members[0] has ${showShape(b)}; every member must take the same input`);
    }
  }
  return members as Sequential[];
}

/** H[p] = -sum_c p_c log p_c in nats over p[from, from + C), with 0 log 0 = 0. */
function entropy(p: Float64Array, from: number, C: number): number {
  let h = 0;
  for (let c = 0; c < C; c++) {
    const v = p[from + c];
    if (v > 0) h -= v * Math.log(v);
  }
  return h;
}

/**
 * A deep ensemble of classifiers (Lakshminarayanan et al. 2017): M models of one context, class
 * count and input shape, whose `predict` is the equally weighted mixture of the members'
 * predictive distributions, decomposed over all M * T samples (see the module comment).
 *
 * @example
 * const ensemble = new Ensemble([BBBLeNet(ctx, { seed: 1 }), BBBLeNet(ctx, { seed: 2 })]);
 * const p = await ensemble.predict(images, { samples: 10 });   // p.samples = 20
 */
export class Ensemble {
  /** The members, in the order given (a copy of the array: later changes to the caller's array do not reach it). */
  readonly members: readonly Sequential[];

  /**
   * Checks the members before any GPU work: at least one; each a classifier model; all built on
   * one context (WRONG_DEVICE otherwise), with the same class count and input shape as members[0].
   */
  constructor(members: readonly Sequential[]) {
    this.members = Object.freeze([...checkMembers('Ensemble', members)]);
  }

  /** Classes C, shared by every member. */
  get classes(): number {
    return this.members[0].outputShapeOf[0];
  }

  /** One example's input shape, shared by every member. */
  get inputShape(): readonly number[] {
    return this.members[0].inputShape;
  }

  /**
   * The ensemble's predictive distribution of `input` (anything `model.predict` takes: a tensor,
   * values with a shape, a data set, images). Every member runs `member.predict(input, options)`
   * in turn with the same options (samples T per member, seed, step, batchSize, method, sample,
   * mcDropout, image, keepSamples); the results are combined exactly in float64 into one
   * Prediction over M * T equally weighted samples: `samples` is M * T and, with keepSamples,
   * `probs` is [M * T, N, C], member m's samples at rows m * T .. m * T + T - 1. `onProgress`
   * counts over all members: done out of total = M * N. A member's image preprocessing and, unless
   * `temperature` is given, its temperature are its own (each member is calibrated on its own).
   */
  async predict(input: ModelInput, options: PredictOptions = {}): Promise<Prediction> {
    const op = 'Ensemble.predict';
    // A member moved with model.to(ctx) after construction would now run elsewhere: check again.
    const members = checkMembers(op, this.members);
    if (options === null || typeof options !== 'object') throw argumentError(op, 'options', 'an options object (the options of model.predict)', options);
    const { onProgress } = options;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw argumentError(op, 'onProgress', 'a function ({ done, total }) => void', onProgress);
    // members[0].predict checks the options and the input for all (same context, input shape and classes);
    // only the MC dropout check depends on the member, so it is made here for every one before any GPU work.
    if (options.mcDropout === true) {
      const i = members.findIndex((m) => droppingLayers(m).length === 0);
      if (i >= 0) {
        throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'members[${i}]' expected a model with a Dropout layer of p > 0 for MC dropout (mcDropout: true applies to every member), got one without (layers: ${members[i].children().map(([n]) => n).join(', ')})`);
      }
    }

    const M = members.length;
    const results: Prediction[] = [];
    for (let m = 0; m < M; m++) {
      const progress = onProgress && (({ done, total }: PredictProgress) => onProgress({ done: m * total + done, total: M * total }));
      results.push(await members[m].predict(input, { ...options, onProgress: progress }));
    }
    return combine(results);
  }
}

/** The member predictions (same input, classes and options) as one Prediction over all their samples. */
function combine(results: Prediction[]): Prediction {
  const M = results.length;
  const { count: N, classes: C, method, labels } = results[0];
  // model.predict gives T for a sampling member and 1 for a deterministic one (whose T samples would be equal).
  const T = Math.max(...results.map((r) => r.samples));
  for (const [m, r] of results.entries()) {
    if (r.count !== N || r.classes !== C || (r.samples !== T && r.samples !== 1)) {
      throw new BayesError('INVALID_ARGUMENT', `Ensemble.predict: member ${m} returned ${r.count} examples of ${r.classes} classes from ${r.samples} samples, member 0 ${N} of ${C} (samples ${T} or 1 expected)`);
    }
  }
  const NC = N * C;
  const mean64 = new Float64Array(NC);
  const aleatoric64 = new Float64Array(NC);
  const epistemic64 = new Float64Array(NC);
  const expected64 = new Float64Array(N);
  for (const r of results) {
    for (let i = 0; i < NC; i++) {
      mean64[i] += r.mean[i] / M;
      aleatoric64[i] += r.aleatoric[i] / M;
    }
    for (let n = 0; n < N; n++) expected64[n] += r.expectedEntropy[n] / M;
  }
  // Law of total variance: the within-member variance plus the spread of the member means around the mixture's.
  for (const r of results) {
    for (let i = 0; i < NC; i++) {
      const d = r.mean[i] - mean64[i];
      epistemic64[i] += (r.epistemic[i] + d * d) / M;
    }
  }

  const mean = Float32Array.from(mean64);
  const predictiveEntropy = new Float32Array(N);
  const mutualInformation = new Float32Array(N);
  const maxProb = new Float32Array(N);
  const predicted = new Uint32Array(N);
  for (let n = 0; n < N; n++) {
    const h = entropy(mean64, n * C, C);
    predictiveEntropy[n] = h;
    // H is concave, so H[p_bar] >= mean H[p_t] exactly; max(., 0) drops only the members' f32 rounding (as uncertainty.wgsl does).
    mutualInformation[n] = Math.max(h - expected64[n], 0);
    let best = 0;
    for (let c = 1; c < C; c++) if (mean[n * C + c] > mean[n * C + best]) best = c;
    predicted[n] = best;
    maxProb[n] = mean[n * C + best];
  }

  let probs: Float32Array | null = null;
  if (results[0].probs) {
    probs = new Float32Array(M * T * NC);
    for (const [m, r] of results.entries()) {
      // A deterministic member's one sample stands for its T equal samples.
      for (let t = 0; t < T; t++) probs.set(r.probs!.subarray((r.samples === 1 ? 0 : t) * NC, ((r.samples === 1 ? 0 : t) + 1) * NC), (m * T + t) * NC);
    }
  }

  return {
    mean, epistemic: Float32Array.from(epistemic64), aleatoric: Float32Array.from(aleatoric64),
    predictiveEntropy, expectedEntropy: Float32Array.from(expected64), mutualInformation, maxProb, predicted,
    labels, probs, count: N, classes: C, samples: M * T, method,
  };
}
