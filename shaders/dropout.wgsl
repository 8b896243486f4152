// dropout.wgsl: inverted dropout (Srivastava et al. 2014, with the 1 / (1 - p) scaling at training
// time so that prediction needs no rescaling).
//
// Element i is kept where rand_uniform(key, offset + i, stream) >= p, so the keep probability is 1 - p
// (up to the 2^-24 grid of the uniforms). Kept elements are scaled by scale = 1 / (1 - p),
// dropped ones are 0. The backward pass regenerates the same mask from the same key: no mask
// buffer is stored. rand_uniform shares Philox words with rand_normal at the same
// (key, index, stream): give dropout a stream of its own.
//
// Buffers (f32): x [n] -> y [n] (forward); dy [n] -> dx [n] (backward).
// Dispatch: ceil(ceil(n / 4) / WG) workgroups of WG invocations, folded by grid(); invocation t
// handles elements 4t .. 4t + 3 (those < n) with one rand_uniform4 (one Philox call when offset is
// a multiple of 4, two otherwise).

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;

// p: drop probability in [0, 1); scale: 1 / (1 - p), computed in float64 on the CPU;
// offset: counter index of element 0 (see RandomKey.offset).
struct Params { n: u32, stream: u32, key: vec2<u32>, p: f32, scale: f32, offset: u32 };

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// Whether elements j0 .. j0 + 3 are kept.
fn kept4(j0: u32) -> vec4<bool> {
  return rand_uniform4(params.key, params.offset + j0, params.stream) >= vec4<f32>(params.p);
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.n) { return; }
  let kept = kept4(j0);
  for (var k = 0u; k < min(params.n - j0, 4u); k = k + 1u) { y[j0 + k] = select(0.0, x[j0 + k] * params.scale, kept[k]); }
}

// dx = dy * dy/dx = dy * scale where kept, else 0.
@compute @workgroup_size(WG)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.n) { return; }
  let kept = kept4(j0);
  for (var k = 0u; k < min(params.n - j0, 4u); k = k + 1u) { dx[j0 + k] = select(0.0, dy[j0 + k] * params.scale, kept[k]); }
}
