/**
 * Float64 references for split conformal prediction and selective classification, written from
 * the definitions without sharing code with src/uncertainty:
 *
 * - scores: LAC 1 - p_y; APS from each class's rank, counted by comparisons (the number of
 *   classes with a higher probability, or an equal one and a lower index), then summed in rank order;
 * - qhat: the k-th smallest score with k = ceil((n + 1)(1 - alpha)) in integer arithmetic
 *   (alpha given in percent), and the naive (1 - alpha) quantile without the finite-sample
 *   correction, k = ceil(n (1 - alpha)), which a test shows to under-cover;
 * - selective risk: brute force over every order of the examples that the scores allow (all
 *   orders of each tied group), and the oracle as the minimum over all n! orders.
 */

/** Class indices of p by probability, highest first (ties: lower index), from comparison counts. */
export function rankOrder(p: ArrayLike<number>): number[] {
  const C = p.length;
  const order = new Array<number>(C);
  for (let j = 0; j < C; j++) {
    let rank = 0;
    for (let k = 0; k < C; k++) if (p[k] > p[j] || (p[k] === p[j] && k < j)) rank++;
    order[rank] = j;
  }
  return order;
}

/** s(x, y) for every class y of one row: LAC, APS, or randomized APS with uniform draw u. */
export function scoresRef(p: ArrayLike<number>, score: 'lac' | 'aps', u?: number): number[] {
  const C = p.length;
  const out = new Array<number>(C).fill(0);
  if (score === 'lac') {
    for (let y = 0; y < C; y++) out[y] = 1 - p[y];
    return out;
  }
  let above = 0;
  for (const y of rankOrder(p)) {
    out[y] = u === undefined ? above + p[y] : above + u * p[y];
    above += p[y];
  }
  return out;
}

/** k = ceil((n + 1)(100 - alphaPercent) / 100) in integers. */
export function rankRef(n: number, alphaPercent: number): number {
  return intCeilDiv((n + 1) * (100 - alphaPercent), 100);
}

function intCeilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** The k-th smallest of `scores`, k = ceil((n + 1)(1 - alpha)). */
export function qhatRef(scores: readonly number[], alphaPercent: number): number {
  const sorted = scores.slice().sort((a, b) => a - b);
  return sorted[rankRef(scores.length, alphaPercent) - 1];
}

/** The naive (1 - alpha) empirical quantile, k = ceil(n (1 - alpha)): no finite-sample correction. */
export function naiveQhatRef(scores: readonly number[], alphaPercent: number): number {
  const sorted = scores.slice().sort((a, b) => a - b);
  return sorted[Math.max(intCeilDiv(scores.length * (100 - alphaPercent), 100), 1) - 1];
}

/** {y : s(x, y) <= qhat}, as a sorted list of class indices. */
export function setRef(p: ArrayLike<number>, score: 'lac' | 'aps', qhat: number, u?: number): number[] {
  const s = scoresRef(p, score, u);
  return s.map((v, y) => (v <= qhat ? y : -1)).filter((y) => y >= 0);
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const rest of permutations(n - 1)) {
    for (let at = 0; at <= rest.length; at++) out.push([...rest.slice(0, at), n - 1, ...rest.slice(at)]);
  }
  return out;
}

/** Selective risk after each m = 1..n of one order. */
function risks(order: readonly number[], wrong: readonly boolean[]): number[] {
  let errors = 0;
  return order.map((i, m) => {
    if (wrong[i]) errors++;
    return errors / (m + 1);
  });
}

/**
 * Over every order of the examples consistent with `confidence` (non-increasing; ties in any
 * order): the mean AURC, the mean accuracy on the first m for each m, and the minimum AURC over
 * all n! orders (the oracle). n up to 8.
 */
export function selectiveRef(confidence: readonly number[], wrong: readonly boolean[]): { aurc: number; accuracyAt: number[]; optimalAurc: number } {
  const n = confidence.length;
  let count = 0;
  let aurc = 0;
  const accuracyAt = new Array<number>(n + 1).fill(0);
  let optimalAurc = Infinity;
  for (const order of permutations(n)) {
    const r = risks(order, wrong);
    const area = r.reduce((a, b) => a + b, 0) / n;
    optimalAurc = Math.min(optimalAurc, area);
    let consistent = true;
    for (let k = 1; k < n; k++) if (confidence[order[k]] > confidence[order[k - 1]]) consistent = false;
    if (!consistent) continue;
    count++;
    aurc += area;
    r.forEach((v, m) => (accuracyAt[m + 1] += 1 - v));
  }
  return { aurc: aurc / count, accuracyAt: accuracyAt.map((v) => v / count), optimalAurc };
}
