// common.wgsl: helpers shared by every kernel family (included with `//! include "common.wgsl"`).
//
// Index folding: 1-D work larger than 65535 workgroups is dispatched as an
// (x, y) grid by `grid()` in src/gpu/context.ts; `flat_index` undoes it.

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg_x: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg_x;
}

// softplus(x) = log(1 + e^x), written so that neither branch overflows and
// small results keep their precision: 1 + e^x rounds off most of e^x when
// x << 0, so below -3 use the log1p series (truncation < 1e-7), and above it
// correct log(1 + e) for the rounding of 1 + e (Goldberg's log1p trick).
fn softplus(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  if (x < -15.0) { return exp(x); }
  let e = exp(x);
  if (x < -3.0) { return e * (1.0 - e * (0.5 - e * (1.0 / 3.0 - e * (0.25 - e * 0.2)))); }
  let u = 1.0 + e;
  return log(u) - ((u - 1.0) - e) / u;
}

// d softplus / dx = sigmoid(x), stable for both signs.
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
