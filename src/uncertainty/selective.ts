/**
 * Selective classification: answer only the examples the model is most confident about and
 * abstain on the rest (Geifman & El-Yaniv 2017, "Selective Classification for Deep Neural
 * Networks"). Plain float64 CPU code over a read-back Prediction (nn/predict.ts).
 *
 * The prediction of example i is argmax_c p_bar(c) (the lowest index on ties, as
 * Prediction.predicted), wrong when it differs from the label. Ranked by a confidence score, the
 * m most confident examples are accepted; coverage = m / N and the selective risk is the error
 * rate among the accepted. Rankings (`by`):
 *
 *   'maxProb'            max_c p_bar(c), high = confident (softmax response, Geifman & El-Yaniv 2017)
 *   'entropy'            H[p_bar], low = confident (total uncertainty)
 *   'mutualInformation'  H[p_bar] - mean_t H[p_t], low = confident (BALD, the epistemic part)
 *
 * Ties. Examples with equal scores cannot be told apart by the ranking, so they are accepted as
 * a group: the curve has one point per distinct score (coverage and risk after the whole group),
 * and where a coverage level m / N falls inside a group of g examples with e errors, the number
 * of errors among its first j accepted is j e / g, the expectation over the g! orders of the
 * group. This makes every figure independent of the order of the input, and it is the plain
 * Geifman et al. value when there are no ties.
 *
 *   AURC       (1/N) sum_{m=1..N} risk(m): the area under the risk-coverage curve over the N
 *              coverage levels (Geifman, Uziel & El-Yaniv 2019, "Bias-Reduced Uncertainty
 *              Estimation for Deep Neural Classifiers", section 3)
 *   optimal    the AURC of the oracle ranking (every correct example before every wrong one),
 *              computed exactly on the finite set: with E errors, risk*(m) = max(0, m - (N - E)) / m.
 *              (r + (1 - r) ln(1 - r), r = E / N, is its continuous limit, Geifman et al. 2019 eq. 5.)
 *   E-AURC     AURC - optimal: 0 for a perfect ranking, whatever the accuracy.
 */
import { BayesError, argumentError, checkInt, checkOneOf } from '../errors.js';

/** The confidence score a risk-coverage curve ranks by. */
export type SelectiveRanking = 'maxProb' | 'entropy' | 'mutualInformation';

/** The rankings riskCoverage accepts. */
export const SELECTIVE_RANKINGS: readonly SelectiveRanking[] = ['maxProb', 'entropy', 'mutualInformation'];

/** What riskCoverage reads of a Prediction (nn/predict.ts); scores missing here are computed from the mean where they can be. */
export interface SelectiveSource {
  /** [N, C] the predictive distribution p_bar. */
  mean: ArrayLike<number>;
  classes: number;
  /** [N] the labels (used when the labels argument is null or left out). */
  labels?: ArrayLike<number> | null;
  /** [N] max_c p_bar (computed from mean when absent). */
  maxProb?: ArrayLike<number>;
  /** [N] H[p_bar] in nats (computed from mean when absent). */
  predictiveEntropy?: ArrayLike<number>;
  /** [N] BALD mutual information in nats (needed by by: 'mutualInformation'). */
  mutualInformation?: ArrayLike<number>;
}

/** Options of riskCoverage. */
export interface RiskCoverageOptions {
  /** The ranking (default 'maxProb'). */
  by?: SelectiveRanking;
  /** The classes, when the source is a bare [N, C] probability array. */
  classes?: number;
  /** The coverages of accuracyAtCoverage, each in (0, 1] (default [0.9, 0.95, 0.99]). */
  coverages?: readonly number[];
}

/** The accuracy on the most confident `accepted` = ceil(coverage N) examples. */
export interface AccuracyAtCoverage {
  /** The coverage asked for. */
  coverage: number;
  /** The examples accepted: ceil(coverage N). */
  accepted: number;
  /** 1 - selective risk at that coverage (ties: the expectation over the tied group's orders). */
  accuracy: number;
}

/** A risk-coverage curve and its summaries. */
export interface RiskCoverage {
  by: SelectiveRanking;
  /** One point per distinct score, most confident first: the coverage after accepting that score's examples. */
  coverage: Float64Array;
  /** The selective risk (error rate among the accepted) at each point. */
  risk: Float64Array;
  /** Area under the risk-coverage curve, (1/N) sum_m risk(m). */
  aurc: number;
  /** AURC - optimalAurc. */
  eaurc: number;
  /** AURC of the oracle ranking, exact on the finite set. */
  optimalAurc: number;
  /** At each coverage asked for (by default 0.9, 0.95 and 0.99, in that order). */
  accuracyAtCoverage: AccuracyAtCoverage[];
  /** N examples. */
  count: number;
  /** Wrong predictions among them: risk at full coverage is errors / N. */
  errors: number;
}

/** riskCoverage by each ranking; mutualInformation only when the source has it. */
export interface SelectiveReport {
  maxProb: RiskCoverage;
  entropy: RiskCoverage;
  mutualInformation?: RiskCoverage;
}

const DEFAULT_COVERAGES = [0.9, 0.95, 0.99];

const isArrayLike = (v: unknown): v is ArrayLike<number> => ArrayBuffer.isView(v) || Array.isArray(v);

function checkProbs(op: string, argument: string, probs: ArrayLike<number>, classes: number): number {
  if (!isArrayLike(probs)) throw argumentError(op, argument, 'an array of N * classes probabilities', probs);
  if (probs.length === 0 || probs.length % classes !== 0) {
    throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' expected N * ${classes} values (N >= 1 examples of ${classes} classes), got ${probs.length}`);
  }
  for (let i = 0; i < probs.length; i++) {
    if (!(probs[i] >= 0 && probs[i] <= 1 + 1e-6)) throw argumentError(op, `${argument}[${i}]`, 'a probability in [0, 1]', probs[i]);
  }
  return probs.length / classes;
}

function checkScores(op: string, argument: string, values: ArrayLike<number> | undefined, n: number): ArrayLike<number> {
  if (!isArrayLike(values)) throw argumentError(op, argument, `an array of ${n} per-example scores`, values);
  if (values.length !== n) throw new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' expected ${n} scores (one per example), got ${values.length}`);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(values[i])) throw argumentError(op, `${argument}[${i}]`, 'a number (not NaN)', values[i]);
  }
  return values;
}

/** ceil(x) that ignores a rounding just above a whole number (0.9 * 100 = 90.00000000000001). */
function ceilTolerant(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x)) ? r : Math.ceil(x);
}

interface Checked {
  n: number;
  classes: number;
  probs: ArrayLike<number>;
  labels: ArrayLike<number>;
  source: SelectiveSource | null;
}

function checkInput(op: string, source: SelectiveSource | ArrayLike<number>, labels: ArrayLike<number> | null | undefined, classesOption: number | undefined): Checked {
  let probs: ArrayLike<number>;
  let classes: number;
  let from: SelectiveSource | null = null;
  if (isArrayLike(source)) {
    if (classesOption === undefined) throw argumentError(op, 'options.classes', 'the number of classes (needed when the source is a bare probability array)', classesOption);
    classes = checkInt(op, 'options.classes', classesOption, 1);
    probs = source;
    if (labels === null || labels === undefined) throw argumentError(op, 'labels', 'an array of class indices (a bare probability array has none)', labels);
  } else {
    if (source === null || typeof source !== 'object') throw argumentError(op, 'source', 'a Prediction ({ mean, classes, ... }) or an [N * C] probability array', source);
    from = source;
    classes = checkInt(op, 'source.classes', source.classes, 1);
    if (classesOption !== undefined && classesOption !== classes) throw argumentError(op, 'options.classes', `${classes} (source.classes) or nothing`, classesOption);
    probs = source.mean;
    if (labels === null || labels === undefined) {
      labels = source.labels;
      if (labels === null || labels === undefined) throw argumentError(op, 'labels', 'the labels (none given, and the prediction has none)', labels);
    }
  }
  const n = checkProbs(op, from ? 'source.mean' : 'probs', probs, classes);
  if (!isArrayLike(labels)) throw argumentError(op, 'labels', 'an array of class indices', labels);
  if (labels.length !== n) throw new BayesError('SHAPE_MISMATCH', `${op}: argument 'labels' expected ${n} labels (one per example), got ${labels.length}`);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw argumentError(op, `labels[${i}]`, `a class index in 0..${classes - 1}`, y);
  }
  return { n, classes, probs, labels, source: from };
}

function checkCoverages(op: string, coverages: readonly number[] | undefined): readonly number[] {
  if (coverages === undefined) return DEFAULT_COVERAGES;
  if (!Array.isArray(coverages)) throw argumentError(op, 'options.coverages', 'an array of coverages in (0, 1]', coverages);
  coverages.forEach((c, k) => {
    if (typeof c !== 'number' || !(c > 0 && c <= 1)) throw argumentError(op, `options.coverages[${k}]`, 'a coverage in (0, 1]', c);
  });
  return coverages;
}

/** Confidence keys, higher = more confident: maxProb as is, entropy and MI negated. */
function confidence(op: string, c: Checked, by: SelectiveRanking): ArrayLike<number> {
  const { n, classes, probs, source } = c;
  if (by === 'maxProb') {
    if (source?.maxProb !== undefined) return checkScores(op, 'source.maxProb', source.maxProb, n);
    return Float64Array.from({ length: n }, (_, i) => {
      let m = probs[i * classes];
      for (let k = 1; k < classes; k++) m = Math.max(m, probs[i * classes + k]);
      return m;
    });
  }
  if (by === 'entropy') {
    if (source?.predictiveEntropy !== undefined) return Float64Array.from(checkScores(op, 'source.predictiveEntropy', source.predictiveEntropy, n), (h) => -h);
    return Float64Array.from({ length: n }, (_, i) => {
      let h = 0;
      for (let k = 0; k < classes; k++) {
        const p = probs[i * classes + k];
        if (p > 0) h -= p * Math.log(p);
      }
      return -h;
    });
  }
  if (source === null || source.mutualInformation === undefined) {
    throw argumentError(op, source === null ? 'source' : 'source.mutualInformation', "the mutual information of each example (by: 'mutualInformation' needs a Prediction)", source === null ? 'a probability array' : undefined);
  }
  return Float64Array.from(checkScores(op, 'source.mutualInformation', source.mutualInformation, n), (v) => -v);
}

/**
 * The risk-coverage curve of one ranking, its AURC, E-AURC and the accuracy at fixed coverages.
 * `source` is a Prediction (or any { mean, classes, maxProb?, predictiveEntropy?,
 * mutualInformation? }) or a bare [N, C] probability array with options.classes; `labels` may be
 * null to use the prediction's own.
 *
 * @example
 * const p = await model.predict(testSet, { samples: 25 });
 * const rc = riskCoverage(p, null, { by: 'mutualInformation' });
 * rc.aurc; rc.accuracyAtCoverage[0]; // { coverage: 0.9, accepted, accuracy }
 */
export function riskCoverage(source: SelectiveSource | ArrayLike<number>, labels?: ArrayLike<number> | null, options: RiskCoverageOptions = {}): RiskCoverage {
  const op = 'riskCoverage';
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ by?, classes?, coverages? }', options);
  const by = checkOneOf(op, 'options.by', options.by ?? 'maxProb', SELECTIVE_RANKINGS);
  const coverages = checkCoverages(op, options.coverages);
  const c = checkInput(op, source, labels, options.classes);
  return curve(c, by, confidence(op, c, by), coverages);
}

function curve(c: Checked, by: SelectiveRanking, key: ArrayLike<number>, coverages: readonly number[]): RiskCoverage {
  const { n, classes, probs, labels } = c;
  const wrong = new Uint8Array(n);
  let errors = 0;
  for (let i = 0; i < n; i++) {
    let top = 0;
    for (let k = 1; k < classes; k++) if (probs[i * classes + k] > probs[i * classes + top]) top = k;
    wrong[i] = top === labels[i] ? 0 : 1;
    errors += wrong[i];
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (key[b] > key[a] ? 1 : key[b] < key[a] ? -1 : 0));
  // expected[m]: the expected errors among the m most confident (ties spread evenly in their group).
  const expected = new Float64Array(n + 1);
  const coverage: number[] = [];
  const risk: number[] = [];
  let accepted = 0;
  let wrongSoFar = 0;
  for (let s = 0; s < n;) {
    let t = s;
    let groupErrors = 0;
    while (t < n && key[order[t]] === key[order[s]]) groupErrors += wrong[order[t++]];
    const g = t - s;
    for (let j = 1; j <= g; j++) expected[accepted + j] = wrongSoFar + (j * groupErrors) / g;
    accepted += g;
    wrongSoFar += groupErrors;
    expected[accepted] = wrongSoFar; // exact at the group's end
    coverage.push(accepted / n);
    risk.push(wrongSoFar / accepted);
    s = t;
  }
  let aurc = 0;
  let optimalAurc = 0;
  for (let m = 1; m <= n; m++) {
    aurc += expected[m] / m;
    optimalAurc += Math.max(0, m - (n - errors)) / m;
  }
  aurc /= n;
  optimalAurc /= n;
  const accuracyAtCoverage = coverages.map((target) => {
    const m = Math.min(Math.max(ceilTolerant(target * n), 1), n);
    return { coverage: target, accepted: m, accuracy: 1 - expected[m] / m };
  });
  return { by, coverage: Float64Array.from(coverage), risk: Float64Array.from(risk), aurc, eaurc: aurc - optimalAurc, optimalAurc, accuracyAtCoverage, count: n, errors };
}

/**
 * riskCoverage by max probability, predictive entropy and (when the source has it) mutual
 * information, over one check of the input.
 */
export function selectiveReport(prediction: SelectiveSource, labels?: ArrayLike<number> | null, options: { coverages?: readonly number[] } = {}): SelectiveReport {
  const op = 'selectiveReport';
  if (prediction === null || typeof prediction !== 'object' || isArrayLike(prediction)) throw argumentError(op, 'prediction', 'a Prediction ({ mean, classes, labels, maxProb, predictiveEntropy, mutualInformation })', prediction);
  if (options === null || typeof options !== 'object') throw argumentError(op, 'options', '{ coverages? }', options);
  const coverages = checkCoverages(op, options.coverages);
  const c = checkInput(op, prediction, labels, undefined);
  // Every key is checked before any curve is computed, so a bad score fails the whole call.
  const keys = { maxProb: confidence(op, c, 'maxProb'), entropy: confidence(op, c, 'entropy'), mutualInformation: prediction.mutualInformation !== undefined ? confidence(op, c, 'mutualInformation') : null };
  const out: SelectiveReport = { maxProb: curve(c, 'maxProb', keys.maxProb, coverages), entropy: curve(c, 'entropy', keys.entropy, coverages) };
  if (keys.mutualInformation) out.mutualInformation = curve(c, 'mutualInformation', keys.mutualInformation, coverages);
  return out;
}
