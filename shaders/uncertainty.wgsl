// uncertainty.wgsl: the predictive distribution of T Monte Carlo samples and its uncertainty
// decomposition, reduced on the GPU so that only per-example results are read back.
//
// For each example b, with logits z_t of sample t (t = 0..T-1) over C classes and a temperature
// tau > 0 (Guo et al. 2017, section 4.2: temperature scaling; tau = 1 leaves the logits as they are):
//   u_t          = z_t / tau                              (as z_t * inv_temperature; times 1.0 is exact,
//                                                          so tau = 1 gives bit for bit the untempered result)
//   p_t          = softmax(u_t)                           (NORMALIZED = false; Kwon et al. 2020, eq. 4)
//                = softplus(u_t) / sum_c softplus(u_t)c    (NORMALIZED = true; Shridhar et al. 2019, eq. 15)
//   mean         = p_bar = (1/T) sum_t p_t
//   epistemic    = (1/T) sum_t (p_t - p_bar)^2            (per class: the diagonal of Kwon et al.'s
//   aleatoric    = (1/T) sum_t (p_t - p_t^2)               matrices, as the seed's uncertainty_estimation does)
//   predictive entropy  H[p_bar] = -sum_c p_bar log p_bar  (nats; 0 log 0 = 0)
//   expected entropy    (1/T) sum_t H[p_t]
//   mutual information  H[p_bar] - (1/T) sum_t H[p_t]      (BALD, Houlsby et al. 2011, eq. 2)
//   max probability     max_c p_bar
// The epistemic term uses the two-pass form (deviations from the finished mean), not
// E[p^2] - p_bar^2, which cancels catastrophically in f32 when the samples agree.
//
// Buffers (f32):
//   logits       [T * B, C]  sample t of example b at row t * B + b (Sequential.run's layout)
//   probs        [T * B, C]  p_t, same layout
//   moments      [3, B, C]   rows: mean | epistemic | aleatoric
//   information  [4, B]      rows: predictive entropy | expected entropy | mutual information | max probability
// Dispatch: one invocation per example (it loops over T and C, both small),
// ceil(B / WG) workgroups of WG folded by grid().

//! include "common.wgsl"

override WG: u32 = 64;
// true: softplus normalisation (Shridhar et al.); false: softmax (Kwon et al.).
override NORMALIZED: bool = false;

// inv_temperature = 1 / tau, computed on the CPU in float64 (a multiply is correctly rounded, a WGSL divide is not).
struct Params { samples: u32, batch: u32, classes: u32, inv_temperature: f32 };

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> moments: array<f32>;
@group(0) @binding(4) var<storage, read_write> information: array<f32>;

// -p log p with the limit 0 log 0 = 0 (a softmax probability can underflow to 0 in f32).
fn neg_p_log_p(p: f32) -> f32 {
  return select(0.0, -p * log(p), p > 0.0);
}

// The tempered logit u = z / tau of element i.
fn tempered(i: u32) -> f32 {
  return logits[i] * params.inv_temperature;
}

// Writes p_t for the row starting at `row` into probs and returns its entropy H[p_t].
fn sample_probabilities(row: u32) -> f32 {
  let C = params.classes;
  var m = tempered(row);
  for (var c = 1u; c < C; c++) { m = max(m, tempered(row + c)); }
  var total = 0.0;
  if (NORMALIZED) {
    for (var c = 0u; c < C; c++) {
      let s = softplus(tempered(row + c));
      probs[row + c] = s;
      total += s;
    }
  }
  // softmax, and the fallback of the normalized form when every softplus underflowed to 0
  // (all logits below about -87): softplus(z) ~ e^z there, so the exact limit is softmax(z).
  let use_softmax = !NORMALIZED || total <= 0.0;
  if (use_softmax) {
    total = 0.0;
    for (var c = 0u; c < C; c++) {
      let e = exp(tempered(row + c) - m);
      probs[row + c] = e;
      total += e;
    }
  }
  let inv = 1.0 / total;
  var h = 0.0;
  for (var c = 0u; c < C; c++) {
    let p = probs[row + c] * inv;
    probs[row + c] = p;
    h += neg_p_log_p(p);
  }
  return h;
}

@compute @workgroup_size(WG)
fn predictive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = flat_index(gid, nwg, WG);
  let B = params.batch;
  if (b >= B) { return; }
  let T = params.samples;
  let C = params.classes;
  let inv_t = 1.0 / f32(T);
  let mean_at = b * C;             // row 0 of moments
  let epistemic_at = (B + b) * C;  // row 1
  let aleatoric_at = (2u * B + b) * C;

  // Pass 1: per-sample probabilities, their entropies, and the sums for p_bar and the aleatoric term.
  for (var c = 0u; c < C; c++) {
    moments[mean_at + c] = 0.0;
    moments[aleatoric_at + c] = 0.0;
  }
  var expected_entropy = 0.0;
  for (var t = 0u; t < T; t++) {
    let row = (t * B + b) * C;
    expected_entropy += sample_probabilities(row);
    for (var c = 0u; c < C; c++) {
      let p = probs[row + c];
      moments[mean_at + c] += p;
      moments[aleatoric_at + c] += p - p * p;
    }
  }
  expected_entropy *= inv_t;

  // Pass 2: p_bar, its entropy and maximum, and the squared deviations from it.
  var predictive_entropy = 0.0;
  var max_prob = 0.0;
  for (var c = 0u; c < C; c++) {
    let p_bar = moments[mean_at + c] * inv_t;
    moments[mean_at + c] = p_bar;
    moments[aleatoric_at + c] *= inv_t;
    predictive_entropy += neg_p_log_p(p_bar);
    max_prob = max(max_prob, p_bar);
    var sum_sq = 0.0;
    for (var t = 0u; t < T; t++) {
      let d = probs[(t * B + b) * C + c] - p_bar;
      sum_sq += d * d;
    }
    moments[epistemic_at + c] = sum_sq * inv_t;
  }

  information[b] = predictive_entropy;
  information[B + b] = expected_entropy;
  // H[p_bar] >= mean_t H[p_t] by concavity; clamp the f32 rounding that could make it slightly negative.
  information[2u * B + b] = max(predictive_entropy - expected_entropy, 0.0);
  information[3u * B + b] = max_prob;
}
