/** float64 reference of BatchNorm2d over NCHW (Ioffe & Szegedy 2015), written from the definitions. */
export interface BnShape { N: number; C: number; HW: number }

const at = (s: BnShape, n: number, c: number, k: number) => (n * s.C + c) * s.HW + k;

/** Per-channel batch mean and biased variance. */
export function batchStatsRef(x: ArrayLike<number>, s: BnShape): { mean: Float64Array; variance: Float64Array } {
  const M = s.N * s.HW;
  const mean = new Float64Array(s.C);
  const variance = new Float64Array(s.C);
  for (let c = 0; c < s.C; c++) {
    for (let n = 0; n < s.N; n++) for (let k = 0; k < s.HW; k++) mean[c] += x[at(s, n, c, k)] / M;
    for (let n = 0; n < s.N; n++) for (let k = 0; k < s.HW; k++) variance[c] += (x[at(s, n, c, k)] - mean[c]) ** 2 / M;
  }
  return { mean, variance };
}

/** y with the given per-channel mean and variance (batch ones in training, running ones in eval). */
export function batchNormRef(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, s: BnShape, mean: ArrayLike<number>, variance: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let n = 0; n < s.N; n++) {
    for (let c = 0; c < s.C; c++) {
      for (let k = 0; k < s.HW; k++) {
        const i = at(s, n, c, k);
        y[i] = (gamma[c] * (x[i] - mean[c])) / Math.sqrt(variance[c] + eps) + beta[c];
      }
    }
  }
  return y;
}

export function batchNormTrainRef(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, s: BnShape, eps: number): Float64Array {
  const { mean, variance } = batchStatsRef(x, s);
  return batchNormRef(x, gamma, beta, s, mean, variance, eps);
}

/** PyTorch's running update: the unbiased batch variance enters running_var. */
export function runningUpdateRef(x: ArrayLike<number>, s: BnShape, runningMean: ArrayLike<number>, runningVar: ArrayLike<number>, momentum: number): { mean: Float64Array; variance: Float64Array } {
  const { mean, variance } = batchStatsRef(x, s);
  const M = s.N * s.HW;
  return {
    mean: Float64Array.from(runningMean, (r, c) => (1 - momentum) * r + momentum * mean[c]),
    variance: Float64Array.from(runningVar, (r, c) => (1 - momentum) * r + (momentum * variance[c] * M) / (M - 1)),
  };
}

/**
 * Gradients of L = <y, dy>. Training: the statistics depend on x (the three-term formula of Ioffe &
 * Szegedy, Section 3). Eval: mean and variance are the given constants.
 */
export function batchNormBackwardRef(
  x: ArrayLike<number>, dy: ArrayLike<number>, gamma: ArrayLike<number>, s: BnShape, eps: number,
  fixed?: { mean: ArrayLike<number>; variance: ArrayLike<number> },
): { dx: Float64Array; dGamma: Float64Array; dBeta: Float64Array } {
  const { mean, variance } = fixed ?? batchStatsRef(x, s);
  const M = s.N * s.HW;
  const dx = new Float64Array(x.length);
  const dGamma = new Float64Array(s.C);
  const dBeta = new Float64Array(s.C);
  for (let c = 0; c < s.C; c++) {
    const invStd = 1 / Math.sqrt(variance[c] + eps);
    for (let n = 0; n < s.N; n++) {
      for (let k = 0; k < s.HW; k++) {
        const i = at(s, n, c, k);
        dBeta[c] += dy[i];
        dGamma[c] += dy[i] * (x[i] - mean[c]) * invStd;
      }
    }
    for (let n = 0; n < s.N; n++) {
      for (let k = 0; k < s.HW; k++) {
        const i = at(s, n, c, k);
        const xHat = (x[i] - mean[c]) * invStd;
        dx[i] = fixed ? gamma[c] * invStd * dy[i] : (gamma[c] * invStd * (M * dy[i] - dBeta[c] - xHat * dGamma[c])) / M;
      }
    }
  }
  return { dx, dGamma, dBeta };
}
