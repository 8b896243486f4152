/**
 * Selective classification (src/uncertainty/selective.ts): risk-coverage curves, AURC, E-AURC
 * and accuracy at coverage on hand-worked examples, tie handling, and agreement with a brute-force
 * reference (test/reference/conformal.ts) that averages over every order the scores allow and
 * takes the oracle as the best of all n! orders.
 */
import { describe, expect, it } from 'vitest';
import { expectError } from '../helpers.js';
import { type ReportData, buildReport } from '../../src/uncertainty/report.js';
import { reliability } from '../../src/uncertainty/metrics.js';
import { type SelectiveSource, riskCoverage, selectiveReport } from '../../src/uncertainty/selective.js';
import { Prng } from '../../src/util/prng.js';
import { selectiveRef } from '../reference/conformal.js';

const close = (got: ArrayLike<number>, want: readonly number[], digits = 12) => {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(got[i], `[${i}]`).toBeCloseTo(w, digits));
};

// Two classes, five examples (prediction = argmax):
//   e0 [0.9, 0.1] label 0 right   conf 0.9
//   e1 [0.2, 0.8] label 0 wrong   conf 0.8
//   e2 [0.7, 0.3] label 0 right   conf 0.7  } tied
//   e3 [0.3, 0.7] label 0 wrong   conf 0.7  }
//   e4 [0.6, 0.4] label 1 wrong   conf 0.6
const probs = [0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.3, 0.7, 0.6, 0.4];
const labels = [0, 0, 0, 0, 1];

describe('riskCoverage: a hand-worked example', () => {
  it('the curve has one point per distinct score; AURC spreads a tied group\'s errors evenly', () => {
    const rc = riskCoverage(probs, labels, { classes: 2 });
    expect(rc.by).toBe('maxProb');
    // After e0: 0/1; after e1: 1/2; after the tied e2, e3: 2/4; after e4: 3/5.
    close(rc.coverage, [0.2, 0.4, 0.8, 1]);
    close(rc.risk, [0, 1 / 2, 2 / 4, 3 / 5]);
    // Expected errors among the first m: 0, 1, 1 + 1/2 (half of the tied group's one error), 2, 3;
    // AURC = (0/1 + 1/2 + 1.5/3 + 2/4 + 3/5) / 5 = 2.1 / 5.
    expect(rc.aurc).toBeCloseTo(2.1 / 5, 14);
    // Oracle, E = 3 errors of N = 5: risk*(m) = max(0, m - 2)/m -> (1/3 + 2/4 + 3/5) / 5.
    expect(rc.optimalAurc).toBeCloseTo((1 / 3 + 1 / 2 + 3 / 5) / 5, 14);
    expect(rc.eaurc).toBeCloseTo(2.1 / 5 - (1 / 3 + 1 / 2 + 3 / 5) / 5, 14);
    expect([rc.count, rc.errors]).toEqual([5, 3]);
    // Coverages 0.9, 0.95, 0.99 all accept ceil(c * 5) = 5 examples: accuracy 2/5.
    expect(rc.accuracyAtCoverage).toEqual([
      { coverage: 0.9, accepted: 5, accuracy: 1 - 3 / 5 },
      { coverage: 0.95, accepted: 5, accuracy: 1 - 3 / 5 },
      { coverage: 0.99, accepted: 5, accuracy: 1 - 3 / 5 },
    ]);
    // Inside the tied group: 3 accepted hold 1.5 errors on average.
    const at = riskCoverage(probs, labels, { classes: 2, coverages: [0.6, 0.5, 0.4, 0.2] }).accuracyAtCoverage;
    expect(at.map((a) => a.accepted)).toEqual([3, 3, 2, 1]);
    close(at.map((a) => a.accuracy), [0.5, 0.5, 0.5, 1]);
    // ceil(c N) ignores a rounding above a whole number: 0.07 * 100 = 7.000000000000001 accepts 7, not 8.
    const hundred = Float64Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 0.5 + (i + 1) / 500 : 0.5 - i / 500));
    const many = riskCoverage(hundred, new Uint32Array(100), { classes: 2, coverages: [0.07, 0.57] });
    expect(many.accuracyAtCoverage.map((a) => a.accepted)).toEqual([7, 57]);
  });

  it('entropy ranks as max probability does for two classes; the labels of a Prediction are used when none are given', () => {
    const source: SelectiveSource = { mean: Float32Array.from(probs), classes: 2, labels: Uint32Array.from(labels) };
    const byMax = riskCoverage(source);
    const byEntropy = riskCoverage(source, null, { by: 'entropy' });
    expect(byEntropy.by).toBe('entropy');
    expect(Array.from(byEntropy.coverage)).toEqual(Array.from(byMax.coverage));
    expect(Array.from(byEntropy.risk)).toEqual(Array.from(byMax.risk));
    expect(byEntropy.aurc).toBe(byMax.aurc);
  });

  it('mutual information: low MI is confident', () => {
    // MI ranks e4 first, then e2, e0, e3, e1 (errors: e4, e3, e1).
    const source: SelectiveSource = { mean: probs, classes: 2, labels, mutualInformation: [0.3, 0.9, 0.2, 0.5, 0.1] };
    const rc = riskCoverage(source, null, { by: 'mutualInformation' });
    // Errors among the first m: 1, 1, 1, 2, 3 -> risks 1, 1/2, 1/3, 2/4, 3/5.
    close(rc.risk, [1, 1 / 2, 1 / 3, 2 / 4, 3 / 5]);
    expect(rc.aurc).toBeCloseTo((1 + 1 / 2 + 1 / 3 + 1 / 2 + 3 / 5) / 5, 14);
    // The report has all three rankings; without MI it has two.
    const report = selectiveReport(source);
    expect(report.mutualInformation!.aurc).toBe(rc.aurc);
    expect(report.maxProb.aurc).toBe(riskCoverage(source).aurc);
    expect(selectiveReport({ mean: probs, classes: 2, labels }).mutualInformation).toBeUndefined();
  });

  it('scores a Prediction carries are used as given (maxProb, predictiveEntropy)', () => {
    // Given scores reverse the order the mean would give.
    const source: SelectiveSource = { mean: probs, classes: 2, labels, maxProb: [0.1, 0.2, 0.3, 0.4, 0.5], predictiveEntropy: [5, 4, 3, 2, 1] };
    const rc = riskCoverage(source);
    // Order e4, e3, e2, e1, e0: errors 1, 2, 2, 3, 3.
    close(rc.risk, [1, 1, 2 / 3, 3 / 4, 3 / 5]);
    expect(riskCoverage(source, null, { by: 'entropy' }).aurc).toBe(rc.aurc);
  });

  it('all scores equal: one point, and the AURC of a random ranking, (E/N)(1/N) sum_m 1 = E/N', () => {
    const rc = riskCoverage({ mean: probs, classes: 2, labels, mutualInformation: [0, 0, 0, 0, 0] }, null, { by: 'mutualInformation' });
    close(rc.coverage, [1]);
    close(rc.risk, [3 / 5]);
    expect(rc.aurc).toBeCloseTo(3 / 5, 14);
    rc.accuracyAtCoverage.forEach((a) => expect(a.accuracy).toBeCloseTo(2 / 5, 14));
  });

  it('a perfect ranking has E-AURC 0; a reversed one the largest AURC', () => {
    const mean = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4];
    const perfect = riskCoverage(mean, [0, 0, 1, 1], { classes: 2 });
    expect(perfect.eaurc).toBeCloseTo(0, 15);
    const reversed = riskCoverage(mean, [1, 1, 0, 0], { classes: 2 });
    // Errors first: risks 1, 1, 2/3, 2/4.
    expect(reversed.aurc).toBeCloseTo((1 + 1 + 2 / 3 + 1 / 2) / 4, 14);
  });
});

describe('riskCoverage: agreement with the brute-force reference', () => {
  it('AURC, the oracle AURC and the accuracy at every coverage, with and without ties; independent of input order', () => {
    const rng = new Prng(5);
    for (let trial = 0; trial < 40; trial++) {
      const n = 3 + rng.int(5); // 3..7 examples
      const K = 3;
      const mean = new Float64Array(n * K);
      const lab: number[] = [];
      const mi: number[] = [];
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let c = 0; c < K; c++) s += mean[i * K + c] = 0.05 + rng.next();
        for (let c = 0; c < K; c++) mean[i * K + c] /= s;
        lab.push(rng.int(K));
        // Coarse MI values: ties are common.
        mi.push(Math.round(rng.next() * 3) / 10);
      }
      const wrong = lab.map((y, i) => {
        const row = Array.from(mean.subarray(i * K, (i + 1) * K));
        return row.indexOf(Math.max(...row)) !== y;
      });
      const coverages = Array.from({ length: n }, (_, m) => (m + 1) / n);
      const rc = riskCoverage({ mean, classes: K, labels: lab, mutualInformation: mi }, null, { by: 'mutualInformation', coverages });
      const ref = selectiveRef(mi.map((v) => -v), wrong);
      expect(rc.aurc, `trial ${trial}`).toBeCloseTo(ref.aurc, 12);
      expect(rc.optimalAurc).toBeCloseTo(ref.optimalAurc, 12);
      rc.accuracyAtCoverage.forEach((a, m) => {
        expect(a.accepted).toBe(m + 1);
        expect(a.accuracy).toBeCloseTo(ref.accuracyAt[m + 1], 12);
      });
      // Shuffled input, same figures.
      const perm = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5);
      const shuffled = new Float64Array(n * K);
      perm.forEach((i, j) => shuffled.set(mean.subarray(i * K, (i + 1) * K), j * K));
      const again = riskCoverage({ mean: shuffled, classes: K, labels: perm.map((i) => lab[i]), mutualInformation: perm.map((i) => mi[i]) }, null, { by: 'mutualInformation', coverages });
      expect(again.aurc).toBeCloseTo(rc.aurc, 14);
      expect(Array.from(again.risk)).toEqual(Array.from(rc.risk));
      // maxProb, untied (continuous): the reference over its single order.
      const byMax = riskCoverage(mean, lab, { classes: K });
      const maxProb = Array.from({ length: n }, (_, i) => Math.max(...mean.subarray(i * K, (i + 1) * K)));
      expect(byMax.aurc).toBeCloseTo(selectiveRef(maxProb, wrong).aurc, 12);
    }
  });

  it('the oracle AURC approaches r + (1 - r) ln(1 - r) for large N', () => {
    const n = 20000;
    const mean = new Float64Array(2 * n);
    const lab = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      mean[2 * i] = 0.5 + 0.5 * ((i + 0.5) / n);
      mean[2 * i + 1] = 1 - mean[2 * i];
      lab[i] = i % 4 === 0 ? 1 : 0; // r = 1/4 wrong
    }
    const r = 0.25;
    expect(riskCoverage(mean, lab, { classes: 2 }).optimalAurc).toBeCloseTo(r + (1 - r) * Math.log(1 - r), 3);
  });
});

describe('riskCoverage: bad input', () => {
  it('names the argument, what was expected and what was given', () => {
    expectError(() => riskCoverage(probs, labels), /riskCoverage: argument 'options.classes' expected the number of classes/);
    expectError(() => riskCoverage(probs, labels, { classes: 2, by: 'margin' as 'maxProb' }), /argument 'options.by' expected one of 'maxProb' \| 'entropy' \| 'mutualInformation', got "margin"/);
    expectError(() => riskCoverage(probs, labels, { classes: 2, by: 'mutualInformation' }), /argument 'source' expected the mutual information of each example/);
    expectError(() => riskCoverage({ mean: probs, classes: 2 }), /argument 'labels' expected the labels \(none given, and the prediction has none\)/);
    expectError(() => riskCoverage(probs, [0, 0, 0, 2, 1], { classes: 2 }), /argument 'labels\[3\]' expected a class index in 0..1, got 2/);
    expectError(() => riskCoverage(probs, [0, 0], { classes: 2 }), /argument 'labels' expected 5 labels \(one per example\), got 2/);
    expectError(() => riskCoverage(probs.slice(1), labels, { classes: 2 }), /argument 'probs' expected N \* 2 values/);
    expectError(() => riskCoverage({ mean: probs, classes: 2, labels, maxProb: [1, 2] }), /argument 'source.maxProb' expected 5 scores \(one per example\), got 2/);
    expectError(() => riskCoverage({ mean: probs, classes: 2, labels, mutualInformation: [0, 0, Number.NaN, 0, 0] }, null, { by: 'mutualInformation' }), /argument 'source.mutualInformation\[2\]' expected a number \(not NaN\), got NaN/);
    expectError(() => riskCoverage(probs, labels, { classes: 2, coverages: [0.9, 0] }), /argument 'options.coverages\[1\]' expected a coverage in \(0, 1\], got 0/);
    expectError(() => selectiveReport(probs as unknown as SelectiveSource, labels), /selectiveReport: argument 'prediction' expected a Prediction/);
  });
});

describe('report: the selective section', () => {
  function minimal(): ReportData {
    const rel = reliability(probs, labels, 2);
    return {
      model: 'm', dataset: 'd', samples: 1, method: 'softmax', classes: 2,
      metrics: { accuracy: 0.4, nll: 0.1, brier: 0.05, ece: rel.ece, mce: rel.mce, count: 5 },
      reliability: rel, inDistribution: { name: 'test', predictiveEntropy: [0.3, 0.5, 0.6, 0.6, 0.67] }, ood: [], examples: [],
    };
  }
  it('draws the risk-coverage chart and an AURC / accuracy-at-coverage table when given, and nothing otherwise', () => {
    const selective = selectiveReport({ mean: probs, classes: 2, labels, mutualInformation: [0.3, 0.9, 0.2, 0.5, 0.1] });
    const html = buildReport({ ...minimal(), selective });
    expect(html).toContain('<h2>Selective classification</h2>');
    const chart = /<svg[^>]*data-chart="risk-coverage"[\s\S]*?<\/svg>/.exec(html);
    expect(chart).not.toBeNull();
    expect(chart![0].match(/<polyline class="line"/g)).toHaveLength(3);
    const rows = [...html.matchAll(/<tr data-ranking="(\w+)">([\s\S]*?)<\/tr>/g)];
    expect(rows.map((r) => r[1])).toEqual(['maxProb', 'entropy', 'mutualInformation']);
    expect(Number(/data-aurc="([^"]+)"/.exec(rows[2][2])![1])).toBe(selective.mutualInformation!.aurc);
    expect([...rows[0][2].matchAll(/data-accuracy="([^"]+)"/g)].map((m) => Number(m[1]))).toEqual(selective.maxProb.accuracyAtCoverage.map((a) => a.accuracy));
    expect(html).toContain('<th>accuracy at 90% coverage</th><th>accuracy at 95% coverage</th><th>accuracy at 99% coverage</th>');
    const json = JSON.parse(/id="bayesgpu-report-data">([\s\S]*?)<\/script>/.exec(html)![1]);
    expect(json.selective.map((s: { aurc: number }) => s.aurc)).toEqual([selective.maxProb.aurc, selective.entropy.aurc, selective.mutualInformation!.aurc]);
    const without = buildReport(minimal());
    expect(without).not.toContain('Selective classification');
    expect(without).not.toContain('risk-coverage');
  });
});
