/**
 * Split conformal prediction (src/uncertainty/conformal.ts): hand-computed scores, qhat, sets and
 * coverage; agreement with the float64 reference (test/reference/conformal.ts) on random data;
 * and the guarantee itself, over 500 random calibration/test splits of a synthetic data set whose
 * labels are drawn from its probabilities: the mean coverage lies in
 * [1 - alpha, 1 - alpha + 1/(n + 1)] within 3 standard errors, while the quantile without the
 * finite-sample correction falls measurably short.
 */
import { describe, expect, it } from 'vitest';
import { expectError } from '../helpers.js';
import { type ConformalScore, calibrateConformal, conformalPrediction, conformalReport, conformalSets } from '../../src/uncertainty/conformal.js';
import { type ReportData, buildReport } from '../../src/uncertainty/report.js';
import { reliability } from '../../src/uncertainty/metrics.js';
import { Prng } from '../../src/util/prng.js';
import { naiveQhatRef, qhatRef, rankOrder, rankRef, scoresRef, setRef } from '../reference/conformal.js';

const C = 3;
// Calibration rows with their labels and hand-computed scores:
//   row                label  LAC 1 - p_y   APS (mass ranked at or above y)
//   [0.6, 0.3, 0.1]    0      0.4           0.6
//   [0.5, 0.2, 0.3]    2      0.7           0.5 + 0.3 = 0.8
//   [0.2, 0.7, 0.1]    1      0.3           0.7
//   [0.1, 0.4, 0.5]    1      0.6           0.5 + 0.4 = 0.9
//   [0.3, 0.3, 0.4]    1      0.7           0.4 + 0.3 + 0.3 = 1.0 (classes 0 and 1 tie: 0 ranks first)
const calProbs = [0.6, 0.3, 0.1, 0.5, 0.2, 0.3, 0.2, 0.7, 0.1, 0.1, 0.4, 0.5, 0.3, 0.3, 0.4];
const calLabels = [0, 2, 1, 1, 1];
// LAC sorted: 0.3 0.4 0.6 0.7 0.7; APS sorted: 0.6 0.7 0.8 0.9 1.0. n = 5:
//   alpha 0.5 -> k = ceil(6 * 0.5) = 3; alpha 0.4 -> k = ceil(3.6) = 4; alpha 0.2 -> k = ceil(4.8) = 5.
const testProbs = [0.5, 0.45, 0.05, 0.15, 0.25, 0.6, 0.34, 0.33, 0.33, 0.05, 0.05, 0.9];
const testLabels = [1, 2, 2, 2];

describe('split conformal: hand-computed cases', () => {
  it('qhat is the k-th smallest calibration score, k = ceil((n + 1)(1 - alpha))', () => {
    const want: [number, ConformalScore, number][] = [
      [0.5, 'lac', 0.6], [0.4, 'lac', 0.7], [0.2, 'lac', 0.7],
      [0.5, 'aps', 0.8], [0.4, 'aps', 0.9], [0.2, 'aps', 1.0],
    ];
    for (const [alpha, score, qhat] of want) {
      const cal = calibrateConformal(calProbs, calLabels, C, { alpha, score });
      expect(cal.qhat, `${score} alpha ${alpha}`).toBeCloseTo(qhat, 12);
      expect(cal).toMatchObject({ alpha, score, randomized: false, count: 5, classes: C });
    }
    // The default score is LAC.
    expect(calibrateConformal(calProbs, calLabels, C, { alpha: 0.5 }).score).toBe('lac');
  });

  it('APS scores rank ties by the lower class index; randomized APS replaces p_y by U p_y', () => {
    // One calibration example with alpha = 0.5: k = ceil(2 * 0.5) = 1, so qhat is that example's score.
    const row = [0.3, 0.3, 0.4];
    const one = (y: number, randomized = false, seed = 0) => calibrateConformal(row, [y], 3, { alpha: 0.5, score: 'aps', randomized, seed }).qhat;
    expect(one(2)).toBeCloseTo(0.4, 12);
    expect(one(0)).toBeCloseTo(0.7, 12); // class 0 ranks before its tie, class 1
    expect(one(1)).toBeCloseTo(1.0, 12);
    // Randomized: (mass ranked above y) + U p_y with U the first draw of Prng(seed).
    const u = new Prng(7).next();
    expect(one(1, true, 7)).toBeCloseTo(0.7 + u * 0.3, 12);
    expect(one(2, true, 7)).toBeCloseTo(u * 0.4, 12);
  });

  it('sets, coverage and set size per class at alpha = 0.5', () => {
    // LAC, qhat = 0.6: C(x) = { y : p_y >= 0.4 }. APS, qhat = 0.8: classes in rank order while the cumulative mass <= 0.8.
    //   test row            label  LAC set    APS set (cumulative mass)
    //   [0.5, 0.45, 0.05]   1      {0, 1}     {0}      (0.5, 0.95)
    //   [0.15, 0.25, 0.6]   2      {2}        {2}      (0.6, 0.85)
    //   [0.34, 0.33, 0.33]  2      {}         {0, 1}   (0.34, 0.67, 1.0)
    //   [0.05, 0.05, 0.9]   2      {2}        {}       (0.9)
    const lac = conformalSets(testProbs, C, calibrateConformal(calProbs, calLabels, C, { alpha: 0.5, score: 'lac' }));
    expect(lac.sets).toEqual([[0, 1], [2], [], [2]]);
    expect(Array.from(lac.sizes)).toEqual([2, 1, 0, 1]);
    expect(Array.from(lac.mask)).toEqual([1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    const lacReport = conformalReport(lac, testLabels, C);
    expect(lacReport).toMatchObject({ coverage: 3 / 4, meanSetSize: 1, emptySets: 1, count: 4 });
    expect(lacReport.byClass[0]).toMatchObject({ class: 0, count: 0 });
    expect(lacReport.byClass[0].coverage).toBeNaN();
    expect(lacReport.byClass[0].meanSetSize).toBeNaN();
    expect(lacReport.byClass[1]).toEqual({ class: 1, count: 1, coverage: 1, meanSetSize: 2 });
    expect(lacReport.byClass[2].coverage).toBeCloseTo(2 / 3, 14);
    expect(lacReport.byClass[2].meanSetSize).toBeCloseTo(2 / 3, 14);

    const aps = conformalSets(testProbs, C, calibrateConformal(calProbs, calLabels, C, { alpha: 0.5, score: 'aps' }));
    expect(aps.sets).toEqual([[0], [2], [0, 1], []]);
    const apsReport = conformalReport(aps, testLabels, C);
    expect(apsReport).toMatchObject({ coverage: 1 / 4, meanSetSize: 1, emptySets: 1 });
    expect(apsReport.byClass[1]).toEqual({ class: 1, count: 1, coverage: 0, meanSetSize: 1 });
    expect(apsReport.byClass[2].coverage).toBeCloseTo(1 / 3, 14);
    expect(apsReport.byClass[2].meanSetSize).toBeCloseTo(1, 14);
  });

  it('a set lists its classes by probability, highest first', () => {
    const cal = calibrateConformal(calProbs, calLabels, C, { alpha: 0.2, score: 'lac' }); // qhat 0.7: p_y >= 0.3
    expect(conformalSets([0.3, 0.1, 0.6, 0.35, 0.35, 0.3], C, cal).sets).toEqual([[2, 0], [0, 1, 2]]);
  });

  it('conformalPrediction: calibrate on one prediction, report on another', () => {
    const calibration = { mean: Float32Array.from(calProbs), labels: Uint32Array.from(calLabels), classes: C };
    const test = { mean: Float32Array.from(testProbs), labels: Uint32Array.from(testLabels), classes: C };
    const r = conformalPrediction(calibration, test, { alpha: 0.5, score: 'lac' });
    expect(r).toMatchObject({ alpha: 0.5, score: 'lac', randomized: false, calibrationCount: 5, coverage: 3 / 4, meanSetSize: 1, emptySets: 1, count: 4 });
    // From f32 probabilities: qhat = 1 - f32(0.4) (the third smallest score).
    expect(r.qhat).toBe(1 - Math.fround(0.4));
    expect(r.sets.sets).toEqual([[0, 1], [2], [], [2]]);
  });
});

/** n random rows of C probabilities (softmax of N(0, 2^2) logits) and labels drawn from them. */
function synthetic(rng: Prng, n: number, classes: number): { probs: Float64Array; labels: Uint32Array } {
  const probs = new Float64Array(n * classes);
  const labels = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += probs[i * classes + c] = Math.exp(2 * rng.normal());
    for (let c = 0; c < classes; c++) probs[i * classes + c] /= sum;
    let u = rng.next();
    let y = 0;
    while (y < classes - 1 && u >= probs[i * classes + y]) u -= probs[i * classes + y++];
    labels[i] = y;
  }
  return { probs, labels };
}

describe('split conformal: agreement with the reference', () => {
  it('qhat and sets equal the reference on random data, for LAC, APS and randomized APS', () => {
    const rng = new Prng(11);
    const K = 6;
    for (const [alphaPercent, n] of [[10, 9], [10, 37], [20, 4], [5, 40], [30, 13]] as const) {
      const cal = synthetic(rng, n, K);
      const test = synthetic(rng, 50, K);
      for (const [score, randomized] of [['lac', false], ['aps', false], ['aps', true]] as const) {
        const seed = 3;
        const calibration = calibrateConformal(cal.probs, cal.labels, K, { alpha: alphaPercent / 100, score, randomized, seed });
        const calU = new Prng(seed);
        const calScores = Array.from(cal.labels, (y, i) => scoresRef(cal.probs.subarray(i * K, (i + 1) * K), score, randomized ? calU.next() : undefined)[y]);
        expect(calibration.qhat, `${score}${randomized ? ' randomized' : ''} alpha ${alphaPercent}% n ${n}`).toBe(qhatRef(calScores, alphaPercent));
        const sets = conformalSets(test.probs, K, calibration);
        const testU = new Prng(seed + 1);
        for (let i = 0; i < 50; i++) {
          const p = test.probs.subarray(i * K, (i + 1) * K);
          const want = setRef(p, score, calibration.qhat, randomized ? testU.next() : undefined);
          expect([...sets.sets[i]].sort((a, b) => a - b)).toEqual(want);
          // Listed by probability, highest first.
          expect(sets.sets[i]).toEqual(rankOrder(p).filter((c) => want.includes(c)));
        }
      }
    }
  });

  it('the calibration needs k <= n: at least ceil(1/alpha - 1) examples', () => {
    for (const [alphaPercent, needed] of [[10, 9], [20, 4], [5, 19], [30, 3], [50, 1], [90, 1]] as const) {
      const alpha = alphaPercent / 100;
      const data = synthetic(new Prng(1), needed, 3);
      expect(rankRef(needed, alphaPercent)).toBeLessThanOrEqual(needed);
      expect(calibrateConformal(data.probs, data.labels, 3, { alpha }).count).toBe(needed);
      if (needed > 1) {
        expectError(() => calibrateConformal(data.probs.subarray(0, 3 * (needed - 1)), data.labels.subarray(0, needed - 1), 3, { alpha }),
          new RegExp(`calibrateConformal: argument 'probs' expected a calibration set of at least ceil\\(1/alpha - 1\\) = ${needed} examples for alpha = ${alpha}.*got ${needed - 1}$`));
      }
    }
  });
});

describe('split conformal: the coverage guarantee over 500 random splits', () => {
  // A pool labelled from its own probabilities; each split draws n calibration and 200 test
  // examples from it without replacement, so calibration and test are exchangeable. With
  // continuous scores the expected coverage is exactly k / (n + 1), k = ceil((n + 1)(1 - alpha)).
  // n is chosen where the uncorrected quantile k' = ceil(n (1 - alpha)) is one lower, so that an
  // implementation without the finite-sample correction covers 1/(n + 1) less on average
  // (about 15 standard errors here), below 1 - alpha.
  const K = 5;
  const pool = synthetic(new Prng(2024), 5000, K);
  const splits = 500;
  const testSize = 200;
  const cases: [number, number, ConformalScore, boolean][] = [
    [10, 20, 'lac', false], [10, 20, 'aps', false], [20, 10, 'lac', false], [20, 10, 'aps', false], [10, 20, 'aps', true],
  ];
  for (const [alphaPercent, n, score, randomized] of cases) {
    it(`${score.toUpperCase()}${randomized ? ' (randomized)' : ''} at alpha ${alphaPercent / 100} with n = ${n}`, () => {
      const alpha = alphaPercent / 100;
      const rng = new Prng(alphaPercent * 1000 + n + (score === 'aps' ? 1 : 0) + (randomized ? 2 : 0));
      const index = Uint32Array.from({ length: pool.labels.length }, (_, i) => i);
      const coverage: number[] = [];
      const naive: number[] = [];
      const take = (from: number, count: number) => {
        const probs = new Float64Array(count * K);
        const labels = new Uint32Array(count);
        for (let j = 0; j < count; j++) {
          const i = index[from + j];
          probs.set(pool.probs.subarray(i * K, (i + 1) * K), j * K);
          labels[j] = pool.labels[i];
        }
        return { probs, labels };
      };
      for (let s = 0; s < splits; s++) {
        // A partial Fisher-Yates shuffle: the first n + testSize of `index` are a uniform random subset, in random order.
        for (let j = 0; j < n + testSize; j++) {
          const r = j + rng.int(index.length - j);
          [index[j], index[r]] = [index[r], index[j]];
        }
        const cal = take(0, n);
        const test = take(n, testSize);
        const calibration = calibrateConformal(cal.probs, cal.labels, K, { alpha, score, randomized, seed: s });
        coverage.push(conformalReport(conformalSets(test.probs, K, calibration), test.labels, K).coverage);
        if (!randomized) {
          // The same split with the uncorrected quantile, from the reference.
          const calScores = Array.from(cal.labels, (y, i) => scoresRef(cal.probs.subarray(i * K, (i + 1) * K), score)[y]);
          const q = naiveQhatRef(calScores, alphaPercent);
          let hit = 0;
          for (let i = 0; i < testSize; i++) if (setRef(test.probs.subarray(i * K, (i + 1) * K), score, q).includes(test.labels[i])) hit++;
          naive.push(hit / testSize);
        }
      }
      const mean = coverage.reduce((a, b) => a + b, 0) / splits;
      const sd = Math.sqrt(coverage.reduce((a, b) => a + (b - mean) ** 2, 0) / (splits - 1));
      const se = sd / Math.sqrt(splits);
      expect(mean, `mean coverage ${mean} (SE ${se})`).toBeGreaterThanOrEqual(1 - alpha - 3 * se);
      expect(mean, `mean coverage ${mean} (SE ${se})`).toBeLessThanOrEqual(1 - alpha + 1 / (n + 1) + 3 * se);
      // Tighter still: the expectation is k / (n + 1).
      expect(Math.abs(mean - rankRef(n, alphaPercent) / (n + 1)), `mean coverage ${mean} vs k/(n+1)`).toBeLessThanOrEqual(4 * se);
      if (!randomized) {
        const naiveMean = naive.reduce((a, b) => a + b, 0) / splits;
        expect(naiveMean, `uncorrected quantile: mean coverage ${naiveMean}`).toBeLessThan(1 - alpha - 3 * se);
      }
    });
  }
});

describe('split conformal: bad input', () => {
  const cal = () => calibrateConformal(calProbs, calLabels, C, { alpha: 0.5 });
  it('names the argument, what was expected and what was given', () => {
    for (const alpha of [0, 1, -0.1, 1.5, Number.NaN]) {
      expectError(() => calibrateConformal(calProbs, calLabels, C, { alpha }), /calibrateConformal: argument 'options.alpha' expected a miscoverage level in \(0, 1\), got/);
    }
    expectError(() => calibrateConformal(calProbs, calLabels, C, { alpha: 0.1 }), /argument 'probs' expected a calibration set of at least ceil\(1\/alpha - 1\) = 9 examples.*got 5/);
    expectError(() => calibrateConformal(calProbs, calLabels, C, { alpha: 0.5, score: 'raps' as ConformalScore }), /argument 'options.score' expected one of 'lac' \| 'aps', got "raps"/);
    expectError(() => calibrateConformal(calProbs, calLabels, C, { alpha: 0.5, randomized: true }), /argument 'options.randomized' expected false with score 'lac'/);
    expectError(() => calibrateConformal(calProbs, [0, 2, 1, 3, 1], C, { alpha: 0.5 }), /argument 'labels\[3\]' expected a class index in 0..2, got 3/);
    expectError(() => calibrateConformal(calProbs, [0, 2, 1, 1], C, { alpha: 0.5 }), /argument 'labels' expected 5 labels \(one per row of probs\), got 4/);
    expectError(() => calibrateConformal(calProbs.slice(1), calLabels, C, { alpha: 0.5 }), /argument 'probs' expected N \* 3 values.*got 14/);
    expectError(() => calibrateConformal([...calProbs.slice(0, 14), Number.NaN], calLabels, C, { alpha: 0.5 }), /argument 'probs\[14\]' expected a probability in \[0, 1\], got NaN/);
    expectError(() => conformalSets(testProbs, 4, cal()), /conformalSets: argument 'calibration.classes' expected 4 \(the classes of probs\), got 3/);
    expectError(() => conformalSets(testProbs.slice(2), C, cal()), /conformalSets: argument 'probs' expected N \* 3 values/);
    expectError(() => conformalReport(conformalSets(testProbs, C, cal()), [1, 2, 2], C), /conformalReport: argument 'labels' expected 4 labels/);
    const noLabels = { mean: Float32Array.from(testProbs), labels: null, classes: C };
    expectError(() => conformalPrediction({ mean: calProbs, labels: calLabels, classes: C }, noLabels, { alpha: 0.5 }), /conformalPrediction: argument 'test.labels' expected the labels/);
    expectError(() => conformalPrediction({ mean: calProbs, labels: calLabels, classes: C }, { ...noLabels, labels: [1, 2, 2, 2], classes: 4 }, { alpha: 0.5 }), /argument 'test.classes' expected 3/);
    expectError(() => conformalPrediction({ mean: calProbs, labels: calLabels, classes: C }, { ...noLabels, labels: [1, 2, 2, 2] }, { alpha: 0.05 }), /conformalPrediction: argument 'calibration.mean' expected a calibration set of at least ceil\(1\/alpha - 1\) = 19/);
  });
});

describe('report: the conformal section', () => {
  function minimal(): ReportData {
    const probs = [0.9, 0.1, 0.2, 0.8];
    const rel = reliability(probs, [0, 1], 2);
    return {
      model: 'm', dataset: 'd', samples: 1, method: 'softmax', classes: 2,
      metrics: { accuracy: 1, nll: 0.1, brier: 0.05, ece: rel.ece, mce: rel.mce, count: 2 },
      reliability: rel, inDistribution: { name: 'test', predictiveEntropy: [0.3, 0.5] }, ood: [], examples: [],
    };
  }
  it('a table row per result when given, and no section otherwise', () => {
    const calibration = { mean: calProbs, labels: calLabels, classes: C };
    const test = { mean: testProbs, labels: testLabels, classes: C };
    const lac = conformalPrediction(calibration, test, { alpha: 0.5, score: 'lac' });
    const aps = conformalPrediction(calibration, test, { alpha: 0.5, score: 'aps' });
    const html = buildReport({ ...minimal(), conformal: [lac, aps] });
    expect(html).toContain('<h2>Conformal prediction sets</h2>');
    const rows = [...html.matchAll(/<tr data-score="(\w+)" data-alpha="([^"]+)">([\s\S]*?)<\/tr>/g)];
    expect(rows.map((r) => [r[1], Number(r[2])])).toEqual([['lac', 0.5], ['aps', 0.5]]);
    expect(Number(/data-coverage="([^"]+)"/.exec(rows[0][3])![1])).toBe(0.75);
    expect(Number(/data-coverage="([^"]+)"/.exec(rows[1][3])![1])).toBe(0.25);
    // The lowest class coverage: class 2 for LAC (2/3) and class 1 for APS (0).
    expect(rows[0][3]).toContain('<td>0.6667</td>');
    expect(rows[1][3]).toContain('<td>0.0000</td>');
    const json = JSON.parse(/id="bayesgpu-report-data">([\s\S]*?)<\/script>/.exec(html)![1]);
    expect(json.conformal.map((c: { coverage: number }) => c.coverage)).toEqual([0.75, 0.25]);
    expect(json.conformal[0].byClass[0]).toEqual({ class: 0, count: 0, coverage: null, meanSetSize: null });
    const without = buildReport(minimal());
    expect(without).not.toContain('Conformal');
    expect(JSON.parse(/id="bayesgpu-report-data">([\s\S]*?)<\/script>/.exec(without)![1]).conformal).toBeUndefined();
  });
});
