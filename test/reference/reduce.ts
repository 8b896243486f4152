/** float64 reference for src/ops/reduce.ts: sums of x viewed as [outer, reduceA, kept, reduceB] over reduceA and reduceB. */
export interface SumAxesRef {
  outer?: number;
  reduceA?: number;
  kept?: number;
  reduceB?: number;
}

/** out[o * kept + k] = scale * sum_a sum_b x[o, a, k, b], and the matching sums of |x| (for rounding bounds). */
export function sumAxesRef(x: ArrayLike<number>, axes: SumAxesRef, scale = 1): { sum: Float64Array; abs: Float64Array } {
  const { outer = 1, reduceA = 1, kept = 1, reduceB = 1 } = axes;
  const sum = new Float64Array(outer * kept);
  const abs = new Float64Array(outer * kept);
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < reduceA; a++) {
      for (let k = 0; k < kept; k++) {
        const base = ((o * reduceA + a) * kept + k) * reduceB;
        let s = 0;
        let m = 0;
        for (let b = 0; b < reduceB; b++) {
          s += x[base + b];
          m += Math.abs(x[base + b]);
        }
        sum[o * kept + k] += s;
        abs[o * kept + k] += m;
      }
    }
  }
  for (let j = 0; j < sum.length; j++) sum[j] *= scale;
  return { sum, abs };
}
