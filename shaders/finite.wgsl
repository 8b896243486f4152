// finite.wgsl: the non-finite guard of a training step (src/ops/finite.ts, used by src/train/step.ts).
//
// One u32 flag tensor records, on the GPU, which steps met a NaN or an infinity and where, so that the
// step can be held back without reading anything (the guarded Adam update of adam.wgsl reads GATE) and
// the CPU learns of it whenever it next reads. A step's mark is step + 1 (0 means "none").
//
//   flags[0]          GATE   the mark of the latest step found non-finite (atomicMax)
//   flags[1]          COUNT  how many steps were found non-finite (count_step)
//   flags[2]          unused (0)
//   flags[3 + 2 k]    slot k's first step, as 0xffffffff - step (atomicMax keeps the earliest; 0: never)
//   flags[4 + 2 k]    what slot k held at that step: bit 0 NaN, bit 1 +Inf, bit 2 -Inf (atomicOr)
// Slots: 0 the loss, 1 + j the gradient of the optimizer's parameter j (the wrapper's caller decides).
//
// Entries:
//   check_finite      for each of up to 7 tensors x_k [n_k] (f32): if any x_k[i] is NaN or +-Inf, mark GATE
//                     and slot slot_k with `mark` (a tensor with n_k = 0 is absent; a step's loss and
//                     its 20 LeNet gradients take 3 dispatches: on a GPU a dispatch costs more than
//                     reading these 0.5 MB)
//   count_step        one invocation: COUNT += 1 if GATE == mark (after the step's checks)
//   flags_to_f32      out[offset + 2 j] = flags[j] & 0xffff, out[offset + 2 j + 1] = flags[j] >> 16, as f32
//                     (exact: each half is below 2^24), so the flags travel in the read of an f32 tensor
//                     that fit makes anyway
//
// The test is on the bits, not on x != x: WGSL lets an implementation assume that floating-point values
// are finite (WGSL spec, "Floating Point Evaluation"), so a comparison could be folded away, while the
// exponent field of a NaN or an infinity is all ones whatever the compiler assumes.
//
// Buffers: x0 .. x6 f32 (read), flags [3 + 2 slots] u32 (atomic), out f32 (flags_to_f32, written).
// check_finite binds 8 storage buffers (x0 .. x6 and flags), the least maxStorageBuffersPerShaderStage
// that src/gpu/device.ts accepts of an adapter.
// Dispatch: check_finite ceil(max_k n_k / (WG * PER_THREAD)) workgroups folded by grid(), each
// invocation testing PER_THREAD elements of every x_k at strides of WG (as elementwise.wgsl); count_step one workgroup;
// flags_to_f32 ceil(words / WG) workgroups. Only an invocation that finds a non-finite value touches
// the flags, so a finite step costs one read of every checked element and no atomics.

override WG: u32 = 64;
override PER_THREAD: u32 = 8;

const GATE: u32 = 0u;
const COUNT: u32 = 1u;
const SLOTS: u32 = 3u;

struct Params {
  n0: u32, n1: u32, n2: u32, n3: u32, n4: u32, n5: u32, n6: u32,                 // check_finite: elements of x_k (0: absent)
  slot0: u32, slot1: u32, slot2: u32, slot3: u32, slot4: u32, slot5: u32, slot6: u32,  // check_finite: the slot x_k reports to
  mark: u32,    // check_finite, count_step: step + 1
  words: u32,   // flags_to_f32: words of flags
  offset: u32,  // flags_to_f32: index of out where word 0's low half goes
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<f32>;
@group(0) @binding(6) var<storage, read> x5: array<f32>;
@group(0) @binding(7) var<storage, read> x6: array<f32>;
@group(0) @binding(8) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;

// 0 for a finite value, else bit 0 (NaN), bit 1 (+Inf) or bit 2 (-Inf).
fn non_finite_bits(v: f32) -> u32 {
  let bits = bitcast<u32>(v);
  if ((bits & 0x7f800000u) != 0x7f800000u) { return 0u; }
  if ((bits & 0x007fffffu) != 0u) { return 1u; }
  return select(2u, 4u, (bits & 0x80000000u) != 0u);
}

// Marks GATE, and slot `slot` at its first step with what was found.
fn record(slot: u32, found: u32) {
  atomicMax(&flags[GATE], params.mark);
  let at = SLOTS + 2u * slot;
  let code = 0xffffffffu - (params.mark - 1u);
  atomicMax(&flags[at], code);
  // Record what was found only at the slot's first step (a later step's kinds are not mixed in).
  if (atomicLoad(&flags[at]) == code) { atomicOr(&flags[at + 1u], found); }
}

@compute @workgroup_size(WG)
fn check_finite(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid.x;
  // One accumulator per tensor; a binding cannot be indexed, so the seven reads are written out.
  var found = array<u32, 7>();
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = first + k * WG;
    if (i < params.n0) { found[0] |= non_finite_bits(x0[i]); }
    if (i < params.n1) { found[1] |= non_finite_bits(x1[i]); }
    if (i < params.n2) { found[2] |= non_finite_bits(x2[i]); }
    if (i < params.n3) { found[3] |= non_finite_bits(x3[i]); }
    if (i < params.n4) { found[4] |= non_finite_bits(x4[i]); }
    if (i < params.n5) { found[5] |= non_finite_bits(x5[i]); }
    if (i < params.n6) { found[6] |= non_finite_bits(x6[i]); }
  }
  let slots = array<u32, 7>(params.slot0, params.slot1, params.slot2, params.slot3, params.slot4, params.slot5, params.slot6);
  for (var t = 0u; t < 7u; t++) {
    if (found[t] != 0u) { record(slots[t], found[t]); }
  }
}

@compute @workgroup_size(1)
fn count_step() {
  if (atomicLoad(&flags[GATE]) == params.mark) { atomicAdd(&flags[COUNT], 1u); }
}

@compute @workgroup_size(WG)
fn flags_to_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  if (j >= params.words) { return; }
  let w = atomicLoad(&flags[j]);
  out[params.offset + 2u * j] = f32(w & 0xffffu);
  out[params.offset + 2u * j + 1u] = f32(w >> 16u);
}
