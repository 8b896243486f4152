/**
 * float64 references for conv2d (NCHW cross-correlation, as PyTorch's conv2d),
 * its backward pass and the local reparameterization variant (Kingma, Salimans
 * & Welling 2015, "Variational dropout and the local reparameterization trick").
 *
 * Written as the textbook seven nested loops, independent of the shader's
 * tiling. Weights are [Cout, Cin, KH, KW] or per-sample [S, Cout, Cin, KH, KW]:
 * images n in [s*N/S, (s+1)*N/S) use sample s.
 */

export interface ConvShape {
  /** [N, Cin, H, W] */
  x: readonly number[];
  /** [Cout, Cin, KH, KW] or [S, Cout, Cin, KH, KW] */
  w: readonly number[];
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
}

export interface Geometry {
  n: number; cin: number; h: number; w: number;
  cout: number; kh: number; kw: number;
  samples: number; oh: number; ow: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

const two = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

export function geometryRef(s: ConvShape): Geometry {
  const [n, cin, h, w] = s.x;
  const per = s.w.length === 5;
  const [samples, cout, , kh, kw] = per ? s.w : [1, ...s.w];
  const [sh, sw] = two(s.stride, 1);
  const [ph, pw] = two(s.padding, 0);
  const [dh, dw] = two(s.dilation, 1);
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  return { n, cin, h, w, cout, kh, kw, samples, oh, ow, sh, sw, ph, pw, dh, dw };
}

/**
 * Calls f(xIndex, wIndex, yIndex) for every (input, weight, output) triple that
 * meets in the sum y[n,co,oh,ow] = sum x[n,ci,oh*sh-ph+i*dh, ow*sw-pw+j*dw] * w[s,co,ci,i,j].
 * Forward and both backward passes are this one enumeration read three ways.
 */
function forEachTap(g: Geometry, f: (xi: number, wi: number, yi: number) => void): void {
  const ips = g.n / g.samples;
  for (let n = 0; n < g.n; n++) {
    const s = Math.floor(n / ips);
    for (let co = 0; co < g.cout; co++) {
      for (let oh = 0; oh < g.oh; oh++) {
        for (let ow = 0; ow < g.ow; ow++) {
          const yi = ((n * g.cout + co) * g.oh + oh) * g.ow + ow;
          for (let ci = 0; ci < g.cin; ci++) {
            for (let i = 0; i < g.kh; i++) {
              const ih = oh * g.sh - g.ph + i * g.dh;
              if (ih < 0 || ih >= g.h) continue;
              for (let j = 0; j < g.kw; j++) {
                const iw = ow * g.sw - g.pw + j * g.dw;
                if (iw < 0 || iw >= g.w) continue;
                const xi = ((n * g.cin + ci) * g.h + ih) * g.w + iw;
                const wi = (((s * g.cout + co) * g.cin + ci) * g.kh + i) * g.kw + j;
                f(xi, wi, yi);
              }
            }
          }
        }
      }
    }
  }
}

/** Adds bias[s, co] (or bias[co]) to every output of channel co. */
function forEachOutput(g: Geometry, f: (yi: number, bi: number) => void): void {
  const ips = g.n / g.samples;
  const ohw = g.oh * g.ow;
  for (let n = 0; n < g.n; n++) {
    const s = Math.floor(n / ips);
    for (let co = 0; co < g.cout; co++) for (let p = 0; p < ohw; p++) f((n * g.cout + co) * ohw + p, s * g.cout + co);
  }
}

export function conv2dRef(s: ConvShape, x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null): Float64Array {
  const g = geometryRef(s);
  const y = new Float64Array(g.n * g.cout * g.oh * g.ow);
  forEachTap(g, (xi, wi, yi) => (y[yi] += x[xi] * w[wi]));
  if (bias) forEachOutput(g, (yi, bi) => (y[yi] += bias[bi]));
  return y;
}

/** Gradients of L = <conv2d(x, w) + b, dy> with respect to x, w and b. */
export function conv2dBackwardRef(s: ConvShape, x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>): { dx: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  const g = geometryRef(s);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(g.samples * g.cout);
  forEachTap(g, (xi, wi, yi) => {
    dx[xi] += dy[yi] * w[wi];
    dw[wi] += dy[yi] * x[xi];
  });
  forEachOutput(g, (yi, bi) => (db[bi] += dy[yi]));
  return { dx, dWeight: dw, dBias: db };
}

export interface LrtForward {
  mean: Float64Array;
  variance: Float64Array;
  std: Float64Array;
  y: Float64Array;
}

const square = (a: ArrayLike<number>) => Float64Array.from(a, (v) => v * v);

/**
 * Local reparameterization (Kingma et al. 2015, eq. 6 and section 2.3 for convolutions):
 * mean = conv(x, wMu) + bMu, variance = conv(x^2, wSigma2) + bSigma2,
 * y = mean + sqrt(variance + 1e-16) * eps. `eps` null gives y = mean.
 */
export function lrtConv2dRef(s: ConvShape, x: ArrayLike<number>, wMu: ArrayLike<number>, wSigma2: ArrayLike<number>, bMu: ArrayLike<number> | null, bSigma2: ArrayLike<number> | null, eps: ArrayLike<number> | null): LrtForward {
  const mean = conv2dRef(s, x, wMu, bMu);
  const variance = conv2dRef(s, square(x), wSigma2, bSigma2);
  const std = variance.map((v) => Math.sqrt(v + 1e-16));
  const y = mean.map((m, i) => m + (eps ? std[i] * eps[i] : 0));
  return { mean, variance, std, y };
}

/**
 * Gradients of L = <y, dy> for the LRT forward with eps held fixed:
 * dMean = dy, dVar = dy * eps / (2 std); dx = convT(dMean, wMu) + 2x * convT(dVar, wSigma2),
 * dwMu = corr(x, dMean), dwSigma2 = corr(x^2, dVar), dbMu = sum dMean, dbSigma2 = sum dVar.
 */
export function lrtConv2dBackwardRef(s: ConvShape, x: ArrayLike<number>, wMu: ArrayLike<number>, wSigma2: ArrayLike<number>, bSigma2: ArrayLike<number> | null, dy: ArrayLike<number>, eps: ArrayLike<number>) {
  const { std } = lrtConv2dRef(s, x, wMu, wSigma2, null, bSigma2, null);
  const dVar = Float64Array.from(dy, (d, i) => (d * eps[i]) / (2 * std[i]));
  const mu = conv2dBackwardRef(s, x, wMu, dy);
  const sigma = conv2dBackwardRef(s, square(x), wSigma2, dVar);
  const dx = mu.dx.map((d, i) => d + 2 * x[i] * sigma.dx[i]);
  return { dx, dWeightMu: mu.dWeight, dWeightSigma2: sigma.dWeight, dBiasMu: mu.dBias, dBiasSigma2: sigma.dBias, dVar };
}
