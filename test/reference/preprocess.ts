/**
 * Float64 references for src/data/preprocess.ts, written independently: one
 * sample() function with explicit clamping or zero fill per pixel, no tap
 * tables, no strides, weights in the textbook (1 - t) a + t b form.
 */

/** Input pixel (y, x) of channel c of image n, NCHW. */
function at(img: ArrayLike<number>, n: number, c: number, y: number, x: number, C: number, H: number, W: number): number {
  return img[((n * C + c) * H + y) * W + x];
}

/**
 * Bilinear resize with half-pixel centres (PyTorch align_corners=False):
 * src = (dst + 0.5) * in/out - 0.5, clamped to [0, in - 1]. Input NCHW values
 * are multiplied by `scale` (1/255 for bytes).
 */
export function resizeBilinearRef(
  img: ArrayLike<number>, N: number, C: number, H: number, W: number, outH: number, outW: number, scale = 1,
): Float64Array {
  const out = new Float64Array(N * C * outH * outW);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let oy = 0; oy < outH; oy++) {
        for (let ox = 0; ox < outW; ox++) {
          const sy = clamp(((oy + 0.5) * H) / outH - 0.5, H - 1);
          const sx = clamp(((ox + 0.5) * W) / outW - 0.5, W - 1);
          const y0 = Math.floor(sy);
          const x0 = Math.floor(sx);
          const y1 = Math.min(y0 + 1, H - 1);
          const x1 = Math.min(x0 + 1, W - 1);
          const ty = sy - y0;
          const tx = sx - x0;
          const v =
            (1 - ty) * ((1 - tx) * at(img, n, c, y0, x0, C, H, W) + tx * at(img, n, c, y0, x1, C, H, W)) +
            ty * ((1 - tx) * at(img, n, c, y1, x0, C, H, W) + tx * at(img, n, c, y1, x1, C, H, W));
          out[((n * C + c) * outH + oy) * outW + ox] = v * scale;
        }
      }
    }
  }
  return out;
}

/**
 * Rotation by `degrees[n]` counter-clockwise as displayed (y down) about
 * ((W-1)/2, (H-1)/2): output pixel p takes the bilinear sample of the input at
 * R(-theta) p, with 0 outside the image.
 */
export function rotateRef(img: ArrayLike<number>, N: number, C: number, H: number, W: number, degrees: ArrayLike<number>): Float64Array {
  const out = new Float64Array(N * C * H * W);
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  for (let n = 0; n < N; n++) {
    const theta = (degrees[n] * Math.PI) / 180;
    for (let c = 0; c < C; c++) {
      const get = (y: number, x: number) => (y < 0 || y >= H || x < 0 || x >= W ? 0 : at(img, n, c, y, x, C, H, W));
      for (let oy = 0; oy < H; oy++) {
        for (let ox = 0; ox < W; ox++) {
          // Counter-clockwise on screen (y down), the input point at offset (a, b) from the centre moves to
          // (a cos + b sin, -a sin + b cos); inverting that, output offset (u, v) shows input offset
          // (u cos - v sin, u sin + v cos). E.g. 90 degrees: input top-right (r, -r) lands at top-left (-r, -r).
          const u = ox - cx;
          const v = oy - cy;
          const sx = cx + u * Math.cos(theta) - v * Math.sin(theta);
          const sy = cy + u * Math.sin(theta) + v * Math.cos(theta);
          const x0 = Math.floor(sx);
          const y0 = Math.floor(sy);
          const tx = sx - x0;
          const ty = sy - y0;
          out[((n * C + c) * H + oy) * W + ox] =
            (1 - ty) * ((1 - tx) * get(y0, x0) + tx * get(y0, x0 + 1)) + ty * ((1 - tx) * get(y0 + 1, x0) + tx * get(y0 + 1, x0 + 1));
        }
      }
    }
  }
  return out;
}
