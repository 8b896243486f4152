// batchnorm.wgsl: BatchNorm2d over NCHW, per channel (Ioffe & Szegedy 2015, Algorithm 1 and its backward pass).
//
// Training: the statistics are the batch's, over the M = N*H*W values of each channel c:
//   mean_c = (1/M) sum x,  var_c = (1/M) sum (x - mean_c)^2 (biased, used to normalise),
//   inv_std_c = 1 / sqrt(var_c + eps),
//   running_mean <- (1 - momentum) running_mean + momentum mean_c
//   running_var  <- (1 - momentum) running_var + momentum var_c * M / (M - 1)   (unbiased, as PyTorch)
// Eval: mean_c = running_mean_c and inv_std_c = 1 / sqrt(running_var_c + eps).
// Both: y = gamma_c (x - mean_c) inv_std_c + beta_c.
//
// Backward, with x_hat = (x - mean_c) inv_std_c and sums over the channel's M values:
//   d_beta_c = sum dy,  d_gamma_c = sum dy x_hat
//   training: dx = gamma_c inv_std_c / M (M dy - d_beta_c - x_hat d_gamma_c)   (the batch statistics depend on x)
//   eval:     dx = gamma_c inv_std_c dy                                           (the statistics are constants)
//
// Buffers: x, y, dy, dx [N, C, H, W]; gamma, beta, running_*, mean, inv_std, d_gamma, d_beta [C].
// Dispatch:
//   bn_train_stats, bn_backward_reduce: one workgroup of WG (a power of two) invocations per channel, C
//     workgroups. Each invocation sums a strided share of the channel's M values (consecutive invocations
//     read consecutive addresses of a plane), then a tree in workgroup memory adds the WG partial sums.
//     Statistics use two passes (mean, then squared deviations): no cancellation as in E[x^2] - E[x]^2.
//   bn_eval_stats: one invocation per channel.
//   bn_normalize, bn_backward_dx: ceil(elements / (WG * PER_THREAD)) workgroups folded by grid(); invocation l
//     of workgroup w handles elements w * WG * PER_THREAD + k * WG + l, k < PER_THREAD (see elementwise.wgsl).

override WG: u32 = 64;
override PER_THREAD: u32 = 8;
override TRAINING: bool = true;

struct Params {
  C: u32,
  HW: u32,
  count: u32,        // M = N * H * W, values per channel
  elements: u32,     // N * C * H * W
  eps: f32,
  momentum: f32,
  unbias: f32,       // M / (M - 1), computed in float64
  inv_count: f32,    // 1 / M
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(7) var<storage, read_write> mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> inv_std: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<f32>;
@group(0) @binding(10) var<storage, read_write> d_gamma: array<f32>;
@group(0) @binding(11) var<storage, read_write> d_beta: array<f32>;
@group(0) @binding(12) var<storage, read_write> dx: array<f32>;

var<workgroup> partial: array<vec2<f32>, WG>;

// Sum of `value` over the workgroup; every invocation gets the total. The leading barrier lets a
// kernel call it twice: nobody overwrites partial[] while another invocation still reads the last total.
fn workgroup_sum(lid: u32, value: vec2<f32>) -> vec2<f32> {
  workgroupBarrier();
  partial[lid] = value;
  workgroupBarrier();
  for (var width = WG / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  return partial[0];
}

// Flat NCHW index of the j-th value (0 <= j < M) of channel c.
fn channel_index(c: u32, j: u32) -> u32 {
  let n = j / params.HW;
  return (n * params.C + c) * params.HW + (j - n * params.HW);
}

@compute @workgroup_size(WG)
fn bn_train_stats(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  var total = 0.0;
  for (var j = lid.x; j < params.count; j += WG) { total += x[channel_index(c, j)]; }
  let mu = workgroup_sum(lid.x, vec2(total, 0.0)).x * params.inv_count;
  var squares = 0.0;
  for (var j = lid.x; j < params.count; j += WG) {
    let d = x[channel_index(c, j)] - mu;
    squares += d * d;
  }
  let variance = workgroup_sum(lid.x, vec2(squares, 0.0)).x * params.inv_count;
  if (lid.x == 0u) {
    mean[c] = mu;
    inv_std[c] = 1.0 / sqrt(variance + params.eps);
    running_mean[c] = (1.0 - params.momentum) * running_mean[c] + params.momentum * mu;
    running_var[c] = (1.0 - params.momentum) * running_var[c] + params.momentum * variance * params.unbias;
  }
}

@compute @workgroup_size(WG)
fn bn_eval_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) { return; }
  mean[c] = running_mean[c];
  inv_std[c] = 1.0 / sqrt(running_var[c] + params.eps);
}

fn normalize_element(i: u32) {
  let c = (i / params.HW) % params.C;
  y[i] = gamma[c] * ((x[i] - mean[c]) * inv_std[c]) + beta[c];
}

@compute @workgroup_size(WG)
fn bn_normalize(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.elements) { return; }
    normalize_element(i);
  }
}

@compute @workgroup_size(WG)
fn bn_backward_reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let mu = mean[c];
  let s = inv_std[c];
  var sums = vec2(0.0, 0.0);  // (sum dy, sum dy x_hat)
  for (var j = lid.x; j < params.count; j += WG) {
    let i = channel_index(c, j);
    let g = dy[i];
    sums += vec2(g, g * (x[i] - mu) * s);
  }
  let totals = workgroup_sum(lid.x, sums);
  if (lid.x == 0u) {
    d_beta[c] = totals.x;
    d_gamma[c] = totals.y;
  }
}

fn dx_element(i: u32) {
  let c = (i / params.HW) % params.C;
  let scale = gamma[c] * inv_std[c];
  if (TRAINING) {
    let x_hat = (x[i] - mean[c]) * inv_std[c];
    dx[i] = scale * (dy[i] - params.inv_count * (d_beta[c] + x_hat * d_gamma[c]));
  } else {
    dx[i] = scale * dy[i];
  }
}

@compute @workgroup_size(WG)
fn bn_backward_dx(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.elements) { return; }
    dx_element(i);
  }
}
