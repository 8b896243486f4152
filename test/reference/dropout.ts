/**
 * float64 reference for inverted dropout. `u` holds the uniforms that decide the mask (element i is
 * kept where u[i] >= p, with p rounded to f32 as the shader sees it); kept elements are scaled by 1 / (1 - p).
 */
export function dropoutRef(x: ArrayLike<number>, p: number, u: ArrayLike<number>): Float64Array {
  const threshold = Math.fround(p);
  return Float64Array.from(x, (v, i) => (u[i] >= threshold ? v / (1 - p) : 0));
}

/** The map is linear in x, so its backward is the same mask and scale applied to dy. */
export const dropoutBackwardRef = (dy: ArrayLike<number>, p: number, u: ArrayLike<number>) => dropoutRef(dy, p, u);
