// shortcut.wgsl: the parameter-free projection shortcut of He et al. 2016 (sec. 3.3, option A; the
// CIFAR-10 ResNets of sec. 4.2): where a residual stage halves the feature map and widens it, the
// shortcut subsamples the input with stride S and pads the new channels with zeros.
//
// Forward (zero_pad_shortcut_forward):
//   y[n, co, oh, ow] = x[n, co - BEFORE, oh * S, ow * S]   when BEFORE <= co < BEFORE + Cin,
//                      0                                     otherwise (the padded channels),
//   OH = ceil(H / S), OW = ceil(W / S) (a 3x3 convolution of stride S and padding 1 gives the same).
// Backward (zero_pad_shortcut_backward), its transpose:
//   dx[n, ci, h, w] = dy[n, ci + BEFORE, h / S, w / S]   when S divides both h and w, 0 otherwise.
// Both are gathers (every output element reads at most one input element): no atomics, and no
// zeroing pass before them.
// Buffers: x and dx [N, Cin, H, W], y and dy [N, Cout, OH, OW].
// Dispatch: ceil(outputs / (WG * PER_THREAD)) workgroups folded by grid(); invocation l of workgroup w
// writes elements w * WG * PER_THREAD + k * WG + l, k < PER_THREAD (as elementwise.wgsl).

override WG: u32 = 64;
override PER_THREAD: u32 = 4;

struct Params {
  outputs: u32,   // elements written: N*Cout*OH*OW (forward), N*Cin*H*W (backward)
  cin: u32,
  cout: u32,
  H: u32, W: u32,
  OH: u32, OW: u32,
  stride: u32,
  before: u32,    // zero channels in front of the input's
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

fn first_element(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
}

@compute @workgroup_size(WG)
fn zero_pad_shortcut_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let o = first + k * WG;
    if (o >= params.outputs) { return; }
    let ow = o % params.OW;
    let oh = (o / params.OW) % params.OH;
    let co = (o / (params.OW * params.OH)) % params.cout;
    let n = o / (params.OW * params.OH * params.cout);
    var v = 0.0;
    // Unsigned: co < before wraps to a large ci and fails the bound, as co >= before + cin does.
    let ci = co - params.before;
    if (co >= params.before && ci < params.cin) {
      v = x[((n * params.cin + ci) * params.H + oh * params.stride) * params.W + ow * params.stride];
    }
    y[o] = v;
  }
}

@compute @workgroup_size(WG)
fn zero_pad_shortcut_backward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(lid, wid, nwg);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i >= params.outputs) { return; }
    let w = i % params.W;
    let h = (i / params.W) % params.H;
    let ci = (i / (params.W * params.H)) % params.cin;
    let n = i / (params.W * params.H * params.cin);
    var g = 0.0;
    if (h % params.stride == 0u && w % params.stride == 0u) {
      g = dy[((n * params.cout + ci + params.before) * params.OH + h / params.stride) * params.OW + w / params.stride];
    }
    dx[i] = g;
  }
}
