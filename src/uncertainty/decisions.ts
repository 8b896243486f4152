/**
 * Decisions from predictive uncertainty: flag predictions for human review,
 * choose the examples worth labelling next (active learning), and rank options
 * by a risk-averse score. Plain CPU code over the per-example numbers that
 * `model.predict` (nn/predict.ts: a Prediction for a classifier, a RegressionPrediction for a
 * regressor) reads back.
 */
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf } from '../errors.js';

/**
 * Per-example uncertainty scores; a `Prediction` (nn/predict.ts) has these fields (entropies in nats).
 */
export interface UncertaintyScores {
  /** [B] max_c p_bar(c): the confidence of the predicted class. */
  maxProb?: ArrayLike<number>;
  /** [B] H[p_bar], total uncertainty. */
  predictiveEntropy?: ArrayLike<number>;
  /** [B] H[p_bar] - mean_t H[p_t], the epistemic part (BALD, Houlsby et al. 2011). */
  mutualInformation?: ArrayLike<number>;
}

export interface ReviewThresholds {
  /** Flag when max_c p_bar(c) < minConfidence. */
  minConfidence?: number;
  /** Flag when the predictive entropy > maxEntropy (nats; at most log C). */
  maxEntropy?: number;
  /** Flag when the mutual information > maxMutualInformation (nats). */
  maxMutualInformation?: number;
}

type ScoreField = keyof UncertaintyScores;

/** The score array `field` of `source` (the argument named `argument`), checked: present, of length `count` when given. */
function scores(op: string, argument: string, source: UncertaintyScores, field: ScoreField, count?: number): ArrayLike<number> {
  const values = source[field];
  if (values === undefined || values === null || typeof values.length !== 'number') {
    throw argumentError(op, `${argument}.${field}`, `an array of per-example scores (needed by the threshold or ranking on ${field})`, values);
  }
  if (count !== undefined && values.length !== count) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}.${field}' has ${values.length} scores but the other scores have ${count}`);
  }
  return values;
}

/**
 * Flags each example whose prediction should go to a human: its confidence is below
 * `minConfidence`, or its predictive entropy or mutual information is above the maximum given.
 * Any one exceeded threshold flags the example; an example with a NaN score is always flagged
 * (a broken prediction is no basis for an automatic decision). At least one threshold is required.
 *
 * @example
 * // Two classes; example 1 is unsure (0.55) and example 2 confident but epistemically uncertain.
 * needsReview(
 *   { maxProb: [0.99, 0.55, 0.9], mutualInformation: [0.01, 0.02, 0.4] },
 *   { minConfidence: 0.8, maxMutualInformation: 0.1 },
 * ); // -> [false, true, true]
 */
export function needsReview(pred: UncertaintyScores, thresholds: ReviewThresholds): boolean[] {
  const op = 'needsReview';
  if (pred === null || typeof pred !== 'object') throw argumentError(op, 'pred', '{ maxProb?, predictiveEntropy?, mutualInformation? }', pred);
  if (thresholds === null || typeof thresholds !== 'object') throw argumentError(op, 'thresholds', '{ minConfidence?, maxEntropy?, maxMutualInformation? }', thresholds);
  const rules: { values: ArrayLike<number>; flag: (v: number) => boolean }[] = [];
  let count: number | undefined;
  const add = (field: ScoreField, flag: (v: number) => boolean) => {
    const values = scores(op, 'pred', pred, field, count);
    count = values.length;
    rules.push({ values, flag: (v) => Number.isNaN(v) || flag(v) });
  };
  if (thresholds.minConfidence !== undefined) {
    const t = checkNumber(op, 'thresholds.minConfidence', thresholds.minConfidence, (v) => v >= 0 && v <= 1, 'a probability in [0, 1]');
    add('maxProb', (v) => v < t);
  }
  if (thresholds.maxEntropy !== undefined) {
    const t = checkNumber(op, 'thresholds.maxEntropy', thresholds.maxEntropy, (v) => v >= 0 && Number.isFinite(v), 'a number >= 0 (nats)');
    add('predictiveEntropy', (v) => v > t);
  }
  if (thresholds.maxMutualInformation !== undefined) {
    const t = checkNumber(op, 'thresholds.maxMutualInformation', thresholds.maxMutualInformation, (v) => v >= 0 && Number.isFinite(v), 'a number >= 0 (nats)');
    add('mutualInformation', (v) => v > t);
  }
  if (rules.length === 0) throw argumentError(op, 'thresholds', 'at least one of minConfidence, maxEntropy, maxMutualInformation', thresholds);
  return Array.from({ length: count! }, (_, i) => rules.some((r) => r.flag(r.values[i])));
}

/** Indices of the `n` largest `values`, largest first; ties keep the lower index first. */
function topIndices(values: ArrayLike<number>, n: number): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => values[b] - values[a] || a - b);
  return order.slice(0, n);
}

function checkFinite(op: string, argument: string, values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw argumentError(op, `${argument}[${i}]`, 'a finite number', values[i]);
  }
}

/**
 * Active learning: the indices of the `n` most uncertain examples of an unlabelled pool, most
 * uncertain first (ties: lower index first). `by: 'mutualInformation'` (default) is BALD (Houlsby et
 * al. 2011; Gal, Islam & Ghahramani 2017): it prefers points where the posterior samples disagree,
 * which labels can resolve, over points that are merely noisy; 'entropy' ranks by the predictive
 * entropy (total uncertainty). `n` larger than the pool returns the whole pool, ranked.
 *
 * @example
 * selectForLabeling({ mutualInformation: [0.1, 0.5, 0.0, 0.3] }, 2); // -> [1, 3]
 * selectForLabeling({ predictiveEntropy: [0.6, 0.2, 0.6] }, 2, { by: 'entropy' }); // -> [0, 2]
 */
export function selectForLabeling(pool: UncertaintyScores, n: number, options: { by?: 'mutualInformation' | 'entropy' } = {}): number[] {
  const op = 'selectForLabeling';
  if (pool === null || typeof pool !== 'object') throw argumentError(op, 'pool', '{ mutualInformation?, predictiveEntropy? }', pool);
  checkInt(op, 'n', n, 0);
  const by = checkOneOf(op, 'by', options.by ?? 'mutualInformation', ['mutualInformation', 'entropy'] as const);
  const field: ScoreField = by === 'entropy' ? 'predictiveEntropy' : 'mutualInformation';
  const values = scores(op, 'pool', pool, field);
  checkFinite(op, `pool.${field}`, values);
  return topIndices(values, n);
}

/**
 * Risk-averse ranking: the score of option i is means[i] - lambda * stds[i], a lower confidence
 * bound on its value; returns option indices from the best score down (ties: lower index first),
 * the first `n` of them when given. lambda = 0 ranks by the mean alone; larger lambda penalises
 * uncertain options more (lambda < 0 seeks risk, as UCB exploration does).
 *
 * @example
 * // Option 1 has the best mean but is very uncertain: 1 - 1 * 0.8 = 0.2 < 0.8 - 1 * 0.1 = 0.7.
 * riskAwareSelect([0.8, 1.0, 0.5], [0.1, 0.8, 0.0], 1); // -> [0, 2, 1]  (scores 0.7, 0.2, 0.5)
 * riskAwareSelect([0.8, 1.0, 0.5], [0.1, 0.8, 0.0], 0, 1); // -> [1]
 */
export function riskAwareSelect(means: ArrayLike<number>, stds: ArrayLike<number>, lambda: number, n?: number): number[] {
  const op = 'riskAwareSelect';
  const adjusted = riskAdjustedScores(means, stds, lambda, op);
  return topIndices(adjusted, n === undefined ? adjusted.length : checkInt(op, 'n', n, 0));
}

/** means[i] - lambda * stds[i] per option, the score riskAwareSelect ranks by. */
export function riskAdjustedScores(means: ArrayLike<number>, stds: ArrayLike<number>, lambda: number, op = 'riskAdjustedScores'): Float64Array {
  if (means === null || typeof means !== 'object' || typeof means.length !== 'number') throw argumentError(op, 'means', 'an array of numbers', means);
  if (stds === null || typeof stds !== 'object' || typeof stds.length !== 'number') throw argumentError(op, 'stds', 'an array of numbers', stds);
  if (stds.length !== means.length) throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'stds' expected ${means.length} values (one per mean), got ${stds.length}`);
  checkNumber(op, 'lambda', lambda);
  checkFinite(op, 'means', means);
  for (let i = 0; i < stds.length; i++) {
    if (!(stds[i] >= 0 && Number.isFinite(stds[i]))) throw argumentError(op, `stds[${i}]`, 'a finite number >= 0', stds[i]);
  }
  return Float64Array.from(means, (m, i) => m - lambda * stds[i]);
}
