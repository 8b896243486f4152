// reduce.wgsl: every sum of bayesgpu, one kernel.
//
// x (f32, row-major) is viewed as [outer, reduce_a, kept, reduce_b] and summed over axes 1 and 3:
//   out[offset + o * kept + k] = scale * sum_a sum_b x[o, a, k, b].
// One view serves every sum: a full sum is [1, n, 1, 1]; the bias gradient of a linear layer,
// dy [S, m, n] -> [S, n], is [S, m, n, 1]; chunk sums [S, chunks, per] -> [S, per] are
// [S, chunks, per, 1]; the conv bias gradient, dy [S, N/S, Cout, OH*OW] -> [S, Cout], is
// [S, N/S, Cout, OH*OW]; KL and loss totals are full sums of per-element terms, a mean with
// scale = 1/N.
//
// sum_axes: invocation id = c * outputs + j adds chunk c of output j = o * kept + k, the rows
// a = c, c + chunks, c + 2 chunks, ... (each row the reduce_b values x[o, a, k, 0..reduce_b)),
// into four accumulators, and writes out[offset + id]. No workgroup memory and no barrier: on
// SwiftShader a barrier is a coroutine switch per SIMD group, and a long serial run per
// invocation is much faster than a tree (sums of 1e6 values: a 64-wide workgroup tree over
// 64-element runs took 22 ms, this kernel in two levels 2-4 ms). With reduce_b = 1 four rows
// go through one loop trip, else four adjacent values of a row; adjacent invocations read
// adjacent words when reduce_b = 1 (adjacent k, or adjacent chunks when kept = 1).
// src/ops/reduce.ts folds contiguous sums into one axis (kept = 1 or reduce_a = 1 become
// [outputs, values, 1, 1]) and splits long sums: a level with chunks > 1 writes [chunks, outputs]
// partial sums (offset 0, scale 1), and the next level sums those over their first axis, a view
// [1, chunks, outputs, 1]; the last level writes at `offset` of the caller's tensor and applies
// scale. Nothing is read back between levels.
//
// Rounding (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 4.2: the
// error of a sum is bounded by its tree depth): with R = ceil(reduce_a / chunks) rows per
// invocation, an accumulator receives at most m = ceil(R / 4) values (reduce_b = 1) or
// m = R * ceil(reduce_b / 4) values (reduce_b > 1): m - 1 rounded additions (adding the first to 0
// is exact), then 2 more combine the four accumulators. A level has depth m + 1, a scale != 1 adds
// one rounding, and with D the sum over the levels, |error| <= gamma_D * |scale| * sum |x| over the output's values,
// gamma_D = D u / (1 - D u), u = 2^-24. sumRoundingDepth in src/ops/reduce.ts returns D for a view;
// test/ops/reduce.test.ts checks the bound.
//
// Buffers: x [outer * reduce_a * kept * reduce_b] (read), out [>= offset + chunks * outputs] (written).
// Dispatch: ceil(chunks * outputs / WG) workgroups, folded into (x, y) by grid(); invocations past
// the end (from the folding) write nothing.

//! include "common.wgsl"

override WG: u32 = 32;

struct Params {
  outputs: u32,   // outer * kept
  kept: u32,
  reduce_a: u32,
  reduce_b: u32,
  chunks: u32,    // invocations (partial sums) per output
  offset: u32,    // out index of output 0
  scale: f32,     // factor of every result (1 for the inner levels)
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Index of x[o, 0, k, 0] for output j = o * kept + k.
fn output_base(j: u32) -> u32 {
  let o = j / params.kept;
  let k = j - o * params.kept;
  return (o * params.reduce_a * params.kept + k) * params.reduce_b;
}

@compute @workgroup_size(WG)
fn sum_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat_index(gid, nwg, WG);
  if (id >= params.outputs * params.chunks) { return; }
  let c = id / params.outputs;  // chunk: rows c, c + chunks, c + 2 chunks, ...
  let j = id - c * params.outputs;
  let B = params.reduce_b;
  let row = params.kept * B;  // from x[o, a, k, b] to x[o, a + 1, k, b]
  let step = params.chunks * row;
  var p = output_base(j) + c * row;  // x[o, c, k, 0]
  // Four accumulators: four additions in flight per loop trip and a quarter of the serial
  // rounding depth. The branch is uniform: every invocation takes the same side.
  var acc = vec4<f32>(0.0);
  if (B == 1u) {
    // Rows a, a+C, a+2C, a+3C go to accumulators x, y, z, w (C = chunks).
    var a = c;
    for (; a + 3u * params.chunks < params.reduce_a; a += 4u * params.chunks) {
      acc += vec4<f32>(x[p], x[p + step], x[p + 2u * step], x[p + 3u * step]);
      p += 4u * step;
    }
    // 0..3 rows left, one accumulator each (the others add an exact 0).
    var v = vec4<f32>(0.0);
    if (a < params.reduce_a) { v.x = x[p]; }
    if (a + params.chunks < params.reduce_a) { v.y = x[p + step]; }
    if (a + 2u * params.chunks < params.reduce_a) { v.z = x[p + 2u * step]; }
    acc += v;
  } else {
    // Elements b, b+1, b+2, b+3 of each row go to accumulators x, y, z, w.
    for (var a = c; a < params.reduce_a; a += params.chunks) {
      var b = 0u;
      for (; b + 4u <= B; b += 4u) {
        let q = p + b;
        acc += vec4<f32>(x[q], x[q + 1u], x[q + 2u], x[q + 3u]);
      }
      // B % 4 elements left, one accumulator each.
      var v = vec4<f32>(0.0);
      if (b < B) { v.x = x[p + b]; }
      if (b + 1u < B) { v.y = x[p + b + 1u]; }
      if (b + 2u < B) { v.z = x[p + b + 2u]; }
      acc += v;
      p += step;
    }
  }
  out[params.offset + id] = ((acc.x + acc.y) + (acc.z + acc.w)) * params.scale;
}

// max_axes: the same view, plan and levels as sum_axes with max in place of +:
//   out[offset + o * kept + k] = max_a max_b x[o, a, k, b]   (params.scale is not used).
// A max is exact, so the result does not depend on the order or the levels. Invocation c of output
// j starts from the first of its values, x[o, c, k, 0] (c < chunks <= reduce_a, so it exists).
// Which of two operands a NaN max returns is up to the implementation (WGSL max), so a NaN in x may
// or may not reach the result. Serves the sigma diagnostics of fit (src/train/diagnostics.ts: the
// minimum of sigma is the max of -sigma), once per epoch, so it keeps to a plain loop.
@compute @workgroup_size(WG)
fn max_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat_index(gid, nwg, WG);
  if (id >= params.outputs * params.chunks) { return; }
  let c = id / params.outputs;
  let j = id - c * params.outputs;
  let B = params.reduce_b;
  let row = params.kept * B;
  let step = params.chunks * row;
  var p = output_base(j) + c * row;
  var m = x[p];
  for (var a = c; a < params.reduce_a; a += params.chunks) {
    for (var b = 0u; b < B; b++) { m = max(m, x[p + b]); }
    p += step;
  }
  out[params.offset + id] = m;
}
