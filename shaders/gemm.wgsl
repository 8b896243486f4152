// gemm.wgsl: the one GEMM core of bayesgpu. Every convolution and matrix product is an instance:
// a file that defines the hooks below and includes this one (`//! include "gemm.wgsl"`).
//
// For every batch entry z < mm_batches() it computes C[z] = A[z] @ B[z], with A[z] M x K and
// B[z] K x N, and, when DUAL, a second product C2[z] = A2[z] @ B2[z] over the same indices in the
// same pass (the local reparameterization trick needs mean and variance from one read of x:
// Kingma, Salimans & Welling 2015, eq. 6). The operands are never materialised: the hooks
// gather them from the op's own buffers (an implicit GEMM, Chetlur et al. 2014, section 3.1), so
// padding, stride, transposes, biases and the LRT epilogue live in small read and write functions
// (the mm_readA / mm_readB / mm_write shape of tfjs-backend-webgpu, written by hand here).
//
// Hooks (all defined by the including file; each reads the op's own uniforms and buffers):
//   fn mm_m() -> u32, fn mm_n() -> u32, fn mm_batches() -> u32     the problem size
//   fn mm_k_range(z: u32, col0: u32, cols: u32) -> vec2<u32>
//       [begin, end) of the reduction index k for entry z and the columns col0..col0+cols-1: an op
//       may leave out the k that only meet padding for those columns (a convolution's borders)
//   struct MMRows; fn mm_rows(z: u32, row0: u32) -> MMRows
//       what reading rows row0..row0+3 of A needs, computed once per block (rows >= M must be
//       clamped or masked by the hook so that every load stays in bounds)
//   struct MMCols; fn mm_cols(z: u32, col0: u32) -> MMCols        the same for columns of B
//   struct MMCursor; fn mm_cursor(z: u32, k: u32) -> MMCursor; fn mm_advance(c: ptr<function, MMCursor>)
//       the reduction index in the op's own coordinates (e.g. input channel and tap of a
//       convolution), so that the inner loop steps it without integer division
//   fn mm_a(r: MMRows, c: MMCursor) -> MMPair     A[z][row0 + i][k] for i = 0..3 (and A2 in .second)
//   fn mm_b(q: MMCols, c: MMCursor) -> MMPair     B[z][k][col0 + j] for j = 0..3 (and B2 in .second)
//   fn mm_write(z: u32, row: u32, col0: u32, value: vec4<f32>, second: vec4<f32>)
//       C[z][row][col0 + j] = value[j] (and C2 from `second`); called for rows < M only, the hook
//       skips columns >= N. This is where a bias, an accumulation or the LRT noise goes.
//
// Variants (override constants; src/ops/gemm.ts lists them and src/gpu/tuning.ts picks one per
// adapter, op and shape class by measurement):
//   gemm_registers  no workgroup memory and no barrier: each invocation owns RM x RN blocks of
//                   4 x 4 outputs in registers (mat4x4 each) and gathers its own operands. On a
//                   software adapter (SwiftShader runs a barrier as a coroutine switch) this is
//                   the fast form. The blocks are written out, not looped over: SwiftShader's JIT
//                   keeps named values in registers but puts dynamically indexed arrays in memory.
//   gemm_workgroup  the classic shared-memory tiling with register blocking for GPUs: a workgroup
//                   of WG_M x WG_N invocations computes a (4 RM WG_M) x (4 RN WG_N) tile of C; per
//                   step of TK reduction indices it stages the A and B tiles in workgroup memory
//                   (each operand value read once from global memory per workgroup), then every
//                   invocation runs TK rank-1 updates of its register blocks from there.
// Both accumulate each output over k in the same order, one multiply and one add per k, so they
// agree to the last bit where the compiler contracts neither (SwiftShader); GPU compilers may
// fuse multiply-adds differently per variant.
//
// Dispatch geometry:
//   gemm_registers: one invocation per register tile, tiles numbered with z fastest, then column
//     tiles, then row tiles (neighbouring invocations share columns, so a convolution's padding
//     masks agree across a SIMD group), folded into an (x, y) grid of WG-wide groups (grid()).
//   gemm_workgroup: workgroups (ceil(N / TN), ceil(M / TM), mm_batches()).

override RM: u32 = 2u;      // blocks of 4 rows per invocation: 1 or 2
override RN: u32 = 2u;      // blocks of 4 columns per invocation: 1 or 2
override WG: u32 = 64u;     // gemm_registers: invocations per workgroup
override WG_M: u32 = 8u;    // gemm_workgroup: invocations along the rows ...
override WG_N: u32 = 8u;    // ... and along the columns
override TK: u32 = 16u;     // gemm_workgroup: reduction indices staged per step
override DUAL: bool = false;

struct MMPair {
  first: vec4<f32>,
  second: vec4<f32>,
};

// The RM x RN register blocks of one invocation; bRC is row block R, column block C, and its
// row i is the vec4 of the block's 4 columns in output row i.
struct MMBlocks {
  b00: mat4x4<f32>,
  b01: mat4x4<f32>,
  b10: mat4x4<f32>,
  b11: mat4x4<f32>,
};

// Row i of the result is b * a[i]: the rank-1 update a b^T of one reduction index.
fn mm_rank1(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(b * a.x, b * a.y, b * a.z, b * a.w);
}

fn mm_update(t: ptr<function, MMBlocks>, a0: vec4<f32>, a1: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>) {
  (*t).b00 += mm_rank1(a0, b0);
  if (RN > 1u) { (*t).b01 += mm_rank1(a0, b1); }
  if (RM > 1u) { (*t).b10 += mm_rank1(a1, b0); }
  if (RM > 1u && RN > 1u) { (*t).b11 += mm_rank1(a1, b1); }
}

fn mm_block(t: MMBlocks, r: u32, c: u32) -> mat4x4<f32> {
  if (r == 0u) {
    if (c == 0u) { return t.b00; }
    return t.b01;
  }
  if (c == 0u) { return t.b10; }
  return t.b11;
}

// Hands the blocks whose first row and column exist to mm_write, a row at a time.
// row0 / col0 of block (r, c) are row_base + r * row_step and col_base + c * col_step.
fn mm_store(z: u32, t: MMBlocks, t2: MMBlocks, row_base: u32, row_step: u32, col_base: u32, col_step: u32) {
  let m = mm_m();
  let n = mm_n();
  for (var r = 0u; r < RM; r++) {
    for (var c = 0u; c < RN; c++) {
      let row0 = row_base + r * row_step;
      let col0 = col_base + c * col_step;
      if (row0 >= m || col0 >= n) { continue; }
      let v = mm_block(t, r, c);
      let v2 = mm_block(t2, r, c);
      for (var i = 0u; i < 4u; i++) {
        if (row0 + i < m) { mm_write(z, row0 + i, col0, v[i], v2[i]); }
      }
    }
  }
}

// ------------------------------------------------------------------ registers (barrier-free)

@compute @workgroup_size(WG)
fn gemm_registers(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tile = gid.x + gid.y * nwg.x * WG;
  let tile_m = 4u * RM;
  let tile_n = 4u * RN;
  let batches = mm_batches();
  let col_tiles = (mm_n() + tile_n - 1u) / tile_n;
  let rest = tile / batches;
  let z = tile - rest * batches;
  let row_tile = rest / col_tiles;
  let row0 = row_tile * tile_m;
  let col0 = (rest - row_tile * col_tiles) * tile_n;
  if (row0 >= mm_m()) { return; }

  let rows0 = mm_rows(z, row0);
  let rows1 = mm_rows(z, row0 + 4u);
  let cols0 = mm_cols(z, col0);
  let cols1 = mm_cols(z, col0 + 4u);
  var acc: MMBlocks;
  var acc2: MMBlocks;
  var a1 = MMPair(vec4<f32>(0.0), vec4<f32>(0.0));
  var b1 = a1;
  let range = mm_k_range(z, col0, tile_n);
  var cursor = mm_cursor(z, range.x);
  for (var k = range.x; k < range.y; k++) {
    let a0 = mm_a(rows0, cursor);
    let b0 = mm_b(cols0, cursor);
    if (RM > 1u) { a1 = mm_a(rows1, cursor); }
    if (RN > 1u) { b1 = mm_b(cols1, cursor); }
    mm_update(&acc, a0.first, a1.first, b0.first, b1.first);
    if (DUAL) { mm_update(&acc2, a0.second, a1.second, b0.second, b1.second); }
    mm_advance(&cursor);
  }
  mm_store(z, acc, acc2, row0, 4u, col0, 4u);
}

// ------------------------------------------------------------ workgroup-memory tiles (GPUs)

// Staged operands: mm_tile_a[kk * (TM / 4) + r] holds A rows 4r..4r+3 (of the tile) at
// reduction index k0 + kk; mm_tile_b[kk * (TN / 4) + c] holds B columns 4c..4c+3 likewise.
// The second product's tiles are one element long unless DUAL.
var<workgroup> mm_tile_a: array<vec4<f32>, TK * RM * WG_M>;
var<workgroup> mm_tile_b: array<vec4<f32>, TK * RN * WG_N>;
var<workgroup> mm_tile_a2: array<vec4<f32>, select(1u, TK * RM * WG_M, DUAL)>;
var<workgroup> mm_tile_b2: array<vec4<f32>, select(1u, TK * RN * WG_N, DUAL)>;

@compute @workgroup_size(WG_N, WG_M)
fn gemm_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let quads_m = RM * WG_M;   // row blocks of 4 in the workgroup tile
  let quads_n = RN * WG_N;
  let row_base = wid.y * 4u * quads_m;
  let col_base = wid.x * 4u * quads_n;
  let z = wid.z;
  let me = lid.y * WG_N + lid.x;
  let threads = WG_M * WG_N;
  var acc: MMBlocks;
  var acc2: MMBlocks;
  let range = mm_k_range(z, col_base, 4u * quads_n);
  let zero = MMPair(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = range.x; k0 < range.y; k0 += TK) {
    // Stage A: TK x quads_m vec4s, B: TK x quads_n, spread over the invocations.
    for (var e = me; e < TK * quads_m; e += threads) {
      let kk = e / quads_m;
      let r = e - kk * quads_m;
      var v = zero;
      if (k0 + kk < range.y) { v = mm_a(mm_rows(z, row_base + 4u * r), mm_cursor(z, k0 + kk)); }
      mm_tile_a[e] = v.first;
      if (DUAL) { mm_tile_a2[e] = v.second; }
    }
    for (var e = me; e < TK * quads_n; e += threads) {
      let kk = e / quads_n;
      let c = e - kk * quads_n;
      var v = zero;
      if (k0 + kk < range.y) { v = mm_b(mm_cols(z, col_base + 4u * c), mm_cursor(z, k0 + kk)); }
      mm_tile_b[e] = v.first;
      if (DUAL) { mm_tile_b2[e] = v.second; }
    }
    workgroupBarrier();
    // Invocation (lid.y, lid.x) owns row blocks lid.y + r WG_M and column blocks lid.x + c WG_N,
    // so neighbouring invocations read neighbouring vec4s of the staged B tile.
    let steps = min(TK, range.y - k0);
    var a1 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var a1s = vec4<f32>(0.0);
    var b1s = vec4<f32>(0.0);
    for (var kk = 0u; kk < steps; kk++) {
      let ia = kk * quads_m + lid.y;
      let ib = kk * quads_n + lid.x;
      let a0 = mm_tile_a[ia];
      let b0 = mm_tile_b[ib];
      if (RM > 1u) { a1 = mm_tile_a[ia + WG_M]; }
      if (RN > 1u) { b1 = mm_tile_b[ib + WG_N]; }
      mm_update(&acc, a0, a1, b0, b1);
      if (DUAL) {
        let a0s = mm_tile_a2[ia];
        let b0s = mm_tile_b2[ib];
        if (RM > 1u) { a1s = mm_tile_a2[ia + WG_M]; }
        if (RN > 1u) { b1s = mm_tile_b2[ib + WG_N]; }
        mm_update(&acc2, a0s, a1s, b0s, b1s);
      }
    }
    workgroupBarrier();
  }
  mm_store(z, acc, acc2, row_base + 4u * lid.y, 4u * WG_M, col_base + 4u * lid.x, 4u * WG_N);
}
