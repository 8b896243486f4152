// random.wgsl: counter-based random numbers (included with `//! include "random.wgsl"`).
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011). A draw is a pure function of (key, counter): the key is
// (seed, step) and the counter is (element index, stream, 0, 0). The forward
// and backward passes therefore regenerate exactly the same epsilon without
// storing it, and two steps never share a draw.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Full 32x32 -> 64-bit product as (hi, lo), from 16-bit halves (WGSL has no u64).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
  let al = a & 0xFFFFu;
  let ah = a >> 16u;
  let bl = b & 0xFFFFu;
  let bh = b >> 16u;
  let t = al * bl;
  let u = ah * bl + (t >> 16u);
  let w1 = al * bh + (u & 0xFFFFu);
  let hi = ah * bh + (u >> 16u) + (w1 >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key_in;
  for (var r = 0u; r < 10u; r = r + 1u) {
    let p0 = mul_hi_lo(PHILOX_M0, c.x);
    let p1 = mul_hi_lo(PHILOX_M1, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

// Uniform in (0, 1]: 24 random bits, never 0 (so log() below is finite).
fn u32_to_unit_open0(x: u32) -> f32 {
  return (f32(x >> 8u) + 1.0) * (1.0 / 16777216.0);
}

// Uniform in [0, 1).
fn rand_uniform(key: vec2<u32>, index: u32, stream: u32) -> f32 {
  let r = philox4x32_10(vec4<u32>(index, stream, 0u, 0u), key);
  return f32(r.x >> 8u) * (1.0 / 16777216.0);
}

// Standard normal by Box-Muller (Box & Muller 1958) from the first two Philox words.
fn rand_normal(key: vec2<u32>, index: u32, stream: u32) -> f32 {
  let r = philox4x32_10(vec4<u32>(index, stream, 0u, 0u), key);
  let u1 = u32_to_unit_open0(r.x);
  let u2 = f32(r.y >> 8u) * (1.0 / 16777216.0);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
