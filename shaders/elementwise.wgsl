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
// Dispatch: ceil(n / (WG * PER_THREAD)) workgroups folded into (x, y) by grid(); invocation l of workgroup w
// handles elements w * WG * PER_THREAD + k * WG + l for k < PER_THREAD, so neighbouring invocations touch
// neighbouring addresses (coalesced on GPUs). Several elements per invocation because SwiftShader's cost is
// per invocation more than per element: a 1M-element add took ~115 ms with 1 element per invocation and
// ~45-60 ms with 4-16 (best of 8 runs on a loaded 2-core machine).
// These kernels are memory-bound: one load/store per element and no workgroup memory.

override WG: u32 = 64;
override PER_THREAD: u32 = 8;

// The first element of this invocation; the others follow at strides of WG.
fn first_element(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
}

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
fn add(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    out[i] = a[i] + b[i];
  }
}

@compute @workgroup_size(WG)
fn add_into(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    acc[i] = acc[i] + params.alpha * a[i];
  }
}

@compute @workgroup_size(WG)
fn scale(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    out[i] = params.alpha * a[i];
  }
}

@compute @workgroup_size(WG)
fn square(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    let v = a[i];
    out[i] = v * v;
  }
}

@compute @workgroup_size(WG)
fn fill(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    words[i] = params.bits;
  }
}

@compute @workgroup_size(WG)
fn tile(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    out[i] = a[i % params.m];
  }
}
