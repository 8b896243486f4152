// matmul.wgsl: matrix products and dense (linear) layers, plain and Bayesian, as instances of
// the GEMM core (gemm.wgsl). This file only says where the operands are and what is written.
//
// Every product is C = op(A) @ op(B), batched over z < batches:
//   op(A) is M x K, stored row-major as [M, K], or as [K, M] when TRANS_A;
//   op(B) is K x N, stored row-major as [K, N], or as [N, K] when TRANS_B;
//   C is M x N, row-major [M, N].
// Batch entry z starts at z * batch_a / batch_b / batch_c elements of A / B / C (a stride of 0
// shares the operand), which is how a linear layer with S per-sample weights [S, out, in] runs as
// one dispatch. MODE picks the op (Kingma et al. 2015, eq. 6 for the local reparameterization):
//   0  C = op(A) @ op(B) (+ bias[z * batch_bias + col] when has_bias): matmul, linear forward
//      (A = x, B = w, TRANS_B), linear backward-input (A = dy, B = w), backward-weight
//      (A = dy, TRANS_A, B = x)
//   1  LRT forward, DUAL: mean = x @ wMu^T + bMu, var = x^2 @ wSigma2^T + bSigma2 (a = x, b = wMu,
//      b2 = wSigma2, TRANS_B); c = mean + sqrt(var + 1e-16) * eps, c2 = that std, with
//      eps = rand_normal(key, offset + index of c, stream)
//   2  LRT backward-input, DUAL: c = dy @ wMu + 2 x * (dVar @ wSigma2) (a = dy, a2 = dVar,
//      b = wMu, b2 = wSigma2, layer_x = x)
//   3  LRT backward-weight, DUAL: c = dy^T @ x, c2 = dVar^T @ x^2 (a = dy, a2 = dVar, TRANS_A, b = x)
// Bindings a mode does not read are bound to placeholders by the wrapper (Kernel.unbound).
// Dispatch: see gemm.wgsl; M, N, batches are params.m, params.n, params.batches.
//
// Names: no local or parameter shares a binding's name (wgsl_reflect ignores shadowing), so the
// layer input of mode 2 is `layer_x`, not `x`.

//! include "common.wgsl"
//! include "random.wgsl"
//! include "gemm.wgsl"

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override MODE: u32 = 0u;

const VAR_FLOOR: f32 = 1e-16;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batches: u32,
  batch_a: u32,     // elements between batch entries of A (0: shared)
  batch_b: u32,
  batch_c: u32,
  batch_bias: u32,
  has_bias: u32,    // mode 0 and 1: bias is given
  has_bias2: u32,   // mode 1: bias2 (the bias variance) is given
  key: vec2<u32>,   // mode 1: Philox key (seed, step) of the LRT noise
  stream: u32,
  offset: u32,      // counter index of the LRT noise of output 0 (RandomKey.offset)
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> a2: array<f32>;
@group(0) @binding(6) var<storage, read> b2: array<f32>;
@group(0) @binding(7) var<storage, read_write> c2: array<f32>;
@group(0) @binding(8) var<storage, read> bias2: array<f32>;
@group(0) @binding(9) var<storage, read> layer_x: array<f32>;

fn mm_m() -> u32 { return params.m; }
fn mm_n() -> u32 { return params.n; }
fn mm_batches() -> u32 { return params.batches; }
fn mm_k_range(z: u32, col0: u32, cols: u32) -> vec2<u32> { return vec2<u32>(0u, params.k); }

const MM_LANES = vec4<u32>(0u, 1u, 2u, 3u);

// Offsets of op(A)[row0 + i, 0] (rows clamped to M - 1) and the step from k to k + 1.
struct MMRows {
  offsets: vec4<u32>,
  step: u32,
};

fn mm_rows(z: u32, row0: u32) -> MMRows {
  let rows = min(vec4<u32>(row0) + MM_LANES, vec4<u32>(params.m - 1u));
  return MMRows(vec4<u32>(z * params.batch_a) + select(rows * params.k, rows, TRANS_A), select(1u, params.m, TRANS_A));
}

// Offsets of op(B)[0, col0 + j] (columns clamped to N - 1) and the step from k to k + 1.
struct MMCols {
  offsets: vec4<u32>,
  step: u32,
};

fn mm_cols(z: u32, col0: u32) -> MMCols {
  let cols = min(vec4<u32>(col0) + MM_LANES, vec4<u32>(params.n - 1u));
  return MMCols(vec4<u32>(z * params.batch_b) + select(cols, cols * params.k, TRANS_B), select(params.n, 1u, TRANS_B));
}

struct MMCursor {
  k: u32,
};

fn mm_cursor(z: u32, k: u32) -> MMCursor { return MMCursor(k); }
fn mm_advance(cursor: ptr<function, MMCursor>) { (*cursor).k += 1u; }

fn mm_a(r: MMRows, cursor: MMCursor) -> MMPair {
  let o = r.offsets + vec4<u32>(cursor.k * r.step);
  let v = vec4<f32>(a[o.x], a[o.y], a[o.z], a[o.w]);
  if (MODE == 1u) { return MMPair(v, v * v); }
  if (MODE >= 2u) { return MMPair(v, vec4<f32>(a2[o.x], a2[o.y], a2[o.z], a2[o.w])); }
  return MMPair(v, vec4<f32>(0.0));
}

fn mm_b(q: MMCols, cursor: MMCursor) -> MMPair {
  let o = q.offsets + vec4<u32>(cursor.k * q.step);
  let v = vec4<f32>(b[o.x], b[o.y], b[o.z], b[o.w]);
  if (MODE == 1u || MODE == 2u) { return MMPair(v, vec4<f32>(b2[o.x], b2[o.y], b2[o.z], b2[o.w])); }
  if (MODE == 3u) { return MMPair(v, v * v); }
  return MMPair(v, vec4<f32>(0.0));
}

fn mm_write(z: u32, row: u32, col0: u32, value: vec4<f32>, second: vec4<f32>) {
  let base = z * params.batch_c + row * params.n;
  // The LRT noise of the 4 columns: one Philox call when they are 4-aligned (random.wgsl).
  var eps = vec4<f32>(0.0);
  if (MODE == 1u) { eps = rand_normal4(params.key, params.offset + base + col0, params.stream); }
  for (var j = 0u; j < 4u; j++) {
    let col = col0 + j;
    if (col >= params.n) { return; }
    let o = base + col;
    var v = value[j];
    if (MODE <= 1u && params.has_bias != 0u) { v += bias[z * params.batch_bias + col]; }
    if (MODE == 1u) {
      var v2 = second[j];
      if (params.has_bias2 != 0u) { v2 += bias2[col]; }
      let sd = sqrt(v2 + VAR_FLOOR);
      c[o] = v + sd * eps[j];
      c2[o] = sd;
    } else if (MODE == 2u) {
      c[o] = v + 2.0 * layer_x[o] * second[j];
    } else {
      c[o] = v;
      if (MODE == 3u) { c2[o] = second[j]; }
    }
  }
}
