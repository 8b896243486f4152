// random.wgsl: counter-based random numbers (included with `//! include "random.wgsl"`).
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011). A draw is a pure function of (key, counter): the key is
// (seed, step) and the counter is (element index, stream, 0, 0). The forward
// and backward passes therefore regenerate exactly the same epsilon without
// storing it, and two steps never share a draw.
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

// Uniform in (0, 1]: 24 random bits, never 0 (so log() below is finite).
fn u32_to_unit_open0(rng_bits: u32) -> f32 {
  return (f32(rng_bits >> 8u) + 1.0) * (1.0 / 16777216.0);
}

// Uniform in [0, 1).
fn rand_uniform(rng_key: vec2<u32>, rng_index: u32, rng_stream: u32) -> f32 {
  let rng_words = philox4x32_10(vec4<u32>(rng_index, rng_stream, 0u, 0u), rng_key);
  return f32(rng_words.x >> 8u) * (1.0 / 16777216.0);
}

// Standard normal by Box-Muller (Box & Muller 1958) from the first two Philox words.
fn rand_normal(rng_key: vec2<u32>, rng_index: u32, rng_stream: u32) -> f32 {
  let rng_words = philox4x32_10(vec4<u32>(rng_index, rng_stream, 0u, 0u), rng_key);
  let rng_u1 = u32_to_unit_open0(rng_words.x);
  let rng_u2 = f32(rng_words.y >> 8u) * (1.0 / 16777216.0);
  return sqrt(-2.0 * log(rng_u1)) * cos(6.283185307179586 * rng_u2);
}
