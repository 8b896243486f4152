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
// Dispatch: ceil(n / WG) workgroups of WG invocations, folded by grid().

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

fn kept(i: u32) -> bool {
  return rand_uniform(params.key, params.offset + i, params.stream) >= params.p;
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  y[i] = select(0.0, x[i] * params.scale, kept(i));
}

// dx = dy * dy/dx = dy * scale where kept, else 0.
@compute @workgroup_size(WG)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  dx[i] = select(0.0, dy[i] * params.scale, kept(i));
}
