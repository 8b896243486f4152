// random.wgsl: counter-based random numbers (included with `//! include "random.wgsl"`).
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011). A draw is a pure function of (key, element index, stream): the key is
// (seed, step), so the forward and backward passes regenerate exactly the same
// epsilon without storing it, and two steps never share a draw.
//
// Index contract: one Philox call serves four consecutive elements. Element
// `index` is lane (index & 3) of the four values made from the four words of
//   philox4x32_10(counter = (index >> 2, stream, 0, 0), key):
// normals by Box-Muller (Box & Muller 1958) on two word pairs (words 0, 1 ->
// lanes 0, 1 as r cos, r sin; words 2, 3 -> lanes 2, 3), uniforms as the top
// 24 bits of word (index & 3). rand_normal / rand_uniform give one element,
// rand_normal4 / rand_uniform4 elements index .. index + 3 (one Philox call when
// index % 4 == 0, two otherwise), with the same values as the scalar forms.
// Kernels that produce consecutive elements should take them four at a time.
// A normal and a uniform at the same (key, index, stream) share Philox words:
// give dropout masks and weight noise different streams.
//
// Every name here starts with rng_: wgsl_reflect ignores shadowing when it
// works out which bindings an entry uses, so a parameter named like a binding
// of the including shader (x, a, key, ...) would make it look used.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Full 32x32 -> 64-bit product as (hi, lo), from 16-bit halves (WGSL has no u64).
fn mul_hi_lo(rng_a: u32, rng_b: u32) -> vec2<u32> {
  let rng_al = rng_a & 0xFFFFu;
  let rng_ah = rng_a >> 16u;
  let rng_bl = rng_b & 0xFFFFu;
  let rng_bh = rng_b >> 16u;
  let rng_t = rng_al * rng_bl;
  let rng_u = rng_ah * rng_bl + (rng_t >> 16u);
  let rng_w1 = rng_al * rng_bh + (rng_u & 0xFFFFu);
  let rng_hi = rng_ah * rng_bh + (rng_u >> 16u) + (rng_w1 >> 16u);
  return vec2<u32>(rng_hi, rng_a * rng_b);
}

fn philox4x32_10(rng_counter: vec4<u32>, rng_key_in: vec2<u32>) -> vec4<u32> {
  var rng_c = rng_counter;
  var rng_k = rng_key_in;
  for (var rng_r = 0u; rng_r < 10u; rng_r = rng_r + 1u) {
    let rng_p0 = mul_hi_lo(PHILOX_M0, rng_c.x);
    let rng_p1 = mul_hi_lo(PHILOX_M1, rng_c.z);
    rng_c = vec4<u32>(rng_p1.x ^ rng_c.y ^ rng_k.x, rng_p1.y, rng_p0.x ^ rng_c.w ^ rng_k.y, rng_p0.y);
    rng_k = rng_k + vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return rng_c;
}

// The four words behind elements 4 block .. 4 block + 3. Blocks wrap like the u32
// element index (block 2^30 is block 0), so rand_normal4 near 2^32 agrees with rand_normal.
fn rng_block_words(rng_key: vec2<u32>, rng_block: u32, rng_stream: u32) -> vec4<u32> {
  return philox4x32_10(vec4<u32>(rng_block & 0x3FFFFFFFu, rng_stream, 0u, 0u), rng_key);
}

// Uniform in (0, 1]: 24 random bits, never 0 (so log() below is finite).
fn u32_to_unit_open0(rng_bits: u32) -> f32 {
  return (f32(rng_bits >> 8u) + 1.0) * (1.0 / 16777216.0);
}

// Uniform in [0, 1): 24 random bits (exact in f32).
fn rng_unit(rng_bits: u32) -> f32 {
  return f32(rng_bits >> 8u) * (1.0 / 16777216.0);
}

// Box-Muller pair (r cos theta, r sin theta), r = sqrt(-2 log u1) with u1 in (0, 1] from word a,
// theta = 2 pi (u2 - 1/2) in [-pi, pi) from word b (u2 in [0, 1)): WGSL bounds the error of cos and
// sin only on [-pi, pi], and the shift by pi flips both signs, which leaves N(0, 1) unchanged.
fn rng_box_muller(rng_a: u32, rng_b: u32) -> vec2<f32> {
  let rng_r = sqrt(-2.0 * log(u32_to_unit_open0(rng_a)));
  let rng_theta = (f32(rng_b >> 8u) - 8388608.0) * (6.283185307179586 / 16777216.0);
  return rng_r * vec2<f32>(cos(rng_theta), sin(rng_theta));
}

// The four normals of one block of words (lanes 0, 1 from words 0, 1; lanes 2, 3 from words 2, 3).
fn rng_normals_of(rng_w: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(rng_box_muller(rng_w.x, rng_w.y), rng_box_muller(rng_w.z, rng_w.w));
}

fn rng_uniforms_of(rng_w: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(rng_unit(rng_w.x), rng_unit(rng_w.y), rng_unit(rng_w.z), rng_unit(rng_w.w));
}

// Elements lane .. lane + 3 of the eight values lo (elements 0..3) and hi (4..7), lane in 0..3.
fn rng_window(rng_lo: vec4<f32>, rng_hi: vec4<f32>, rng_lane: u32) -> vec4<f32> {
  switch rng_lane {
    case 0u: { return rng_lo; }
    case 1u: { return vec4<f32>(rng_lo.yzw, rng_hi.x); }
    case 2u: { return vec4<f32>(rng_lo.zw, rng_hi.xy); }
    default: { return vec4<f32>(rng_lo.w, rng_hi.xyz); }
  }
}

// Uniform in [0, 1) of element index.
fn rand_uniform(rng_key: vec2<u32>, rng_index: u32, rng_stream: u32) -> f32 {
  let rng_w = rng_block_words(rng_key, rng_index >> 2u, rng_stream);
  let rng_lane = rng_index & 3u;
  let rng_pair = select(rng_w.xy, rng_w.zw, rng_lane >= 2u);
  return rng_unit(select(rng_pair.x, rng_pair.y, (rng_lane & 1u) == 1u));
}

// Uniforms of elements index .. index + 3.
fn rand_uniform4(rng_key: vec2<u32>, rng_index: u32, rng_stream: u32) -> vec4<f32> {
  let rng_lo = rng_uniforms_of(rng_block_words(rng_key, rng_index >> 2u, rng_stream));
  if ((rng_index & 3u) == 0u) { return rng_lo; }
  let rng_hi = rng_uniforms_of(rng_block_words(rng_key, (rng_index >> 2u) + 1u, rng_stream));
  return rng_window(rng_lo, rng_hi, rng_index & 3u);
}

// Standard normal of element index: one Box-Muller pair of its block, the cos or sin half.
fn rand_normal(rng_key: vec2<u32>, rng_index: u32, rng_stream: u32) -> f32 {
  let rng_w = rng_block_words(rng_key, rng_index >> 2u, rng_stream);
  let rng_lane = rng_index & 3u;
  let rng_pair = select(rng_w.xy, rng_w.zw, rng_lane >= 2u);
  let rng_z = rng_box_muller(rng_pair.x, rng_pair.y);
  return select(rng_z.x, rng_z.y, (rng_lane & 1u) == 1u);
}

// Standard normals of elements index .. index + 3.
fn rand_normal4(rng_key: vec2<u32>, rng_index: u32, rng_stream: u32) -> vec4<f32> {
  let rng_lo = rng_normals_of(rng_block_words(rng_key, rng_index >> 2u, rng_stream));
  if ((rng_index & 3u) == 0u) { return rng_lo; }
  let rng_hi = rng_normals_of(rng_block_words(rng_key, (rng_index >> 2u) + 1u, rng_stream));
  return rng_window(rng_lo, rng_hi, rng_index & 3u);
}
