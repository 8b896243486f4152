// regression.wgsl: the Gaussian likelihood head of a Bayesian regression network and its Monte Carlo summary.
//
// A regression network ends in two columns per row, pred[r] = (mu_r, s_r) with s = log sigma^2, the mean and
// log variance of a Gaussian likelihood N(y | mu, sigma^2) (Nix & Weigend 1994; Kendall & Gal 2017, eq. 8).
// The Gaussian NLL kernels (loss.wgsl) take mu and s as separate tensors, so the head is split and merged:
//
//   split_head       pred [N, 2] -> mu [N], log_var [N]                 (mu = column 0, log_var = column 1)
//   merge_head       d_mu [N], d_log_var [N] -> d_pred [N, 2]           (the inverse; carries the gradients back)
//   append_log_var   x [N] (the mean), noise [1] -> pred [N, 2] = (x_r, noise[0])
//                    (homoscedastic head: one learned or fixed log variance shared by every row)
//   predictive_moments
//                    pred [T * B, 2] (row t * B + b: Monte Carlo sample t of point b) -> moments [B, 4] =
//                    (mean, epistemic variance, aleatoric variance, predictive std) per point:
//                      mean_b      = (1/T) sum_t mu_tb
//                      epistemic_b = (1/T) sum_t (mu_tb - mean_b)^2     (spread of the sampled means)
//                      aleatoric_b = (1/T) sum_t exp(s_tb)              (expected noise variance)
//                      std_b       = sqrt(epistemic_b + aleatoric_b)
//                    The law of total variance, Var[y] = Var_w[E[y|w]] + E_w[Var[y|w]] (Kendall & Gal 2017,
//                    eq. 9), for the T-component Gaussian mixture the samples define: hence 1/T, not 1/(T-1).
//                    The variance is a second pass over the samples (two-pass, no E[x^2] - E[x]^2 cancellation).
//
// Dispatch: one invocation per row (split/merge/append, N rows) or per point (moments, B points);
// ceil(count / WG) workgroups folded by grid().

//! include "common.wgsl"

override WG: u32 = 64;

struct Params {
  rows: u32,     // N (split, merge, append) or B (predictive_moments)
  samples: u32,  // T (predictive_moments)
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> d_mu: array<f32>;
@group(0) @binding(3) var<storage, read> d_log_var: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> noise: array<f32>;
@group(0) @binding(6) var<storage, read_write> mu: array<f32>;
@group(0) @binding(7) var<storage, read_write> log_var: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn split_head(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flat_index(gid, nwg, WG);
  if (r >= params.rows) { return; }
  mu[r] = pred[2u * r];
  log_var[r] = pred[2u * r + 1u];
}

@compute @workgroup_size(WG)
fn merge_head(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flat_index(gid, nwg, WG);
  if (r >= params.rows) { return; }
  out[2u * r] = d_mu[r];
  out[2u * r + 1u] = d_log_var[r];
}

@compute @workgroup_size(WG)
fn append_log_var(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flat_index(gid, nwg, WG);
  if (r >= params.rows) { return; }
  out[2u * r] = x[r];
  out[2u * r + 1u] = noise[0];
}

@compute @workgroup_size(WG)
fn predictive_moments(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = flat_index(gid, nwg, WG);
  if (b >= params.rows) { return; }
  let stride = 2u * params.rows;  // one sample's slab of B rows
  let inv_t = 1.0 / f32(params.samples);
  var mean = 0.0;
  var aleatoric = 0.0;
  for (var t = 0u; t < params.samples; t++) {
    let row = t * stride + 2u * b;
    mean += pred[row];
    aleatoric += exp(pred[row + 1u]);
  }
  mean *= inv_t;
  aleatoric *= inv_t;
  var epistemic = 0.0;
  for (var t = 0u; t < params.samples; t++) {
    let d = pred[t * stride + 2u * b] - mean;
    epistemic += d * d;
  }
  epistemic *= inv_t;
  out[4u * b] = mean;
  out[4u * b + 1u] = epistemic;
  out[4u * b + 2u] = aleatoric;
  out[4u * b + 3u] = sqrt(epistemic + aleatoric);
}
