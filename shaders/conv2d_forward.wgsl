// conv2d_forward.wgsl: 2-D convolution forward (cross-correlation, NCHW, as PyTorch's conv2d),
// plain and with the local reparameterization trick, as an instance of the GEMM core (gemm.wgsl).
//
//   y[n,co,oh,ow] = b[s,co] + sum_{i,j,ci} x[n,ci, oh*sh-ph+i*dh, ow*sw-pw+j*dw] * w[s,co,ci,i,j]
//
// LRT (DUAL; Kingma, Salimans & Welling 2015, eq. 6, applied to convolutions in their section
// 2.3): the pre-activations are Gaussian with mean conv(x, w_mu) + b_mu and variance
// conv(x^2, w_sigma2) + b_sigma2, both accumulated in one pass over x; then
// y = mean + sqrt(var + 1e-16) * eps, eps = rand_normal(key, offset + index of y, stream), and the
// std is kept for the backward pass (eps is regenerated there, never stored).
//
// As a GEMM, per image z = n: rows are output channels (M = Cout), columns output positions
// (N = OH*OW), and the reduction runs over k = (i, j, ci), input channel fastest (K = KH*KW*Cin).
// A = the weights in tap-major order, w_taps[s, k, c] (tap_major_weights below writes it): the 4
// channels of a row block at one k are one vec4 load. B = x gathered at the receptive field (an
// implicit im2col; padding reads 0). Kernel rows that meet only padding for a tile's columns are
// left out of its reduction range.
//
// Buffers (f32): input [N, Cin, H, W]; w [S, Cout, Cin, KH, KW] (tap_major_weights only);
// w_taps, w_sigma2_taps [S, KH*KW*Cin, 4 ceil(Cout / 4)] as vec4; bias, bias_sigma2 [S, Cout];
// y, stddev [N, Cout, OH, OW]. Images n in [s*N/S, (s+1)*N/S) use weight sample s.
// Dispatch: gemm.wgsl's geometry with mm_batches() = N; tap_major_weights: one invocation per
// element of w_taps (`count`), grid()-folded.
//
// Names: no local or parameter shares a binding's name (wgsl_reflect ignores shadowing).

//! include "common.wgsl"
//! include "random.wgsl"
//! include "gemm.wgsl"
//! include "conv2d_params.wgsl"

const VARIANCE_FLOOR: f32 = 1e-16;

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> w_taps: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w_sigma2_taps: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> bias_sigma2: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> stddev: array<f32>;
@group(0) @binding(8) var<storage, read> w: array<f32>;
@group(0) @binding(9) var<storage, read_write> tap_major: array<f32>;

fn reduction_size() -> u32 { return params.kernel_h * params.kernel_w * params.cin; }
// Blocks of 4 channels in a tap-major weight row: ceil(Cout / 4).
fn channel_quads() -> u32 { return (params.cout + 3u) / 4u; }

fn mm_m() -> u32 { return params.cout; }
fn mm_n() -> u32 { return out_size(); }
fn mm_batches() -> u32 { return params.batch; }

// Kernel rows i with oh*sh - ph + i*dh inside [0, H) for some output row of columns col0...
fn mm_k_range(z: u32, col0: u32, cols: u32) -> vec2<u32> {
  let first_row = i32(min(col0, out_size() - 1u) / params.out_w);
  let last_row = i32(min(col0 + cols - 1u, out_size() - 1u) / params.out_w);
  // ih = oh*sh - ph + i*dh >= 0 for the last row, and < H for the first.
  let lo = max(params.pad.x - last_row * params.stride.x + params.dilation.x - 1, 0) / params.dilation.x;
  let hi = min((i32(params.height) - 1 + params.pad.x - first_row * params.stride.x) / params.dilation.x, i32(params.kernel_h) - 1);
  if (hi < lo || i32(params.height) - 1 + params.pad.x - first_row * params.stride.x < 0) { return vec2<u32>(0u, 0u); }
  let per_row = params.kernel_w * params.cin;
  return vec2<u32>(u32(lo) * per_row, u32(hi + 1) * per_row);
}

// Row block: the tap-major index of the block's 4 channels at k = 0 (a block past the last is
// clamped; its results are never stored).
struct MMRows {
  quad: u32,
};

fn mm_rows(z: u32, row0: u32) -> MMRows {
  let quads = channel_quads();
  let s = z / params.images_per_sample;
  return MMRows(s * reduction_size() * quads + min(row0 / 4u, quads - 1u));
}

// Column block: the top-left corners (oh*sh - ph, ow*sw - pw) of 4 receptive fields, and where
// image z starts.
struct MMCols {
  row: vec4<i32>,
  col: vec4<i32>,
  image: i32,
};

fn mm_cols(z: u32, col0: u32) -> MMCols {
  let p = min(vec4<u32>(col0) + CONV_LANES, vec4<u32>(out_size() - 1u));
  let oh = p / params.out_w;
  let ow = p - oh * params.out_w;
  return MMCols(vec4<i32>(oh) * params.stride.x - params.pad.x, vec4<i32>(ow) * params.stride.y - params.pad.y,
    i32(z * params.cin * params.height * params.width));
}

// k = (i * KW + j) * Cin + ci, stepped without division.
struct MMCursor {
  k: u32,
  ci: u32,
  j: u32,
  tap_h: i32,        // i * dh
  tap_w: i32,        // j * dw
  channel: i32,      // ci * H * W
};

fn mm_cursor(z: u32, k: u32) -> MMCursor {
  let ci = k % params.cin;
  let tap = k / params.cin;
  let i = tap / params.kernel_w;
  let j = tap - i * params.kernel_w;
  return MMCursor(k, ci, j, i32(i) * params.dilation.x, i32(j) * params.dilation.y, i32(ci * params.height * params.width));
}

fn mm_advance(c: ptr<function, MMCursor>) {
  (*c).k += 1u;
  (*c).ci += 1u;
  (*c).channel += i32(params.height * params.width);
  if ((*c).ci == params.cin) {
    (*c).ci = 0u;
    (*c).channel = 0;
    (*c).j += 1u;
    (*c).tap_w += params.dilation.y;
    if ((*c).j == params.kernel_w) {
      (*c).j = 0u;
      (*c).tap_w = 0;
      (*c).tap_h += params.dilation.x;
    }
  }
}

fn mm_a(r: MMRows, c: MMCursor) -> MMPair {
  let at = r.quad + c.k * channel_quads();
  if (DUAL) { return MMPair(w_taps[at], w_sigma2_taps[at]); }
  return MMPair(w_taps[at], vec4<f32>(0.0));
}

fn mm_b(q: MMCols, c: MMCursor) -> MMPair {
  let ih = q.row + vec4<i32>(c.tap_h);
  let iw = q.col + vec4<i32>(c.tap_w);
  let ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height))) & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
  // Padding lanes read element 0 of the image (in bounds whatever robustness does) and count as 0.
  let idx = vec4<i32>(q.image + c.channel) + select(vec4<i32>(0), ih * i32(params.width) + iw, ok);
  let v = select(vec4<f32>(0.0), vec4<f32>(input[idx.x], input[idx.y], input[idx.z], input[idx.w]), ok);
  return MMPair(v, v * v);
}

// y[z, co, p0 + j] = value[j] + bias (plain), or the LRT sample and its std.
fn mm_write(z: u32, co: u32, p0: u32, value: vec4<f32>, second: vec4<f32>) {
  let ohw = out_size();
  let s = z / params.images_per_sample;
  var b = 0.0;
  if (params.has_bias != 0u) { b = bias[s * params.cout + co]; }
  let row = (z * params.cout + co) * ohw;
  if (!DUAL) {
    for (var j = 0u; j < 4u; j++) {
      if (p0 + j < ohw) { y[row + p0 + j] = value[j] + b; }
    }
    return;
  }
  var b_var = 0.0;
  if (params.has_bias_sigma2 != 0u) { b_var = bias_sigma2[s * params.cout + co]; }
  let sd = sqrt(second + vec4<f32>(b_var + VARIANCE_FLOOR));
  let eps = rand_normal4(params.key, params.offset + row + p0, params.stream);
  let sample = value + vec4<f32>(b) + sd * eps;
  for (var j = 0u; j < 4u; j++) {
    if (p0 + j < ohw) {
      y[row + p0 + j] = sample[j];
      stddev[row + p0 + j] = sd[j];
    }
  }
}

// tap_major[s, k, c] = w[s, c, ci, i, j] for k = (i * KW + j) * Cin + ci and c < Cout, 0 for the
// padding channels Cout <= c < 4 ceil(Cout / 4). One invocation per element (`count`).
@compute @workgroup_size(64)
fn tap_major_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_index(gid, nwg, 64u);
  if (e >= params.count) { return; }
  let padded = 4u * channel_quads();
  let rowk = e / padded;
  let c = e - rowk * padded;
  let s = rowk / reduction_size();
  let k = rowk - s * reduction_size();
  let ci = k % params.cin;
  let tap = k / params.cin;
  var value = 0.0;
  if (c < params.cout) {
    value = w[((s * params.cout + c) * params.cin + ci) * params.kernel_h * params.kernel_w + tap];
  }
  tap_major[e] = value;
}
