/**
 * Split conformal prediction sets for a classifier (Vovk et al. 2005; Angelopoulos & Bates 2021,
 * "A Gentle Introduction to Conformal Prediction and Distribution-Free Uncertainty
 * Quantification", sections 1 and 2.1). Plain float64 CPU code over read-back probabilities.
 *
 * From n labelled calibration examples, exchangeable with the test examples, a nonconformity
 * score s(x, y) (large = the label fits badly) and a level alpha in (0, 1):
 *
 *   qhat = the k-th smallest calibration score s(x_i, y_i), k = ceil((n + 1)(1 - alpha))
 *   C(x) = { y : s(x, y) <= qhat }
 *
 * Then P(y_test in C(x_test)) >= 1 - alpha for any model and any data distribution, and, when the
 * scores have no ties, also <= 1 - alpha + 1 / (n + 1) (Angelopoulos & Bates, section 1 and
 * appendix D). The k-th smallest is the (1 - alpha) empirical quantile with the finite-sample
 * correction (n + 1) / n; it needs k <= n, that is n >= 1/alpha - 1 calibration examples.
 *
 * Scores (p = the predictive distribution of x; probs: [N, C] row-major, labels: N class indices):
 *
 *   'lac'  s(x, y) = 1 - p_y: the least ambiguous set-valued classifier (Sadinle, Lei &
 *          Wasserman 2019), the smallest sets on average; C(x) = { y : p_y >= 1 - qhat }.
 *   'aps'  adaptive prediction sets (Romano, Sesia & Candes 2020; Angelopoulos & Bates eq. 3):
 *          rank the classes by p, highest first, and let s(x, y) = the total probability of the
 *          classes ranked at or above y. C(x) takes the classes in rank order while their
 *          cumulative probability stays <= qhat. With `randomized: true`,
 *          s(x, y) = (mass of the classes ranked above y) + U p_y with one U ~ Uniform[0, 1) per
 *          example, which makes the coverage exact in expectation rather than conservative.
 *
 * Ties in the ranking are broken by the lower class index first (as Prediction.predicted and
 * metrics.ts break argmax ties), so the order, the scores and hence the sets are deterministic.
 * The score of a test example is computed by the same code as a calibration example's, in the
 * same order of float64 additions, so an exchangeable test example meets qhat exactly as a
 * calibration example does. A set may be empty (C(x) = {} when even the top class's score exceeds
 * qhat, possible for LAC and APS); conformalReport counts them.
 */
import { BayesError, argumentError, checkInt, checkNumber, checkOneOf } from '../errors.js';
import { Prng } from '../util/prng.js';

/** The nonconformity score: 'lac' (1 - p_y) or 'aps' (the probability mass ranked at or above y). */
export type ConformalScore = 'lac' | 'aps';

/** The scores calibrateConformal accepts. */
export const CONFORMAL_SCORES: readonly ConformalScore[] = ['lac', 'aps'];

/** Options of calibrateConformal. */
export interface ConformalOptions {
  /** The miscoverage level in (0, 1): the sets cover the label with probability >= 1 - alpha. */
  alpha: number;
  /** The nonconformity score (default 'lac'). */
  score?: ConformalScore;
  /** APS only: the randomized score (mass above y) + U p_y (default false). */
  randomized?: boolean;
  /** Seed of the U draws of the randomized APS score (default 0); test sets draw from seed + 1. */
  seed?: number;
}

/** What calibrateConformal measured: the threshold qhat that conformalSets compares scores with. */
export interface ConformalCalibration {
  alpha: number;
  score: ConformalScore;
  randomized: boolean;
  seed: number;
  /** The k-th smallest calibration score, k = ceil((n + 1)(1 - alpha)). */
  qhat: number;
  /** n, the calibration examples. */
  count: number;
  classes: number;
}

/** Prediction sets of N examples. */
export interface ConformalSets {
  /** Per example, the class indices in the set, by probability (highest first; ties: lower index first). */
  sets: number[][];
  /** [N, C] 1 where class c is in the set of example i. */
  mask: Uint8Array;
  /** [N] the size of each set. */
  sizes: Uint32Array;
  count: number;
  classes: number;
}

/** Coverage and set size of the examples of one true class. */
export interface ConformalClassReport {
  class: number;
  /** The test examples of this class. */
  count: number;
  /** The fraction of them whose set holds the label (NaN when count = 0). */
  coverage: number;
  /** Their mean set size (NaN when count = 0). */
  meanSetSize: number;
}

/** How prediction sets did on labelled examples. */
export interface ConformalReport {
  /** The fraction of examples whose set holds their label. */
  coverage: number;
  meanSetSize: number;
  /** Per true class (conditional coverage, which split conformal does not guarantee). */
  byClass: ConformalClassReport[];
  /** Examples with an empty set. */
  emptySets: number;
  count: number;
}

/** Options of conformalPrediction: calibrateConformal's, the test sets drawing from seed + 1. */
export type ConformalPredictionOptions = ConformalOptions;

/** calibrateConformal on one prediction, conformalSets and conformalReport on another, in one object. */
export interface ConformalPredictionResult extends ConformalReport {
  alpha: number;
  score: ConformalScore;
  randomized: boolean;
  qhat: number;
  /** n, the calibration examples. */
  calibrationCount: number;
  /** The test sets. */
  sets: ConformalSets;
}

/** What conformalPrediction reads of a Prediction (nn/predict.ts): its mean, labels and classes. */
export interface LabelledProbabilities {
  /** [N, C] the predictive distribution. */
  mean: ArrayLike<number>;
  /** [N] class indices (a Prediction's labels are null when its input had none). */
  labels: ArrayLike<number> | null;
  classes: number;
}

// ------------------------------------------------------------------ checks

function checkProbs(op: string, argument: string, probs: ArrayLike<number>, classes: number): number {
  checkInt(op, 'classes', classes, 1);
  if (probs === null || typeof probs !== 'object' || typeof probs.length !== 'number') throw argumentError(op, argument, 'an array of N * classes probabilities', probs);
  if (probs.length === 0 || probs.length % classes !== 0) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' expected N * ${classes} values (N >= 1 examples of ${classes} classes), got ${probs.length}`);
  }
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    // 1 + 1e-6: a read-back f32 distribution may sum a few roundings above 1.
    if (!(p >= 0 && p <= 1 + 1e-6)) throw argumentError(op, `${argument}[${i}]`, 'a probability in [0, 1]', p);
  }
  return probs.length / classes;
}

function checkLabels(op: string, argument: string, labels: ArrayLike<number>, count: number, classes: number): void {
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') throw argumentError(op, argument, 'an array of class indices', labels);
  if (labels.length !== count) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' expected ${count} labels (one per row of probs), got ${labels.length}`);
  }
  for (let i = 0; i < count; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw argumentError(op, `${argument}[${i}]`, `a class index in 0..${classes - 1}`, y);
  }
}

/**
 * ceil(x) for an x that should be a whole number but picked up a rounding: (n + 1)(1 - alpha)
 * with alpha = 0.1 is 9.000000000000002 for some n, and the plain ceil would ask for one more
 * calibration score than the formula does.
 */
function ceilTolerant(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x)) ? r : Math.ceil(x);
}

/** k = ceil((n + 1)(1 - alpha)): the rank of qhat among the n calibration scores. */
export function conformalRank(count: number, alpha: number): number {
  return ceilTolerant((count + 1) * (1 - alpha));
}

/** The fewest calibration examples for which k <= n: ceil(1/alpha - 1) (and at least 1). */
export function minCalibrationCount(alpha: number): number {
  return Math.max(1, ceilTolerant(1 / alpha - 1));
}

function checkAlpha(op: string, argument: string, alpha: unknown): number {
  return checkNumber(op, argument, alpha, (v) => v > 0 && v < 1, 'a miscoverage level in (0, 1)');
}

function checkSeed(op: string, seed: unknown): number {
  return checkNumber(op, 'options.seed', seed, Number.isInteger, 'an integer');
}

// ------------------------------------------------------------------ scores

/** Class indices of row i by probability, highest first; ties: lower index first. */
function ranking(probs: ArrayLike<number>, i: number, classes: number): number[] {
  const order = Array.from({ length: classes }, (_, c) => c);
  const base = i * classes;
  return order.sort((a, b) => probs[base + b] - probs[base + a] || a - b);
}

/**
 * The scores s(x_i, c) of every class c of row i into `out` (length classes). For APS, `u` is the
 * example's uniform draw (NaN: not randomized). Cumulative sums run in rank order, one float64
 * addition per class, so each class's score is the same number whether asked for in calibration
 * or in a test set.
 */
function rowScores(probs: ArrayLike<number>, i: number, classes: number, score: ConformalScore, u: number, out: Float64Array): void {
  const base = i * classes;
  if (score === 'lac') {
    for (let c = 0; c < classes; c++) out[c] = 1 - probs[base + c];
    return;
  }
  let above = 0;
  for (const c of ranking(probs, i, classes)) {
    const p = probs[base + c];
    out[c] = Number.isNaN(u) ? above + p : above + u * p;
    above += p;
  }
}

// ------------------------------------------------------------------ the public calls

/**
 * Split conformal calibration: the scores of the n calibration examples' true labels and their
 * k-th smallest, k = ceil((n + 1)(1 - alpha)) (Angelopoulos & Bates 2021, section 1). Refuses a
 * calibration set smaller than ceil(1/alpha - 1), for which k > n and no finite threshold covers.
 *
 * @example
 * // LAC, alpha = 0.2, n = 4: scores 1 - p_y = 0.1, 0.4, 0.3, 0.8; k = ceil(5 * 0.8) = 4 -> qhat = 0.8.
 * calibrateConformal([0.9, 0.1, 0.4, 0.6, 0.7, 0.3, 0.8, 0.2], [0, 1, 0, 1], 2, { alpha: 0.2 }).qhat; // 0.8 (up to rounding)
 */
export function calibrateConformal(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, options: ConformalOptions): ConformalCalibration {
  return calibrate('calibrateConformal', probs, labels, classes, options, { probs: 'probs', labels: 'labels' });
}

/** calibrateConformal under another call's name (conformalPrediction names its arguments differently). */
function calibrate(op: string, probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, options: ConformalOptions, names: { probs: string; labels: string }): ConformalCalibration {
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ alpha, score?, randomized?, seed? }', options);
  const alpha = checkAlpha(op, 'options.alpha', options.alpha);
  const score = checkOneOf(op, 'options.score', options.score ?? 'lac', CONFORMAL_SCORES);
  if (options.randomized !== undefined && typeof options.randomized !== 'boolean') throw argumentError(op, 'options.randomized', 'true or false', options.randomized);
  const randomized = options.randomized ?? false;
  if (randomized && score !== 'aps') throw argumentError(op, 'options.randomized', `false with score '${score}' (only 'aps' has a randomized form)`, randomized);
  const seed = checkSeed(op, options.seed ?? 0);
  const n = checkProbs(op, names.probs, probs, classes);
  checkLabels(op, names.labels, labels, n, classes);
  const needed = minCalibrationCount(alpha);
  const k = conformalRank(n, alpha);
  if (n < needed || k > n) {
    throw argumentError(op, names.probs, `a calibration set of at least ceil(1/alpha - 1) = ${needed} examples for alpha = ${alpha} (k = ceil((n + 1)(1 - alpha)) must be <= n), n =`, n);
  }
  const rng = new Prng(seed);
  const row = new Float64Array(classes);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    rowScores(probs, i, classes, score, randomized ? rng.next() : Number.NaN, row);
    scores[i] = row[labels[i]];
  }
  scores.sort();
  return { alpha, score, randomized, seed, qhat: scores[k - 1], count: n, classes };
}

function checkCalibration(op: string, calibration: ConformalCalibration, classes: number): void {
  if (calibration === null || typeof calibration !== 'object') throw argumentError(op, 'calibration', 'a ConformalCalibration (from calibrateConformal)', calibration);
  checkOneOf(op, 'calibration.score', calibration.score, CONFORMAL_SCORES);
  checkNumber(op, 'calibration.qhat', calibration.qhat);
  if (typeof calibration.randomized !== 'boolean') throw argumentError(op, 'calibration.randomized', 'true or false', calibration.randomized);
  if (calibration.randomized) checkNumber(op, 'calibration.seed', calibration.seed, Number.isInteger, 'an integer');
  if (calibration.classes !== classes) throw argumentError(op, 'calibration.classes', `${classes} (the classes of probs)`, calibration.classes);
}

/**
 * The prediction set C(x) = { y : s(x, y) <= qhat } of every row of probs ([N, C]), each as class
 * indices by probability (highest first), a [N, C] mask and the sizes. A randomized APS
 * calibration draws each example's U from `options.seed`, by default calibration.seed + 1.
 */
export function conformalSets(probs: ArrayLike<number>, classes: number, calibration: ConformalCalibration, options: { seed?: number } = {}): ConformalSets {
  const op = 'conformalSets';
  checkInt(op, 'classes', classes, 1);
  checkCalibration(op, calibration, classes);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ seed? }', options);
  const seed = options.seed === undefined ? (calibration.seed ?? 0) + 1 : checkSeed(op, options.seed);
  const n = checkProbs(op, 'probs', probs, classes);
  const rng = new Prng(seed);
  const row = new Float64Array(classes);
  const mask = new Uint8Array(n * classes);
  const sizes = new Uint32Array(n);
  const sets: number[][] = [];
  for (let i = 0; i < n; i++) {
    rowScores(probs, i, classes, calibration.score, calibration.randomized ? rng.next() : Number.NaN, row);
    const set = ranking(probs, i, classes).filter((c) => row[c] <= calibration.qhat);
    for (const c of set) mask[i * classes + c] = 1;
    sizes[i] = set.length;
    sets.push(set);
  }
  return { sets, mask, sizes, count: n, classes };
}

/** Coverage (the fraction of sets that hold their label), mean set size, both per true class, and the empty sets. */
export function conformalReport(sets: ConformalSets, labels: ArrayLike<number>, classes: number): ConformalReport {
  const op = 'conformalReport';
  checkInt(op, 'classes', classes, 1);
  if (sets === null || typeof sets !== 'object' || !(sets.mask instanceof Uint8Array) || !(sets.sizes instanceof Uint32Array)) {
    throw argumentError(op, 'sets', 'a ConformalSets (from conformalSets)', sets);
  }
  const n = sets.sizes.length;
  if (sets.mask.length !== n * classes) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'sets.mask' expected ${n} * ${classes} values (one per example and class), got ${sets.mask.length}`);
  }
  checkLabels(op, 'labels', labels, n, classes);
  const count = new Float64Array(classes);
  const covered = new Float64Array(classes);
  const size = new Float64Array(classes);
  let emptySets = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    count[y]++;
    size[y] += sets.sizes[i];
    if (sets.mask[i * classes + y]) covered[y]++;
    if (sets.sizes[i] === 0) emptySets++;
  }
  const total = (a: Float64Array) => a.reduce((s, v) => s + v, 0);
  return {
    coverage: total(covered) / n,
    meanSetSize: total(size) / n,
    byClass: Array.from({ length: classes }, (_, c) => ({
      class: c,
      count: count[c],
      coverage: count[c] > 0 ? covered[c] / count[c] : Number.NaN,
      meanSetSize: count[c] > 0 ? size[c] / count[c] : Number.NaN,
    })),
    emptySets,
    count: n,
  };
}

function checkLabelled(op: string, argument: string, p: LabelledProbabilities): ArrayLike<number> {
  if (p === null || typeof p !== 'object') throw argumentError(op, argument, 'a Prediction with labels ({ mean, labels, classes })', p);
  if (p.labels === null || p.labels === undefined) throw argumentError(op, `${argument}.labels`, 'the labels of the predicted examples (predict a data set that has labels)', p.labels);
  return p.labels;
}

/**
 * Split conformal prediction from two labelled predictions of one model: calibrate on the first,
 * build the sets of the second and measure their coverage and size. The two must be disjoint
 * and exchangeable (e.g. a random split of a held-out set).
 *
 * @example
 * const cal = await model.predict(calibrationSet, { samples: 25 });
 * const test = await model.predict(testSet, { samples: 25 });
 * const r = conformalPrediction(cal, test, { alpha: 0.1, score: 'aps' });
 * console.log(r.coverage, r.meanSetSize); // coverage >= 0.9 on average over splits
 */
export function conformalPrediction(calibration: LabelledProbabilities, test: LabelledProbabilities, options: ConformalPredictionOptions): ConformalPredictionResult {
  const op = 'conformalPrediction';
  const calibrationLabels = checkLabelled(op, 'calibration', calibration);
  const testLabels = checkLabelled(op, 'test', test);
  checkInt(op, 'calibration.classes', calibration.classes, 1);
  if (test.classes !== calibration.classes) throw argumentError(op, 'test.classes', `${calibration.classes} (the classes of calibration)`, test.classes);
  // Check the test set before calibrating, so that a bad test set fails before any work.
  checkInt(op, 'test.classes', test.classes, 1);
  const n = checkProbs(op, 'test.mean', test.mean, test.classes);
  checkLabels(op, 'test.labels', testLabels, n, test.classes);
  const cal = calibrate(op, calibration.mean, calibrationLabels, calibration.classes, options, { probs: 'calibration.mean', labels: 'calibration.labels' });
  const sets = conformalSets(test.mean, test.classes, cal);
  const report = conformalReport(sets, testLabels, test.classes);
  return { alpha: cal.alpha, score: cal.score, randomized: cal.randomized, qhat: cal.qhat, calibrationCount: cal.count, ...report, sets };
}
