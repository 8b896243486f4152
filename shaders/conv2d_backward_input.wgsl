// conv2d_backward_input.wgsl: the gradient of conv2d with respect to its input, plain and LRT,
// as an instance of the GEMM core (gemm.wgsl).
//
//   dx[n,ci,ih,iw] = sum over (co, i, j) with oh*sh - ph + i*dh = ih, ow*sw - pw + j*dw = iw of
//                    dy[n,co,oh,ow] * w[s,co,ci,i,j]
// a transposed convolution written as a gather, so every invocation owns its outputs (no atomics).
// LRT (DUAL): dx = convT(dy, w_mu) + 2 x * convT(dvar, w_sigma2), the chain rule through
// var = conv(x^2, w_sigma2) (Kingma et al. 2015, eq. 6); both in one pass.
//
// Stride phases: with stride s > 1 only every s-th kernel tap reaches a given input position, so
// the input positions are split into s_h * s_w phase classes by (ih + ph) mod s_h and
// (iw + pw) mod s_w. Class (a, b) reduces only over the taps i = a + s_h u, j = b + s_w v, and
// its output row is then oh = base_h + t - u exactly, for input row ih = first_h + s_h t (no
// division and no masked tap in the loop). Dilation > 1 (DILATED) keeps one class and tests
// divisibility per tap instead.
//
// As a GEMM, per (image, phase class) z: rows are input channels (M = Cin), columns the input
// positions of the class (N = the largest class's size; columns past a class's own size are not
// written), and k = (u, v, co), output channel fastest (K = taps_h * taps_w * Cout). A = w
// gathered at 4 input channels, B = dy gathered at 4 positions (0 where no output exists). The
// tap rows u that reach no output row for a tile's columns are left out of its range.
//
// Buffers (f32): dy, dvar [N, Cout, OH, OW]; w, w_sigma2 [S, Cout, Cin, KH, KW];
// input (LRT: x) and dx [N, Cin, H, W]. Dispatch: gemm.wgsl's geometry, mm_batches() = N * phases.

//! include "common.wgsl"
//! include "gemm.wgsl"
//! include "conv2d_params.wgsl"

override DILATED: bool = false;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> dvar: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> w_sigma2: array<f32>;
@group(0) @binding(5) var<storage, read> input: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

// One axis of a phase class: input positions first + phases * t for t < count; taps
// first_tap + phases * u for u < taps; output position base + t - u (when not DILATED).
struct Axis {
  first: u32,
  count: u32,
  first_tap: u32,
  taps: u32,
  base: i32,
};

fn axis(a: u32, phases: u32, size: u32, pad: i32, kernel: u32) -> Axis {
  if (DILATED) { return Axis(0u, size, 0u, kernel, 0); }
  // (first + pad) mod phases == a, 0 <= first < phases.
  let first = (a + phases - u32(pad) % phases) % phases;
  var count = 0u;
  if (first < size) { count = (size - first + phases - 1u) / phases; }
  var taps = 0u;
  if (a < kernel) { taps = (kernel - a + phases - 1u) / phases; }
  return Axis(first, count, a, taps, (i32(first) + pad - i32(a)) / i32(phases));
}

struct Class {
  n: u32,
  h: Axis,
  w: Axis,
};

fn class_of(z: u32) -> Class {
  let per_image = params.phases.x * params.phases.y;
  let n = z / per_image;
  let c = z - n * per_image;
  let a = c / params.phases.y;
  let b = c - a * params.phases.y;
  return Class(n, axis(a, params.phases.x, params.height, params.pad.x, params.kernel_h),
    axis(b, params.phases.y, params.width, params.pad.y, params.kernel_w));
}

fn mm_m() -> u32 { return params.cin; }
fn mm_n() -> u32 { return params.class_size.x * params.class_size.y; }
fn mm_batches() -> u32 { return params.batch * params.phases.x * params.phases.y; }

// Tap rows u that reach an output row 0 <= base + t - u < OH for some class row t of the columns.
fn mm_k_range(z: u32, col0: u32, cols: u32) -> vec2<u32> {
  let cl = class_of(z);
  let per_u = cl.w.taps * params.cout;
  if (cl.h.count == 0u || cl.w.count == 0u || cl.h.taps == 0u || per_u == 0u) { return vec2<u32>(0u, 0u); }
  if (DILATED) { return vec2<u32>(0u, cl.h.taps * per_u); }
  let t_first = min(col0 / cl.w.count, cl.h.count - 1u);
  let t_last = min((col0 + cols - 1u) / cl.w.count, cl.h.count - 1u);
  let lo = max(cl.h.base + i32(t_first) - i32(params.out_h) + 1, 0);
  let hi = min(cl.h.base + i32(t_last), i32(cl.h.taps) - 1);
  if (hi < lo) { return vec2<u32>(0u, 0u); }
  return vec2<u32>(u32(lo) * per_u, u32(hi + 1) * per_u);
}

// Offsets of w[s, 0, ci0 + l, 0, 0] for the 4 input channels (clamped).
struct MMRows {
  offsets: vec4<u32>,
};

fn mm_rows(z: u32, row0: u32) -> MMRows {
  let s = class_of(z).n / params.images_per_sample;
  let taps = params.kernel_h * params.kernel_w;
  let ci = min(vec4<u32>(row0) + CONV_LANES, vec4<u32>(params.cin - 1u));
  return MMRows(vec4<u32>(s * params.cout * params.cin * taps) + ci * taps);
}

// Columns: for 4 positions of the class, the output row and column they meet at tap (0, 0) of the
// class (base + t), or for DILATED the padded input position (ih + ph, iw + pw); whether each
// column exists in this class; and where image n's dy starts.
struct MMCols {
  row: vec4<i32>,
  col: vec4<i32>,
  exists: vec4<bool>,
  image: i32,
};

fn mm_cols(z: u32, col0: u32) -> MMCols {
  let cl = class_of(z);
  let q = vec4<u32>(col0) + CONV_LANES;
  let exists = q < vec4<u32>(cl.h.count * cl.w.count);
  let qc = min(q, vec4<u32>(max(cl.h.count * cl.w.count, 1u) - 1u));
  let t = qc / max(cl.w.count, 1u);
  let s = qc - t * max(cl.w.count, 1u);
  var row = vec4<i32>(cl.h.base) + vec4<i32>(t);
  var col = vec4<i32>(cl.w.base) + vec4<i32>(s);
  if (DILATED) {
    row = vec4<i32>(t) + vec4<i32>(params.pad.x);
    col = vec4<i32>(s) + vec4<i32>(params.pad.y);
  }
  return MMCols(row, col, exists, i32(cl.n * params.cout * params.out_h * params.out_w));
}

// k = (u * taps_w + v) * Cout + co, output channel fastest, stepped without division.
struct MMCursor {
  co: u32,
  v: u32,
  u: i32,
  taps_w: u32,
  kernel_offset: u32,  // (first_tap_h + phases.x u) * KW + first_tap_w + phases.y v: tap (i, j) in w
  tap_h: i32,          // DILATED: i * dh, else u
  tap_w: i32,          // DILATED: j * dw, else v
  channel_w: u32,      // co * Cin * KH * KW
  channel_dy: i32,     // co * OH * OW
};

fn mm_cursor(z: u32, k: u32) -> MMCursor {
  let cl = class_of(z);
  let taps_w = max(cl.w.taps, 1u);
  let co = k % params.cout;
  let uv = k / params.cout;
  let u = uv / taps_w;
  let v = uv - u * taps_w;
  let i = cl.h.first_tap + params.phases.x * u;
  let j = cl.w.first_tap + params.phases.y * v;
  var tap_h = i32(u);
  var tap_w = i32(v);
  if (DILATED) {
    tap_h = i32(i) * params.dilation.x;
    tap_w = i32(j) * params.dilation.y;
  }
  return MMCursor(co, v, i32(u), taps_w, i * params.kernel_w + j, tap_h, tap_w,
    co * params.cin * params.kernel_h * params.kernel_w, i32(co * params.out_h * params.out_w));
}

fn mm_advance(c: ptr<function, MMCursor>) {
  (*c).co += 1u;
  (*c).channel_w += params.cin * params.kernel_h * params.kernel_w;
  (*c).channel_dy += i32(params.out_h * params.out_w);
  if ((*c).co < params.cout) { return; }
  (*c).co = 0u;
  (*c).channel_w = 0u;
  (*c).channel_dy = 0;
  (*c).v += 1u;
  (*c).kernel_offset += params.phases.y;
  if (DILATED) { (*c).tap_w += params.dilation.y; } else { (*c).tap_w += 1; }
  if ((*c).v < (*c).taps_w) { return; }
  (*c).kernel_offset += params.phases.x * params.kernel_w - (*c).v * params.phases.y;
  (*c).v = 0u;
  (*c).u += 1;
  if (DILATED) {
    (*c).tap_w = 0;
    (*c).tap_h += params.dilation.x;
  } else {
    (*c).tap_w = 0;
    (*c).tap_h += 1;
  }
}

fn mm_a(r: MMRows, c: MMCursor) -> MMPair {
  let o = r.offsets + vec4<u32>(c.channel_w + c.kernel_offset);
  let v = vec4<f32>(w[o.x], w[o.y], w[o.z], w[o.w]);
  if (DUAL) { return MMPair(v, vec4<f32>(w_sigma2[o.x], w_sigma2[o.y], w_sigma2[o.z], w_sigma2[o.w])); }
  return MMPair(v, vec4<f32>(0.0));
}

fn mm_b(q: MMCols, c: MMCursor) -> MMPair {
  var oh = q.row - vec4<i32>(c.tap_h);
  var ow = q.col - vec4<i32>(c.tap_w);
  var ok = q.exists;
  if (DILATED) {
    // oh * sh = ih + ph - i * dh must hold exactly.
    let dh = oh;
    let dw = ow;
    oh = dh / vec4<i32>(params.stride.x);
    ow = dw / vec4<i32>(params.stride.y);
    ok = ok & (dh >= vec4<i32>(0)) & (dw >= vec4<i32>(0)) & (oh * params.stride.x == dh) & (ow * params.stride.y == dw);
  }
  ok = ok & (oh >= vec4<i32>(0)) & (oh < vec4<i32>(i32(params.out_h))) & (ow >= vec4<i32>(0)) & (ow < vec4<i32>(i32(params.out_w)));
  let idx = vec4<i32>(q.image + c.channel_dy) + select(vec4<i32>(0), oh * i32(params.out_w) + ow, ok);
  let v = select(vec4<f32>(0.0), vec4<f32>(dy[idx.x], dy[idx.y], dy[idx.z], dy[idx.w]), ok);
  if (DUAL) { return MMPair(v, select(vec4<f32>(0.0), vec4<f32>(dvar[idx.x], dvar[idx.y], dvar[idx.z], dvar[idx.w]), ok)); }
  return MMPair(v, vec4<f32>(0.0));
}

// dx[n, ci, position q0 + j of the class] = value[j] (+ 2 x * second[j] for LRT).
fn mm_write(z: u32, ci: u32, q0: u32, value: vec4<f32>, second: vec4<f32>) {
  let cl = class_of(z);
  let size = cl.h.count * cl.w.count;
  let hw = params.height * params.width;
  let base = (cl.n * params.cin + ci) * hw;
  for (var j = 0u; j < 4u; j++) {
    let q = q0 + j;
    if (q >= size) { return; }
    let t = q / cl.w.count;
    let s = q - t * cl.w.count;
    let o = base + (cl.h.first + params.phases.x * t) * params.width + cl.w.first + params.phases.y * s;
    if (DUAL) { dx[o] = value[j] + 2.0 * input[o] * second[j]; } else { dx[o] = value[j]; }
  }
}
