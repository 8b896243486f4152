// common.wgsl: helpers shared by every kernel family (included with `//! include "common.wgsl"`).
//
// Index folding: 1-D work larger than 65535 workgroups is dispatched as an
// (x, y) grid by `grid()` in src/gpu/context.ts; `flat_index` undoes it.

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg_x: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg_x;
}

// exp(x) to a few ulp for any x. WGSL promises exp only to 3 + 2|x| ulp (implementations compute
// exp2(x * log2 e), whose rounding |x| multiplies): at x = -47, where softplus(rho) = e^rho is a
// sigma of 4e-21, that is 98 ulp (SwiftShader measured 55). Cody & Waite's reduction: x = k ln 2 + r,
// |r| <= ln 2 / 2, with ln 2 split into LN2_HI (16 significant bits, so k * LN2_HI is exact for
// |k| < 2^8) and LN2_LO; then exp(x) = 2^k exp(r), whose exp(r) errs by at most 3 + 2|r| < 4 ulp.
// Below -104 the result is 0 in f32 (not even a subnormal); the early return also keeps k finite for
// x = -inf. NaN stays NaN (it fails the comparison and reaches exp).
fn exp_accurate(x: f32) -> f32 {
  if (x < -104.0) { return 0.0; }
  let k = round(x * 1.4426950408889634);
  let r = (x - k * 0.693145751953125) - k * 1.428606765330187e-6;
  return ldexp(exp(r), i32(k));
}

// log(1 + t) for t in [0, 1], without the log builtin: WGSL promises log only to an absolute 2^-21
// on [0.5, 2], a relative error of 1e-5 at log(1.05). log1p(t) = 2 atanh(s) with s = t / (2 + t)
// in [0, 1/3]: 2 s (1 + s^2/3 + s^4/5 + ... + s^12/13), whose first omitted term is below 2^-25
// relative (Abramowitz & Stegun 4.1.28).
fn log1p_unit(t: f32) -> f32 {
  let s = t / (2.0 + t);
  let s2 = s * s;
  let p = 1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
  return 2.0 * s * p;
}

// log(1 + t) for t >= 0 (a sum of probabilities, say): the series above up to t = 1, then log(1 + t),
// whose argument is past 2, where WGSL's log is within 3 ulp.
fn log1p_pos(t: f32) -> f32 {
  if (t <= 1.0) { return log1p_unit(t); }
  return log(1.0 + t);
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), to a few ulp relative for every x: no
// overflow (e^-|x| <= 1), no cancellation (both parts are >= 0), and below 0 the value is e^x
// (1 - e^x / 2 + ...) with e^x from exp_accurate, so sigma = softplus(rho) keeps its precision down
// to rho = -87 (below, e^x is subnormal or 0). Past |x| = 20 the log1p part is the whole answer or
// below 2^-28 of it: x above 20, e^x below -20 (log1p(e) = e (1 - e / 2), e / 2 < 2^-30).
fn softplus(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  if (x < -20.0) { return exp_accurate(x); }
  return max(x, 0.0) + log1p_unit(exp_accurate(-abs(x)));
}

// d softplus / dx = sigmoid(x), stable for both signs: e = e^-|x| <= 1 never overflows.
fn sigmoid(x: f32) -> f32 {
  let e = exp_accurate(-abs(x));
  if (x >= 0.0) { return 1.0 / (1.0 + e); }
  return e / (1.0 + e);
}
