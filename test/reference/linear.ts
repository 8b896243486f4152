/**
 * float64 references for matmul, linear layers (with per-sample weights) and the local
 * reparameterization trick (Kingma et al. 2015, eq. 6), written from the definitions
 * with plain loops. Matrices are row-major Float64Arrays.
 */

/** C = op(A) @ op(B); A is [m, k] (or [k, m] when transposeA), B is [k, n] (or [n, k] when transposeB). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, transposeA = false, transposeB = false): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transposeA ? a[p * m + i] : a[i * k + p];
        const bv = transposeB ? b[j * k + p] : b[p * n + j];
        s += av * bv;
      }
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Sizes of a linear layer: `rows` inputs of `inF` features, `outF` outputs, `samples` weight samples. */
export interface LinearDims {
  rows: number;
  inF: number;
  outF: number;
  samples: number;
}

/** y[r, o] = sum_i x[r, i] w[s, o, i] + bias[s, o], with s = floor(r / (rows / samples)). */
export function linearRef(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, d: LinearDims): Float64Array {
  const group = d.rows / d.samples;
  const y = new Float64Array(d.rows * d.outF);
  for (let r = 0; r < d.rows; r++) {
    const s = Math.floor(r / group);
    for (let o = 0; o < d.outF; o++) {
      let acc = bias ? bias[s * d.outF + o] : 0;
      for (let i = 0; i < d.inF; i++) acc += x[r * d.inF + i] * w[(s * d.outF + o) * d.inF + i];
      y[r * d.outF + o] = acc;
    }
  }
  return y;
}

/** Gradients of L = <linearRef(x, w, bias), dy> with respect to x, w and bias. */
export function linearBackwardRef(x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, d: LinearDims): { dx: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  const group = d.rows / d.samples;
  const dx = new Float64Array(d.rows * d.inF);
  const dw = new Float64Array(d.samples * d.outF * d.inF);
  const db = new Float64Array(d.samples * d.outF);
  for (let r = 0; r < d.rows; r++) {
    const s = Math.floor(r / group);
    for (let o = 0; o < d.outF; o++) {
      const g = dy[r * d.outF + o];
      db[s * d.outF + o] += g;
      for (let i = 0; i < d.inF; i++) {
        dx[r * d.inF + i] += g * w[(s * d.outF + o) * d.inF + i];
        dw[(s * d.outF + o) * d.inF + i] += g * x[r * d.inF + i];
      }
    }
  }
  return { dx, dWeight: dw, dBias: db };
}

/** The moments of the LRT pre-activations: mean = x wMu^T + bMu, var = x^2 wSigma2^T + bSigma2. */
export function lrtMomentsRef(
  x: ArrayLike<number>, wMu: ArrayLike<number>, wSigma2: ArrayLike<number>, bMu: ArrayLike<number> | null, bSigma2: ArrayLike<number> | null, rows: number, inF: number, outF: number,
): { mean: Float64Array; variance: Float64Array; std: Float64Array } {
  const mean = new Float64Array(rows * outF);
  const variance = new Float64Array(rows * outF);
  const std = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let m = bMu ? bMu[o] : 0;
      let v = bSigma2 ? bSigma2[o] : 0;
      for (let i = 0; i < inF; i++) {
        const xv = x[r * inF + i];
        m += xv * wMu[o * inF + i];
        v += xv * xv * wSigma2[o * inF + i];
      }
      mean[r * outF + o] = m;
      variance[r * outF + o] = v;
      std[r * outF + o] = Math.sqrt(v + 1e-16);
    }
  }
  return { mean, variance, std };
}

/** y = mean + std * eps for a given eps [rows, outF]. */
export function lrtForwardRef(
  x: ArrayLike<number>, wMu: ArrayLike<number>, wSigma2: ArrayLike<number>, bMu: ArrayLike<number> | null, bSigma2: ArrayLike<number> | null, eps: ArrayLike<number>, rows: number, inF: number, outF: number,
): Float64Array {
  const { mean, std } = lrtMomentsRef(x, wMu, wSigma2, bMu, bSigma2, rows, inF, outF);
  return Float64Array.from(mean, (m, i) => m + std[i] * eps[i]);
}

/**
 * Gradients of L = <lrtForwardRef(...), dy> with eps held fixed, from the chain rule:
 * dMean = dy, dVar = dy eps / (2 std); dx = dMean wMu + 2 x (dVar wSigma2); dwMu = dMean^T x;
 * dwSigma2 = dVar^T x^2; dbMu = sum_r dMean; dbSigma2 = sum_r dVar.
 */
export function lrtBackwardRef(
  x: ArrayLike<number>, wMu: ArrayLike<number>, wSigma2: ArrayLike<number>, bMu: ArrayLike<number> | null, bSigma2: ArrayLike<number> | null, eps: ArrayLike<number>, dy: ArrayLike<number>, rows: number, inF: number, outF: number,
): { dx: Float64Array; dWeightMu: Float64Array; dWeightSigma2: Float64Array; dBiasMu: Float64Array; dBiasSigma2: Float64Array } {
  const { std } = lrtMomentsRef(x, wMu, wSigma2, bMu, bSigma2, rows, inF, outF);
  const dx = new Float64Array(rows * inF);
  const dwMu = new Float64Array(outF * inF);
  const dwSigma2 = new Float64Array(outF * inF);
  const dbMu = new Float64Array(outF);
  const dbSigma2 = new Float64Array(outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      const dMean = dy[r * outF + o];
      const dVar = (dy[r * outF + o] * eps[r * outF + o]) / (2 * std[r * outF + o]);
      dbMu[o] += dMean;
      dbSigma2[o] += dVar;
      for (let i = 0; i < inF; i++) {
        const xv = x[r * inF + i];
        dx[r * inF + i] += dMean * wMu[o * inF + i] + 2 * xv * dVar * wSigma2[o * inF + i];
        dwMu[o * inF + i] += dMean * xv;
        dwSigma2[o * inF + i] += dVar * xv * xv;
      }
    }
  }
  return { dx, dWeightMu: dwMu, dWeightSigma2: dwSigma2, dBiasMu: dbMu, dBiasSigma2: dbSigma2 };
}
