/**
 * Float64 reference for deep ensembles (Lakshminarayanan et al. 2017), written without sharing code
 * with src/uncertainty/ensemble.ts: the decomposition computed directly over the pooled sample
 * vectors of all members, each sample of member m weighted 1/(M * T_m) (every member weighs 1/M,
 * whatever its sample count), instead of by combining the members' moments (the law of total
 * variance the library uses). The two must agree.
 */
import type { PredictiveReference } from './uncertainty.js';

/** One member's per-sample probabilities [T, N, C] (a Prediction's probs with keepSamples) and its T. */
export interface MemberSamples {
  probs: ArrayLike<number>;
  samples: number;
}

/** The mixture's decomposition over every sample of every member; `probs` is the weighted pool, [sum T_m, N, C]. */
export function ensembleReference(members: readonly MemberSamples[], N: number, C: number): PredictiveReference {
  const M = members.length;
  // The pool of sample vectors with their weights.
  const rows: { member: number; t: number; w: number }[] = [];
  members.forEach((m, i) => {
    for (let t = 0; t < m.samples; t++) rows.push({ member: i, t, w: 1 / (M * m.samples) });
  });
  const p = (row: { member: number; t: number }, n: number, c: number) => members[row.member].probs[(row.t * N + n) * C + c];

  const probs = new Float64Array(rows.length * N * C);
  rows.forEach((row, r) => {
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) probs[(r * N + n) * C + c] = p(row, n, c);
  });
  const mean = new Float64Array(N * C);
  const epistemic = new Float64Array(N * C);
  const aleatoric = new Float64Array(N * C);
  const predictiveEntropy = new Float64Array(N);
  const expectedEntropy = new Float64Array(N);
  const mutualInformation = new Float64Array(N);
  const maxProb = new Float64Array(N);
  const h = (v: number) => (v > 0 ? -v * Math.log(v) : 0);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (const row of rows) s += row.w * p(row, n, c);
      mean[n * C + c] = s;
    }
    for (let c = 0; c < C; c++) {
      // Var of p_c over the weighted pool (two-pass), and E[p_c (1 - p_c)].
      let v = 0;
      let a = 0;
      for (const row of rows) {
        const x = p(row, n, c);
        v += row.w * (x - mean[n * C + c]) ** 2;
        a += row.w * x * (1 - x);
      }
      epistemic[n * C + c] = v;
      aleatoric[n * C + c] = a;
    }
    let hBar = 0;
    let best = 0;
    for (let c = 0; c < C; c++) {
      hBar += h(mean[n * C + c]);
      best = Math.max(best, mean[n * C + c]);
    }
    let hExp = 0;
    for (const row of rows) {
      let ht = 0;
      for (let c = 0; c < C; c++) ht += h(p(row, n, c));
      hExp += row.w * ht;
    }
    predictiveEntropy[n] = hBar;
    expectedEntropy[n] = hExp;
    mutualInformation[n] = hBar - hExp;
    maxProb[n] = best;
  }
  return { probs, mean, epistemic, aleatoric, predictiveEntropy, expectedEntropy, mutualInformation, maxProb };
}
