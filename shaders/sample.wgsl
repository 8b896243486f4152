// sample.wgsl: reparameterized weight sampling (Bayes by Backprop) and raw draws of the generator.
//
// Blundell et al. 2015 ("Weight Uncertainty in Neural Networks"), section 3.2:
// w = mu + sigma * eps with sigma = softplus(rho) = log(1 + exp(rho)) and
// eps ~ N(0, 1), so gradients reach mu and rho through w:
//   dL/dmu = dL/dw,   dL/drho = dL/dw * eps * sigmoid(rho)   (d softplus = sigmoid).
//
// Index contract (shared with kl.wgsl and src/ops/sample.ts): for S samples of
// a parameter tensor with n elements, sample s of element i uses
//   eps = rand_normal(key, offset + s * n + i, stream),   key = (seed, step),
// which is also element s * n + i of draw_normal over S * n elements with the
// same key and offset (offset = s0 * n makes them samples s0..s0+S-1 of a larger
// draw). The backward pass regenerates eps instead of storing it.
// random.wgsl makes four consecutive draws from one Philox call, so every entry
// that draws takes four consecutive elements per invocation (rand_normal4).
// rand_uniform and rand_normal at the same (key, index, stream) share Philox
// words, so dropout masks and weight noise must use different streams.
//
// Buffers (f32 unless noted): mu [n], rho [n], w [S, n] (written), dw [S, n],
// d_mu [n] and d_rho [n] (written), sigma2 [n] (written), d_sigma2 [n],
// draws [n] (written). Test-only entries: counters [4m] and keys [2m] u32 ->
// words [4m] u32 (philox_words); factors [2m] u32 -> words [2m] u32 (mul_hi_lo_words);
// draws [n] (normal_scalar, uniform_scalar) and [4n] (normal4_at, uniform4_at).
// Dispatch: ceil(count / WG) workgroups folded by grid(), where count is the
// number of invocations: ceil(S * n / 4) for sample_weights, ceil(n / 4) for
// sample_weights_backward (which loops over the S samples, no atomics needed),
// draw_normal and draw_uniform, n for the other entries. An invocation with
// first element j0 = 4 * invocation handles j0 .. j0 + 3 and skips those >= its count.

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;

// n: elements per sample (or draws); samples: S; key, stream: the generator key; offset: the
// counter index of the first draw. Entries that draw nothing ignore key, stream and offset.
struct Params { n: u32, samples: u32, stream: u32, key: vec2<u32>, offset: u32 };

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> mu: array<f32>;
@group(0) @binding(2) var<storage, read> rho: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;
@group(0) @binding(4) var<storage, read> dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_mu: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_rho: array<f32>;
@group(0) @binding(7) var<storage, read_write> sigma2: array<f32>;
@group(0) @binding(8) var<storage, read> d_sigma2: array<f32>;
@group(0) @binding(9) var<storage, read_write> draws: array<f32>;
@group(0) @binding(10) var<storage, read> counters: array<u32>;
@group(0) @binding(11) var<storage, read> keys: array<u32>;
@group(0) @binding(12) var<storage, read_write> words: array<u32>;
@group(0) @binding(13) var<storage, read> factors: array<u32>;

// w[s, i] = mu[i] + softplus(rho[i]) * eps[s, i] over all S * n elements, four per invocation.
@compute @workgroup_size(WG)
fn sample_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  let total = params.n * params.samples;
  if (j0 >= total) { return; }
  let eps = rand_normal4(params.key, params.offset + j0, params.stream);
  var i = j0 % params.n;
  for (var k = 0u; k < 4u; k = k + 1u) {
    if (j0 + k >= total) { break; }
    w[j0 + k] = mu[i] + softplus(rho[i]) * eps[k];
    i = select(i + 1u, 0u, i + 1u == params.n);
  }
}

// d_mu[i] = sum_s dw[s, i];  d_rho[i] = sigmoid(rho[i]) * sum_s dw[s, i] * eps[s, i], for the four
// elements i0 .. i0 + 3 of mu: one rand_normal4 per sample (one Philox call when offset + s * n + i0
// is a multiple of 4, two otherwise).
@compute @workgroup_size(WG)
fn sample_weights_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = 4u * flat_index(gid, nwg, WG);
  if (i0 >= params.n) { return; }
  let m = min(params.n - i0, 4u);
  var sum_dw = vec4<f32>(0.0);
  var sum_dw_eps = vec4<f32>(0.0);
  for (var s = 0u; s < params.samples; s = s + 1u) {
    let j = s * params.n + i0;
    let eps = rand_normal4(params.key, params.offset + j, params.stream);
    for (var k = 0u; k < m; k = k + 1u) {
      sum_dw[k] = sum_dw[k] + dw[j + k];
      sum_dw_eps[k] = sum_dw_eps[k] + dw[j + k] * eps[k];
    }
  }
  for (var k = 0u; k < m; k = k + 1u) {
    d_mu[i0 + k] = sum_dw[k];
    d_rho[i0 + k] = sum_dw_eps[k] * sigmoid(rho[i0 + k]);
  }
}

// sigma^2 = softplus(rho)^2: the weight variance that the local reparameterization
// trick (Kingma et al. 2015, eq. 6) propagates to the activations.
@compute @workgroup_size(WG)
fn sigma_squared(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let sigma = softplus(rho[i]);
  sigma2[i] = sigma * sigma;
}

// d sigma^2 / d rho = 2 softplus(rho) sigmoid(rho).
@compute @workgroup_size(WG)
fn sigma_squared_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  d_rho[i] = d_sigma2[i] * 2.0 * softplus(rho[i]) * sigmoid(rho[i]);
}

// Elements j0 .. j0 + 3 of draws = rand_normal(key, offset + j, stream).
@compute @workgroup_size(WG)
fn draw_normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.n) { return; }
  let z = rand_normal4(params.key, params.offset + j0, params.stream);
  for (var k = 0u; k < min(params.n - j0, 4u); k = k + 1u) { draws[j0 + k] = z[k]; }
}

// Elements j0 .. j0 + 3 of draws = rand_uniform(key, offset + j, stream).
@compute @workgroup_size(WG)
fn draw_uniform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = 4u * flat_index(gid, nwg, WG);
  if (j0 >= params.n) { return; }
  let u = rand_uniform4(params.key, params.offset + j0, params.stream);
  for (var k = 0u; k < min(params.n - j0, 4u); k = k + 1u) { draws[j0 + k] = u[k]; }
}

// Test-only: the scalar forms, one element per invocation: draws[j] = rand_normal / rand_uniform of
// offset + j, so that tests can check them against the four-at-a-time entries above.
@compute @workgroup_size(WG)
fn normal_scalar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  draws[j] = rand_normal(params.key, params.offset + j, params.stream);
}

@compute @workgroup_size(WG)
fn uniform_scalar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  draws[j] = rand_uniform(params.key, params.offset + j, params.stream);
}

// Test-only: the vector forms at every alignment: draws[4j .. 4j + 3] = rand_normal4 / rand_uniform4
// of offset + j (elements offset + j .. offset + j + 3).
@compute @workgroup_size(WG)
fn normal4_at(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  let z = rand_normal4(params.key, params.offset + j, params.stream);
  for (var k = 0u; k < 4u; k = k + 1u) { draws[4u * j + k] = z[k]; }
}

@compute @workgroup_size(WG)
fn uniform4_at(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  let u = rand_uniform4(params.key, params.offset + j, params.stream);
  for (var k = 0u; k < 4u; k = k + 1u) { draws[4u * j + k] = u[k]; }
}

// Test-only: the four Philox4x32-10 output words for arbitrary counters and keys,
// so that test/ops/random.test.ts can compare the generator with a BigInt
// implementation and the Random123 known answers.
@compute @workgroup_size(WG)
fn philox_words(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  let c = vec4<u32>(counters[4u * j], counters[4u * j + 1u], counters[4u * j + 2u], counters[4u * j + 3u]);
  let r = philox4x32_10(c, vec2<u32>(keys[2u * j], keys[2u * j + 1u]));
  words[4u * j] = r.x;
  words[4u * j + 1u] = r.y;
  words[4u * j + 2u] = r.z;
  words[4u * j + 3u] = r.w;
}

// Test-only: the 64-bit products (hi, lo) of mul_hi_lo for arbitrary factor pairs.
@compute @workgroup_size(WG)
fn mul_hi_lo_words(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  let p = mul_hi_lo(factors[2u * j], factors[2u * j + 1u]);
  words[2u * j] = p.x;
  words[2u * j + 1u] = p.y;
}
