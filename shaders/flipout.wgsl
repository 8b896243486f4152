// flipout.wgsl: the elementwise steps of Flipout (Wen et al. 2018, "Flipout: Efficient
// pseudo-independent weight perturbations on mini-batches", eq. 3):
//   y_n = op(x_n, mu) + s_out,n * op(x_n * s_in,n, dW),   dW = sigma * eps,
// where dW is one draw per Monte Carlo sample, shared by its examples, and s_in, s_out are
// Rademacher signs per example (row) and channel. The products op(.) run on the GEMM core
// (conv2d_*.wgsl, matmul.wgsl); this file makes the signs and the perturbation.
//
// Sign contract: a tensor viewed as [rows, channels, inner] (inner = H * W for conv2d, 1 for
// linear) has sign(r, c) = +1 where rand_uniform(key, offset + r * channels + c, stream) < 1/2,
// else -1: the top bit of the Philox word (random.wgsl). A sign is a pure function of the key,
// so the backward pass regenerates it and nothing per example is stored.
// Perturbation contract (the same as sample.wgsl's sample_weights with mu = 0): sample s of
// element i of a parameter with n elements is softplus(rho[i]) * rand_normal(key, offset + s * n + i, stream).
//
// Entries:
//   flip_signs:   out[j] = sign(j / inner) * src[j]
//   add_flipped:  out[j] = base[j] + sign(j / inner) * src[j]
//   perturbation: delta[s * n + i] = softplus(rho[i]) * eps[s, i]
// Buffers (f32): src, base, out [count] (count = rows * channels * inner); rho [n], delta [samples * n].
// Dispatch: grid(ceil(count / (4 WG))) workgroups of WG invocations; invocation t handles elements
// 4t .. 4t + 3 (those < count). Their signs lie among pairs q0 .. q0 + 3, q0 = 4t / inner (four
// consecutive elements advance the pair index by at most 3), so one rand_uniform4 serves all four.

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;

// (src, not x: wgsl_reflect ignores shadowing, and common.wgsl's softplus takes a parameter x.)
// count: elements (or samples * n for perturbation); inner: elements per (row, channel) pair;
// n: parameter elements per sample; key, stream, offset: the generator key.
struct Params { count: u32, inner: u32, n: u32, stream: u32, key: vec2<u32>, offset: u32 };

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> base: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> rho: array<f32>;
@group(0) @binding(5) var<storage, read_write> delta: array<f32>;

// The signs of elements j0 .. j0 + 3 (each < count): +1 or -1 from the uniforms of their pairs.
fn signs4(j0: u32) -> vec4<f32> {
  let q0 = j0 / params.inner;
  let u = rand_uniform4(params.key, params.offset + q0, params.stream);
  var s = vec4<f32>(1.0);
  for (var k = 0u; k < 4u; k = k + 1u) {
    let lane = (j0 + k) / params.inner - q0;
    s[k] = select(1.0, -1.0, u[min(lane, 3u)] >= 0.5);
  }
  return s;
}

@compute @workgroup_size(WG)
fn flip_signs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.count) { return; }
  let s = signs4(j0);
  for (var k = 0u; k < min(params.count - j0, 4u); k = k + 1u) { out[j0 + k] = s[k] * src[j0 + k]; }
}

// The forward's y = mean + s_out * perturbed output, and the backward's dx = dx_mean + s_in * dx_perturbed.
@compute @workgroup_size(WG)
fn add_flipped(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.count) { return; }
  let s = signs4(j0);
  for (var k = 0u; k < min(params.count - j0, 4u); k = k + 1u) { out[j0 + k] = base[j0 + k] + s[k] * src[j0 + k]; }
}

// dW = sigma * eps, sigma = softplus(rho) (Blundell et al. 2015, sec. 3.2, without the mean: the
// mean path of eq. 3 carries mu), four consecutive elements of the S * n draws per invocation.
@compute @workgroup_size(WG)
fn perturbation(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.count) { return; }
  let eps = rand_normal4(params.key, params.offset + j0, params.stream);
  var i = j0 % params.n;
  for (var k = 0u; k < min(params.count - j0, 4u); k = k + 1u) {
    delta[j0 + k] = softplus(rho[i]) * eps[k];
    i = select(i + 1u, 0u, i + 1u == params.n);
  }
}
