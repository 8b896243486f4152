/**
 * Float64 reference of image preprocessing (shaders/image.wgsl): decoded bytes -> [C, H, W]
 * resized (nearest / bilinear with half-pixel centres / area average when shrinking), grey by
 * ITU-R BT.601 luma or RGB, scaled to [0, 1], inverted, centred by mass, normalized. Written from
 * the definitions, pixel by pixel, without the kernel's tricks (no fractional offsets, no
 * precomputed rows).
 */

export interface ReferenceImage {
  data: ArrayLike<number>;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export interface ReferenceOptions {
  height: number;
  width: number;
  channels: 1 | 3;
  resize?: 'nearest' | 'bilinear' | 'area';
  invert?: boolean;
  centerByMass?: boolean;
  mean?: readonly number[];
  std?: readonly number[];
  /** [x0, y0, width, height] of the source that fills the output; default the whole image. */
  region?: readonly [number, number, number, number];
}

interface Taps {
  /** [source index, weight] of the taps inside the image (the rest of the weight is background). */
  taps: [number, number][];
}

/**
 * Taps of output pixel o (covering [o, o + 1) in output pixels, shifted by `shift`) along an axis of
 * `size` source pixels whose region [start, start + length) fills `out` output pixels.
 */
function axisTaps(o: number, size: number, start: number, length: number, out: number, shift: number, resize: 'nearest' | 'bilinear' | 'area'): Taps {
  const s = length / out;
  if (resize === 'area' && s > 1) {
    const lo = start + (o - shift) * s;
    const hi = lo + s;
    const taps: [number, number][] = [];
    for (let i = Math.max(0, Math.floor(lo)); i < Math.min(size, Math.ceil(hi)); i++) {
      const w = (Math.min(hi, i + 1) - Math.max(lo, i)) / s;
      if (w > 0) taps.push([i, w]);
    }
    return { taps };
  }
  const u = start + (o - shift + 0.5) * s;
  if (resize === 'nearest') {
    const i = Math.floor(u);
    return i >= 0 && i < size ? { taps: [[i, 1]] } : { taps: [] };
  }
  if (u < 0 || u > size) return { taps: [] };
  // PyTorch upsample_bilinear2d, align_corners = False: the edge pixel repeats past the outer centres.
  const p = Math.min(Math.max(u - 0.5, 0), size - 1);
  const i0 = Math.floor(p);
  const i1 = Math.min(i0 + 1, size - 1);
  const t = p - i0;
  return { taps: [[i0, 1 - t], [i1, t]] };
}

/** R, G, B of pixel (x, y) in [0, 1]. */
function pixel(image: ReferenceImage, x: number, y: number): [number, number, number] {
  const p = (y * image.width + x) * image.channels;
  if (image.channels === 1) return [image.data[p] / 255, image.data[p] / 255, image.data[p] / 255];
  return [image.data[p] / 255, image.data[p + 1] / 255, image.data[p + 2] / 255];
}

/** The values in [0, 1] after resize, grey/RGB and inversion, shifted by (sx, sy) output pixels: [C][H * W]. */
function sample(image: ReferenceImage, o: ReferenceOptions, sx: number, sy: number): Float64Array[] {
  const resize = o.resize ?? 'area';
  const [x0, y0, rw, rh] = o.region ?? [0, 0, image.width, image.height];
  const planes = Array.from({ length: o.channels }, () => new Float64Array(o.height * o.width));
  for (let y = 0; y < o.height; y++) {
    const ty = axisTaps(y, image.height, y0, rh, o.height, sy, resize);
    for (let x = 0; x < o.width; x++) {
      const tx = axisTaps(x, image.width, x0, rw, o.width, sx, resize);
      // Each source pixel made grey (or kept RGB) and inverted, then weighted; what falls outside the
      // image is background, 0 after inversion, so it adds nothing. (The kernel filters first and
      // inverts after, with background 1 before inversion: sum w (1 - v) = inside - sum w v, the same.)
      const acc = [0, 0, 0];
      for (const [j, wy] of ty.taps) {
        for (const [i, wx] of tx.taps) {
          const p = pixel(image, i, j);
          const values = o.channels === 1 ? [0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]] : p;
          values.forEach((v, c) => (acc[c] += wx * wy * (o.invert ? 1 - v : v)));
        }
      }
      for (let c = 0; c < o.channels; c++) planes[c][y * o.width + x] = acc[c];
    }
  }
  return planes;
}

/** The model input [C, H, W] of one image, float64. */
export function preprocessReference(image: ReferenceImage, o: ReferenceOptions): Float64Array {
  let planes = sample(image, o, 0, 0);
  if (o.centerByMass) {
    let mass = 0;
    let mx = 0;
    let my = 0;
    for (let y = 0; y < o.height; y++) {
      for (let x = 0; x < o.width; x++) {
        let m = 0;
        for (const plane of planes) m += plane[y * o.width + x];
        m /= o.channels;
        mass += m;
        mx += m * x;
        my += m * y;
      }
    }
    if (mass > 0) planes = sample(image, o, o.width / 2 - mx / mass, o.height / 2 - my / mass);
  }
  const out = new Float64Array(o.channels * o.height * o.width);
  planes.forEach((plane, c) => {
    const mean = o.mean?.[c] ?? 0;
    const std = o.std?.[c] ?? 1;
    for (let k = 0; k < plane.length; k++) out[c * plane.length + k] = (plane[k] - mean) / std;
  });
  return out;
}

/** The centre of mass (x, y) in pixel indices of plane 0 of a [C, H, W] image (for checks of the centring). */
export function centreOfMass(values: ArrayLike<number>, height: number, width: number): [number, number] {
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = values[y * width + x];
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  return [mx / mass, my / mass];
}
