/**
 * Float64 references for the last-layer Laplace approximation (Daxberger et al. 2021), written with
 * dense matrices and no code shared with src/uncertainty/laplace.ts: the features of a small MLP
 * from its weights, the dense Hessian of the NLL sum w.r.t. the last layer's theta = vec [W | b]
 * (row-major, theta[c * (D + 1) + d]) built from explicit Jacobians, a finite-difference Hessian of
 * the NLL, the diagonal and KFAC approximations as dense P x P matrices, the marginal likelihood
 * with a Cholesky log determinant, and the linearised predictive with a Gauss-Jordan inverse.
 */

/** y = x W^T + b for x [N, I], W [O, I]. */
export function linear(x: ArrayLike<number>, N: number, I: number, W: ArrayLike<number>, b: ArrayLike<number> | null, O: number): Float64Array {
  const y = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < I; i++) s += x[n * I + i] * W[o * I + i];
      y[n * O + o] = s;
    }
  }
  return y;
}

export const relu = (a: Float64Array): Float64Array => a.map((v) => Math.max(0, v));

export function softmax(z: ArrayLike<number>): Float64Array {
  const m = Math.max(...Array.from(z));
  const e = Float64Array.from(z as ArrayLike<number>, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** phi~ = [phi; 1] of example n. */
function augmented(phi: ArrayLike<number>, n: number, D: number): Float64Array {
  const x = new Float64Array(D + 1);
  for (let d = 0; d < D; d++) x[d] = phi[n * D + d];
  x[D] = 1;
  return x;
}

/** Logits of example n for parameters theta [C, D + 1]. */
function logitsOf(theta: ArrayLike<number>, phi: ArrayLike<number>, n: number, D: number, C: number): Float64Array {
  const x = augmented(phi, n, D);
  const f = new Float64Array(C);
  for (let c = 0; c < C; c++) for (let d = 0; d <= D; d++) f[c] += theta[c * (D + 1) + d] * x[d];
  return f;
}

/** sum_n CE(softmax(f_n(theta)), y_n). */
export function nllSum(theta: ArrayLike<number>, phi: ArrayLike<number>, labels: ArrayLike<number>, N: number, D: number, C: number): number {
  let s = 0;
  for (let n = 0; n < N; n++) {
    const f = logitsOf(theta, phi, n, D, C);
    const m = Math.max(...Array.from(f));
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(f[c] - m);
    s += m + Math.log(z) - f[labels[n]];
  }
  return s;
}

/** The Jacobian J_n = d f_n / d theta, [C, P], written out element by element. */
export function jacobian(phi: ArrayLike<number>, n: number, D: number, C: number): Float64Array {
  const P = C * (D + 1);
  const x = augmented(phi, n, D);
  const J = new Float64Array(C * P);
  for (let c = 0; c < C; c++) for (let d = 0; d <= D; d++) J[c * P + c * (D + 1) + d] = x[d];
  return J;
}

/** GGN = sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n, dense [P, P]. */
export function denseGgn(theta: ArrayLike<number>, phi: ArrayLike<number>, N: number, D: number, C: number): Float64Array {
  const P = C * (D + 1);
  const H = new Float64Array(P * P);
  for (let n = 0; n < N; n++) {
    const p = softmax(logitsOf(theta, phi, n, D, C));
    const J = jacobian(phi, n, D, C);
    // L J, then J^T (L J).
    const LJ = new Float64Array(C * P);
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) {
      const l = (a === b ? p[a] : 0) - p[a] * p[b];
      for (let k = 0; k < P; k++) LJ[a * P + k] += l * J[b * P + k];
    }
    for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) {
      let s = 0;
      for (let a = 0; a < C; a++) s += J[a * P + i] * LJ[a * P + j];
      H[i * P + j] += s;
    }
  }
  return H;
}

/** The Hessian of nllSum by second central differences, (f(+h,+h) - f(+h,-h) - f(-h,+h) + f(-h,-h)) / 4h^2. */
export function finiteDifferenceHessian(theta: ArrayLike<number>, phi: ArrayLike<number>, labels: ArrayLike<number>, N: number, D: number, C: number, h = 1e-4): Float64Array {
  const P = C * (D + 1);
  const t = Float64Array.from(theta as ArrayLike<number>);
  const H = new Float64Array(P * P);
  const f = () => nllSum(t, phi, labels, N, D, C);
  for (let i = 0; i < P; i++) {
    for (let j = i; j < P; j++) {
      const ti = t[i];
      const tj = t[j];
      const at = (si: number, sj: number) => {
        t[i] = ti;
        t[j] = tj;
        t[i] += si * h;
        t[j] += sj * h;
        const v = f();
        t[i] = ti;
        t[j] = tj;
        return v;
      };
      const v = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h * h);
      H[i * P + j] = v;
      H[j * P + i] = v;
    }
  }
  return H;
}

/** KFAC factors B = sum_n Lambda_n [C, C] and A = (1/N) sum_n phi~ phi~^T [D + 1, D + 1]. */
export function kfacFactors(theta: ArrayLike<number>, phi: ArrayLike<number>, N: number, D: number, C: number): { B: Float64Array; A: Float64Array } {
  const B = new Float64Array(C * C);
  const A = new Float64Array((D + 1) * (D + 1));
  for (let n = 0; n < N; n++) {
    const p = softmax(logitsOf(theta, phi, n, D, C));
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) B[a * C + b] += (a === b ? p[a] : 0) - p[a] * p[b];
    const x = augmented(phi, n, D);
    for (let i = 0; i <= D; i++) for (let j = 0; j <= D; j++) A[i * (D + 1) + j] += (x[i] * x[j]) / N;
  }
  return { B, A };
}

/** The Kronecker product B kron A as a dense matrix. */
export function kron(B: ArrayLike<number>, m: number, A: ArrayLike<number>, n: number): Float64Array {
  const K = new Float64Array(m * n * m * n);
  const size = m * n;
  for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) K[(a * n + i) * size + (b * n + j)] = B[a * m + b] * A[i * n + j];
  return K;
}

/** The diagonal of a dense matrix as a dense diagonal matrix. */
export function diagonalMatrix(H: ArrayLike<number>, P: number): Float64Array {
  const out = new Float64Array(P * P);
  for (let i = 0; i < P; i++) out[i * P + i] = H[i * P + i];
  return out;
}

/** log det of a symmetric positive definite matrix by Cholesky. */
export function logDet(M: ArrayLike<number>, P: number): number {
  const L = new Float64Array(P * P);
  let s = 0;
  for (let j = 0; j < P; j++) {
    let d = M[j * P + j];
    for (let k = 0; k < j; k++) d -= L[j * P + k] ** 2;
    if (!(d > 0)) throw new Error(`logDet: not positive definite at ${j} (${d})`);
    L[j * P + j] = Math.sqrt(d);
    s += Math.log(d);
    for (let i = j + 1; i < P; i++) {
      let v = M[i * P + j];
      for (let k = 0; k < j; k++) v -= L[i * P + k] * L[j * P + k];
      L[i * P + j] = v / L[j * P + j];
    }
  }
  return s; // sum of log L_jj^2 = log det
}

/** Inverse by Gauss-Jordan elimination with partial pivoting. */
export function inverse(M: ArrayLike<number>, P: number): Float64Array {
  const a = Float64Array.from(M as ArrayLike<number>);
  const inv = new Float64Array(P * P);
  for (let i = 0; i < P; i++) inv[i * P + i] = 1;
  for (let col = 0; col < P; col++) {
    let piv = col;
    for (let r = col + 1; r < P; r++) if (Math.abs(a[r * P + col]) > Math.abs(a[piv * P + col])) piv = r;
    for (let k = 0; k < P; k++) {
      [a[col * P + k], a[piv * P + k]] = [a[piv * P + k], a[col * P + k]];
      [inv[col * P + k], inv[piv * P + k]] = [inv[piv * P + k], inv[col * P + k]];
    }
    const d = a[col * P + col];
    for (let k = 0; k < P; k++) {
      a[col * P + k] /= d;
      inv[col * P + k] /= d;
    }
    for (let r = 0; r < P; r++) {
      if (r === col) continue;
      const m = a[r * P + col];
      if (m === 0) continue;
      for (let k = 0; k < P; k++) {
        a[r * P + k] -= m * a[col * P + k];
        inv[r * P + k] -= m * inv[col * P + k];
      }
    }
  }
  return inv;
}

const plusDelta = (H: ArrayLike<number>, P: number, delta: number) => {
  const M = Float64Array.from(H as ArrayLike<number>);
  for (let i = 0; i < P; i++) M[i * P + i] += delta;
  return M;
};

/**
 * log p(D | delta) ~ -nll(theta*) - delta/2 ||theta*||^2 + P/2 log delta - 1/2 log det(H + delta I),
 * the Laplace approximation with a N(0, delta^-1 I) prior (Laplace Redux, eq. 5; MacKay 1992).
 */
export function denseLogMarginal(H: ArrayLike<number>, P: number, theta: ArrayLike<number>, nll: number, delta: number): number {
  let norm = 0;
  for (let i = 0; i < P; i++) norm += theta[i] ** 2;
  return -nll - 0.5 * delta * norm + 0.5 * P * Math.log(delta) - 0.5 * logDet(plusDelta(H, P, delta), P);
}

export interface PredictiveRef {
  f: Float64Array; // [M, C]
  cov: Float64Array; // [M, C, C]
  /** probit p = softmax(f / sqrt(1 + pi/8 diag Sigma_f)) and its delta-method parts. */
  probit: { mean: Float64Array; epistemic: Float64Array; aleatoric: Float64Array; mutualInformation: Float64Array; predictiveEntropy: Float64Array };
}

const entropy = (p: ArrayLike<number>) => Array.from(p).reduce((h, v) => (v > 0 ? h - v * Math.log(v) : h), 0);

/** The linearised predictive with Sigma = (H + delta I)^-1 (dense inverse) and Sigma_f = J Sigma J^T. */
export function denseFunctionSpace(H: ArrayLike<number>, delta: number, theta: ArrayLike<number>, phi: ArrayLike<number>, M: number, D: number, C: number): PredictiveRef {
  const P = C * (D + 1);
  const Sigma = inverse(plusDelta(H, P, delta), P);
  const f = new Float64Array(M * C);
  const cov = new Float64Array(M * C * C);
  const probit = { mean: new Float64Array(M * C), epistemic: new Float64Array(M * C), aleatoric: new Float64Array(M * C), mutualInformation: new Float64Array(M), predictiveEntropy: new Float64Array(M) };
  for (let n = 0; n < M; n++) {
    const fn = logitsOf(theta, phi, n, D, C);
    f.set(fn, n * C);
    const J = jacobian(phi, n, D, C);
    const S = new Float64Array(C * C);
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) {
      let s = 0;
      for (let i = 0; i < P; i++) {
        if (J[a * P + i] === 0) continue;
        for (let j = 0; j < P; j++) s += J[a * P + i] * Sigma[i * P + j] * J[b * P + j];
      }
      S[a * C + b] = s;
    }
    cov.set(S, n * C * C);
    const pbar = softmax(Array.from(fn, (v, c) => v / Math.sqrt(1 + (Math.PI / 8) * S[c * C + c])));
    const p = softmax(fn);
    const G = new Float64Array(C * C);
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) G[a * C + b] = (a === b ? p[a] : 0) - p[a] * p[b];
    // G S G and tr(G S) as matrix products.
    const GS = new Float64Array(C * C);
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) for (let k = 0; k < C; k++) GS[a * C + b] += G[a * C + k] * S[k * C + b];
    let trace = 0;
    for (let a = 0; a < C; a++) trace += GS[a * C + a];
    const hp = entropy(pbar);
    for (let c = 0; c < C; c++) {
      let v = 0;
      for (let k = 0; k < C; k++) v += GS[c * C + k] * G[k * C + c];
      probit.mean[n * C + c] = pbar[c];
      probit.epistemic[n * C + c] = Math.max(0, v);
      probit.aleatoric[n * C + c] = Math.max(0, pbar[c] * (1 - pbar[c]) - Math.max(0, v));
    }
    probit.predictiveEntropy[n] = hp;
    probit.mutualInformation[n] = Math.min(hp, Math.max(0, trace / 2));
  }
  return { f, cov, probit };
}

/** mulberry32, a generator of its own (not the library's xoshiro). */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Monte Carlo moments of p = softmax(f), f ~ N(mean, S), for one example: f = mean + L z with a Cholesky
 * factor L of S (written again here) and Box-Muller normals from mulberry32. Returns the means of p, of
 * p - p^2 and of H[p], the variance of p, and the per-draw standard deviation of H[p] (for standard errors).
 */
export function monteCarloSoftmax(mean: ArrayLike<number>, S: ArrayLike<number>, C: number, T: number, seed: number): { p: Float64Array; variance: Float64Array; aleatoric: Float64Array; expectedEntropy: number; entropyStd: number } {
  const L = new Float64Array(C * C);
  for (let j = 0; j < C; j++) {
    let d = S[j * C + j];
    for (let k = 0; k < j; k++) d -= L[j * C + k] ** 2;
    L[j * C + j] = Math.sqrt(Math.max(d, 0));
    for (let i = j + 1; i < C; i++) {
      let v = S[i * C + j];
      for (let k = 0; k < j; k++) v -= L[i * C + k] * L[j * C + k];
      L[i * C + j] = L[j * C + j] > 0 ? v / L[j * C + j] : 0;
    }
  }
  const u = uniform(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const sum = new Float64Array(C);
  const sum2 = new Float64Array(C);
  const al = new Float64Array(C);
  let h = 0;
  let h2 = 0;
  const z = new Float64Array(C);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < C; c++) z[c] = normal();
    const f = Array.from({ length: C }, (_, a) => {
      let s = mean[a];
      for (let b = 0; b <= a; b++) s += L[a * C + b] * z[b];
      return s;
    });
    const p = softmax(f);
    for (let c = 0; c < C; c++) {
      sum[c] += p[c];
      sum2[c] += p[c] * p[c];
      al[c] += p[c] - p[c] * p[c];
    }
    const e = entropy(p);
    h += e;
    h2 += e * e;
  }
  const p = sum.map((v) => v / T);
  return {
    p,
    variance: sum2.map((v, c) => v / T - p[c] * p[c]),
    aleatoric: al.map((v) => v / T),
    expectedEntropy: h / T,
    entropyStd: Math.sqrt(Math.max(0, h2 / T - (h / T) ** 2)),
  };
}
