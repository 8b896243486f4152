/**
 * Classification and out-of-distribution metrics on read-back predictive
 * distributions (plain TypeScript, float64 accumulation).
 *
 * probs: [N, C] row-major class probabilities (rows sum to 1); labels: N class indices.
 *
 *   accuracy      fraction with argmax_c p = label (lowest index on ties)
 *   nll           mean -log p_label
 *   brierScore    mean over examples of sum_c (p_c - onehot_c)^2 (Brier 1950; in [0, 2])
 *   reliability   confidence = max_c p in 15 equal-width bins (0, 1/15], (1/15, 2/15], ...,
 *                 (14/15, 1]; ECE = sum_b (n_b / N) |acc_b - conf_b|, MCE = max_b |acc_b - conf_b|
 *                 over non-empty bins (Guo et al. 2017, "On Calibration of Modern Neural
 *                 Networks", eqs. 2-5; Naeini et al. 2015)
 *   auroc         P(score_ood > score_in) + P(equal) / 2 (Mann-Whitney U / (n_in n_ood))
 *   aupr          average precision with OOD as the positive class (sum over distinct thresholds
 *                 of (R_k - R_{k-1}) P_k, as scikit-learn's average_precision_score)
 * OOD scores are "higher = more out of distribution": predictive entropy, mutual
 * information, 1 - max probability (Hendrycks & Gimpel 2017).
 */
import { BayesError, argumentError, checkInt } from '../errors.js';

/**
 * Probabilities below the smallest normal f32 (2^-126) are not resolved by the
 * read-back f32 distribution; -log p is capped there (about 87.3 nats) instead
 * of becoming infinite when a probability underflowed to 0.
 */
export const MIN_PROBABILITY = 2 ** -126;

function checkProbs(op: string, probs: ArrayLike<number>, classes: number): number {
  checkInt(op, 'classes', classes, 1);
  if (probs === null || typeof probs !== 'object' || typeof probs.length !== 'number') throw argumentError(op, 'probs', 'an array of N * classes probabilities', probs);
  if (probs.length === 0 || probs.length % classes !== 0) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'probs' expected N * ${classes} values (N >= 1 examples of ${classes} classes), got ${probs.length}`);
  }
  return probs.length / classes;
}

function checkLabels(op: string, labels: ArrayLike<number>, count: number, classes: number): void {
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') throw argumentError(op, 'labels', 'an array of class indices', labels);
  if (labels.length !== count) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'labels' expected ${count} labels (one per row of probs), got ${labels.length}`);
  }
  for (let i = 0; i < count; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw argumentError(op, `labels[${i}]`, `a class index in 0..${classes - 1}`, y);
  }
}

function checked(op: string, probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  const n = checkProbs(op, probs, classes);
  checkLabels(op, labels, n, classes);
  return n;
}

/** argmax of row i (lowest index on ties) and its probability. */
function top(probs: ArrayLike<number>, i: number, classes: number): { index: number; p: number } {
  let index = 0;
  let p = probs[i * classes];
  for (let c = 1; c < classes; c++) {
    const v = probs[i * classes + c];
    if (v > p) {
      p = v;
      index = c;
    }
  }
  return { index, p };
}

export function accuracy(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  const n = checked('accuracy', probs, labels, classes);
  let correct = 0;
  for (let i = 0; i < n; i++) if (top(probs, i, classes).index === labels[i]) correct++;
  return correct / n;
}

/** Mean negative log-likelihood of the labels (nats), -log p capped at -log MIN_PROBABILITY. */
export function nll(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  const n = checked('nll', probs, labels, classes);
  let sum = 0;
  for (let i = 0; i < n; i++) sum -= Math.log(Math.max(probs[i * classes + labels[i]], MIN_PROBABILITY));
  return sum / n;
}

/** Mean over examples of sum_c (p_c - onehot_c)^2. */
export function brierScore(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  const n = checked('brierScore', probs, labels, classes);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < classes; c++) {
      const d = probs[i * classes + c] - (c === labels[i] ? 1 : 0);
      sum += d * d;
    }
  }
  return sum / n;
}

export interface ReliabilityBin {
  /** The bin is (lower, upper]. */
  lower: number;
  upper: number;
  count: number;
  /** Mean confidence (max probability) in the bin; NaN when empty. */
  confidence: number;
  /** Fraction correct in the bin; NaN when empty. */
  accuracy: number;
}

export interface Reliability {
  bins: ReliabilityBin[];
  /** Expected calibration error. */
  ece: number;
  /** Maximum calibration error. */
  mce: number;
  count: number;
}

/** Bin of a confidence in (0, 1] among `bins` equal-width bins (lower, upper]; 0 goes to the first. */
function binOf(confidence: number, bins: number): number {
  let b = Math.ceil(confidence * bins) - 1;
  // ceil(c * bins) can be off by one where c * bins rounds across an integer: compare with the edges.
  if (b >= 0 && confidence <= b / bins) b--;
  if (b < bins - 1 && confidence > (b + 1) / bins) b++;
  return Math.min(Math.max(b, 0), bins - 1);
}

/** Reliability diagram data, ECE and MCE with `bins` equal-width confidence bins (default 15). */
export function reliability(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, bins = 15): Reliability {
  const op = 'reliability';
  const n = checked(op, probs, labels, classes);
  checkInt(op, 'bins', bins, 1);
  const count = new Float64Array(bins);
  const confSum = new Float64Array(bins);
  const correct = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const t = top(probs, i, classes);
    if (!(t.p >= 0 && t.p <= 1 + 1e-6)) throw argumentError(op, `probs (row ${i})`, 'probabilities in [0, 1]', t.p);
    const b = binOf(t.p, bins);
    count[b]++;
    confSum[b] += t.p;
    if (t.index === labels[i]) correct[b]++;
  }
  const out: ReliabilityBin[] = [];
  let ece = 0;
  let mce = 0;
  for (let b = 0; b < bins; b++) {
    const confidence = count[b] > 0 ? confSum[b] / count[b] : NaN;
    const acc = count[b] > 0 ? correct[b] / count[b] : NaN;
    if (count[b] > 0) {
      const gap = Math.abs(acc - confidence);
      ece += (count[b] / n) * gap;
      mce = Math.max(mce, gap);
    }
    out.push({ lower: b / bins, upper: (b + 1) / bins, count: count[b], confidence, accuracy: acc });
  }
  return { bins: out, ece, mce, count: n };
}

function checkScores(op: string, argument: string, scores: ArrayLike<number>): void {
  if (scores === null || typeof scores !== 'object' || typeof scores.length !== 'number') throw argumentError(op, argument, 'an array of scores', scores);
  if (scores.length === 0) throw argumentError(op, argument, 'at least one score', '[]');
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw argumentError(op, `${argument}[${i}]`, 'a number (not NaN)', scores[i]);
  }
}

/** Scores of both sets, highest first, tagged with whether they are OOD. */
function sortedDescending(inScores: ArrayLike<number>, oodScores: ArrayLike<number>): { score: number; ood: boolean }[] {
  const all: { score: number; ood: boolean }[] = [];
  for (let i = 0; i < inScores.length; i++) all.push({ score: inScores[i], ood: false });
  for (let i = 0; i < oodScores.length; i++) all.push({ score: oodScores[i], ood: true });
  return all.sort((a, b) => b.score - a.score);
}

/**
 * Area under the ROC curve of separating OOD (positive) from in-distribution
 * examples by a score where higher means more OOD: the Mann-Whitney statistic
 * U / (n_in n_ood), ties counted 1/2. O(n log n): walking down the sorted
 * scores, each in-distribution example beats every OOD example seen before it
 * (higher score) and ties with the OOD examples of its own score group.
 */
export function auroc(inScores: ArrayLike<number>, oodScores: ArrayLike<number>): number {
  checkScores('auroc', 'inScores', inScores);
  checkScores('auroc', 'oodScores', oodScores);
  const all = sortedDescending(inScores, oodScores);
  let oodAbove = 0;
  let u = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    let groupOod = 0;
    let groupIn = 0;
    while (j < all.length && all[j].score === all[i].score) {
      if (all[j].ood) groupOod++;
      else groupIn++;
      j++;
    }
    u += groupIn * (oodAbove + groupOod / 2);
    oodAbove += groupOod;
    i = j;
  }
  return u / (inScores.length * oodScores.length);
}

/**
 * Area under the precision-recall curve with OOD as the positive class, as
 * average precision: sum over distinct thresholds (tied scores form one
 * threshold) of (recall_k - recall_{k-1}) * precision_k.
 */
export function aupr(inScores: ArrayLike<number>, oodScores: ArrayLike<number>): number {
  checkScores('aupr', 'inScores', inScores);
  checkScores('aupr', 'oodScores', oodScores);
  const all = sortedDescending(inScores, oodScores);
  const positives = oodScores.length;
  let tp = 0;
  let fp = 0;
  let ap = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    let groupTp = 0;
    while (j < all.length && all[j].score === all[i].score) {
      if (all[j].ood) groupTp++;
      j++;
    }
    tp += groupTp;
    fp += j - i - groupTp;
    ap += (groupTp / positives) * (tp / (tp + fp));
    i = j;
  }
  return ap;
}

/** The per-example quantities an OOD score is made from (a Prediction, nn/predict.ts, has them). */
export interface OodScoreSource {
  predictiveEntropy: ArrayLike<number>;
  mutualInformation: ArrayLike<number>;
  maxProb: ArrayLike<number>;
}

export interface OodDetection {
  aurocEntropy: number;
  aurocMutualInformation: number;
  aurocMaxProb: number;
  auprEntropy: number;
}

const oneMinus = (a: ArrayLike<number>) => Float64Array.from(a as ArrayLike<number>, (v) => 1 - v);

/** AUROC for predictive entropy, mutual information and 1 - max probability, and AUPR for entropy. */
export function oodDetection(inDistribution: OodScoreSource, ood: OodScoreSource): OodDetection {
  return {
    aurocEntropy: auroc(inDistribution.predictiveEntropy, ood.predictiveEntropy),
    aurocMutualInformation: auroc(inDistribution.mutualInformation, ood.mutualInformation),
    aurocMaxProb: auroc(oneMinus(inDistribution.maxProb), oneMinus(ood.maxProb)),
    auprEntropy: aupr(inDistribution.predictiveEntropy, ood.predictiveEntropy),
  };
}

export interface ClassificationMetrics {
  accuracy: number;
  nll: number;
  brier: number;
  ece: number;
  mce: number;
  reliability: Reliability;
}

/** Accuracy, NLL, Brier score, ECE and MCE (15 bins) of one predictive distribution. */
export function classificationMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, bins = 15): ClassificationMetrics {
  const r = reliability(probs, labels, classes, bins);
  return { accuracy: accuracy(probs, labels, classes), nll: nll(probs, labels, classes), brier: brierScore(probs, labels, classes), ece: r.ece, mce: r.mce, reliability: r };
}
