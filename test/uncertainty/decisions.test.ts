import { describe, expect, it } from 'vitest';
import { needsReview, riskAdjustedScores, riskAwareSelect, selectForLabeling } from '../../src/uncertainty/decisions.js';

describe('needsReview', () => {
  it('flags by confidence, entropy and mutual information (hand-computed)', () => {
    const pred = {
      maxProb: [0.99, 0.55, 0.9, 0.8],
      predictiveEntropy: [0.05, 0.69, 0.33, 0.5],
      mutualInformation: [0.01, 0.02, 0.4, 0.1],
    };
    // The doc comment's example.
    expect(needsReview({ maxProb: [0.99, 0.55, 0.9], mutualInformation: [0.01, 0.02, 0.4] }, { minConfidence: 0.8, maxMutualInformation: 0.1 })).toEqual([false, true, true]);
    // Confidence alone: 0.55 < 0.8; 0.8 is not below 0.8.
    expect(needsReview(pred, { minConfidence: 0.8 })).toEqual([false, true, false, false]);
    // Entropy alone: 0.69 and 0.5 exceed 0.4.
    expect(needsReview(pred, { maxEntropy: 0.4 })).toEqual([false, true, false, true]);
    // MI alone: only 0.4 exceeds 0.1 (0.1 itself does not).
    expect(needsReview(pred, { maxMutualInformation: 0.1 })).toEqual([false, false, true, false]);
    // Any rule flags: the union of the three.
    expect(needsReview(pred, { minConfidence: 0.8, maxEntropy: 0.4, maxMutualInformation: 0.1 })).toEqual([false, true, true, true]);
  });

  it('flags an example with a NaN score', () => {
    expect(needsReview({ maxProb: [0.9, NaN] }, { minConfidence: 0.5 })).toEqual([false, true]);
  });

  it('rejects missing scores, mismatched lengths and bad thresholds', () => {
    expect(() => needsReview({ maxProb: [0.9] }, {})).toThrow(/needsReview: argument 'thresholds' expected at least one of minConfidence, maxEntropy, maxMutualInformation/);
    expect(() => needsReview({ maxProb: [0.9] }, { maxMutualInformation: 0.1 })).toThrow(/needsReview: argument 'pred.mutualInformation' expected an array of per-example scores/);
    expect(() => needsReview({ maxProb: [0.9, 0.8], mutualInformation: [0.1] }, { minConfidence: 0.5, maxMutualInformation: 0.1 })).toThrow(/needsReview: argument 'pred.mutualInformation' has 1 scores but the other scores have 2/);
    expect(() => needsReview({ maxProb: [0.9] }, { minConfidence: 1.5 })).toThrow(/argument 'thresholds.minConfidence' expected a probability in \[0, 1\], got 1.5/);
    expect(() => needsReview({ predictiveEntropy: [0.9] }, { maxEntropy: -1 })).toThrow(/argument 'thresholds.maxEntropy' expected a number >= 0 \(nats\), got -1/);
  });
});

describe('selectForLabeling', () => {
  it('returns the n most uncertain indices by mutual information (BALD) or entropy (hand-computed)', () => {
    const pool = { mutualInformation: [0.1, 0.5, 0.0, 0.3, 0.5], predictiveEntropy: [0.6, 0.2, 0.6, 0.1, 0.0] };
    expect(selectForLabeling(pool, 2)).toEqual([1, 4]); // ties (0.5, 0.5): lower index first
    expect(selectForLabeling(pool, 3)).toEqual([1, 4, 3]);
    expect(selectForLabeling(pool, 2, { by: 'entropy' })).toEqual([0, 2]);
    expect(selectForLabeling(pool, 0)).toEqual([]);
    expect(selectForLabeling(pool, 10, { by: 'entropy' })).toEqual([0, 2, 1, 3, 4]); // n > pool: all, ranked
    // The doc comment's examples.
    expect(selectForLabeling({ mutualInformation: [0.1, 0.5, 0.0, 0.3] }, 2)).toEqual([1, 3]);
    expect(selectForLabeling({ predictiveEntropy: [0.6, 0.2, 0.6] }, 2, { by: 'entropy' })).toEqual([0, 2]);
  });

  it('rejects bad n, an unknown criterion, missing or non-finite scores', () => {
    const pool = { mutualInformation: [0.1, 0.5] };
    expect(() => selectForLabeling(pool, -1)).toThrow(/selectForLabeling: argument 'n' expected an integer >= 0, got -1/);
    expect(() => selectForLabeling(pool, 1.5)).toThrow(/argument 'n' expected an integer >= 0, got 1.5/);
    expect(() => selectForLabeling(pool, 1, { by: 'variance' as 'entropy' })).toThrow(/argument 'by' expected one of 'mutualInformation' \| 'entropy', got "variance"/);
    expect(() => selectForLabeling(pool, 1, { by: 'entropy' })).toThrow(/argument 'pool.predictiveEntropy' expected an array of per-example scores/);
    expect(() => selectForLabeling({ mutualInformation: [0.1, NaN] }, 1)).toThrow(/argument 'pool.mutualInformation\[1\]' expected a finite number, got NaN/);
  });
});

describe('riskAwareSelect', () => {
  it('ranks by mean - lambda * std (hand-computed)', () => {
    const means = [0.8, 1.0, 0.5];
    const stds = [0.1, 0.8, 0.0];
    // Scores with lambda = 1: 0.7, 0.2, 0.5.
    expect(Array.from(riskAdjustedScores(means, stds, 1))).toEqual([0.8 - 0.1, 1.0 - 0.8, 0.5]);
    expect(riskAwareSelect(means, stds, 1)).toEqual([0, 2, 1]);
    // lambda = 0: by the mean alone.
    expect(riskAwareSelect(means, stds, 0)).toEqual([1, 0, 2]);
    expect(riskAwareSelect(means, stds, 0, 1)).toEqual([1]);
    // lambda = 0.25: 0.775, 0.8, 0.5 -> option 1 still wins by a little.
    expect(riskAwareSelect(means, stds, 0.25, 2)).toEqual([1, 0]);
    // lambda = -1 (risk seeking, UCB): 0.9, 1.8, 0.5.
    expect(riskAwareSelect(means, stds, -1)).toEqual([1, 0, 2]);
    // Ties keep the lower index first.
    expect(riskAwareSelect([1, 2, 1], [0, 1, 0], 1)).toEqual([0, 1, 2]);
  });

  it('rejects mismatched lengths, negative or non-finite stds and bad lambda or n', () => {
    expect(() => riskAwareSelect([1, 2], [0.1], 1)).toThrow(/riskAwareSelect: argument 'stds' expected 2 values \(one per mean\), got 1/);
    expect(() => riskAwareSelect([1, 2], [0.1, -0.1], 1)).toThrow(/argument 'stds\[1\]' expected a finite number >= 0, got -0.1/);
    expect(() => riskAwareSelect([1, NaN], [0.1, 0.1], 1)).toThrow(/argument 'means\[1\]' expected a finite number, got NaN/);
    expect(() => riskAwareSelect([1, 2], [0.1, 0.1], NaN)).toThrow(/argument 'lambda' expected a finite number, got NaN/);
    expect(() => riskAwareSelect([1, 2], [0.1, 0.1], 1, -1)).toThrow(/argument 'n' expected an integer >= 0, got -1/);
  });
});
