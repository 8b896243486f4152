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
// rand_uniform and rand_normal at the same (key, index, stream) share Philox
// words, so dropout masks and weight noise must use different streams.
//
// Buffers (f32 unless noted): mu [n], rho [n], w [S, n] (written), dw [S, n],
// d_mu [n] and d_rho [n] (written), sigma2 [n] (written), d_sigma2 [n],
// draws [n] (written). Test-only entries: counters [4m] and keys [2m] u32 ->
// words [4m] u32 (philox_words); factors [2m] u32 -> words [2m] u32 (mul_hi_lo_words).
// Dispatch: one invocation per output element, ceil(count / WG) workgroups
// folded by grid(); sample_weights_backward has one invocation per element of
// mu and loops over the S samples (no atomics needed).

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

// w[s, i] = mu[i] + softplus(rho[i]) * eps[s, i] over all S * n elements.
@compute @workgroup_size(WG)
fn sample_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n * params.samples) { return; }
  let i = j % params.n;
  w[j] = mu[i] + softplus(rho[i]) * rand_normal(params.key, params.offset + j, params.stream);
}

// d_mu[i] = sum_s dw[s, i];  d_rho[i] = sigmoid(rho[i]) * sum_s dw[s, i] * eps[s, i].
@compute @workgroup_size(WG)
fn sample_weights_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  var sum_dw = 0.0;
  var sum_dw_eps = 0.0;
  for (var s = 0u; s < params.samples; s = s + 1u) {
    let j = s * params.n + i;
    sum_dw = sum_dw + dw[j];
    sum_dw_eps = sum_dw_eps + dw[j] * rand_normal(params.key, params.offset + j, params.stream);
  }
  d_mu[i] = sum_dw;
  d_rho[i] = sum_dw_eps * sigmoid(rho[i]);
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

@compute @workgroup_size(WG)
fn draw_normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  draws[j] = rand_normal(params.key, params.offset + j, params.stream);
}

@compute @workgroup_size(WG)
fn draw_uniform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n) { return; }
  draws[j] = rand_uniform(params.key, params.offset + j, params.stream);
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
