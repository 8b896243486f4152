import { describe, expect, it } from 'vitest';
import { beta, elbo } from '../../src/train/elbo.js';

describe('beta schedules (hand-computed)', () => {
  it('blundell: 2^(M-i) / (2^M - 1), i = batchIndex + 1', () => {
    // M = 3: weights 4/7, 2/7, 1/7.
    expect(beta('blundell', 0, 3)).toBeCloseTo(4 / 7, 15);
    expect(beta('blundell', 1, 3)).toBeCloseTo(2 / 7, 15);
    expect(beta('blundell', 2, 3)).toBeCloseTo(1 / 7, 15);
    // They sum to 1 over an epoch, and stay finite for M far beyond 2^1023.
    let s = 0;
    for (let i = 0; i < 2000; i++) s += beta('blundell', i, 2000);
    expect(s).toBeCloseTo(1, 12);
    expect(beta('blundell', 1999, 2000)).toBeGreaterThanOrEqual(0);
  });
  it('soenderby: min(epoch / floor(epochs / 4), 1)', () => {
    // epochs = 8: quarter = 2; epochs 0, 1, 2, 5 -> 0, 0.5, 1, 1.
    expect([0, 1, 2, 5].map((e) => beta('soenderby', 0, 10, e, 8))).toEqual([0, 0.5, 1, 1]);
    // Fewer than 4 epochs: no warm-up, beta = 1.
    expect(beta('soenderby', 0, 10, 0, 3)).toBe(1);
  });
  it('standard is 1/M, none is 0, a number is itself', () => {
    expect(beta('standard', 5, 8)).toBe(0.125);
    expect(beta('none', 5, 8)).toBe(0);
    expect(beta(0.1, 5, 8)).toBe(0.1);
  });
  it('the ELBO is mean NLL * N + beta * KL', () => {
    expect(elbo(0.5, 200, 1000, 0.1)).toBeCloseTo(520, 12);
  });
  it('rejects bad schedules', () => {
    expect(() => beta(-1, 0, 1)).toThrow(/beta: argument 'beta' expected a number >= 0/);
    expect(() => beta('cosine' as never, 0, 1)).toThrow(/one of 'blundell'/);
    expect(() => beta('standard', 0, 0)).toThrow(/argument 'batches' expected an integer >= 1/);
  });
});
