/** float64 reference for 2-D max pooling over NCHW (padding counts as -inf). */
export interface PoolGeometry {
  shape: readonly [number, number, number, number];
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

export function poolOutputShape(g: PoolGeometry): [number, number, number, number] {
  const [N, C, H, W] = g.shape;
  return [N, C, Math.floor((H + 2 * g.padding[0] - g.kernel[0]) / g.stride[0]) + 1, Math.floor((W + 2 * g.padding[1] - g.kernel[1]) / g.stride[1]) + 1];
}

/** y and the flat x index of each maximum (first of ties in row-major window order). */
export function maxPool2dRef(x: ArrayLike<number>, g: PoolGeometry): { y: Float64Array; argmax: Uint32Array } {
  const [N, C, H, W] = g.shape;
  const [, , OH, OW] = poolOutputShape(g);
  const y = new Float64Array(N * C * OH * OW);
  const argmax = new Uint32Array(y.length);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let best = -Infinity;
        let bestAt = -1;
        for (let i = 0; i < g.kernel[0]; i++) {
          for (let j = 0; j < g.kernel[1]; j++) {
            const ih = oh * g.stride[0] - g.padding[0] + i;
            const iw = ow * g.stride[1] - g.padding[1] + j;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const at = (nc * H + ih) * W + iw;
            if (bestAt < 0 || x[at] > best) {
              best = x[at];
              bestAt = at;
            }
          }
        }
        const o = (nc * OH + oh) * OW + ow;
        y[o] = best;
        argmax[o] = bestAt;
      }
    }
  }
  return { y, argmax };
}

/** dx: each dy element added at the position of its window's maximum. */
export function maxPool2dBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, g: PoolGeometry): Float64Array {
  const { argmax } = maxPool2dRef(x, g);
  const dx = new Float64Array(x.length);
  for (let o = 0; o < argmax.length; o++) dx[argmax[o]] += dy[o];
  return dx;
}

/** Global average pooling [N, C, H, W] -> [N, C]: the mean of each plane. */
export function globalAvgPool2dRef(x: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const y = new Float64Array(N * C);
  for (let p = 0; p < N * C; p++) {
    let s = 0;
    for (let k = 0; k < hw; k++) s += x[p * hw + k];
    y[p] = s / hw;
  }
  return y;
}

/** Its gradient for L = <y, dy>: dx[n, c, h, w] = dy[n, c] / (H*W). */
export function globalAvgPool2dBackwardRef(dy: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const dx = new Float64Array(N * C * hw);
  for (let i = 0; i < dx.length; i++) dx[i] = dy[Math.floor(i / hw)] / hw;
  return dx;
}
