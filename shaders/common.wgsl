// common.wgsl: helpers shared by every kernel family (included with `//! include "common.wgsl"`).
//
// Index folding: 1-D work larger than 65535 workgroups is dispatched as an
// (x, y) grid by `grid()` in src/gpu/context.ts; `flat_index` undoes it.

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg_x: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg_x;
}

// softplus(x) = log(1 + e^x), written so that neither branch overflows and
// small results keep their precision (log(1 + tiny) rounds to 0 in f32).
fn softplus(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  if (x < -15.0) { return exp(x); }
  return log(1.0 + exp(x));
}

// d softplus / dx = sigmoid(x), stable for both signs.
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
