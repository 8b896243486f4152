/**
 * Float64 CPU references for the uncertainty toolkit, written from the papers'
 * formulas without sharing code with src/uncertainty: the predictive
 * distribution and its decomposition (Kwon et al. 2020, eq. 4; Shridhar et al.
 * 2019, eq. 15; the seed's uncertainty_estimation.py with its matrix products),
 * and brute-force versions of AUROC, average precision and ECE.
 */

export type Method = 'softmax' | 'normalized';

export interface PredictiveReference {
  probs: Float64Array; // [T, B, C]
  mean: Float64Array; // [B, C]
  epistemic: Float64Array;
  aleatoric: Float64Array;
  predictiveEntropy: Float64Array; // [B]
  expectedEntropy: Float64Array;
  mutualInformation: Float64Array;
  maxProb: Float64Array;
}

const softplus = (x: number) => (x > 30 ? x : Math.log1p(Math.exp(x)));

/** p for one row of logits. */
export function probabilities(z: ArrayLike<number>, method: Method): Float64Array {
  const C = z.length;
  const p = new Float64Array(C);
  if (method === 'softmax') {
    const m = Math.max(...Array.from(z));
    let s = 0;
    for (let c = 0; c < C; c++) s += (p[c] = Math.exp(z[c] - m));
    for (let c = 0; c < C; c++) p[c] /= s;
  } else {
    let s = 0;
    for (let c = 0; c < C; c++) s += (p[c] = softplus(z[c]));
    for (let c = 0; c < C; c++) p[c] /= s;
  }
  return p;
}

export function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let c = 0; c < p.length; c++) if (p[c] > 0) h -= p[c] * Math.log(p[c]);
  return h;
}

/**
 * Logits [T * B, C] (sample t of example b at row t * B + b) -> the decomposition.
 * Epistemic and aleatoric as the seed computes them: the diagonals of
 * (p_hat - p_bar)^T (p_hat - p_bar) / T and diag(p_bar) - p_hat^T p_hat / T.
 */
export function predictiveReference(logits: ArrayLike<number>, T: number, B: number, C: number, method: Method): PredictiveReference {
  const probs = new Float64Array(T * B * C);
  for (let r = 0; r < T * B; r++) probs.set(probabilities(Array.from({ length: C }, (_, c) => logits[r * C + c]), method), r * C);
  return decompose(probs, T, B, C);
}

/** The decomposition from per-sample probabilities [T, B, C]. */
export function decompose(probs: Float64Array, T: number, B: number, C: number): PredictiveReference {
  const mean = new Float64Array(B * C);
  const epistemic = new Float64Array(B * C);
  const aleatoric = new Float64Array(B * C);
  const predictiveEntropy = new Float64Array(B);
  const expectedEntropy = new Float64Array(B);
  const mutualInformation = new Float64Array(B);
  const maxProb = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const pHat = (t: number, c: number) => probs[(t * B + b) * C + c];
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let t = 0; t < T; t++) s += pHat(t, c);
      mean[b * C + c] = s / T;
    }
    for (let c = 0; c < C; c++) {
      let dev = 0;
      let sq = 0;
      for (let t = 0; t < T; t++) {
        const d = pHat(t, c) - mean[b * C + c];
        dev += d * d;
        sq += pHat(t, c) * pHat(t, c);
      }
      epistemic[b * C + c] = dev / T;
      aleatoric[b * C + c] = mean[b * C + c] - sq / T;
    }
    const pBar = mean.subarray(b * C, (b + 1) * C);
    predictiveEntropy[b] = entropy(pBar);
    let h = 0;
    for (let t = 0; t < T; t++) h += entropy(probs.subarray((t * B + b) * C, (t * B + b + 1) * C));
    expectedEntropy[b] = h / T;
    mutualInformation[b] = predictiveEntropy[b] - expectedEntropy[b];
    maxProb[b] = Math.max(...Array.from(pBar));
  }
  return { probs, mean, epistemic, aleatoric, predictiveEntropy, expectedEntropy, mutualInformation, maxProb };
}

/** AUROC by counting every (in, ood) pair: 1 when ood scores higher, 1/2 on a tie. */
export function aurocPairwise(inScores: ArrayLike<number>, oodScores: ArrayLike<number>): number {
  let u = 0;
  for (let i = 0; i < inScores.length; i++) {
    for (let j = 0; j < oodScores.length; j++) {
      if (oodScores[j] > inScores[i]) u += 1;
      else if (oodScores[j] === inScores[i]) u += 0.5;
    }
  }
  return u / (inScores.length * oodScores.length);
}

/** Average precision by trying every distinct score as a threshold (predict OOD when score >= threshold). */
export function averagePrecisionBrute(inScores: ArrayLike<number>, oodScores: ArrayLike<number>): number {
  const thresholds = [...new Set([...Array.from(inScores), ...Array.from(oodScores)])].sort((a, b) => b - a);
  let ap = 0;
  let prevRecall = 0;
  for (const th of thresholds) {
    const tp = Array.from(oodScores).filter((s) => s >= th).length;
    const fp = Array.from(inScores).filter((s) => s >= th).length;
    const recall = tp / oodScores.length;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

/** ECE and MCE by looping over bins and scanning all examples for each (bins (k/M, (k+1)/M]). */
export function calibrationBrute(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number, M: number): { ece: number; mce: number; counts: number[] } {
  const N = labels.length;
  const conf: number[] = [];
  const correct: boolean[] = [];
  for (let i = 0; i < N; i++) {
    const row = Array.from({ length: C }, (_, c) => probs[i * C + c]);
    const p = Math.max(...row);
    conf.push(p);
    correct.push(row.indexOf(p) === labels[i]);
  }
  let ece = 0;
  let mce = 0;
  const counts: number[] = [];
  for (let k = 0; k < M; k++) {
    const inBin = conf.map((p, i) => i).filter((i) => (k === 0 ? conf[i] >= 0 : conf[i] > k / M) && conf[i] <= (k + 1) / M);
    counts.push(inBin.length);
    if (inBin.length === 0) continue;
    const acc = inBin.filter((i) => correct[i]).length / inBin.length;
    const avg = inBin.reduce((s, i) => s + conf[i], 0) / inBin.length;
    ece += (inBin.length / N) * Math.abs(acc - avg);
    mce = Math.max(mce, Math.abs(acc - avg));
  }
  return { ece, mce, counts };
}
