// adam.wgsl: one Adam step, in place on param, m and v (Kingma & Ba 2015, Algorithm 1).
//
//   param <- param - (lr * weight_decay) param         decoupled weight decay (Loshchilov & Hutter 2019, AdamW;
//                                                     PyTorch's form); exactly a no-op when weight_decay = 0
//   m <- beta1 m + (1 - beta1) g                       biased first moment
//   v <- beta2 v + (1 - beta2) g^2                     biased second raw moment
//   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   bias correction
//   param <- param - lr m_hat / (sqrt(v_hat) + eps)
//
// The wrapper computes 1 - beta1, 1 - beta2, lr * weight_decay and the bias-correction reciprocals in
// float64: in f32, 0.999 rounds to 0.99900001, so 1 - beta2 formed here would be 1.3e-5 too small in
// relative terms; likewise the decay is applied as p - (lr wd) p, never as p * (1 - lr wd) with 1 - lr wd
// rounded to f32.
//
// adam_step_guarded is the same update, skipped as a whole (param, m and v left as they are) when
// gate[0] >= gate_from: gate is the flag tensor of finite.wgsl, whose word 0 holds step + 1 of the
// latest step that met a NaN or an infinity in its loss or gradients. gate_from = step + 1 skips this
// step only if it is itself non-finite; gate_from = 1 skips it after any earlier non-finite step too.
// Otherwise it computes exactly what adam_step computes.
//
// Buffers: param, grad, m, v: flat arrays of n f32 (any shape, all alike); grad is read-only; gate u32.
// Dispatch: ceil(n / (WG * PER_THREAD)) workgroups folded by grid(); invocation l of workgroup w updates
// elements w * WG * PER_THREAD + k * WG + l, k < PER_THREAD (coalesced; fewer invocations suit SwiftShader,
// see elementwise.wgsl).

override WG: u32 = 64;
override PER_THREAD: u32 = 8;

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  eps: f32,
  lr_weight_decay: f32,  // lr * weight_decay
  inv_bias1: f32,   // 1 / (1 - beta1^t)
  inv_bias2: f32,   // 1 / (1 - beta2^t)
  gate_from: u32,   // adam_step_guarded: skip when gate[0] >= gate_from
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> gate: array<u32>;

// Algorithm 1's loop body for element i.
fn adam_update(i: u32) {
  let g = grad[i];
  let m_new = params.beta1 * m[i] + params.one_minus_beta1 * g;
  let v_new = params.beta2 * v[i] + params.one_minus_beta2 * g * g;
  m[i] = m_new;
  v[i] = v_new;
  let m_hat = m_new * params.inv_bias1;
  let v_hat = v_new * params.inv_bias2;
  let p = param[i];
  let decayed = p - params.lr_weight_decay * p;
  param[i] = decayed - params.lr * m_hat / (sqrt(v_hat) + params.eps);
}

@compute @workgroup_size(WG)
fn adam_step(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    adam_update(i);
  }
}

@compute @workgroup_size(WG)
fn adam_step_guarded(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (gate[0] >= params.gate_from) { return; }
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.n) { return; }
    adam_update(i);
  }
}
