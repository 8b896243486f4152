// image.wgsl: decoded images -> a model's input [N, C, H, W] (src/ops/image.ts, src/nn/image_input.ts).
//
// Every source's pixels arrive as bytes in one buffer: a browser image through
// copyExternalImageToTexture into an rgba8unorm texture, then copyTextureToBuffer (RGBA rows of a
// pitch that is a multiple of 256 bytes); decoded bytes (a RawImage: grey, RGB or RGBA) through
// writeBuffer, rows packed. A table of 9 words per image says where each one lies:
//   [offset in bytes, width, height, row pitch in bytes, channels (1, 3, 4),
//    region x0, y0, width, height (f32 bits: the source rectangle that fills the output)].
//
// resample: output pixel (n, y, x) of an out_h x out_w grid is a filtered sample of image n's
// region (pixel i of an axis covers [i, i + 1); output pixel o covers [o, o + 1) of the output's
// axis, region start + o * s .. start + (o + 1) * s of the source's, s = region length / out):
//   resize 0, nearest:   the source pixel under the sample point u = start + (o + 0.5) s;
//   resize 1, bilinear:  at p = u - 0.5 between the two nearest pixel centres, the outermost
//                        pixel repeated past the first and last centre (PyTorch's
//                        upsample_bilinear2d with align_corners = False, the training data's
//                        resize in src/data/preprocess.ts);
//   resize 2, area:      where s > 1 (shrinking), the average of the source over the output
//                        pixel's interval, each source pixel weighted by its overlap (a box
//                        filter, OpenCV's INTER_AREA), so that a stroke thinner than s pixels
//                        still contributes its share; where s <= 1 (enlarging), bilinear.
// The filter is chosen per axis and is separable: weight(i, j) = w_x(i) w_y(j). What falls outside
// the image (a region reaching past it, a shift) is background: the value 0 after inversion.
// Filtering works on R, G, B (for a grey source R = G = B); then the value becomes grey by ITU-R
// BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B (as torchvision's Grayscale and PIL's 'L' mode; the
// filter and the luma are both linear, so their order does not matter) when C = 1, stays RGB when
// C = 3; it is scaled to [0, 1] (bytes / 255), inverted (1 - v) when asked, and normalized,
// out = (v - mean[c]) / std_dev[c].
//
// Centring by mass (MNIST, LeCun et al. 1998, section III.A: "centered ... by computing the center
// of mass of the pixels, and translating the image so as to position this point at the center"):
// a first resample (CENTER = false, mean 0, std_dev 1) writes the un-normalized values; moment_rows
// sums each output row's mass m = mean over channels of v, m * x and m * y; src/ops/reduce.ts adds
// the rows, giving [N, 3] moments; the second resample (CENTER = true) reads them and samples the
// source again, shifted by (W / 2, H / 2) - centre of mass in output pixels, so the translation is
// sub-pixel and resamples the source once (not the resized image a second time). The target is
// pixel index W / 2 (not (W - 1) / 2): MNIST's digits have their centre of mass within half a pixel
// of index 14 of 28 (test/demo/preprocess.test.ts measures it), and 16 of 32 after the training
// data's 28 -> 32 resize. An image without mass is not shifted.
//
// colour_rows: for a 1-channel model, counts per image row the pixels whose R, G, B are not all
// equal (a colour image, which needs the caller's `grey: true`); reduce.ts adds the rows.
//
// Buffers: pixels (bytes as u32 words, read), images (the table, read), moments ([N, 3], read),
// out ([N, C, out_h, out_w], written), raw ([N, C, out_h, out_w], read), rows ([N, out_h, 3],
// written), counts ([N, max_h], written).
// Dispatch (WG invocations per workgroup, 1-D, folded into (x, y) by grid()): resample
// ceil(N out_h out_w / WG); moment_rows ceil(N out_h / WG); colour_rows ceil(N max_h / WG).

//! include "common.wgsl"

override WG: u32 = 64;
// The final pass of centring by mass: read the moments and shift.
override CENTER: bool = false;

struct Params {
  count: u32,     // N images
  out_h: u32,
  out_w: u32,
  channels: u32,  // C: 1 (grey) or 3 (RGB)
  resize: u32,    // 0 nearest, 1 bilinear, 2 area
  invert: u32,    // 1: v -> 1 - v
  max_h: u32,     // colour_rows: the tallest source's height
  mean: vec3<f32>,
  std_dev: vec3<f32>,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> images: array<u32>;
@group(0) @binding(3) var<storage, read> moments: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> raw: array<f32>;
@group(0) @binding(6) var<storage, read_write> rows: array<f32>;
@group(0) @binding(7) var<storage, read_write> counts: array<f32>;

const TABLE: u32 = 9u;

struct Source {
  offset: u32,
  width: u32,
  height: u32,
  pitch: u32,
  channels: u32,
  region: vec4<f32>,  // x0, y0, width, height
};

fn source(n: u32) -> Source {
  let b = n * TABLE;
  let region = vec4<f32>(bitcast<f32>(images[b + 5u]), bitcast<f32>(images[b + 6u]), bitcast<f32>(images[b + 7u]), bitcast<f32>(images[b + 8u]));
  return Source(images[b], images[b + 1u], images[b + 2u], images[b + 3u], images[b + 4u], region);
}

fn byte_at(i: u32) -> u32 {
  return (pixels[i >> 2u] >> ((i & 3u) * 8u)) & 255u;
}

// R, G, B of pixel (i, j) in [0, 255]; a grey source repeats its one value.
fn rgb(s: Source, i: u32, j: u32) -> vec3<f32> {
  let p = s.offset + j * s.pitch + i * s.channels;
  if (s.channels == 1u) { return vec3<f32>(f32(byte_at(p))); }
  return vec3<f32>(f32(byte_at(p)), f32(byte_at(p + 1u)), f32(byte_at(p + 2u)));
}

// The taps of one output pixel along one axis.
struct Axis {
  kind: u32,     // 0 nearest, 1 bilinear, 2 area
  first: i32,    // source index of tap 0
  count: i32,    // taps
  size: i32,     // source pixels along the axis
  frac: f32,     // area: start of the interval minus `first`; bilinear: the weight of tap 1
  scale: f32,    // area: interval length s
  inside: f32,   // total weight of the taps that lie in the image (the rest is background)
};

// Output pixel o of `out` along an axis of `size` source pixels whose region is [start, start +
// length), shifted by `shift` output pixels.
fn axis(o: u32, size: u32, start: f32, length: f32, out_size: u32, shift: f32) -> Axis {
  let s = length / f32(out_size);
  let pos = f32(o) - shift;  // the output pixel's left edge, before the shift
  var a: Axis;
  a.size = i32(size);
  a.scale = s;
  if (params.resize == 2u && s > 1.0) {
    let lo = start + pos * s;
    let first = floor(lo);
    a.kind = 2u;
    a.first = i32(first);
    // Interval [frac, frac + s) relative to `first`: small numbers, so the overlaps keep their precision.
    a.frac = lo - first;
    a.count = i32(ceil(a.frac + s));
    let hi = lo + s;
    // Exactly 1 when the interval lies in the image (the usual case): no background from rounding.
    a.inside = select(max(min(hi, f32(size)) - max(lo, 0.0), 0.0) / s, 1.0, lo >= 0.0 && hi <= f32(size));
    return a;
  }
  let u = start + (pos + 0.5) * s;
  if (params.resize == 0u) {
    a.kind = 0u;
    a.first = i32(floor(u));
    let hit = u >= 0.0 && a.first < a.size;
    a.count = select(0, 1, hit);
    a.inside = select(0.0, 1.0, hit);
    return a;
  }
  a.kind = 1u;
  if (u < 0.0 || u > f32(size)) {
    a.count = 0;
    a.inside = 0.0;
    return a;
  }
  let p = u - 0.5;
  a.first = i32(floor(p));
  a.frac = p - floor(p);
  a.count = 2;
  a.inside = 1.0;
  return a;
}

// Tap k of an axis: (source index, weight); weight 0 for a tap outside the image.
fn tap(a: Axis, k: i32) -> vec2<f32> {
  if (a.kind == 0u) { return vec2<f32>(f32(a.first), 1.0); }
  if (a.kind == 1u) {
    let i = clamp(a.first + k, 0, a.size - 1);
    return vec2<f32>(f32(i), select(1.0 - a.frac, a.frac, k == 1));
  }
  let i = a.first + k;
  if (i < 0 || i >= a.size) { return vec2<f32>(0.0, 0.0); }
  let kf = f32(k);
  let overlap = min(a.frac + a.scale, kf + 1.0) - max(a.frac, kf);
  return vec2<f32>(f32(i), max(overlap, 0.0) / a.scale);
}

// The shift (output pixels) that moves image n's centre of mass to (W / 2, H / 2); 0 without mass.
fn centre_shift(n: u32) -> vec2<f32> {
  let m = moments[3u * n];
  if (!(m > 0.0)) { return vec2<f32>(0.0); }
  let com = vec2<f32>(moments[3u * n + 1u], moments[3u * n + 2u]) / m;
  return vec2<f32>(f32(params.out_w), f32(params.out_h)) * 0.5 - com;
}

@compute @workgroup_size(WG)
fn resample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat_index(gid, nwg, WG);
  let plane = params.out_h * params.out_w;
  if (id >= params.count * plane) { return; }
  let n = id / plane;
  let r = id - n * plane;
  let y = r / params.out_w;
  let x = r - y * params.out_w;
  let s = source(n);
  var shift = vec2<f32>(0.0);
  if (CENTER) { shift = centre_shift(n); }
  let ax = axis(x, s.width, s.region.x, s.region.z, params.out_w, shift.x);
  let ay = axis(y, s.height, s.region.y, s.region.w, params.out_h, shift.y);
  var acc = vec3<f32>(0.0);
  for (var j = 0; j < ay.count; j++) {
    let tj = tap(ay, j);
    if (tj.y == 0.0) { continue; }
    var row = vec3<f32>(0.0);
    for (var i = 0; i < ax.count; i++) {
      let ti = tap(ax, i);
      if (ti.y == 0.0) { continue; }
      row += ti.y * rgb(s, u32(ti.x), u32(tj.x));
    }
    acc += tj.y * row;
  }
  // Background is 0 after inversion: 0 in the source, or 255 when inverting.
  let background = select(0.0, 255.0, params.invert != 0u);
  let colour = (acc + (1.0 - ax.inside * ay.inside) * background) / 255.0;
  let base = n * params.channels * plane + r;
  if (params.channels == 1u) {
    var v = dot(colour, vec3<f32>(0.299, 0.587, 0.114));
    if (params.invert != 0u) { v = 1.0 - v; }
    out[base] = (v - params.mean.x) / params.std_dev.x;
    return;
  }
  for (var c = 0u; c < 3u; c++) {
    var v = colour[c];
    if (params.invert != 0u) { v = 1.0 - v; }
    out[base + c * plane] = (v - params.mean[c]) / params.std_dev[c];
  }
}

@compute @workgroup_size(WG)
fn moment_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat_index(gid, nwg, WG);
  if (id >= params.count * params.out_h) { return; }
  let n = id / params.out_h;
  let y = id - n * params.out_h;
  let plane = params.out_h * params.out_w;
  let base = n * params.channels * plane + y * params.out_w;
  var mass = 0.0;
  var mass_x = 0.0;
  for (var x = 0u; x < params.out_w; x++) {
    var m = 0.0;
    for (var c = 0u; c < params.channels; c++) { m += raw[base + c * plane + x]; }
    m /= f32(params.channels);
    mass += m;
    mass_x += m * f32(x);
  }
  rows[3u * id] = mass;
  rows[3u * id + 1u] = mass_x;
  rows[3u * id + 2u] = mass * f32(y);
}

@compute @workgroup_size(WG)
fn colour_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = flat_index(gid, nwg, WG);
  if (id >= params.count * params.max_h) { return; }
  let n = id / params.max_h;
  let j = id - n * params.max_h;
  let s = source(n);
  var colour = 0u;
  if (s.channels >= 3u && j < s.height) {
    for (var i = 0u; i < s.width; i++) {
      let p = rgb(s, i, j);
      if (p.x != p.y || p.y != p.z) { colour++; }
    }
  }
  counts[id] = f32(colour);
}
