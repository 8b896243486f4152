// pool.wgsl: 2-D max pooling over NCHW tensors, forward and backward.
//
// Forward (max_pool_forward): y[n, c, oh, ow] = max over the window
//   ih = oh * SH - PH + i (0 <= i < KH), iw = ow * SW - PW + j (0 <= j < KW),
// where positions outside the input are padding that counts as -inf (so they never win).
// argmax[n, c, oh, ow] = the flat index ((n * C + c) * H + ih) * W + iw of the winner in x;
// ties go to the first position in row-major window order, and a NaN wins (it propagates), as in PyTorch.
// Buffers: x [N, C, H, W], y and argmax [N, C, OH, OW] (argmax is u32).
// Dispatch: ceil(N*C*OH*OW / (WG * PER_THREAD)) workgroups folded by grid(); invocation l of workgroup w
// computes outputs w * WG * PER_THREAD + k * WG + l, k < PER_THREAD (fewer, longer invocations suit
// SwiftShader; see elementwise.wgsl).
//
// Backward (max_pool_backward): dx[argmax[o]] += dy[o] for every output o. Several outputs may
// share a winner when windows overlap (stride < kernel), so one invocation owns one (n, c) plane and
// scatters that plane's outputs in order: no two invocations write the same dx element, and no atomics.
// The wrapper zeroes dx first. The loop per invocation is OH*OW long (one plane), never the whole tensor.
// Buffers: dy and argmax [N, C, OH, OW], dx [N, C, H, W].
// Dispatch: one invocation per plane, ceil(N*C / WG) workgroups folded by grid().
//
// Global average pooling's backward (global_avg_pool_backward): dx[n, c, h, w] = scale * dy[n, c],
// scale = 1 / (H*W) (its forward, the plane means, is reduce.wgsl's sum_axes with that scale).
// Every dx element reads its plane's one dy value: a gather, no atomics.
// Buffers: dy [N, C], dx [N, C, H, W].
// Dispatch: ceil(N*C*H*W / (WG * PER_THREAD)) workgroups folded by grid(), PER_THREAD elements per
// invocation at strides of WG, as the forward.

//! include "common.wgsl"

override WG: u32 = 64;
override PER_THREAD: u32 = 4;

struct Params {
  outputs: u32,   // N*C*OH*OW (forward)
  planes: u32,    // N*C (backward)
  H: u32, W: u32,
  OH: u32, OW: u32,
  KH: u32, KW: u32,
  SH: u32, SW: u32,
  PH: u32, PW: u32,
  scale: f32,     // global_avg_pool_backward: 1 / (H*W)
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> argmax_in: array<u32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

// NaN test on the bits: compilers may assume floats are never NaN and fold `v != v` to false.
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// The window of output o: its maximum and where it is.
fn pool_window(o: u32) {
  let ow = o % params.OW;
  let oh = (o / params.OW) % params.OH;
  let plane = o / (params.OW * params.OH);
  let base = plane * params.H * params.W;

  // Window corner in input coordinates; signed because padding moves it above/left of the input.
  let h0 = i32(oh * params.SH) - i32(params.PH);
  let w0 = i32(ow * params.SW) - i32(params.PW);
  let h_lo = u32(max(h0, 0));
  let w_lo = u32(max(w0, 0));
  let h_hi = u32(min(h0 + i32(params.KH), i32(params.H)));
  let w_hi = u32(min(w0 + i32(params.KW), i32(params.W)));

  // Start from the first in-bounds position (padding <= kernel/2 guarantees one exists), which
  // stands in for -inf padding without writing an infinite literal; strict > keeps the first of ties.
  var best_index = base + h_lo * params.W + w_lo;
  var best = x[best_index];
  for (var ih = h_lo; ih < h_hi; ih++) {
    for (var iw = w_lo; iw < w_hi; iw++) {
      let index = base + ih * params.W + iw;
      let v = x[index];
      if (v > best || (is_nan(v) && !is_nan(best))) {  // the first NaN wins and stays
        best = v;
        best_index = index;
      }
    }
  }
  y[o] = best;
  argmax[o] = best_index;
}

@compute @workgroup_size(WG)
fn max_pool_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  for (var k = 0u; k < PER_THREAD; k++) {
    let o = first + k * WG;
    if (o >= params.outputs) { return; }
    pool_window(o);
  }
}

@compute @workgroup_size(WG)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let plane = flat_index(gid, nwg, WG);
  if (plane >= params.planes) { return; }
  let per_plane = params.OH * params.OW;
  let first = plane * per_plane;
  for (var o = first; o < first + per_plane; o++) {
    let winner = argmax_in[o];
    dx[winner] += dy[o];
  }
}

@compute @workgroup_size(WG)
fn global_avg_pool_backward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  let per_plane = params.H * params.W;
  for (var k = 0u; k < PER_THREAD; k++) {
    let o = first + k * WG;
    if (o >= params.outputs) { return; }
    dx[o] = params.scale * dy[o / per_plane];
  }
}
