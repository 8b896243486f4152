// elementwise.wgsl: the small arithmetic a network's training loop needs between layers.
//
//   add       out[i] = a[i] + b[i]
//   add_into  acc[i] += alpha * a[i]           (gradient accumulation, in place)
//   scale     out[i] = alpha * a[i]
//   square    out[i] = a[i] * a[i]
//   fill      words[i] = bits                  (the 32-bit pattern of the value, so f32, u32 and i32 tensors share it)
//   tile      out[i] = a[i % params.m]         (out = [times, ...a.shape]: T Monte Carlo samples as a batch dimension)
//
// Buffers: flat arrays of n = params.n elements (m = params.m for tile's source).
// Dispatch: one invocation per output element; ceil(n / WG) workgroups folded into (x, y) by grid().
// These kernels are memory-bound: one load/store per element and no workgroup memory.

//! include "common.wgsl"

override WG: u32 = 64;

struct Params {
  n: u32,        // elements written
  m: u32,        // tile: elements of the source (otherwise unused)
  alpha: f32,    // add_into, scale
  bits: u32,     // fill: bit pattern to store
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;
@group(0) @binding(5) var<storage, read_write> words: array<u32>;

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  out[i] = a[i] + b[i];
}

@compute @workgroup_size(WG)
fn add_into(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  acc[i] = acc[i] + params.alpha * a[i];
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  out[i] = params.alpha * a[i];
}

@compute @workgroup_size(WG)
fn square(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let v = a[i];
  out[i] = v * v;
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  words[i] = params.bits;
}

@compute @workgroup_size(WG)
fn tile(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  out[i] = a[i % params.m];
}
