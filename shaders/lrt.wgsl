// lrt.wgsl: the elementwise step of every local-reparameterization backward pass (linear and
// conv2d alike; Kingma, Salimans & Welling 2015, eq. 6).
//
// The forward drew y = mean + std * eps with std = sqrt(var + 1e-16) and
// eps = rand_normal(key, offset + i, stream) for output i; here the same eps is regenerated (never
// stored) and dvar[i] = dL/dvar = dy[i] * eps / (2 std[i]), since d sqrt(v) / dv = 1 / (2 sqrt(v)).
//
// Buffers: dy, stddev, dvar, all [count]. Dispatch: grid(ceil(count / (4 WG))) workgroups of WG
// invocations, each handling 4 consecutive elements with one rand_normal4 call.

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;

struct Params {
  count: u32,
  key: vec2<u32>,
  stream: u32,
  offset: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stddev: array<f32>;
@group(0) @binding(3) var<storage, read_write> dvar: array<f32>;

@compute @workgroup_size(WG)
fn lrt_dvar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = 4u * flat_index(gid, nwg, WG);
  if (i0 >= params.count) { return; }
  let eps = rand_normal4(params.key, params.offset + i0, params.stream);
  for (var j = 0u; j < 4u; j++) {
    let i = i0 + j;
    if (i < params.count) { dvar[i] = dy[i] * eps[j] / (2.0 * stddev[i]); }
  }
}
