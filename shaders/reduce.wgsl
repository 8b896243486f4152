// reduce.wgsl: parallel tree reduction (sum) of an f32 array, one level per dispatch.
//
// One level: workgroup g reduces the block x[g*WG*ITEMS .. (g+1)*WG*ITEMS) to one
// partial sum and writes it to partial[params.offset + g]. Each invocation first
// adds ITEMS elements strided by WG (adjacent invocations read adjacent words)
// into four accumulators, then the workgroup adds its WG values pairwise in
// workgroup memory (log2(WG) barrier steps). Barriers dominate on SwiftShader
// (1e6 elements: WG=256, ITEMS=1 took 1.5 s; WG=64, ITEMS=64 took 26 ms), so
// each invocation does a long serial run first. src/ops/reduce.ts repeats
// levels, each reading the previous level's partials, until one value is left;
// the last level writes it at `offset` of the caller's tensor. Nothing is read
// back between levels.
//
// Rounding: per level a value passes through at most ITEMS/4 - 1 serial additions,
// 2 to combine the accumulators and log2(WG) tree additions, so |error| <=
// levels * (ITEMS/4 + 1 + log2(WG)) * 2^-24 * sum |x| (Higham, "Accuracy and
// Stability of Numerical Algorithms", 2nd ed., section 4.2: the error of a sum
// is bounded by its tree depth). test/ops/reduce.test.ts checks that bound.
//
// Buffers: x [n] (read), partial [>= offset + ceil(n / (WG*ITEMS))] (written).
// Dispatch: ceil(n / (WG*ITEMS)) workgroups, folded into (x, y) by grid();
// groups past the end of x (from the folding) write nothing.
// WG must be a power of two (the tree halves it), ITEMS a multiple of 4.

override WG: u32 = 64;
override ITEMS: u32 = 64;

struct Params { n: u32, offset: u32 };

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

var<workgroup> scratch: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce_sum(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let group = wid.x + wid.y * nwg.x;
  let base = group * WG * ITEMS;
  // Four independent accumulators: a quarter of the serial rounding depth,
  // and four additions in flight per loop trip.
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < ITEMS; k = k + 4u) {
    let i = base + k * WG + lid;
    var v = vec4<f32>(0.0);
    if (i < params.n) { v.x = x[i]; }
    if (i + WG < params.n) { v.y = x[i + WG]; }
    if (i + 2u * WG < params.n) { v.z = x[i + 2u * WG]; }
    if (i + 3u * WG < params.n) { v.w = x[i + 3u * WG]; }
    acc = acc + v;
  }
  scratch[lid] = (acc.x + acc.y) + (acc.z + acc.w);
  workgroupBarrier();
  // Every invocation runs every step (barriers need uniform control flow);
  // only the lower half of the active range adds.
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { scratch[lid] = scratch[lid] + scratch[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u && base < params.n) { partial[params.offset + group] = scratch[0]; }
}
