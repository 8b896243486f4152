// loss.wgsl: classification and regression losses, their gradients, and the accuracy count.
//
// Classification (rows = N examples, cols = C classes, row-major [N, C]):
//   log_softmax            logp[n, c] = (logits[n, c] - m) - log1p(sum_{k != k*} exp(logits[n, k] - m)), m = logits[n, k*]
//                          = max_k logits[n, k] (subtracting the row maximum keeps exp in range for any logits; log1p
//                          of the other classes' sum keeps the maximum's logp accurate when it is near 0).
//   log_softmax_backward   d_logits[n, c] = g[n, c] - exp(logp[n, c]) * sum_k g[n, k]   (g = dL/d logp)
//   log_mean_exp           lme[b, c] = log((1/T) sum_t exp(logp[t, b, c])) = m + log sum_t exp(logp[t, b, c] - m) - log T,
//                          the Monte Carlo predictive log-probability of T weight samples (Shridhar et al. 2019,
//                          PyTorch-BayesianCNN, combine the samples this way); logp is [T, B, C].
//   log_mean_exp_backward  d_logp[t, b, c] = g[b, c] * exp(logp[t, b, c] - lme[b, c]) / T   (the samples' softmax weights)
//   nll_terms              out[n] = -logp[n, label_n]                 (the loss is their mean)
//   nll_loss_backward      d_logp[n, c] = -scale/N if c == label_n else 0
//   correct_terms          out[n] = 1 if argmax_c logp[n, c] == label_n (first maximum wins ties), else 0
//                          (the count is their sum)
// A label >= C is a caller error the GPU cannot throw: it makes the loss and that row's gradient NaN,
// and never counts as correct.
//
// Regression (n elements, any shape, mu/log_var/targets alike):
//   mse_terms              out[i] = (mu - y)^2 (the loss is their mean);  mse_loss_backward d_mu = scale * 2 (mu - y) / n
//   gaussian_nll_terms     out[i] = 0.5 (log 2 pi + s + (y - mu)^2 exp(-s)), s = log variance (the loss is their mean)
//                          (heteroscedastic regression, Nix & Weigend 1994; Kendall & Gal 2017, eq. 8)
//   gaussian_nll_backward  d_mu = scale/n (mu - y) exp(-s);  d_log_var = scale/n * 0.5 (1 - (y - mu)^2 exp(-s))
//
// The scalar losses and the count are the sums of those terms by reduce.wgsl (src/ops/loss.ts), a mean
// with the sum's scale 1/N: this file sums nothing itself.
// Dispatch: per-row kernels (log_softmax, log_softmax_backward, nll_terms, correct_terms) one invocation
// per row; log_mean_exp one per (b, c); the other terms and gradients one per element; ceil(count / WG)
// workgroups folded by grid().

//! include "common.wgsl"

override WG: u32 = 64;

const LOG_2PI: f32 = 1.8378770664093453;

struct Params {
  rows: u32,     // N (classification) or B (log_mean_exp)
  cols: u32,     // C
  n: u32,        // elements: the output count of elementwise kernels, or the regression element count
  samples: u32,  // T (log_mean_exp)
  coef: f32,     // scale factor of the gradient kernels: -scale/N, 1/T, 2 scale/n, scale/n (see the wrapper)
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> logp: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read> lme: array<f32>;
@group(0) @binding(5) var<storage, read> grad: array<f32>;      // upstream gradient of the op's output
@group(0) @binding(6) var<storage, read> mu: array<f32>;
@group(0) @binding(7) var<storage, read> log_var: array<f32>;
@group(0) @binding(8) var<storage, read> targets: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
@group(0) @binding(10) var<storage, read_write> d_log_var: array<f32>;

// A NaN made at run time: a NaN constant expression is a WGSL compile error, a `var` is not constant.
fn quiet_nan() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

// ------------------------------------------------------------------ softmax

@compute @workgroup_size(WG)
fn log_softmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_index(gid, nwg, WG);
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var m = logits[base];
  var top = 0u;
  for (var c = 1u; c < params.cols; c++) {
    let v = logits[base + c];
    if (v > m) {
      m = v;
      top = c;
    }
  }
  // total = 1 + rest, the 1 being the maximum's exp(0). log(total) would round rest away where the
  // others are 16 or more below the maximum (1 + 1e-7 = 1 in f32), and make the maximum's logp
  // exactly 0 rather than -rest: log1p(rest) keeps it to a few ulp relative (common.wgsl), and so does
  // exp_accurate for those far terms (WGSL's exp may err by 2|x| ulp: 60 ulp at 30 below the maximum).
  var rest = 0.0;
  for (var c = 0u; c < params.cols; c++) {
    if (c != top) { rest += exp_accurate(logits[base + c] - m); }
  }
  // (x - m) - log1p(rest) rather than x - (m + log(total)): keeps the small differences exact for large logits.
  let log_total = log1p_pos(rest);
  for (var c = 0u; c < params.cols; c++) { out[base + c] = (logits[base + c] - m) - log_total; }
}

@compute @workgroup_size(WG)
fn log_softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_index(gid, nwg, WG);
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var total = 0.0;
  for (var c = 0u; c < params.cols; c++) { total += grad[base + c]; }
  for (var c = 0u; c < params.cols; c++) { out[base + c] = grad[base + c] - exp(logp[base + c]) * total; }
}

// --------------------------------------------------------- Monte Carlo mean

@compute @workgroup_size(WG)
fn log_mean_exp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let stride = params.n;  // B * C: one sample's slab
  var m = logp[i];
  for (var t = 1u; t < params.samples; t++) { m = max(m, logp[t * stride + i]); }
  // m below the lowest finite f32 means m = -inf: every sample gives probability 0, so the mean is 0 and its
  // log is -inf; return it directly rather than computing -inf - -inf = NaN.
  if (m < -0x1.fffffep+127f) {
    out[i] = m;
    return;
  }
  var total = 0.0;
  for (var t = 0u; t < params.samples; t++) { total += exp(logp[t * stride + i] - m); }
  out[i] = m + log(total) - log(f32(params.samples));
}

@compute @workgroup_size(WG)
fn log_mean_exp_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let bc = i % (params.rows * params.cols);
  // logp - lme <= log T, so the exponential cannot overflow.
  out[i] = grad[bc] * exp(logp[i] - lme[bc]) * params.coef;
}

// -------------------------------------------------------------------- NLL

@compute @workgroup_size(WG)
fn nll_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_index(gid, nwg, WG);
  if (row >= params.rows) { return; }
  let label = labels[row];
  out[row] = select(quiet_nan(), -logp[row * params.cols + min(label, params.cols - 1u)], label < params.cols);
}

@compute @workgroup_size(WG)
fn nll_loss_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let label = labels[i / params.cols];
  let hit = select(0.0, params.coef, i % params.cols == label);
  out[i] = select(quiet_nan(), hit, label < params.cols);
}

@compute @workgroup_size(WG)
fn correct_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_index(gid, nwg, WG);
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var best = logp[base];
  var best_class = 0u;
  for (var c = 1u; c < params.cols; c++) {
    let v = logp[base + c];
    if (v > best) {
      best = v;
      best_class = c;
    }
  }
  out[row] = select(0.0, 1.0, best_class == labels[row]);
}

// ------------------------------------------------------------- regression

@compute @workgroup_size(WG)
fn mse_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let r = mu[i] - targets[i];
  out[i] = r * r;
}

@compute @workgroup_size(WG)
fn mse_loss_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  out[i] = params.coef * (mu[i] - targets[i]);
}

@compute @workgroup_size(WG)
fn gaussian_nll_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let r = targets[i] - mu[i];
  let s = log_var[i];
  out[i] = 0.5 * (LOG_2PI + s + r * r * exp(-s));
}

@compute @workgroup_size(WG)
fn gaussian_nll_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let r = targets[i] - mu[i];
  let inv_var = exp(-log_var[i]);
  out[i] = -params.coef * r * inv_var;
  d_log_var[i] = params.coef * 0.5 * (1.0 - r * r * inv_var);
}
