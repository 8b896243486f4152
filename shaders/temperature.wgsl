// temperature.wgsl: temperature scaling (Guo et al. 2017, section 4.2) of a Monte Carlo predictive.
// The negative log likelihood of the MC-averaged predictive at temperature tau,
//   p_bar(tau) = (1/S) sum_s p(z_s / tau),      p = softmax (NORMALIZED = false)
//                                                  or softplus normalised (NORMALIZED = true; Shridhar et al. 2019, eq. 15)
// and its derivative with respect to log tau, per example, so that a 1-D search over tau
// (src/uncertainty/calibration.ts) keeps the S per-sample logits on the GPU and reads back only two
// sums per step. Here S is the number of Monte Carlo samples (T elsewhere in the library; the letter
// is left to the temperature's tau in this file).
//
// Per example n with label y, s = 0..S-1, u = z_s / tau, lambda = log tau (so du/dlambda = -u):
//   l_s      = log p(u)_y
//            = u_y - logsumexp(u)                                     (softmax)
//            = log softplus(u_y) - log sum_c softplus(u_c)             (normalized)
//   dl_s/dlambda = -a_s, with
//   a_s      = u_y - sum_c p_c u_c                                     (softmax)
//            = u_y r(u_y) - sum_c u_c sigmoid(u_c) / sum_c softplus(u_c),  r = sigmoid / softplus  (normalized)
//   NLL_n    = -log p_bar_y = -(logsumexp_s l_s - log S)
//   dNLL_n/dlambda = sum_s w_s a_s,  w_s = exp(l_s) / sum_s' exp(l_s')  (the samples' posterior weights)
// The log-sum-exp over the samples runs online (a running maximum, its sum rescaled when it moves;
// Milakov & Gimelshein 2018), so a sample whose p_y underflows in f32 costs no precision and an
// example that every sample gets wrong has a finite NLL.
// Normalized: below u = -20 softplus(u) is e^u in f32 (common.wgsl), so log softplus(u) = u and
// r(u) = 1 / (1 + e^u) = 1 to f32 there; when every u_c < -20 the form is exactly softmax, which
// is used (as uncertainty.wgsl falls back to softmax).
//
// Buffers:
//   place_samples:     batch [S * n, C] (f32, Sequential.run's rows s * n + b) -> placed [S * N, C]
//                      at rows s * N + offset + b: a batch's samples into the whole set's [S, N, C].
//   temperature_terms: logits [S * N, C] (f32), labels [N] (u32) -> terms [2, N] (f32):
//                      row 0 NLL_n, row 1 dNLL_n / dlog tau; src/ops/reduce.ts sums the rows.
// Dispatch: place_samples one invocation per element of batch, temperature_terms one per example
// (it loops over S and C, both small); ceil(count / WG) workgroups of WG, folded by grid().

//! include "common.wgsl"

override WG: u32 = 64;
// true: softplus normalisation (Shridhar et al.); false: softmax.
override NORMALIZED: bool = false;

struct Params {
  samples: u32,          // S
  count: u32,            // N, examples in logits
  classes: u32,          // C
  batch: u32,            // n, examples in batch (place_samples)
  offset: u32,           // first example of batch in logits (place_samples)
  inv_temperature: f32,  // 1 / tau, from the CPU in float64
  log_samples: f32,      // log S, from the CPU in float64
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> batch: array<f32>;
@group(0) @binding(2) var<storage, read_write> placed: array<f32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> terms: array<f32>;

@compute @workgroup_size(WG)
fn place_samples(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  let C = params.classes;
  let n = params.batch;
  if (i >= params.samples * n * C) { return; }
  let row = i / C;           // s * n + b
  let s = row / n;
  let b = row - s * n;
  placed[(s * params.count + params.offset + b) * C + (i - row * C)] = batch[i];
}

fn u_at(i: u32) -> f32 {
  return logits[i] * params.inv_temperature;
}

// log softplus(u): exactly u where softplus is e^u in f32 (u < -20, common.wgsl), so no underflow.
fn log_softplus(u: f32) -> f32 {
  if (u < -20.0) { return u; }
  return log(softplus(u));
}

@compute @workgroup_size(WG)
fn temperature_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = flat_index(gid, nwg, WG);
  let N = params.count;
  if (n >= N) { return; }
  let C = params.classes;
  let y = labels[n];
  if (y >= C) {
    // The CPU side refuses such labels; NaN here rather than a read past the row. The bits depend on
    // y so that this is not a constant expression (a constant NaN is a WGSL compile error).
    let nan = bitcast<f32>(0x7fc00000u | min(y, 0u));
    terms[n] = nan;
    terms[N + n] = nan;
    return;
  }
  var big_l = -3.0e38;   // running max_s l_s
  var weight_sum = 0.0;  // sum_s exp(l_s - big_l)
  var weighted_a = 0.0;  // sum_s exp(l_s - big_l) a_s
  for (var s = 0u; s < params.samples; s++) {
    let row = (s * N + n) * C;
    var m = u_at(row);
    for (var c = 1u; c < C; c++) { m = max(m, u_at(row + c)); }
    let u_y = u_at(row + y);
    var l = 0.0;
    var a = 0.0;
    if (NORMALIZED && m >= -20.0) {
      // Every softplus(u_c) >= softplus(-20) = 2e-9 for the largest u_c: the sum cannot underflow.
      var total = 0.0;
      var slope = 0.0;  // sum_c u_c sigmoid(u_c)
      for (var c = 0u; c < C; c++) {
        let u = u_at(row + c);
        total += softplus(u);
        slope += u * sigmoid(u);
      }
      let r_y = select(sigmoid(u_y) / softplus(u_y), 1.0, u_y < -20.0);
      l = log_softplus(u_y) - log(total);
      a = u_y * r_y - slope / total;
    } else {
      // logsumexp(u) = m + log(1 + sum_{c != argmax} e^(u_c - m)): log1p keeps -l accurate for a
      // confident, correct sample, where it is tiny. `rest` counts the first maximum once.
      var rest = 0.0;
      var mean_u = 0.0;  // sum_c e^(u_c - m) u_c, divided by the sum below
      var seen_max = false;
      for (var c = 0u; c < C; c++) {
        let u = u_at(row + c);
        let e = exp(u - m);
        if (u == m && !seen_max) { seen_max = true; } else { rest += e; }
        mean_u += e * u;
      }
      let total = 1.0 + rest;
      l = (u_y - m) - log1p_pos(rest);
      a = u_y - mean_u / total;
    }
    // Online log-sum-exp over the samples, a_s weighted alongside.
    if (l > big_l) {
      let shrink = exp(big_l - l);
      weight_sum = weight_sum * shrink + 1.0;
      weighted_a = weighted_a * shrink + a;
      big_l = l;
    } else {
      let w = exp(l - big_l);
      weight_sum += w;
      weighted_a += w * a;
    }
  }
  // weight_sum is in [1, S]: log1p of its excess keeps a near-zero NLL accurate.
  terms[n] = -(big_l + log1p_pos(weight_sum - 1.0) - params.log_samples);
  terms[N + n] = weighted_a / weight_sum;
}
