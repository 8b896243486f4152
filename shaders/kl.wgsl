// kl.wgsl: KL(q || p) between the weight posterior and the prior, per element, and its gradients.
//
// q(w) = N(mu, sigma^2) with sigma = softplus(rho) (Blundell et al. 2015, sec. 3.2).
// Direction: KL(q || p), posterior against prior, as the ELBO needs. (PyTorch-
// BayesianCNN's calculate_kl(prior_mu, prior_sigma, mu, sigma) computes KL(p || q)
// by its argument order.)
//
// The prior is a two-component scale mixture with a common mean (Blundell et al.
// 2015, eq. 7): p(w) = pi N(w; prior_mu, sigma1^2) + (1 - pi) N(w; prior_mu, sigma2^2),
// passed as log_coef_k = log(weight_k) - log(sigma_k) and inv_var_k = 1 / sigma_k^2.
// A Gaussian prior is component 1 with weight 1 (log_coef2 = -1e30, so that
// component contributes exp(-1e30) = 0 without an infinity in the uniforms).
// The -log(sqrt(2 pi)) of every normal density cancels in log q - log p and is dropped.
//
// Entries:
//   kl_gaussian_terms     terms[i] = KL(N(mu_i, sigma_i^2) || N(prior_mu, sigma1^2)) in closed form:
//                         log(sigma1 / sigma) + (sigma^2 + (mu - prior_mu)^2) / (2 sigma1^2) - 1/2
//   kl_gaussian_backward  d_mu += scale * (mu - prior_mu) / sigma1^2
//                         d_rho += scale * (sigma / sigma1^2 - 1 / sigma) * sigmoid(rho)
//   kl_gaussian_tensor_terms     the closed form of kl_gaussian_terms against a prior of its own per
//                                element, N(prior_mean[i], prior_sigma[i]^2) (empirical-Bayes priors
//                                centred on trained weights, Krishnan et al. 2020, MOPED), written with
//                                the ratios sigma / sigma_p and (mu - mu_p) / sigma_p so that a small
//                                sigma_p never forms 1 / sigma_p^2 alone
//   kl_gaussian_tensor_backward  its gradients: d_mu += scale * (mu - mu_p) / sigma_p^2,
//                                d_rho += scale * (sigma / sigma_p^2 - 1 / sigma) * sigmoid(rho)
//   kl_mc_terms           terms[s, i] = log q(w_si) - log p(w_si): the Monte Carlo estimate
//                         (Blundell et al. 2015, eq. 2) is their sum times 1/S, for samples w [S, n] of sample.wgsl
//   kl_mc_backward        the gradient of that estimate through w = mu + sigma * eps, eps
//                         regenerated from the key with the index contract of sample.wgsl
//                         (element s * n + i). Along the path, log q(mu + sigma eps | mu, sigma)
//                         = -log sigma - eps^2 / 2, so log q contributes 0 to d/dmu and -1/sigma
//                         to d/dsigma; log p contributes -p'(w)/p(w) * (1, eps).
// The terms are summed by reduce.wgsl (src/ops/kl.ts; the 1/S of the Monte Carlo mean is the
// sum's scale); the backward entries add
// into d_mu and d_rho in place (data gradient + scale * KL gradient).
//
// Buffers (f32): mu [n], rho [n], w [S, n], prior_mean [n] and prior_sigma [n] (> 0; the tensor
// entries), terms [n] or [S, n] (written),
// d_mu [n] and d_rho [n] (read and written).
// Dispatch: one invocation per term, or per element of mu for the backward
// entries (kl_mc_backward loops over the S samples); ceil(count / WG)
// workgroups folded by grid().

//! include "common.wgsl"
//! include "random.wgsl"

override WG: u32 = 64;

// n: elements of mu; samples: S; key, stream: the generator key of the samples (kl_mc_backward);
// prior_mu, log_coef1, log_coef2, inv_var1, inv_var2: the prior (see above); scale: gradient
// factor of the backward entries; inv_samples: 1 / S (kl_mc_backward).
struct Params {
  n: u32,
  samples: u32,
  stream: u32,
  key: vec2<u32>,
  prior_mu: f32,
  log_coef1: f32,
  log_coef2: f32,
  inv_var1: f32,
  inv_var2: f32,
  scale: f32,
  inv_samples: f32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> mu: array<f32>;
@group(0) @binding(2) var<storage, read> rho: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> terms: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_mu: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_rho: array<f32>;
@group(0) @binding(7) var<storage, read> prior_mean: array<f32>;
@group(0) @binding(8) var<storage, read> prior_sigma: array<f32>;

// log(softplus(rho)). Below -15, softplus(rho) = e^rho (1 - e^rho / 2 + ...), whose log is rho to
// within e^rho / 2 < 2e-7 (1e-8 relative): returning rho directly keeps log sigma finite and exact
// where e^rho underflows (rho < -87).
fn log_softplus(r: f32) -> f32 {
  if (r < -15.0) { return r; }
  return log(softplus(r));
}

// sigmoid(rho) / softplus(rho) = (d sigma / d rho) / sigma, without forming 1 / sigma:
// below -15 the ratio is (e^rho / (1 + e^rho)) / (e^rho (1 - e^rho / 2 + ...)) = 1 - e^rho / 2 + O(e^2rho).
fn sigmoid_over_softplus(r: f32) -> f32 {
  if (r < -15.0) { return 1.0 - 0.5 * exp_accurate(r); }
  return sigmoid(r) / softplus(r);
}

// The two log-weighted component densities a_k = log(weight_k N(w; prior_mu, sigma_k^2)) + log sqrt(2 pi).
fn prior_components(v: f32) -> vec2<f32> {
  let d = v - params.prior_mu;
  let half_d2 = 0.5 * d * d;
  return vec2<f32>(params.log_coef1 - half_d2 * params.inv_var1, params.log_coef2 - half_d2 * params.inv_var2);
}

// log p(w) + log sqrt(2 pi) as a log-sum-exp: max + log(1 + exp(-|a1 - a2|)) never overflows and
// stays finite when both densities underflow (a narrow sigma2 and a large |w|).
// log(1 + x) rounds with an absolute error of about 2^-24, negligible against |log p|.
fn log_prior(v: f32) -> f32 {
  let a = prior_components(v);
  return max(a.x, a.y) + log(1.0 + exp(-abs(a.x - a.y)));
}

// d log p / dw = -(w - prior_mu) * (r1 / sigma1^2 + r2 / sigma2^2) with the responsibilities
// r_k = weight_k N_k / p = sigmoid(a_k - a_other) (stable for any gap).
fn d_log_prior(v: f32) -> f32 {
  let a = prior_components(v);
  let r1 = sigmoid(a.x - a.y);
  let r2 = sigmoid(a.y - a.x);
  return -(v - params.prior_mu) * (r1 * params.inv_var1 + r2 * params.inv_var2);
}

@compute @workgroup_size(WG)
fn kl_gaussian_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let sigma = softplus(rho[i]);
  let d = mu[i] - params.prior_mu;
  let log_sigma_p = -params.log_coef1; // the prior is component 1, weight 1
  terms[i] = (log_sigma_p - log_softplus(rho[i])) + 0.5 * (sigma * sigma + d * d) * params.inv_var1 - 0.5;
}

@compute @workgroup_size(WG)
fn kl_gaussian_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let r = rho[i];
  let sigma = softplus(r);
  d_mu[i] = d_mu[i] + params.scale * (mu[i] - params.prior_mu) * params.inv_var1;
  d_rho[i] = d_rho[i] + params.scale * (sigma * params.inv_var1 * sigmoid(r) - sigmoid_over_softplus(r));
}

@compute @workgroup_size(WG)
fn kl_gaussian_tensor_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let sigma_p = prior_sigma[i];
  let ratio = softplus(rho[i]) / sigma_p;
  let z = (mu[i] - prior_mean[i]) / sigma_p;
  terms[i] = (log(sigma_p) - log_softplus(rho[i])) + 0.5 * (ratio * ratio + z * z) - 0.5;
}

@compute @workgroup_size(WG)
fn kl_gaussian_tensor_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let r = rho[i];
  let sigma_p = prior_sigma[i];
  let ratio = softplus(r) / sigma_p;
  d_mu[i] = d_mu[i] + params.scale * ((mu[i] - prior_mean[i]) / sigma_p) / sigma_p;
  d_rho[i] = d_rho[i] + params.scale * ((ratio / sigma_p) * sigmoid(r) - sigmoid_over_softplus(r));
}

@compute @workgroup_size(WG)
fn kl_mc_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_index(gid, nwg, WG);
  if (j >= params.n * params.samples) { return; }
  let i = j % params.n;
  let z = (w[j] - mu[i]) / softplus(rho[i]);
  let log_q = -log_softplus(rho[i]) - 0.5 * z * z;
  terms[j] = log_q - log_prior(w[j]);
}

@compute @workgroup_size(WG)
fn kl_mc_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  var sum_g = 0.0;     // sum_s d log p / dw (w_si)
  var sum_g_eps = 0.0; // sum_s d log p / dw (w_si) * eps_si
  for (var s = 0u; s < params.samples; s = s + 1u) {
    let j = s * params.n + i;
    let g = d_log_prior(w[j]);
    sum_g = sum_g + g;
    sum_g_eps = sum_g_eps + g * rand_normal(params.key, j, params.stream);
  }
  let r = rho[i];
  // d/dmu = mean_s(-g);  d/drho = (mean_s(-g eps) - 1 / sigma) * sigmoid(rho).
  d_mu[i] = d_mu[i] - params.scale * params.inv_samples * sum_g;
  d_rho[i] = d_rho[i] - params.scale * (params.inv_samples * sum_g_eps * sigmoid(r) + sigmoid_over_softplus(r));
}
