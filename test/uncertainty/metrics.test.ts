import { describe, expect, it } from 'vitest';
import { accuracy, aupr, auroc, brierScore, classificationMetrics, nll, oodDetection, reliability, MIN_PROBABILITY } from '../../src/uncertainty/metrics.js';
import { rng } from '../helpers.js';
import { aurocPairwise, averagePrecisionBrute, calibrationBrute } from '../reference/uncertainty.js';

/** N random distributions over C classes (softmax of scaled normals), with labels that agree with argmax ~70% of the time. */
function randomPredictions(N: number, C: number, seed: number): { probs: Float64Array; labels: Uint32Array } {
  const r = rng(seed);
  const probs = new Float64Array(N * C);
  const labels = new Uint32Array(N);
  for (let i = 0; i < N; i++) {
    const scale = 0.5 + 6 * r();
    let s = 0;
    for (let c = 0; c < C; c++) s += (probs[i * C + c] = Math.exp(scale * (r() - 0.5) * 2));
    for (let c = 0; c < C; c++) probs[i * C + c] /= s;
    const row = Array.from(probs.subarray(i * C, (i + 1) * C));
    labels[i] = r() < 0.7 ? row.indexOf(Math.max(...row)) : Math.floor(r() * C);
  }
  return { probs, labels };
}

describe('classification metrics', () => {
  // Six examples over two classes, worked by hand (ECE with 15 bins of width 1/15):
  //   p(class 0, class 1)  label  confidence  correct  bin (k/15, (k+1)/15]
  //   (0.90, 0.10)         0      0.90        yes      13: (0.8667, 0.9333]
  //   (0.80, 0.20)         1      0.80        no       11: (0.7333, 0.8000]   (0.8 = 12/15 is the bin's upper edge)
  //   (0.30, 0.70)         1      0.70        yes      10: (0.6667, 0.7333]
  //   (0.45, 0.55)         1      0.55        yes       8: (0.5333, 0.6000]
  //   (0.60, 0.40)         1      0.60        no        8: (0.5333, 0.6000]   (0.6 = 9/15 is the upper edge)
  //   (0.95, 0.05)         0      0.95        yes      14: (0.9333, 1]
  // Bin 8: accuracy 1/2, mean confidence (0.55 + 0.60) / 2 = 0.575, gap 0.075, weight 2/6.
  // Bins 10, 11, 13, 14 (one example each): gaps |1 - 0.7| = 0.3, |0 - 0.8| = 0.8, |1 - 0.9| = 0.1, |1 - 0.95| = 0.05.
  // ECE = (2 * 0.075 + 0.3 + 0.8 + 0.1 + 0.05) / 6 = 1.4 / 6 = 0.2333...;  MCE = 0.8.
  const probs = [0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.45, 0.55, 0.6, 0.4, 0.95, 0.05];
  const labels = [0, 1, 1, 1, 1, 0];

  it('ECE, MCE and the reliability diagram on a hand-worked example', () => {
    const r = reliability(probs, labels, 2);
    expect(r.ece).toBeCloseTo(1.4 / 6, 12);
    expect(r.mce).toBeCloseTo(0.8, 12);
    expect(r.bins).toHaveLength(15);
    expect(r.bins.map((b) => b.count)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 1]);
    expect(r.bins[8].accuracy).toBe(0.5);
    expect(r.bins[8].confidence).toBeCloseTo(0.575, 12);
    expect([r.bins[8].lower, r.bins[8].upper]).toEqual([8 / 15, 9 / 15]);
    expect(Number.isNaN(r.bins[0].confidence) && Number.isNaN(r.bins[0].accuracy)).toBe(true);
  });

  it('accuracy, NLL and Brier score on the same example', () => {
    expect(accuracy(probs, labels, 2)).toBeCloseTo(4 / 6, 12);
    const pLabel = [0.9, 0.2, 0.7, 0.55, 0.4, 0.95];
    expect(nll(probs, labels, 2)).toBeCloseTo(-pLabel.reduce((s, p) => s + Math.log(p), 0) / 6, 12);
    // Two classes: sum_c (p_c - onehot_c)^2 = 2 (1 - p_label)^2.
    expect(brierScore(probs, labels, 2)).toBeCloseTo(pLabel.reduce((s, p) => s + 2 * (1 - p) ** 2, 0) / 6, 12);
    const all = classificationMetrics(probs, labels, 2);
    expect([all.accuracy, all.ece, all.mce]).toEqual([accuracy(probs, labels, 2), reliability(probs, labels, 2).ece, 0.8]);
  });

  it('a perfect one-hot prediction scores accuracy 1, NLL 0, Brier 0, ECE 0; a zero probability caps the NLL', () => {
    const p = [0, 1, 0, 1, 0, 0];
    expect([accuracy(p, [1, 0], 3), nll(p, [1, 0], 3), brierScore(p, [1, 0], 3), reliability(p, [1, 0], 3).ece]).toEqual([1, 0, 0, 0]);
    expect(nll(p, [0, 0], 3)).toBeCloseTo(-Math.log(MIN_PROBABILITY) / 2, 9);
    expect(brierScore(p, [0, 1], 3)).toBe(2); // each: (1 - 0)^2 + (0 - 1)^2
  });

  it('ECE, MCE and bin counts match a bin-by-bin brute force, with confidences on the bin edges', () => {
    for (const [N, C, seed] of [[500, 10, 1], [97, 3, 2], [64, 2, 3]]) {
      const { probs: p, labels: y } = randomPredictions(N, C, seed);
      // Put some confidences exactly on the edges k/15 (two classes: p = (k/15, 1 - k/15)).
      if (C === 2) for (let i = 0; i < 15; i++) { p[2 * i] = (8 + (i % 7)) / 15; p[2 * i + 1] = 1 - p[2 * i]; }
      const got = reliability(p, y, C);
      const want = calibrationBrute(p, y, C, 15);
      expect(got.bins.map((b) => b.count)).toEqual(want.counts);
      // Tolerance 1e-12: the same float64 sums in another order.
      expect(Math.abs(got.ece - want.ece)).toBeLessThan(1e-12);
      expect(Math.abs(got.mce - want.mce)).toBeLessThan(1e-12);
    }
  });

  it('other bin counts: 10 bins', () => {
    const { probs: p, labels: y } = randomPredictions(300, 4, 9);
    const want = calibrationBrute(p, y, 4, 10);
    expect(reliability(p, y, 4, 10).bins.map((b) => b.count)).toEqual(want.counts);
    expect(Math.abs(reliability(p, y, 4, 10).ece - want.ece)).toBeLessThan(1e-12);
  });

  it('rejects mismatched label counts, bad labels and bad shapes, naming the argument', () => {
    expect(() => accuracy(probs, [0, 1, 1], 2)).toThrow(/accuracy: argument 'labels' expected 6 labels \(one per row of probs\), got 3/);
    expect(() => nll(probs, [...labels, 0], 2)).toThrow(/nll: argument 'labels' expected 6 labels/);
    expect(() => brierScore(probs, [0, 1, 1, 1, 2, 0], 2)).toThrow(/brierScore: argument 'labels\[4\]' expected a class index in 0..1, got 2/);
    expect(() => reliability(probs, labels, 5)).toThrow(/reliability: argument 'probs' expected N \* 5 values .*, got 12/);
    expect(() => reliability(probs, labels, 2, 0)).toThrow(/reliability: argument 'bins' expected an integer >= 1, got 0/);
    expect(() => accuracy(probs, labels, 0)).toThrow(/accuracy: argument 'classes' expected an integer >= 1, got 0/);
    expect(() => reliability([1.5, -0.5], [0], 2)).toThrow(/argument 'probs \(row 0\)' expected probabilities in \[0, 1\], got 1.5/);
  });
});

describe('OOD detection metrics', () => {
  it('AUROC and AUPR on a hand-worked example (the scikit-learn docs example)', () => {
    // In-distribution scores 0.1, 0.4; OOD 0.35, 0.8. Pairs (in, ood) with ood higher: (0.1, 0.35), (0.1, 0.8),
    // (0.4, 0.8) -> 3 of 4, AUROC 0.75. Thresholds from the top: 0.8 (TP 1, FP 0: P 1, R 1/2),
    // 0.4 (TP 1, FP 1), 0.35 (TP 2, FP 1: P 2/3, R 1), 0.1: AP = 1/2 * 1 + 1/2 * 2/3 = 0.8333.
    expect(auroc([0.1, 0.4], [0.35, 0.8])).toBe(0.75);
    expect(aupr([0.1, 0.4], [0.35, 0.8])).toBeCloseTo(5 / 6, 12);
  });

  it('ties count one half; perfect and reversed separation give 1 and 0', () => {
    expect(auroc([0.5, 0.5], [0.5])).toBe(0.5);
    expect(auroc([0, 1, 2], [2, 3])).toBeCloseTo((2 + 2 + 1.5) / 6, 12); // 0 < both, 1 < both, 2 ties 2 and < 3
    expect(auroc([0, 1], [2, 3])).toBe(1);
    expect(auroc([2, 3], [0, 1])).toBe(0);
    expect(aupr([0, 1], [2, 3])).toBe(1);
    // All tied: one threshold with precision n_ood / n, recall 1.
    expect(aupr([1, 1, 1], [1])).toBe(0.25);
  });

  it('AUROC equals the brute-force pairwise count and AUPR the threshold sweep, with many ties', () => {
    for (const [nIn, nOod, levels, seed] of [[200, 150, 10, 1], [37, 301, 4, 2], [1, 1, 2, 3], [500, 5, 1000, 4]]) {
      const r = rng(seed);
      // Scores on a coarse grid produce ties within and across the sets; the OOD set is shifted up.
      const inScores = Float64Array.from({ length: nIn }, () => Math.floor(r() * levels) / levels);
      const oodScores = Float64Array.from({ length: nOod }, () => Math.floor(Math.min(r() + 0.3, 0.999) * levels) / levels);
      // Tolerance 1e-12: exact counts, summed in a different order.
      expect(Math.abs(auroc(inScores, oodScores) - aurocPairwise(inScores, oodScores))).toBeLessThan(1e-12);
      expect(Math.abs(aupr(inScores, oodScores) - averagePrecisionBrute(inScores, oodScores))).toBeLessThan(1e-12);
    }
  });

  it('oodDetection scores entropy, mutual information and 1 - max probability (higher = more OOD)', () => {
    const inDist = { predictiveEntropy: [0.1, 0.2, 0.3], mutualInformation: [0.01, 0.05, 0.02], maxProb: [0.99, 0.9, 0.95] };
    const ood = { predictiveEntropy: [0.25, 1.5], mutualInformation: [0.3, 0.015], maxProb: [0.5, 0.92] };
    const d = oodDetection(inDist, ood);
    expect(d.aurocEntropy).toBeCloseTo(auroc(inDist.predictiveEntropy, ood.predictiveEntropy), 15);
    expect(d.aurocEntropy).toBeCloseTo(5 / 6, 12); // 0.25 beats 0.1 and 0.2; 1.5 beats all three
    expect(d.aurocMutualInformation).toBeCloseTo(4 / 6, 12); // 0.3 beats all three; 0.015 beats only 0.01
    expect(d.aurocMaxProb).toBeCloseTo(5 / 6, 12); // 1 - p: 0.5 beats all; 0.08 beats 0.01 and 0.05
    expect(d.auprEntropy).toBeCloseTo(aupr(inDist.predictiveEntropy, ood.predictiveEntropy), 15);
  });

  it('rejects empty score sets and NaN scores, naming the argument', () => {
    expect(() => auroc([], [1])).toThrow(/auroc: argument 'inScores' expected at least one score/);
    expect(() => aupr([1], [])).toThrow(/aupr: argument 'oodScores' expected at least one score/);
    expect(() => auroc([1, NaN], [1])).toThrow(/auroc: argument 'inScores\[1\]' expected a number \(not NaN\), got NaN/);
  });
});
