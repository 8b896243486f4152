// conv2d.wgsl: 2-D convolution (cross-correlation, NCHW, as PyTorch's conv2d) forward and backward,
// plain and with the local reparameterization trick (LRT; Kingma, Salimans & Welling 2015,
// "Variational dropout and the local reparameterization trick", eq. 6; section 2.3 applies it to
// convolutions: the pre-activations are Gaussian with mean conv(x, mu) and variance conv(x^2, sigma^2)).
//
//   y[n,co,oh,ow] = b[s,co] + sum_{ci,i,j} x[n,ci, oh*sh-ph+i*dh, ow*sw-pw+j*dw] * w[s,co,ci,i,j]
//
// Buffers (f32, row-major):
//   input (= x) [N, Cin, H, W]   w, w_sigma2 [S, Cout, Cin, KH, KW]   bias, bias_sigma2 [S, Cout]
//   y, stddev, dy, dvar [N, Cout, OH, OW]   dx [N, Cin, H, W]   db [S, Cout]
//   dw, dw_sigma2 [S * chunks_per_sample, Cout, Cin*KH*KW]: per-chunk partial sums (see sum_chunks)
// S = 1 for ordinary weights. With S > 1 (S Monte Carlo weight samples batched on the GPU) images
// n in [s*N/S, (s+1)*N/S) use sample s; `images_per_sample` = N/S.
//
// Design: each pass is an implicit GEMM (Chetlur et al. 2014, "cuDNN", section 3.1) whose operands
// are gathered straight from the NCHW tensors, never materialised:
//   forward         channels Cout   x columns OH*OW (per image)  reduced over Cin*KH*KW
//   backward_input  channels Cin    x columns H*W   (per image)  reduced over Cout*KH*KW
//   backward_weight channels Cout   x columns Cin*KH*KW          reduced over N*OH*OW
// Every invocation owns a register tile of CHANNEL_BLOCKS x POSITION_BLOCKS blocks of 4 channels by
// 4 columns (one mat4x4 per block, column c = channel c). Per reduction step it gathers 4 values per
// column block and 4 weights per channel block and adds their outer products. There are no
// workgroup barriers in these kernels: on SwiftShader (a CPU) barriers cost more than they save, and
// a bigger register tile (more multiply-adds per gathered value) is what made the kernels fast.
// The blocks are written out, not looped over: SwiftShader's Subzero JIT keeps named values in
// registers but puts dynamically indexed arrays in memory. Shapes travel in `params`, so a new
// batch size reuses the compiled pipeline; tile and workgroup sizes are override constants.
//
// Dispatch geometry: one invocation per tile, tiles numbered linearly (image or chunk fastest, then
// columns, then channels; see tile_index), folded into an (x, y) grid by grid() / flat_index. With
// C = 4*CHANNEL_BLOCKS channels and P = 4*POSITION_BLOCKS columns per tile:
//   forward, lrt_forward:                N * ceil(Cout/C) * ceil(OH*OW/P) invocations
//   backward_input, lrt_backward_input:  N * ceil(Cin/C) * ceil(H*W/P)
//   backward_weight, lrt_backward_weight: S*chunks_per_sample * ceil(Cout/C) * ceil(Cin*KH*KW/P)
//   lrt_dvar, sum_chunks:                one invocation per element (`count`)
//   bias_grad:                           one workgroup of WG invocations per (s, co), tree reduction
//
// Names: no local or parameter shares a binding's name (wgsl_reflect ignores shadowing, so such a
// name would make an entry look as if it used that binding), and the input is bound as `input`
// rather than the short and common `x` for the same reason.

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;
// Tile shape: blocks of 4 channels and blocks of 4 columns per invocation, each 1 or 2.
override CHANNEL_BLOCKS: u32 = 2u;
override POSITION_BLOCKS: u32 = 2u;

// Added under the square root so that a zero variance has a finite derivative (the op's contract).
const VARIANCE_FLOOR: f32 = 1e-16;
const LANES = vec4<u32>(0u, 1u, 2u, 3u);

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
  offset: u32,   // counter index of the LRT noise of output 0 (RandomKey.offset)
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
// Tap-major copies of w and w_sigma2 for the forward entries (see tap_major_weights).
@group(0) @binding(16) var<storage, read_write> tap_major: array<f32>;
@group(0) @binding(17) var<storage, read> w_taps: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read> w_sigma2_taps: array<vec4<f32>>;

fn kernel_size() -> u32 {
  return params.cin * params.kernel_h * params.kernel_w;
}

fn out_size() -> u32 {
  return params.out_h * params.out_w;
}

// ------------------------------------------------------------------------ the register tile

// Up to 2 x 2 blocks; block bCP covers channel block C and column block P.
struct Tile {
  b00: mat4x4<f32>,
  b01: mat4x4<f32>,
  b10: mat4x4<f32>,
  b11: mat4x4<f32>,
};

// Block of 4 columns x 4 channels: column c of the result is `cols * chans[c]`.
fn outer(cols: vec4<f32>, chans: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(cols * chans.x, cols * chans.y, cols * chans.z, cols * chans.w);
}

// One reduction step: tile += cols (x) chans for the blocks this pipeline has.
fn accumulate(t: ptr<function, Tile>, cols0: vec4<f32>, cols1: vec4<f32>, chans0: vec4<f32>, chans1: vec4<f32>) {
  (*t).b00 += outer(cols0, chans0);
  if (POSITION_BLOCKS > 1u) { (*t).b01 += outer(cols1, chans0); }
  if (CHANNEL_BLOCKS > 1u) { (*t).b10 += outer(cols0, chans1); }
  if (CHANNEL_BLOCKS > 1u && POSITION_BLOCKS > 1u) { (*t).b11 += outer(cols1, chans1); }
}

fn tile_block(t: Tile, channel_block: u32, column_block: u32) -> mat4x4<f32> {
  if (channel_block == 0u) {
    if (column_block == 0u) { return t.b00; }
    return t.b01;
  }
  if (column_block == 0u) { return t.b10; }
  return t.b11;
}

// Linear tile number -> (image or chunk, first channel, first column) for `majors` images or
// chunks of `channels` x `columns`. The image (or chunk) varies fastest, so neighbouring
// invocations, which SwiftShader runs as the lanes of one SIMD group, share their positions: they
// agree on which taps fall into padding, and the loops that skip those taps do not diverge.
struct TileIndex {
  major: u32,
  c0: u32,
  p0: u32,
  in_range: bool,
};

fn tile_index(i: u32, majors: u32, channels: u32, columns: u32) -> TileIndex {
  let tile_c = 4u * CHANNEL_BLOCKS;
  let tile_p = 4u * POSITION_BLOCKS;
  let column_tiles = (columns + tile_p - 1u) / tile_p;
  let rest = i / majors;
  let channel_tile = rest / column_tiles;
  return TileIndex(i - rest * majors, channel_tile * tile_c, (rest - channel_tile * column_tiles) * tile_p, channel_tile * tile_c < channels);
}

// ---------------------------------------------------------------------------- gathers

// Four values at independent indices; lanes with ok = false read 0 (padding). Their indices must
// still be in range (callers clamp them), since robust buffer access may clamp rather than zero.
fn gather_input(idx: vec4<i32>, ok: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(input[idx.x], input[idx.y], input[idx.z], input[idx.w]), ok);
}

fn gather_dy(idx: vec4<i32>, ok: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(dy[idx.x], dy[idx.y], dy[idx.z], dy[idx.w]), ok);
}

fn gather_dvar(idx: vec4<i32>, ok: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(dvar[idx.x], dvar[idx.y], dvar[idx.z], dvar[idx.w]), ok);
}

fn gather_w(idx: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(w[idx.x], w[idx.y], w[idx.z], w[idx.w]);
}

fn gather_w_sigma2(idx: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(w_sigma2[idx.x], w_sigma2[idx.y], w_sigma2[idx.z], w_sigma2[idx.w]);
}

// Offsets of 4 consecutive channels c0.. of a [channels, stride] layout from `base`, the channels
// past the end clamped to the last one (their results are computed and never stored).
fn channel_rows(base: u32, c0: u32, channels: u32, stride: u32) -> vec4<u32> {
  return vec4<u32>(base) + min(vec4<u32>(c0) + LANES, vec4<u32>(channels - 1u)) * stride;
}

// Row and column of 4 consecutive flattened positions p0.. of a rows x cols grid (clamped).
struct Grid4 {
  row: vec4<i32>,
  col: vec4<i32>,
};

fn grid4(p0: u32, rows: u32, cols: u32) -> Grid4 {
  let p = min(vec4<u32>(p0) + LANES, vec4<u32>(rows * cols - 1u));
  let r = p / cols;
  return Grid4(vec4<i32>(r), vec4<i32>(p - r * cols));
}

// ------------------------------------------------------------------------------------- forward

// Four element offsets and whether each is real (false: padding, read as 0).
struct Taps {
  idx: vec4<i32>,
  ok: vec4<bool>,
};

// Top-left corner (oh*sh - ph, ow*sw - pw) of the receptive fields of 4 output positions p0...
fn receptive_origin(p0: u32) -> Grid4 {
  let g = grid4(p0, params.out_h, params.out_w);
  return Grid4(g.row * params.stride.x - params.pad.x, g.col * params.stride.y - params.pad.y);
}

// The forward tile: image n, output channels co0.., output positions p0..; `sample` picks the weights.
struct OutTile {
  in_range: bool,
  n: u32,
  co0: u32,
  p0: u32,
  sample: u32,
  image_base: i32,
  origin0: Grid4,
  origin1: Grid4,
  // Index into w_taps / w_sigma2_taps of the tile's two channel blocks at tap k = 0; tap k adds
  // k * channel_quads() (a block past the last is clamped; its results are never stored).
  w_block0: u32,
  w_block1: u32,
};

// Blocks of 4 channels in a tap-major weight row: ceil(Cout / 4).
fn channel_quads() -> u32 {
  return (params.cout + 3u) / 4u;
}

fn out_tile(i: u32) -> OutTile {
  let ti = tile_index(i, params.batch, params.cout, out_size());
  let sample = ti.major / params.images_per_sample;
  let quads = channel_quads();
  let w_base = sample * kernel_size() * quads;
  return OutTile(ti.in_range, ti.major, ti.c0, ti.p0, sample, i32(ti.major * params.cin * params.height * params.width),
    receptive_origin(ti.p0), receptive_origin(ti.p0 + 4u),
    w_base + min(ti.c0 / 4u, quads - 1u), w_base + min(ti.c0 / 4u + 1u, quads - 1u));
}

// Offsets of input rows ih = origin.row + i*dh in the channel at `channel_base`, and whether they exist.
fn input_rows(origin: Grid4, i: u32, channel_base: i32) -> Taps {
  let ih = origin.row + i32(i) * params.dilation.x;
  let ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height)));
  return Taps(vec4<i32>(channel_base) + ih * i32(params.width), ok);
}

// x at columns iw of the rows `rows`; 0 in the padding.
fn gather_input_row(rows: Taps, iw: vec4<i32>, channel_base: i32) -> vec4<f32> {
  let ok = rows.ok & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
  return gather_input(select(vec4<i32>(channel_base), rows.idx + iw, ok), ok);
}

// Loop order: input channel, kernel row, kernel column innermost. SwiftShader pays for every loop
// iteration in proportion to the values the loop carries (the whole tile), so the innermost loop
// should be one reduction step whatever Cin is (LeNet's first layer has Cin = 1). A kernel row that
// only meets padding for the whole tile is skipped.
@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = out_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let hw = i32(params.height * params.width);
  var acc: Tile;
  var cols1 = vec4<f32>(0.0);
  var chans1 = vec4<f32>(0.0);
  for (var ci = 0u; ci < params.cin; ci++) {
    let channel_base = t.image_base + i32(ci) * hw;
    for (var i = 0u; i < params.kernel_h; i++) {
      let x_rows0 = input_rows(t.origin0, i, channel_base);
      let x_rows1 = input_rows(t.origin1, i, channel_base);
      if (!any(x_rows0.ok | (x_rows1.ok & vec4<bool>(POSITION_BLOCKS > 1u)))) { continue; }
      let quads = channel_quads();
      var k = (ci * params.kernel_h + i) * params.kernel_w * quads;
      for (var j = 0u; j < params.kernel_w; j++) {
        let tap_w = i32(j) * params.dilation.y;
        let cols0 = gather_input_row(x_rows0, t.origin0.col + tap_w, channel_base);
        if (POSITION_BLOCKS > 1u) { cols1 = gather_input_row(x_rows1, t.origin1.col + tap_w, channel_base); }
        let chans0 = w_taps[t.w_block0 + k];
        if (CHANNEL_BLOCKS > 1u) { chans1 = w_taps[t.w_block1 + k]; }
        accumulate(&acc, cols0, cols1, chans0, chans1);
        k += quads;
      }
    }
  }
  for (var cb = 0u; cb < CHANNEL_BLOCKS; cb++) {
    for (var pb = 0u; pb < POSITION_BLOCKS; pb++) {
      store_y(t, t.co0 + 4u * cb, t.p0 + 4u * pb, tile_block(acc, cb, pb));
    }
  }
}

// tap_major[s, k, c] = w[s, c, k] for c < Cout and 0 for the padding channels Cout <= c < 4 * ceil(Cout / 4):
// the forward entries then read the weights of 4 channels at one tap as one vec4 (w_taps), a single
// load where w's channel-major layout needs 4 gathered ones. One invocation per element (`count`).
@compute @workgroup_size(WG)
fn tap_major_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.count) { return; }
  let padded = 4u * channel_quads();
  let row = i / padded;
  let c = i - row * padded;
  let s = row / kernel_size();
  let k = row - s * kernel_size();
  var value = 0.0;
  if (c < params.cout) { value = w[(s * params.cout + c) * kernel_size() + k]; }
  tap_major[i] = value;
}

// y[n, co0 + c, p0 + q] = value[c][q] + bias for the channels and positions that exist.
fn store_y(t: OutTile, co0: u32, p0: u32, value: mat4x4<f32>) {
  let ohw = out_size();
  for (var c = 0u; c < 4u; c++) {
    let co = co0 + c;
    if (co >= params.cout) { return; }
    var b = 0.0;
    if (params.has_bias != 0u) { b = bias[t.sample * params.cout + co]; }
    let row = (t.n * params.cout + co) * ohw;
    for (var q = 0u; q < 4u; q++) {
      if (p0 + q < ohw) { y[row + p0 + q] = value[c][q] + b; }
    }
  }
}

// LRT forward: the same pass over x feeds two tiles, mean from (x, w = mu) and variance from
// (x^2, w_sigma2); then y = mean + sqrt(var + 1e-16) * eps with eps = rand_normal(key, offset + index of y,
// stream) (Kingma et al. 2015, eq. 6). stddev is kept for the backward pass; eps is regenerated there.
@compute @workgroup_size(WG)
fn lrt_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = out_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let hw = i32(params.height * params.width);
  var mean: Tile;
  var variance: Tile;
  var cols1 = vec4<f32>(0.0);
  var chans1 = vec4<f32>(0.0);
  var sigma2_1 = vec4<f32>(0.0);
  for (var ci = 0u; ci < params.cin; ci++) {
    let channel_base = t.image_base + i32(ci) * hw;
    for (var i = 0u; i < params.kernel_h; i++) {
      let x_rows0 = input_rows(t.origin0, i, channel_base);
      let x_rows1 = input_rows(t.origin1, i, channel_base);
      if (!any(x_rows0.ok | (x_rows1.ok & vec4<bool>(POSITION_BLOCKS > 1u)))) { continue; }
      let quads = channel_quads();
      var k = (ci * params.kernel_h + i) * params.kernel_w * quads;
      for (var j = 0u; j < params.kernel_w; j++) {
        let tap_w = i32(j) * params.dilation.y;
        let cols0 = gather_input_row(x_rows0, t.origin0.col + tap_w, channel_base);
        if (POSITION_BLOCKS > 1u) { cols1 = gather_input_row(x_rows1, t.origin1.col + tap_w, channel_base); }
        let chans0 = w_taps[t.w_block0 + k];
        let sigma2_0 = w_sigma2_taps[t.w_block0 + k];
        if (CHANNEL_BLOCKS > 1u) {
          chans1 = w_taps[t.w_block1 + k];
          sigma2_1 = w_sigma2_taps[t.w_block1 + k];
        }
        accumulate(&mean, cols0, cols1, chans0, chans1);
        accumulate(&variance, cols0 * cols0, cols1 * cols1, sigma2_0, sigma2_1);
        k += quads;
      }
    }
  }
  for (var cb = 0u; cb < CHANNEL_BLOCKS; cb++) {
    for (var pb = 0u; pb < POSITION_BLOCKS; pb++) {
      store_lrt(t, t.co0 + 4u * cb, t.p0 + 4u * pb, tile_block(mean, cb, pb), tile_block(variance, cb, pb));
    }
  }
}

fn store_lrt(t: OutTile, co0: u32, p0: u32, mean: mat4x4<f32>, variance: mat4x4<f32>) {
  let ohw = out_size();
  for (var c = 0u; c < 4u; c++) {
    let co = co0 + c;
    if (co >= params.cout) { return; }
    var b_mean = 0.0;
    var b_var = 0.0;
    if (params.has_bias != 0u) { b_mean = bias[t.sample * params.cout + co]; }
    if (params.has_bias_sigma2 != 0u) { b_var = bias_sigma2[t.sample * params.cout + co]; }
    let row = (t.n * params.cout + co) * ohw;
    for (var q = 0u; q < 4u; q++) {
      let p = p0 + q;
      if (p < ohw) {
        let sd = sqrt(variance[c][q] + b_var + VARIANCE_FLOOR);
        y[row + p] = mean[c][q] + b_mean + sd * rand_normal(params.key, params.offset + row + p, params.stream);
        stddev[row + p] = sd;
      }
    }
  }
}

// dVar = dL/dvariance = dy * eps / (2 std), eps regenerated from the key (d sqrt(v)/dv = 1/(2 sqrt v)).
@compute @workgroup_size(WG)
fn lrt_dvar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.count) { return; }
  dvar[i] = dy[i] * rand_normal(params.key, params.offset + i, params.stream) / (2.0 * stddev[i]);
}

// ------------------------------------------------------------------------------ backward-input

// dx[n,ci,ih,iw] = sum_{co,i,j} dy[n,co,oh,ow] * w[s,co,ci,i,j] over the taps with
// oh*sh - ph + i*dh = ih and ow*sw - pw + j*dw = iw: a transposed convolution written as a
// gather, so every invocation owns its outputs and no atomics are needed.

// Output positions reached from 4 input positions (plus padding, `shifted` = ih + ph) through tap
// offset `tap` = i*dh along one axis: valid where shifted - tap is a multiple of the stride in range.
struct AxisHit {
  o: vec4<i32>,
  ok: vec4<bool>,
};

fn axis_hit(shifted: vec4<i32>, tap: i32, stride: i32, size: u32) -> AxisHit {
  let d = shifted - vec4<i32>(tap);
  let o = d / vec4<i32>(stride);
  return AxisHit(o, (d >= vec4<i32>(0)) & (o * stride == d) & (o < vec4<i32>(i32(size))));
}

// The dy elements (of output channel 0) that tap (i, j) connects to 4 input positions.
fn output_taps(shifted: Grid4, i: u32, j: u32, image_base: i32) -> Taps {
  let hit_h = axis_hit(shifted.row, i32(i) * params.dilation.x, params.stride.x, params.out_h);
  let hit_w = axis_hit(shifted.col, i32(j) * params.dilation.y, params.stride.y, params.out_w);
  let ok = hit_h.ok & hit_w.ok;
  return Taps(select(vec4<i32>(image_base), vec4<i32>(image_base) + hit_h.o * i32(params.out_w) + hit_w.o, ok), ok);
}

fn shifted_positions(q0: u32) -> Grid4 {
  let g = grid4(q0, params.height, params.width);
  return Grid4(g.row + params.pad.x, g.col + params.pad.y);
}

// Kernel rows i that can connect input rows (plus padding) in [lo, hi] to an output row:
// 0 <= shifted - i*dh <= (OH-1)*sh, so i in [ceil((lo - (OH-1)*sh) / dh), floor(hi / dh)].
fn kernel_rows(lo: i32, hi: i32) -> vec2<u32> {
  let reach = i32(params.out_h - 1u) * params.stride.x;
  let dil = params.dilation.x;
  let first = max(lo - reach + dil - 1, 0) / dil;
  let last = min(hi / dil, i32(params.kernel_h) - 1);
  return vec2<u32>(u32(first), u32(max(last + 1, first)));
}

// The backward-input tile: image n, input channels ci0.., input positions q0...
struct InTile {
  in_range: bool,
  n: u32,
  ci0: u32,
  q0: u32,
  image_base: i32,
  shifted0: Grid4,
  shifted1: Grid4,
  // Offsets of w[s, 0, ci, 0, 0] for the two channel blocks.
  w_rows0: vec4<u32>,
  w_rows1: vec4<u32>,
};

fn in_tile(i: u32) -> InTile {
  let ti = tile_index(i, params.batch, params.cin, params.height * params.width);
  let w_base = (ti.major / params.images_per_sample) * params.cout * kernel_size();
  let taps = params.kernel_h * params.kernel_w;
  return InTile(ti.in_range, ti.major, ti.c0, ti.p0, i32(ti.major * params.cout * out_size()),
    shifted_positions(ti.p0), shifted_positions(ti.p0 + 4u),
    channel_rows(w_base, ti.c0, params.cin, taps), channel_rows(w_base, ti.c0 + 4u, params.cin, taps));
}

// The kernel rows worth visiting for the tile's input rows (the others only meet dy's padding).
fn tile_kernel_rows(t: InTile) -> vec2<u32> {
  let lo = t.shifted0.row.x;
  var hi = t.shifted0.row.w;
  if (POSITION_BLOCKS > 1u) { hi = t.shifted1.row.w; }
  return kernel_rows(lo, hi);
}

@compute @workgroup_size(WG)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = in_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let ohw = i32(out_size());
  let ksize = kernel_size();
  var acc: Tile;
  var cols1 = vec4<f32>(0.0);
  var chans1 = vec4<f32>(0.0);
  let rows = tile_kernel_rows(t);
  for (var i = rows.x; i < rows.y; i++) {
    for (var j = 0u; j < params.kernel_w; j++) {
      let taps0 = output_taps(t.shifted0, i, j, t.image_base);
      let taps1 = output_taps(t.shifted1, i, j, t.image_base);
      if (!any(taps0.ok | (taps1.ok & vec4<bool>(POSITION_BLOCKS > 1u)))) { continue; }
      var k = i * params.kernel_w + j;
      var offset = 0;
      for (var co = 0u; co < params.cout; co++) {
        let cols0 = gather_dy(taps0.idx + offset, taps0.ok);
        if (POSITION_BLOCKS > 1u) { cols1 = gather_dy(taps1.idx + offset, taps1.ok); }
        let chans0 = gather_w(t.w_rows0 + k);
        if (CHANNEL_BLOCKS > 1u) { chans1 = gather_w(t.w_rows1 + k); }
        accumulate(&acc, cols0, cols1, chans0, chans1);
        k += ksize;
        offset += ohw;
      }
    }
  }
  for (var cb = 0u; cb < CHANNEL_BLOCKS; cb++) {
    for (var pb = 0u; pb < POSITION_BLOCKS; pb++) {
      store_dx(t, t.ci0 + 4u * cb, t.q0 + 4u * pb, tile_block(acc, cb, pb));
    }
  }
}

// dx[n, ci0 + c, q0 + q] = value[c][q] for the channels and positions that exist.
fn store_dx(t: InTile, ci0: u32, q0: u32, value: mat4x4<f32>) {
  let hw = params.height * params.width;
  for (var c = 0u; c < 4u; c++) {
    let ci = ci0 + c;
    if (ci >= params.cin) { return; }
    let row = (t.n * params.cin + ci) * hw;
    for (var q = 0u; q < 4u; q++) {
      if (q0 + q < hw) { dx[row + q0 + q] = value[c][q]; }
    }
  }
}

// The LRT combination mean + 2 x * variance, with x read at the same 4 channels x 4 positions.
fn lrt_dx(t: InTile, ci0: u32, q0: u32, mean: mat4x4<f32>, variance: mat4x4<f32>) -> mat4x4<f32> {
  let hw = params.height * params.width;
  var combined: mat4x4<f32>;
  for (var c = 0u; c < 4u; c++) {
    let row = (t.n * params.cin + min(ci0 + c, params.cin - 1u)) * hw;
    let q = min(vec4<u32>(q0) + LANES, vec4<u32>(hw - 1u));
    let xv = vec4<f32>(input[row + q.x], input[row + q.y], input[row + q.z], input[row + q.w]);
    combined[c] = mean[c] + 2.0 * xv * variance[c];
  }
  return combined;
}

// LRT: dx = convT(dy, w_mu) + 2 x * convT(dvar, w_sigma2), the chain rule through
// variance = conv(x^2, w_sigma2) (d x^2 / dx = 2x). Both transposed convolutions share one pass.
@compute @workgroup_size(WG)
fn lrt_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = in_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let ohw = i32(out_size());
  let ksize = kernel_size();
  var mean: Tile;
  var variance: Tile;
  var cols1 = vec4<f32>(0.0);
  var var_cols1 = vec4<f32>(0.0);
  var chans1 = vec4<f32>(0.0);
  var sigma2_1 = vec4<f32>(0.0);
  let rows = tile_kernel_rows(t);
  for (var i = rows.x; i < rows.y; i++) {
    for (var j = 0u; j < params.kernel_w; j++) {
      let taps0 = output_taps(t.shifted0, i, j, t.image_base);
      let taps1 = output_taps(t.shifted1, i, j, t.image_base);
      if (!any(taps0.ok | (taps1.ok & vec4<bool>(POSITION_BLOCKS > 1u)))) { continue; }
      var k = i * params.kernel_w + j;
      var offset = 0;
      for (var co = 0u; co < params.cout; co++) {
        let cols0 = gather_dy(taps0.idx + offset, taps0.ok);
        let var_cols0 = gather_dvar(taps0.idx + offset, taps0.ok);
        if (POSITION_BLOCKS > 1u) {
          cols1 = gather_dy(taps1.idx + offset, taps1.ok);
          var_cols1 = gather_dvar(taps1.idx + offset, taps1.ok);
        }
        let chans0 = gather_w(t.w_rows0 + k);
        let sigma2_0 = gather_w_sigma2(t.w_rows0 + k);
        if (CHANNEL_BLOCKS > 1u) {
          chans1 = gather_w(t.w_rows1 + k);
          sigma2_1 = gather_w_sigma2(t.w_rows1 + k);
        }
        accumulate(&mean, cols0, cols1, chans0, chans1);
        accumulate(&variance, var_cols0, var_cols1, sigma2_0, sigma2_1);
        k += ksize;
        offset += ohw;
      }
    }
  }
  for (var cb = 0u; cb < CHANNEL_BLOCKS; cb++) {
    for (var pb = 0u; pb < POSITION_BLOCKS; pb++) {
      let ci0 = t.ci0 + 4u * cb;
      let q0 = t.q0 + 4u * pb;
      store_dx(t, ci0, q0, lrt_dx(t, ci0, q0, tile_block(mean, cb, pb), tile_block(variance, cb, pb)));
    }
  }
}

// ----------------------------------------------------------------------------- backward-weight

// dw[s,co,ci,i,j] = sum over the images of sample s and all output positions of
// dy[n,co,oh,ow] * x[n,ci, oh*sh-ph+i*dh, ow*sw-pw+j*dw].
// The images of a sample are split into chunks_per_sample chunks of images_per_chunk images so
// that small weight tensors still give enough parallel work; each chunk writes its partial sum
// (no atomics) and sum_chunks adds them (skipped when there is one chunk per sample).
// Columns here are the flattened weight entries k = (ci, i, j).

// 4 consecutive weight entries k0..: offset of x[0, ci, 0, 0] and the tap offsets i*dh - ph, j*dw - pw.
struct Entries {
  offset: vec4<i32>,
  tap_h: vec4<i32>,
  tap_w: vec4<i32>,
};

fn entries(k0: u32) -> Entries {
  let taps = params.kernel_h * params.kernel_w;
  let k = min(vec4<u32>(k0) + LANES, vec4<u32>(kernel_size() - 1u));
  let ci = k / taps;
  let r = k - ci * taps;
  let kh = r / params.kernel_w;
  let kw = r - kh * params.kernel_w;
  return Entries(vec4<i32>(ci * params.height * params.width), vec4<i32>(kh) * params.dilation.x - params.pad.x, vec4<i32>(kw) * params.dilation.y - params.pad.y);
}

// Input pixels that entries `e` see from output position (oh, ow) of the image at `image_base`.
fn entry_taps(e: Entries, oh: u32, ow: u32, image_base: i32) -> Taps {
  let ih = vec4<i32>(i32(oh) * params.stride.x) + e.tap_h;
  let iw = vec4<i32>(i32(ow) * params.stride.y) + e.tap_w;
  let ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(params.height))) & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(params.width)));
  let base = vec4<i32>(image_base) + e.offset;
  return Taps(select(base, base + ih * i32(params.width) + iw, ok), ok);
}

struct WeightTile {
  in_range: bool,
  chunk: u32,
  co0: u32,
  k0: u32,
  n_begin: u32,
  n_end: u32,
  entries0: Entries,
  entries1: Entries,
};

fn weight_tile(i: u32) -> WeightTile {
  let ti = tile_index(i, chunk_count(), params.cout, kernel_size());
  let chunk = ti.major;
  let s = chunk / params.chunks_per_sample;
  let sample_end = (s + 1u) * params.images_per_sample;
  let n_begin = min(s * params.images_per_sample + (chunk - s * params.chunks_per_sample) * params.images_per_chunk, sample_end);
  let n_end = min(n_begin + params.images_per_chunk, sample_end);
  return WeightTile(ti.in_range, chunk, ti.c0, ti.p0, n_begin, n_end, entries(ti.p0), entries(ti.p0 + 4u));
}

fn chunk_count() -> u32 {
  return (params.batch / params.images_per_sample) * params.chunks_per_sample;
}

// Offsets of dy[n, co, 0, 0] for 4 channels co0.. (clamped).
fn dy_rows(n: u32, co0: u32) -> vec4<i32> {
  return vec4<i32>(channel_rows(n * params.cout * out_size(), co0, params.cout, out_size()));
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = weight_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let chw = i32(params.cin * params.height * params.width);
  let every = vec4<bool>(true);
  var acc: Tile;
  var cols1 = vec4<f32>(0.0);
  var chans1 = vec4<f32>(0.0);
  for (var n = t.n_begin; n < t.n_end; n++) {
    let dy_rows0 = dy_rows(n, t.co0);
    let dy_rows1 = dy_rows(n, t.co0 + 4u);
    var p = 0;
    for (var oh = 0u; oh < params.out_h; oh++) {
      for (var ow = 0u; ow < params.out_w; ow++) {
        let taps0 = entry_taps(t.entries0, oh, ow, i32(n) * chw);
        let cols0 = gather_input(taps0.idx, taps0.ok);
        if (POSITION_BLOCKS > 1u) {
          let taps1 = entry_taps(t.entries1, oh, ow, i32(n) * chw);
          cols1 = gather_input(taps1.idx, taps1.ok);
        }
        let chans0 = gather_dy(dy_rows0 + p, every);
        if (CHANNEL_BLOCKS > 1u) { chans1 = gather_dy(dy_rows1 + p, every); }
        accumulate(&acc, cols0, cols1, chans0, chans1);
        p++;
      }
    }
  }
  for (var cb = 0u; cb < CHANNEL_BLOCKS; cb++) {
    for (var pb = 0u; pb < POSITION_BLOCKS; pb++) {
      let b = tile_block(acc, cb, pb);
      for (var c = 0u; c < 4u; c++) {
        for (var q = 0u; q < 4u; q++) {
          let slot = dw_slot(t, t.co0 + 4u * cb + c, t.k0 + 4u * pb + q);
          if (slot >= 0) { dw[slot] = b[c][q]; }
        }
      }
    }
  }
}

// Index of dw[chunk, co, k], or -1 outside the tensor.
fn dw_slot(t: WeightTile, co: u32, k: u32) -> i32 {
  if (co >= params.cout || k >= kernel_size()) { return -1; }
  return i32((t.chunk * params.cout + co) * kernel_size() + k);
}

// LRT: dw_mu = corr(x, dy) and dw_sigma2 = corr(x^2, dvar) in one pass over x.
@compute @workgroup_size(WG)
fn lrt_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = weight_tile(flat_index(gid, nwg, WG));
  if (!t.in_range) { return; }
  let chw = i32(params.cin * params.height * params.width);
  let every = vec4<bool>(true);
  var mean: Tile;
  var variance: Tile;
  var cols1 = vec4<f32>(0.0);
  var chans1 = vec4<f32>(0.0);
  var var_chans1 = vec4<f32>(0.0);
  for (var n = t.n_begin; n < t.n_end; n++) {
    let dy_rows0 = dy_rows(n, t.co0);
    let dy_rows1 = dy_rows(n, t.co0 + 4u);
    var p = 0;
    for (var oh = 0u; oh < params.out_h; oh++) {
      for (var ow = 0u; ow < params.out_w; ow++) {
        let taps0 = entry_taps(t.entries0, oh, ow, i32(n) * chw);
        let cols0 = gather_input(taps0.idx, taps0.ok);
        if (POSITION_BLOCKS > 1u) {
          let taps1 = entry_taps(t.entries1, oh, ow, i32(n) * chw);
          cols1 = gather_input(taps1.idx, taps1.ok);
        }
        let chans0 = gather_dy(dy_rows0 + p, every);
        let var_chans0 = gather_dvar(dy_rows0 + p, every);
        if (CHANNEL_BLOCKS > 1u) {
          chans1 = gather_dy(dy_rows1 + p, every);
          var_chans1 = gather_dvar(dy_rows1 + p, every);
        }
        accumulate(&mean, cols0, cols1, chans0, chans1);
        accumulate(&variance, cols0 * cols0, cols1 * cols1, var_chans0, var_chans1);
        p++;
      }
    }
  }
  for (var cb = 0u; cb < CHANNEL_BLOCKS; cb++) {
    for (var pb = 0u; pb < POSITION_BLOCKS; pb++) {
      let b_mean = tile_block(mean, cb, pb);
      let b_var = tile_block(variance, cb, pb);
      for (var c = 0u; c < 4u; c++) {
        for (var q = 0u; q < 4u; q++) {
          let slot = dw_slot(t, t.co0 + 4u * cb + c, t.k0 + 4u * pb + q);
          if (slot >= 0) {
            dw[slot] = b_mean[c][q];
            dw_sigma2[slot] = b_var[c][q];
          }
        }
      }
    }
  }
}

// total[s, m] = sum_{c < chunks_per_sample} partial[s * chunks_per_sample + c, m], m < count / S.
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
// One workgroup per (s, co), workgroup number = s * Cout + co; a strided sum, then a tree
// reduction (WG must be a power of two). Not a hot kernel: one barrier per halving is fine.
@compute @workgroup_size(WG)
fn bias_grad(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let slot = wid.x + wid.y * nwg.x;
  let s = slot / params.cout;
  let co = slot - s * params.cout;
  let ohw = out_size();
  let count = params.images_per_sample * ohw;
  // The whole workgroup takes the same branch (slot is uniform), as the barriers below require.
  let in_range = s < params.batch / params.images_per_sample;
  var sum = 0.0;
  if (in_range) {
    for (var e = lid; e < count; e += WG) {
      let n_local = e / ohw;
      let p = e - n_local * ohw;
      sum += dy[((s * params.images_per_sample + n_local) * params.cout + co) * ohw + p];
    }
  }
  bias_sums[lid] = sum;
  for (var span = WG / 2u; span > 0u; span /= 2u) {
    workgroupBarrier();
    if (lid < span) { bias_sums[lid] += bias_sums[lid + span]; }
  }
  if (lid == 0u && in_range) { db[slot] = bias_sums[0]; }
}
