// conv2d_backward_weight.wgsl: the gradient of conv2d with respect to its weights, plain and LRT,
// as an instance of the GEMM core (gemm.wgsl).
//
//   dw[s,co,ci,i,j] = sum over the images n of sample s and all output positions (oh, ow) of
//                     dy[n,co,oh,ow] * x[n,ci, oh*sh-ph+i*dh, ow*sw-pw+j*dw]
// LRT (DUAL): dw_mu = corr(x, dy) and dw_sigma2 = corr(x^2, dvar) in one pass over x (Kingma et
// al. 2015, eq. 6: var = conv(x^2, w_sigma2)).
//
// As a GEMM: rows are output channels (M = Cout), columns weight entries e = (ci, i, j)
// (N = Cin*KH*KW), and the reduction runs over (n, oh, ow). A small weight tensor gives few
// tiles, so each sample's images are split into chunks (split-K): batch entry z is chunk z, which
// reduces over images [n_begin, n_end) and writes its partial sum to dw[z]; src/ops/conv2d.ts adds
// the chunks with the shared reduction (reduce.wgsl) when there is more than one per sample.
// A = dy gathered at 4 output channels, B = x gathered at 4 weight entries (0 in the padding).
//
// Buffers (f32): input [N, Cin, H, W]; dy, dvar [N, Cout, OH, OW];
// dw, dw_sigma2 [S * chunks_per_sample, Cout, Cin*KH*KW]. Dispatch: gemm.wgsl's geometry with
// mm_batches() = S * chunks_per_sample.

//! include "common.wgsl"
//! include "gemm.wgsl"
//! include "conv2d_params.wgsl"

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> dvar: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> dw_sigma2: array<f32>;

fn entries() -> u32 { return params.cin * params.kernel_h * params.kernel_w; }

fn mm_m() -> u32 { return params.cout; }
fn mm_n() -> u32 { return entries(); }
fn mm_batches() -> u32 { return (params.batch / params.images_per_sample) * params.chunks_per_sample; }

// Chunk z covers images [n_begin, n_end) of its sample: k runs over n * OH*OW + position.
fn mm_k_range(z: u32, col0: u32, cols: u32) -> vec2<u32> {
  let s = z / params.chunks_per_sample;
  let sample_end = (s + 1u) * params.images_per_sample;
  let n_begin = min(s * params.images_per_sample + (z - s * params.chunks_per_sample) * params.images_per_chunk, sample_end);
  let n_end = min(n_begin + params.images_per_chunk, sample_end);
  return vec2<u32>(n_begin * out_size(), n_end * out_size());
}

// Offsets of dy[0, co0 + l, 0, 0] for the 4 output channels (clamped).
struct MMRows {
  offsets: vec4<u32>,
};

fn mm_rows(z: u32, row0: u32) -> MMRows {
  return MMRows(min(vec4<u32>(row0) + CONV_LANES, vec4<u32>(params.cout - 1u)) * out_size());
}

// 4 weight entries (ci, i, j): the offset of x[0, ci, 0, 0] and the tap offsets i*dh - ph, j*dw - pw.
struct MMCols {
  channel: vec4<i32>,
  tap_h: vec4<i32>,
  tap_w: vec4<i32>,
};

fn mm_cols(z: u32, col0: u32) -> MMCols {
  let taps = params.kernel_h * params.kernel_w;
  let e = min(vec4<u32>(col0) + CONV_LANES, vec4<u32>(entries() - 1u));
  let ci = e / taps;
  let r = e - ci * taps;
  let i = r / params.kernel_w;
  let j = r - i * params.kernel_w;
  return MMCols(vec4<i32>(ci * params.height * params.width), vec4<i32>(i) * params.dilation.x - params.pad.x,
    vec4<i32>(j) * params.dilation.y - params.pad.y);
}

// k = n * OH*OW + oh * OW + ow, stepped without division.
struct MMCursor {
  ow: u32,
  oh: u32,
  in_h: i32,       // oh * sh
  in_w: i32,       // ow * sw
  dy_offset: u32,  // n * Cout * OH*OW + oh * OW + ow
  image: i32,      // n * Cin * H * W
};

fn mm_cursor(z: u32, k: u32) -> MMCursor {
  let ohw = out_size();
  let n = k / ohw;
  let p = k - n * ohw;
  let oh = p / params.out_w;
  let ow = p - oh * params.out_w;
  return MMCursor(ow, oh, i32(oh) * params.stride.x, i32(ow) * params.stride.y, n * params.cout * ohw + p,
    i32(n * params.cin * params.height * params.width));
}

fn mm_advance(c: ptr<function, MMCursor>) {
  (*c).dy_offset += 1u;
  (*c).ow += 1u;
  (*c).in_w += params.stride.y;
  if ((*c).ow < params.out_w) { return; }
  (*c).ow = 0u;
  (*c).in_w = 0;
  (*c).oh += 1u;
  (*c).in_h += params.stride.x;
  if ((*c).oh < params.out_h) { return; }
  (*c).oh = 0u;
  (*c).in_h = 0;
  (*c).dy_offset += (params.cout - 1u) * out_size();
  (*c).image += i32(params.cin * params.height * params.width);
}

fn mm_a(r: MMRows, c: MMCursor) -> MMPair {
  let o = r.offsets + vec4<u32>(c.dy_offset);
  let v = vec4<f32>(dy[o.x], dy[o.y], dy[o.z], dy[o.w]);
  if (DUAL) { return MMPair(v, vec4<f32>(dvar[o.x], dvar[o.y], dvar[o.z], dvar[o.w])); }
  return MMPair(v, vec4<f32>(0.0));
}

fn mm_b(q: MMCols, c: MMCursor) -> MMPair {
  let ih = vec4<i32>(c.in_h) + q.tap_h;
  let iw = vec4<i32>(c.in_w) + q.tap_w;
  let ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height))) & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
  let idx = vec4<i32>(c.image) + q.channel + select(vec4<i32>(0), ih * i32(params.width) + iw, ok);
  let v = select(vec4<f32>(0.0), vec4<f32>(input[idx.x], input[idx.y], input[idx.z], input[idx.w]), ok);
  return MMPair(v, v * v);
}

// dw[z, co, e0 + j] = value[j] (and dw_sigma2 for LRT).
fn mm_write(z: u32, co: u32, e0: u32, value: vec4<f32>, second: vec4<f32>) {
  let base = (z * params.cout + co) * entries();
  for (var j = 0u; j < 4u; j++) {
    if (e0 + j >= entries()) { return; }
    dw[base + e0 + j] = value[j];
    if (DUAL) { dw_sigma2[base + e0 + j] = second[j]; }
  }
}
