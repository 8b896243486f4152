// conv2d.wgsl: 2-D convolution (cross-correlation, NCHW, as PyTorch's conv2d) forward and backward,
// plain and with the local reparameterization trick (LRT; Kingma, Salimans & Welling 2015,
// "Variational dropout and the local reparameterization trick", eq. 6; section 2.3 applies it to
// convolutions: the activations are Gaussian with mean conv(x, mu) and variance conv(x^2, sigma^2)).
//
//   y[n,co,oh,ow] = b[s,co] + sum_{ci,i,j} x[n,ci, oh*sh-ph+i*dh, ow*sw-pw+j*dw] * w[s,co,ci,i,j]
//
// Buffers (f32, row-major):
//   input (x) [N, Cin, H, W]  w, w_sigma2 [S, Cout, Cin, KH, KW]   bias, bias_sigma2 [S, Cout]
//   y, stddev, dy, dvar [N, Cout, OH, OW]     dx [N, Cin, H, W]     db [S, Cout]
//   dw, dw_sigma2 [S * chunks_per_sample, Cout, Cin*KH*KW]: per-chunk partial sums (see sum_chunks)
// S = 1 for ordinary weights. With S > 1 (S Monte Carlo weight samples batched on the GPU) images
// n in [s*N/S, (s+1)*N/S) use sample s; `images_per_sample` = N/S.
//
// Design (implicit GEMM, register tiled, no workgroup barriers in the hot kernels): every
// invocation owns a small tile of outputs held in registers, TCO (or TCI) channels by 4 spatial
// positions, one vec4 accumulator per channel. Per reduction step it gathers 4 input values (one
// per position, zero outside the padded image) and TCO weights, then does TCO vec4 multiply-adds.
// Shapes travel in `params`, so a new batch size reuses the compiled pipeline; only the tile sizes
// and workgroup size are override constants.
//
// Dispatch geometry: one invocation per tile, tiles numbered linearly (positions fastest, then
// channels, then image or chunk) and folded into an (x, y) grid by grid() / flat_index:
//   forward, lrt_forward:              N * ceil(Cout/TCO) * ceil(OH*OW/4) invocations
//   backward_input, lrt_backward_input: N * ceil(Cin/TCI) * ceil(H*W/4)
//   backward_weight, lrt_...:          S*chunks_per_sample * ceil(Cout/TCO) * ceil(Cin*KH*KW/4)
//   lrt_dvar, sum_chunks:              one invocation per element (`count`)
//   bias_grad:                         one workgroup of WG invocations per (s, co), tree reduction

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;
// Output channels per invocation (forward, backward-weight) and input channels per invocation
// (backward-input). At most MAX_TILE; the loops over them have constant trip counts once the
// pipeline is specialised, so the compiler unrolls them and keeps the accumulators in registers.
override TCO: u32 = 4;
override TCI: u32 = 4;
const MAX_TILE: u32 = 8;

// Added under the square root so that a zero variance has a finite derivative (the op's contract).
const VARIANCE_FLOOR: f32 = 1e-16;

struct Params {
  batch: u32,
  cin: u32,
  height: u32,
  width: u32,
  cout: u32,
  kernel_h: u32,
  kernel_w: u32,
  out_h: u32,
  out_w: u32,
  images_per_sample: u32,
  images_per_chunk: u32,
  chunks_per_sample: u32,
  stride: vec2<i32>,
  pad: vec2<i32>,
  dilation: vec2<i32>,
  has_bias: u32,
  has_bias_sigma2: u32,
  key: vec2<u32>,
  stream: u32,
  count: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> w_sigma2: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> bias_sigma2: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
// stddev and dvar are written by one entry (lrt_forward, lrt_dvar) and read by later ones.
@group(0) @binding(7) var<storage, read_write> stddev: array<f32>;
@group(0) @binding(8) var<storage, read> dy: array<f32>;
@group(0) @binding(9) var<storage, read_write> dvar: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;
@group(0) @binding(11) var<storage, read_write> dw: array<f32>;
@group(0) @binding(12) var<storage, read_write> dw_sigma2: array<f32>;
@group(0) @binding(13) var<storage, read> partial: array<f32>;
@group(0) @binding(14) var<storage, read_write> total: array<f32>;
@group(0) @binding(15) var<storage, read_write> db: array<f32>;

fn kernel_size() -> u32 {
  return params.cin * params.kernel_h * params.kernel_w;
}

// The input is named `input`, not `x`: wgsl_reflect ignores parameter shadowing, and random.wgsl has a
// parameter `x`, so a global `x` would look used by every entry that draws random numbers.

// Four gathered values; lanes that fall outside the image (padding) or outside the tensor read 0.
// `idx` is already clamped to a valid element where `valid` is false.
fn gather_x(idx: vec4<i32>, valid: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(input[idx.x], input[idx.y], input[idx.z], input[idx.w]), valid);
}

fn gather_dy(idx: vec4<i32>, valid: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(dy[idx.x], dy[idx.y], dy[idx.z], dy[idx.w]), valid);
}

fn gather_dvar(idx: vec4<i32>, valid: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(dvar[idx.x], dvar[idx.y], dvar[idx.z], dvar[idx.w]), valid);
}

// ------------------------------------------------------------------------------------- forward

// A forward tile: output channels co0 .. co0+TCO-1 at the 4 flattened positions p0 .. p0+3 of
// image n. Channels and positions past the end are clamped (computed, never stored).
struct OutTile {
  in_range: bool,
  n: u32,
  co0: u32,
  p0: u32,
  // Top-left corner of each position's receptive field in input coordinates (may be negative).
  origin_h: vec4<i32>,
  origin_w: vec4<i32>,
  // Offset of x[n, 0, 0, 0] and of w[s, 0, 0, 0, 0].
  x_base: i32,
  w_base: u32,
};

fn out_tile(i: u32) -> OutTile {
  let ohw = params.out_h * params.out_w;
  let p_tiles = (ohw + 3u) / 4u;
  let co_tiles = (params.cout + TCO - 1u) / TCO;
  var t: OutTile;
  let rest = i / p_tiles;
  t.p0 = (i - rest * p_tiles) * 4u;
  t.n = rest / co_tiles;
  t.co0 = (rest - t.n * co_tiles) * TCO;
  t.in_range = t.n < params.batch;
  let p = min(vec4<u32>(t.p0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(ohw - 1u));
  let oh = p / params.out_w;
  let ow = p - oh * params.out_w;
  t.origin_h = vec4<i32>(oh) * params.stride.x - params.pad.x;
  t.origin_w = vec4<i32>(ow) * params.stride.y - params.pad.y;
  t.x_base = i32(t.n * params.cin * params.height * params.width);
  t.w_base = (t.n / params.images_per_sample) * params.cout * kernel_size();
  return t;
}

// Row offset of weight channel co0 + c, clamped to the last channel for the padding lanes.
fn weight_row(t: OutTile, c: u32) -> u32 {
  return t.w_base + min(t.co0 + c, params.cout - 1u) * kernel_size();
}

// Writes value[c][j] to out[n, co0+c, p0+j] for the channels and positions that exist.
fn store_y(t: OutTile, c: u32, value: vec4<f32>) {
  let co = t.co0 + c;
  if (co >= params.cout) { return; }
  let ohw = params.out_h * params.out_w;
  let row = (t.n * params.cout + co) * ohw;
  for (var j = 0u; j < 4u; j++) {
    if (t.p0 + j < ohw) { y[row + t.p0 + j] = value[j]; }
  }
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = out_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let hw = i32(params.height * params.width);
  let taps = params.kernel_h * params.kernel_w;
  var acc: array<vec4<f32>, MAX_TILE>;
  var w_row: array<u32, MAX_TILE>;
  for (var c = 0u; c < TCO; c++) { w_row[c] = weight_row(t, c); }
  // Kernel taps outermost: the padding test depends only on the tap, not on the input channel.
  for (var i = 0u; i < params.kernel_h; i++) {
    let ih = t.origin_h + i32(i) * params.dilation.x;
    let row_ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height)));
    for (var j = 0u; j < params.kernel_w; j++) {
      let iw = t.origin_w + i32(j) * params.dilation.y;
      let valid = row_ok & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
      let idx = select(vec4<i32>(t.x_base), vec4<i32>(t.x_base) + ih * i32(params.width) + iw, valid);
      var k = i * params.kernel_w + j;
      for (var ci = 0u; ci < params.cin; ci++) {
        let xv = gather_x(idx + i32(ci) * hw, valid);
        for (var c = 0u; c < TCO; c++) { acc[c] += xv * w[w_row[c] + k]; }
        k += taps;
      }
    }
  }
  let s = t.n / params.images_per_sample;
  for (var c = 0u; c < TCO; c++) {
    var v = acc[c];
    if (params.has_bias != 0u) { v += bias[s * params.cout + min(t.co0 + c, params.cout - 1u)]; }
    store_y(t, c, v);
  }
}

// LRT forward: the same pass over x feeds two accumulators, mean from (x, w = mu) and variance from
// (x^2, w_sigma2); then y = mean + sqrt(var + 1e-16) * eps with eps = rand_normal(key, index of y,
// stream) (Kingma et al. 2015, eq. 6). stddev is kept for the backward pass; eps is regenerated there.
@compute @workgroup_size(WG)
fn lrt_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = out_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let hw = i32(params.height * params.width);
  let taps = params.kernel_h * params.kernel_w;
  var acc_mean: array<vec4<f32>, MAX_TILE>;
  var acc_var: array<vec4<f32>, MAX_TILE>;
  var w_row: array<u32, MAX_TILE>;
  for (var c = 0u; c < TCO; c++) { w_row[c] = weight_row(t, c); }
  for (var i = 0u; i < params.kernel_h; i++) {
    let ih = t.origin_h + i32(i) * params.dilation.x;
    let row_ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height)));
    for (var j = 0u; j < params.kernel_w; j++) {
      let iw = t.origin_w + i32(j) * params.dilation.y;
      let valid = row_ok & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
      let idx = select(vec4<i32>(t.x_base), vec4<i32>(t.x_base) + ih * i32(params.width) + iw, valid);
      var k = i * params.kernel_w + j;
      for (var ci = 0u; ci < params.cin; ci++) {
        let xv = gather_x(idx + i32(ci) * hw, valid);
        let xx = xv * xv;
        for (var c = 0u; c < TCO; c++) {
          acc_mean[c] += xv * w[w_row[c] + k];
          acc_var[c] += xx * w_sigma2[w_row[c] + k];
        }
        k += taps;
      }
    }
  }
  let s = t.n / params.images_per_sample;
  let ohw = params.out_h * params.out_w;
  for (var c = 0u; c < TCO; c++) {
    let co = t.co0 + c;
    if (co >= params.cout) { break; }
    var mean = acc_mean[c];
    var variance = acc_var[c];
    if (params.has_bias != 0u) { mean += bias[s * params.cout + co]; }
    if (params.has_bias_sigma2 != 0u) { variance += bias_sigma2[s * params.cout + co]; }
    let sd = sqrt(variance + VARIANCE_FLOOR);
    let row = (t.n * params.cout + co) * ohw;
    for (var j = 0u; j < 4u; j++) {
      let p = t.p0 + j;
      if (p < ohw) {
        let eps = rand_normal(params.key, row + p, params.stream);
        y[row + p] = mean[j] + sd[j] * eps;
        stddev[row + p] = sd[j];
      }
    }
  }
}

// dVar = dL/dvariance = dy * eps / (2 std), with eps regenerated from the key (d sqrt(v)/dv = 1/(2 sqrt v)).
@compute @workgroup_size(WG)
fn lrt_dvar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.count) { return; }
  dvar[i] = dy[i] * rand_normal(params.key, i, params.stream) / (2.0 * stddev[i]);
}

// ------------------------------------------------------------------------------ backward-input

// dx[n,ci,ih,iw] = sum_{co,i,j} dy[n,co,oh,ow] * w[s,co,ci,i,j] over the taps with
// oh*sh - ph + i*dh = ih (and likewise for w): a transposed convolution written as a gather, so
// every invocation owns its outputs and no atomics are needed.
// A tile: input channels ci0 .. ci0+TCI-1 at the 4 flattened positions q0 .. q0+3 of image n.
struct InTile {
  in_range: bool,
  n: u32,
  ci0: u32,
  q0: u32,
  // Input coordinates plus padding: oh*sh = ih + ph - i*dh.
  shifted_h: vec4<i32>,
  shifted_w: vec4<i32>,
  dy_base: i32,
  w_base: u32,
};

fn in_tile(i: u32) -> InTile {
  let hw = params.height * params.width;
  let q_tiles = (hw + 3u) / 4u;
  let ci_tiles = (params.cin + TCI - 1u) / TCI;
  var t: InTile;
  let rest = i / q_tiles;
  t.q0 = (i - rest * q_tiles) * 4u;
  t.n = rest / ci_tiles;
  t.ci0 = (rest - t.n * ci_tiles) * TCI;
  t.in_range = t.n < params.batch;
  let q = min(vec4<u32>(t.q0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(hw - 1u));
  let ih = q / params.width;
  let iw = q - ih * params.width;
  t.shifted_h = vec4<i32>(ih) + params.pad.x;
  t.shifted_w = vec4<i32>(iw) + params.pad.y;
  t.dy_base = i32(t.n * params.cout * params.out_h * params.out_w);
  t.w_base = (t.n / params.images_per_sample) * params.cout * kernel_size();
  return t;
}

// Output position along one axis reached from `shifted` through tap offset `tap` (= i*dh):
// valid when shifted - tap is a non-negative multiple of the stride below `size`.
struct AxisHit {
  o: vec4<i32>,
  ok: vec4<bool>,
};

fn axis_hit(shifted: vec4<i32>, tap: i32, stride: i32, size: u32) -> AxisHit {
  let d = shifted - vec4<i32>(tap);
  let o = d / vec4<i32>(stride);
  return AxisHit(o, (d >= vec4<i32>(0)) & (o * stride == d) & (o < vec4<i32>(i32(size))));
}

fn store_dx(t: InTile, c: u32, value: vec4<f32>) {
  let ci = t.ci0 + c;
  if (ci >= params.cin) { return; }
  let hw = params.height * params.width;
  let row = (t.n * params.cin + ci) * hw;
  for (var j = 0u; j < 4u; j++) {
    if (t.q0 + j < hw) { dx[row + t.q0 + j] = value[j]; }
  }
}

@compute @workgroup_size(WG)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = in_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let ohw = i32(params.out_h * params.out_w);
  let ksize = kernel_size();
  let taps = params.kernel_h * params.kernel_w;
  var acc: array<vec4<f32>, MAX_TILE>;
  var w_col: array<u32, MAX_TILE>;
  for (var c = 0u; c < TCI; c++) { w_col[c] = t.w_base + min(t.ci0 + c, params.cin - 1u) * taps; }
  for (var i = 0u; i < params.kernel_h; i++) {
    let hh = axis_hit(t.shifted_h, i32(i) * params.dilation.x, params.stride.x, params.out_h);
    for (var j = 0u; j < params.kernel_w; j++) {
      let hv = axis_hit(t.shifted_w, i32(j) * params.dilation.y, params.stride.y, params.out_w);
      let valid = hh.ok & hv.ok;
      let idx = select(vec4<i32>(t.dy_base), vec4<i32>(t.dy_base) + hh.o * i32(params.out_w) + hv.o, valid);
      var k = i * params.kernel_w + j;
      for (var co = 0u; co < params.cout; co++) {
        let g = gather_dy(idx + i32(co) * ohw, valid);
        for (var c = 0u; c < TCI; c++) { acc[c] += g * w[w_col[c] + k]; }
        k += ksize;
      }
    }
  }
  for (var c = 0u; c < TCI; c++) { store_dx(t, c, acc[c]); }
}

// LRT: dx = convT(dy, w_mu) + 2 x * convT(dvar, w_sigma2), the chain rule through
// variance = conv(x^2, w_sigma2) (d x^2 / dx = 2x). Both transposed convolutions share one pass.
@compute @workgroup_size(WG)
fn lrt_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = in_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let ohw = i32(params.out_h * params.out_w);
  let ksize = kernel_size();
  let taps = params.kernel_h * params.kernel_w;
  var acc_mean: array<vec4<f32>, MAX_TILE>;
  var acc_var: array<vec4<f32>, MAX_TILE>;
  var w_col: array<u32, MAX_TILE>;
  for (var c = 0u; c < TCI; c++) { w_col[c] = t.w_base + min(t.ci0 + c, params.cin - 1u) * taps; }
  for (var i = 0u; i < params.kernel_h; i++) {
    let hh = axis_hit(t.shifted_h, i32(i) * params.dilation.x, params.stride.x, params.out_h);
    for (var j = 0u; j < params.kernel_w; j++) {
      let hv = axis_hit(t.shifted_w, i32(j) * params.dilation.y, params.stride.y, params.out_w);
      let valid = hh.ok & hv.ok;
      let idx = select(vec4<i32>(t.dy_base), vec4<i32>(t.dy_base) + hh.o * i32(params.out_w) + hv.o, valid);
      var k = i * params.kernel_w + j;
      for (var co = 0u; co < params.cout; co++) {
        let g_mean = gather_dy(idx + i32(co) * ohw, valid);
        let g_var = gather_dvar(idx + i32(co) * ohw, valid);
        for (var c = 0u; c < TCI; c++) {
          acc_mean[c] += g_mean * w[w_col[c] + k];
          acc_var[c] += g_var * w_sigma2[w_col[c] + k];
        }
        k += ksize;
      }
    }
  }
  let hw = params.height * params.width;
  for (var c = 0u; c < TCI; c++) {
    let ci = min(t.ci0 + c, params.cin - 1u);
    let row = (t.n * params.cin + ci) * hw;
    var xv: vec4<f32>;
    for (var j = 0u; j < 4u; j++) { xv[j] = input[row + min(t.q0 + j, hw - 1u)]; }
    store_dx(t, c, acc_mean[c] + 2.0 * xv * acc_var[c]);
  }
}

// ----------------------------------------------------------------------------- backward-weight

// dw[s,co,ci,i,j] = sum over the images of sample s and all output positions of
// dy[n,co,oh,ow] * x[n,ci, oh*sh-ph+i*dh, ow*sw-pw+j*dw].
// The images of a sample are split into chunks_per_sample chunks of images_per_chunk images so
// that small weight tensors still give enough parallel work; each chunk writes its partial sum
// (no atomics) and sum_chunks adds them (skipped when there is one chunk per sample).
// A tile: output channels co0 .. co0+TCO-1 by 4 consecutive flattened (ci, i, j) entries k0 .. k0+3.
struct WeightTile {
  in_range: bool,
  chunk: u32,
  co0: u32,
  k0: u32,
  n_begin: u32,
  n_end: u32,
  // Per entry: offset of x[0, ci, 0, 0] and the tap offsets i*dh - ph, j*dw - pw.
  x_off: vec4<i32>,
  tap_h: vec4<i32>,
  tap_w: vec4<i32>,
};

fn weight_tile(i: u32) -> WeightTile {
  let ksize = kernel_size();
  let k_tiles = (ksize + 3u) / 4u;
  let co_tiles = (params.cout + TCO - 1u) / TCO;
  var t: WeightTile;
  let rest = i / k_tiles;
  t.k0 = (i - rest * k_tiles) * 4u;
  t.chunk = rest / co_tiles;
  t.co0 = (rest - t.chunk * co_tiles) * TCO;
  let samples = params.batch / params.images_per_sample;
  t.in_range = t.chunk < samples * params.chunks_per_sample;
  let s = t.chunk / params.chunks_per_sample;
  let sample_end = (s + 1u) * params.images_per_sample;
  t.n_begin = min(s * params.images_per_sample + (t.chunk - s * params.chunks_per_sample) * params.images_per_chunk, sample_end);
  t.n_end = min(t.n_begin + params.images_per_chunk, sample_end);
  let taps = params.kernel_h * params.kernel_w;
  let k = min(vec4<u32>(t.k0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(ksize - 1u));
  let ci = k / taps;
  let r = k - ci * taps;
  let kh = r / params.kernel_w;
  let kw = r - kh * params.kernel_w;
  t.x_off = vec4<i32>(ci * params.height * params.width);
  t.tap_h = vec4<i32>(kh) * params.dilation.x - params.pad.x;
  t.tap_w = vec4<i32>(kw) * params.dilation.y - params.pad.y;
  return t;
}

// Offset of dw[chunk, co0 + c, k0] and how many of the tile's 4 entries exist (0 for padding channels).
fn dw_row(t: WeightTile, c: u32) -> u32 {
  return (t.chunk * params.cout + t.co0 + c) * kernel_size() + t.k0;
}

fn dw_entries(t: WeightTile, c: u32) -> u32 {
  return select(min(4u, kernel_size() - t.k0), 0u, t.co0 + c >= params.cout);
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = weight_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let ohw = params.out_h * params.out_w;
  let chw = i32(params.cin * params.height * params.width);
  var acc: array<vec4<f32>, MAX_TILE>;
  var dy_row: array<u32, MAX_TILE>;
  for (var n = t.n_begin; n < t.n_end; n++) {
    for (var c = 0u; c < TCO; c++) { dy_row[c] = (n * params.cout + min(t.co0 + c, params.cout - 1u)) * ohw; }
    let x_base = vec4<i32>(i32(n) * chw) + t.x_off;
    var p = 0u;
    for (var oh = 0u; oh < params.out_h; oh++) {
      let ih = vec4<i32>(i32(oh) * params.stride.x) + t.tap_h;
      let row_ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height)));
      let row = x_base + ih * i32(params.width);
      for (var ow = 0u; ow < params.out_w; ow++) {
        let iw = vec4<i32>(i32(ow) * params.stride.y) + t.tap_w;
        let valid = row_ok & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
        let xv = gather_x(select(x_base, row + iw, valid), valid);
        for (var c = 0u; c < TCO; c++) { acc[c] += xv * dy[dy_row[c] + p]; }
        p++;
      }
    }
  }
  for (var c = 0u; c < TCO; c++) {
    for (var j = 0u; j < dw_entries(t, c); j++) { dw[dw_row(t, c) + j] = acc[c][j]; }
  }
}

// LRT: dw_mu = corr(x, dy) and dw_sigma2 = corr(x^2, dvar) in one pass over x.
@compute @workgroup_size(WG)
fn lrt_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = weight_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let ohw = params.out_h * params.out_w;
  let chw = i32(params.cin * params.height * params.width);
  var acc_mean: array<vec4<f32>, MAX_TILE>;
  var acc_var: array<vec4<f32>, MAX_TILE>;
  var dy_row: array<u32, MAX_TILE>;
  for (var n = t.n_begin; n < t.n_end; n++) {
    for (var c = 0u; c < TCO; c++) { dy_row[c] = (n * params.cout + min(t.co0 + c, params.cout - 1u)) * ohw; }
    let x_base = vec4<i32>(i32(n) * chw) + t.x_off;
    var p = 0u;
    for (var oh = 0u; oh < params.out_h; oh++) {
      let ih = vec4<i32>(i32(oh) * params.stride.x) + t.tap_h;
      let row_ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height)));
      let row = x_base + ih * i32(params.width);
      for (var ow = 0u; ow < params.out_w; ow++) {
        let iw = vec4<i32>(i32(ow) * params.stride.y) + t.tap_w;
        let valid = row_ok & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
        let xv = gather_x(select(x_base, row + iw, valid), valid);
        let xx = xv * xv;
        for (var c = 0u; c < TCO; c++) {
          acc_mean[c] += xv * dy[dy_row[c] + p];
          acc_var[c] += xx * dvar[dy_row[c] + p];
        }
        p++;
      }
    }
  }
  for (var c = 0u; c < TCO; c++) {
    for (var j = 0u; j < dw_entries(t, c); j++) {
      dw[dw_row(t, c) + j] = acc_mean[c][j];
      dw_sigma2[dw_row(t, c) + j] = acc_var[c][j];
    }
  }
}

// total[s, m] = sum_{c < chunks_per_sample} partial[s * chunks_per_sample + c, m] for m < count / S.
@compute @workgroup_size(WG)
fn sum_chunks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.count) { return; }
  let per_sample = params.count / (params.batch / params.images_per_sample);
  let s = i / per_sample;
  let m = i - s * per_sample;
  var sum = 0.0;
  for (var c = 0u; c < params.chunks_per_sample; c++) {
    sum += partial[(s * params.chunks_per_sample + c) * per_sample + m];
  }
  total[i] = sum;
}

// ----------------------------------------------------------------------------------- bias grad

var<workgroup> bias_sums: array<f32, WG>;

// db[s, co] = sum over the images of sample s and all positions of dy[n, co, oh, ow].
// One workgroup per (s, co), workgroup index = s * Cout + co; a strided sum then a tree reduction.
@compute @workgroup_size(WG)
fn bias_grad(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let slot = wid.x + wid.y * nwg.x;
  let s = slot / params.cout;
  let co = slot - s * params.cout;
  let ohw = params.out_h * params.out_w;
  let count = params.images_per_sample * ohw;
  var sum = 0.0;
  // Every invocation of the workgroup takes the same branch (slot is uniform), as barriers require.
  if (s < params.batch / params.images_per_sample) {
    for (var e = lid; e < count; e += WG) {
      let n_local = e / ohw;
      let p = e - n_local * ohw;
      sum += dy[((s * params.images_per_sample + n_local) * params.cout + co) * ohw + p];
    }
  }
  bias_sums[lid] = sum;
  for (var step = WG / 2u; step > 0u; step /= 2u) {
    workgroupBarrier();
    if (lid < step) { bias_sums[lid] += bias_sums[lid + step]; }
  }
  if (lid == 0u && s < params.batch / params.images_per_sample) { db[slot] = bias_sums[0]; }
}
