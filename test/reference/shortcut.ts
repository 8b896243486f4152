/**
 * float64 reference of He et al. 2016's option-A shortcut (sec. 3.3): x[:, :, ::S, ::S] with
 * zero channels added, floor((Cout - Cin) / 2) in front and the rest behind. Written from the
 * definition, as nested loops over the output.
 */

export interface ShortcutShape {
  /** [N, Cin, H, W] */
  x: readonly number[];
  outChannels: number;
  stride: number;
}

export function zeroPadShortcutOutputShape(s: ShortcutShape): [number, number, number, number] {
  const [n, , h, w] = s.x;
  return [n, s.outChannels, Math.ceil(h / s.stride), Math.ceil(w / s.stride)];
}

/** Calls f(xIndex, yIndex) for every output element copied from the input (the others are zero). */
function forEachCopy(s: ShortcutShape, f: (xi: number, yi: number) => void): void {
  const [n, cin, h, w] = s.x;
  const [, cout, oh, ow] = zeroPadShortcutOutputShape(s);
  const before = Math.floor((cout - cin) / 2);
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < cin; ci++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          f(((b * cin + ci) * h + i * s.stride) * w + j * s.stride, ((b * cout + ci + before) * oh + i) * ow + j);
        }
      }
    }
  }
}

export function zeroPadShortcutRef(s: ShortcutShape, x: ArrayLike<number>): Float64Array {
  const [n, cout, oh, ow] = zeroPadShortcutOutputShape(s);
  const y = new Float64Array(n * cout * oh * ow);
  forEachCopy(s, (xi, yi) => (y[yi] = x[xi]));
  return y;
}

/** Gradient of L = <y, dy>: each copied input element gets its output's dy, the skipped ones 0. */
export function zeroPadShortcutBackwardRef(s: ShortcutShape, dy: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(s.x.reduce((a, b) => a * b, 1));
  forEachCopy(s, (xi, yi) => (dx[xi] = dy[yi]));
  return dx;
}
