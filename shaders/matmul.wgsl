// matmul.wgsl: register-tiled matrix products for dense (linear) layers, forward and
// backward, plain and Bayesian (local reparameterization, Kingma et al. 2015).
//
// Every product here is C = op(A) @ op(B), batched over z:
//   op(A) is M x K, stored row-major as [M, K], or as [K, M] when TRANS_A;
//   op(B) is K x N, stored row-major as [K, N], or as [N, K] when TRANS_B;
//   C is M x N, row-major [M, N].
// Batch entry z (workgroup id z) starts at z * batch_a / batch_b / batch_c elements
// of A / B / C (a stride of 0 shares the operand across the batch). This is how a
// linear layer with S per-sample weights [S, out, in] runs as one dispatch.
//
// Tiling: each invocation owns a 4 x 4 tile of C held in a mat4x4 accumulator
// (column j = output column col0 + j, entry i = output row row0 + i). Per step of four
// k it gathers a 4 x 4 block of op(A) and of op(B) as four vec4s each (each vec4 from
// four scalar loads, consecutive where the storage is contiguous along that dimension;
// the buffers stay array<f32> so that any shape works) and adds their product: 32
// loads for 64 multiply-adds, all in registers. There is no workgroup memory and no
// barrier: on SwiftShader (CPU Vulkan) barriers cost more than they save. The 4 x 4
// invocation tile is fixed by the mat4x4 form; the workgroup tile, (4 WG_Y) x (4 WG_X)
// outputs, is set by the override constants.
// Edges: rows and columns past M / N are clamped to the last one for loading (always
// in bounds, no branch in the loop) and masked at the store; the K % 4 tail is a
// separate rank-1 loop, so the main loop carries no guard either.
//
// Dispatch: workgroup (WG_X, WG_Y, 1) invocations, each owning one 4 x 4 tile;
// workgroups (min(ceil(ceil(N/4)/WG_X), 65535), min(ceil(ceil(M/4)/WG_Y), 65535), batch).
// Sizes beyond 65535 workgroups are covered by grid-stride loops over the tiles.
// Shapes are uniforms: a new batch size reuses the compiled pipeline.

//! include "common.wgsl"
//! include "random.wgsl"

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Workgroup size of the one-dimensional kernels (lrt_dvar, sum_rows).
override WG: u32 = 64;

struct Params {
  key: vec2<u32>,   // Philox key (seed, step) of the LRT noise; unused elsewhere
  stream: u32,      // Philox stream of the LRT noise
  offset: u32,      // counter index of the LRT noise of output 0 (RandomKey.offset)
  m: u32,
  n: u32,
  k: u32,
  batch_a: u32,     // elements between batch entries of A (0: shared)
  batch_b: u32,
  batch_c: u32,
  batch_bias: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
// Second operands and outputs of the two-accumulator (LRT) kernels.
@group(0) @binding(5) var<storage, read> a2: array<f32>;
@group(0) @binding(6) var<storage, read> b2: array<f32>;
@group(0) @binding(7) var<storage, read_write> c2: array<f32>;
@group(0) @binding(8) var<storage, read> bias2: array<f32>;
// Layer input read by the LRT input-gradient epilogue, shaped like C. Not named `x`:
// the reflection that derives bind group layouts ignores shadowing, and random.wgsl
// has a parameter `x`, so every entry drawing random numbers would seem to use it.
// (Its parameters a, b and local c shadow ours the same way, harmlessly: every entry
// that draws random numbers binds a, b and c anyway.)
@group(0) @binding(9) var<storage, read> layer_x: array<f32>;

// Where one invocation's tile reads and writes.
struct Tile {
  row0: u32,
  col0: u32,
  z: u32,
  a_rows: vec4<u32>,  // offset of op(A)[row0 + i, 0] for i = 0..3 (rows clamped to M - 1)
  a_step: u32,        // offset from op(A)[r, k] to op(A)[r, k + 1]
  b_cols: vec4<u32>,  // offset of op(B)[0, col0 + j] for j = 0..3 (columns clamped to N - 1)
  b_step: u32,        // offset from op(B)[k, c] to op(B)[k + 1, c]
};

fn tile_at(tile_col: u32, tile_row: u32, z: u32) -> Tile {
  let m = params.m;
  let n = params.n;
  let k = params.k;
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let rows = min(vec4<u32>(tile_row * 4u) + lane, vec4<u32>(m - 1u));
  let cols = min(vec4<u32>(tile_col * 4u) + lane, vec4<u32>(n - 1u));
  var t: Tile;
  t.row0 = tile_row * 4u;
  t.col0 = tile_col * 4u;
  t.z = z;
  t.a_rows = vec4<u32>(z * params.batch_a) + select(rows * k, rows, TRANS_A);
  t.a_step = select(1u, m, TRANS_A);
  t.b_cols = vec4<u32>(z * params.batch_b) + select(cols, cols * k, TRANS_B);
  t.b_step = select(n, 1u, TRANS_B);
  return t;
}

// op(A)[row0 + i, k] for i = 0..3, and the same for A2 (which has A's layout).
fn a_at(t: Tile, k: u32) -> vec4<f32> {
  let o = t.a_rows + vec4<u32>(k * t.a_step);
  return vec4<f32>(a[o.x], a[o.y], a[o.z], a[o.w]);
}
fn a2_at(t: Tile, k: u32) -> vec4<f32> {
  let o = t.a_rows + vec4<u32>(k * t.a_step);
  return vec4<f32>(a2[o.x], a2[o.y], a2[o.z], a2[o.w]);
}
// op(B)[k, col0 + j] for j = 0..3, and the same for B2.
fn b_at(t: Tile, k: u32) -> vec4<f32> {
  let o = t.b_cols + vec4<u32>(k * t.b_step);
  return vec4<f32>(b[o.x], b[o.y], b[o.z], b[o.w]);
}
fn b2_at(t: Tile, k: u32) -> vec4<f32> {
  let o = t.b_cols + vec4<u32>(k * t.b_step);
  return vec4<f32>(b2[o.x], b2[o.y], b2[o.z], b2[o.w]);
}

// Blocks of four k: column kk of a block is a_at(k + kk), resp. b_at(k + kk).
// With A_blk = a_block (4 rows x 4 k) and B_blk^T = b_block, A_blk @ B_blk = a_block * transpose(b_block).
fn a_block(t: Tile, k: u32) -> mat4x4<f32> {
  return mat4x4<f32>(a_at(t, k), a_at(t, k + 1u), a_at(t, k + 2u), a_at(t, k + 3u));
}
fn a2_block(t: Tile, k: u32) -> mat4x4<f32> {
  return mat4x4<f32>(a2_at(t, k), a2_at(t, k + 1u), a2_at(t, k + 2u), a2_at(t, k + 3u));
}
fn b_block(t: Tile, k: u32) -> mat4x4<f32> {
  return mat4x4<f32>(b_at(t, k), b_at(t, k + 1u), b_at(t, k + 2u), b_at(t, k + 3u));
}
fn b2_block(t: Tile, k: u32) -> mat4x4<f32> {
  return mat4x4<f32>(b2_at(t, k), b2_at(t, k + 1u), b2_at(t, k + 2u), b2_at(t, k + 3u));
}

// u v^T: the rank-1 update of one k.
fn outer(u: vec4<f32>, v: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(u * v.x, u * v.y, u * v.z, u * v.w);
}

// Elementwise square of a block (x^2 in the LRT variance, Kingma et al. 2015, eq. 6).
fn squared(p: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(p[0] * p[0], p[1] * p[1], p[2] * p[2], p[3] * p[3]);
}

// The end of the whole blocks of four k; the K % 4 tail follows as rank-1 updates.
fn k_full() -> u32 {
  return params.k & ~3u;
}

// The tile of op(A) @ op(B).
fn product(t: Tile) -> mat4x4<f32> {
  var acc = mat4x4<f32>();
  let k4 = k_full();
  for (var k = 0u; k < k4; k += 4u) {
    acc += a_block(t, k) * transpose(b_block(t, k));
  }
  for (var k = k4; k < params.k; k++) {
    acc += outer(a_at(t, k), b_at(t, k));
  }
  return acc;
}

fn tiles_m() -> u32 {
  return (params.m + 3u) / 4u;
}
fn tiles_n() -> u32 {
  return (params.n + 3u) / 4u;
}
fn in_c(t: Tile, i: u32, j: u32) -> bool {
  return t.row0 + i < params.m && t.col0 + j < params.n;
}
// Offset of C[row0 + i, col0 + j] in batch entry z.
fn c_index(t: Tile, i: u32, j: u32) -> u32 {
  return t.z * params.batch_c + (t.row0 + i) * params.n + t.col0 + j;
}

// The bias of the tile's four columns (clamped like the loads), for every row.
fn bias_cols(t: Tile) -> vec4<u32> {
  let cols = min(vec4<u32>(t.col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.n - 1u));
  return vec4<u32>(t.z * params.batch_bias) + cols;
}
fn bias_at(t: Tile) -> vec4<f32> {
  let o = bias_cols(t);
  return vec4<f32>(bias[o.x], bias[o.y], bias[o.z], bias[o.w]);
}
fn bias2_at(t: Tile) -> vec4<f32> {
  let o = bias_cols(t);
  return vec4<f32>(bias2[o.x], bias2[o.y], bias2[o.z], bias2[o.w]);
}
// acc + 1 v^T: adds v[j] to every row of output column j.
fn add_to_columns(acc: mat4x4<f32>, v: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(acc[0] + v.x, acc[1] + v.y, acc[2] + v.z, acc[3] + v.w);
}

fn store_c(t: Tile, acc: mat4x4<f32>) {
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (in_c(t, i, j)) { c[c_index(t, i, j)] = acc[j][i]; }
    }
  }
}

// C = op(A) @ op(B).
@compute @workgroup_size(WG_X, WG_Y)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var ty = gid.y; ty < tiles_m(); ty += nwg.y * WG_Y) {
    for (var tx = gid.x; tx < tiles_n(); tx += nwg.x * WG_X) {
      let t = tile_at(tx, ty, gid.z);
      store_c(t, product(t));
    }
  }
}

// C = op(A) @ op(B) + bias, the bias broadcast over rows: C[r, col] += bias[z * batch_bias + col].
@compute @workgroup_size(WG_X, WG_Y)
fn matmul_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var ty = gid.y; ty < tiles_m(); ty += nwg.y * WG_Y) {
    for (var tx = gid.x; tx < tiles_n(); tx += nwg.x * WG_X) {
      let t = tile_at(tx, ty, gid.z);
      store_c(t, add_to_columns(product(t), bias_at(t)));
    }
  }
}

// ------------------------------------------------------------------------------
// Local reparameterization (Kingma et al. 2015, eq. 6). With A = x [N, in] and
// B = w [out, in] (TRANS_B):
//   mean = x @ wMu^T + bMu          (a, b, bias)
//   var  = x^2 @ wSigma2^T + bSigma2 (a squared, b2, bias2)
//   std  = sqrt(var + 1e-16),  y = mean + std * eps,  eps = rand_normal(key, offset + r * N + col, stream)
// Both accumulators run in one pass over x. Outputs: y in c, std in c2.

const VAR_FLOOR: f32 = 1e-16;

fn lrt_moments(t: Tile) -> array<mat4x4<f32>, 2> {
  var mean = mat4x4<f32>();
  var vari = mat4x4<f32>();
  let k4 = k_full();
  for (var k = 0u; k < k4; k += 4u) {
    let xk = a_block(t, k);
    mean += xk * transpose(b_block(t, k));
    vari += squared(xk) * transpose(b2_block(t, k));
  }
  for (var k = k4; k < params.k; k++) {
    let xk = a_at(t, k);
    mean += outer(xk, b_at(t, k));
    vari += outer(xk * xk, b2_at(t, k));
  }
  return array<mat4x4<f32>, 2>(mean, vari);
}

fn lrt_store(t: Tile, mean: mat4x4<f32>, vari: mat4x4<f32>) {
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (in_c(t, i, j)) {
        let o = c_index(t, i, j);
        let stddev = sqrt(vari[j][i] + VAR_FLOOR);
        c[o] = mean[j][i] + stddev * rand_normal(params.key, params.offset + o, params.stream);
        c2[o] = stddev;
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn lrt_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var ty = gid.y; ty < tiles_m(); ty += nwg.y * WG_Y) {
    for (var tx = gid.x; tx < tiles_n(); tx += nwg.x * WG_X) {
      let t = tile_at(tx, ty, 0u);
      let moments = lrt_moments(t);
      lrt_store(t, moments[0], moments[1]);
    }
  }
}

// Same with the bias mean bMu (bias) and bias variance bSigma2 (bias2).
@compute @workgroup_size(WG_X, WG_Y)
fn lrt_forward_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var ty = gid.y; ty < tiles_m(); ty += nwg.y * WG_Y) {
    for (var tx = gid.x; tx < tiles_n(); tx += nwg.x * WG_X) {
      let t = tile_at(tx, ty, 0u);
      let moments = lrt_moments(t);
      lrt_store(t, add_to_columns(moments[0], bias_at(t)), add_to_columns(moments[1], bias2_at(t)));
    }
  }
}

// LRT backward, step 1: dVar = dy * eps / (2 std) (d std / d var = 1 / (2 std)),
// eps regenerated from the key exactly as lrt_forward drew it. a = dy, b = std, c = dVar,
// all [m, n]. Dispatch: grid(ceil(m * n / WG)) workgroups of WG.
@compute @workgroup_size(WG)
fn lrt_dvar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.m * params.n) { return; }
  c[i] = a[i] * rand_normal(params.key, params.offset + i, params.stream) / (2.0 * b[i]);
}

// LRT backward, input gradient: dx = dy @ wMu + 2 x * (dVar @ wSigma2).
// a = dy [N, out], a2 = dVar [N, out], b = wMu [out, in], b2 = wSigma2 [out, in], layer_x = x [N, in], c = dx.
@compute @workgroup_size(WG_X, WG_Y)
fn lrt_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var ty = gid.y; ty < tiles_m(); ty += nwg.y * WG_Y) {
    for (var tx = gid.x; tx < tiles_n(); tx += nwg.x * WG_X) {
      let t = tile_at(tx, ty, 0u);
      var d_mean = mat4x4<f32>();
      var d_var = mat4x4<f32>();
      let k4 = k_full();
      for (var k = 0u; k < k4; k += 4u) {
        d_mean += a_block(t, k) * transpose(b_block(t, k));
        d_var += a2_block(t, k) * transpose(b2_block(t, k));
      }
      for (var k = k4; k < params.k; k++) {
        d_mean += outer(a_at(t, k), b_at(t, k));
        d_var += outer(a2_at(t, k), b2_at(t, k));
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          if (in_c(t, i, j)) {
            let o = c_index(t, i, j);
            c[o] = d_mean[j][i] + 2.0 * layer_x[o] * d_var[j][i];
          }
        }
      }
    }
  }
}

// LRT backward, weight gradients: dwMu = dy^T @ x, dwSigma2 = dVar^T @ x^2.
// a = dy [N, out] (TRANS_A), a2 = dVar [N, out], b = x [N, in]; c = dwMu, c2 = dwSigma2 [out, in].
@compute @workgroup_size(WG_X, WG_Y)
fn lrt_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var ty = gid.y; ty < tiles_m(); ty += nwg.y * WG_Y) {
    for (var tx = gid.x; tx < tiles_n(); tx += nwg.x * WG_X) {
      let t = tile_at(tx, ty, 0u);
      var dw_mu = mat4x4<f32>();
      var dw_sigma2 = mat4x4<f32>();
      let k4 = k_full();
      for (var k = 0u; k < k4; k += 4u) {
        let xk = transpose(b_block(t, k));
        dw_mu += a_block(t, k) * xk;
        dw_sigma2 += a2_block(t, k) * squared(xk);
      }
      for (var k = k4; k < params.k; k++) {
        let xk = b_at(t, k);
        dw_mu += outer(a_at(t, k), xk);
        dw_sigma2 += outer(a2_at(t, k), xk * xk);
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          if (in_c(t, i, j)) {
            let o = c_index(t, i, j);
            c[o] = dw_mu[j][i];
            c2[o] = dw_sigma2[j][i];
          }
        }
      }
    }
  }
}

// Bias gradients: c[z * batch_c + col] = sum over r < m of a[z * batch_a + r * n + col].
// One invocation per column; workgroups (min(ceil(n / WG), 65535), batch).
@compute @workgroup_size(WG)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let z = gid.y;
  for (var col = gid.x; col < params.n; col += nwg.x * WG) {
    var s = 0.0;
    let base = z * params.batch_a + col;
    for (var r = 0u; r < params.m; r++) {
      s += a[base + r * params.n];
    }
    c[z * params.batch_c + col] = s;
  }
}
