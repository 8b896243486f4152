/** float64 references for the elementwise ops. */
export const addRef = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);
export const addIntoRef = (target: ArrayLike<number>, x: ArrayLike<number>, alpha: number) => Float64Array.from(target, (v, i) => v + alpha * x[i]);
export const scaleRef = (x: ArrayLike<number>, alpha: number) => Float64Array.from(x, (v) => alpha * v);
export const squareRef = (x: ArrayLike<number>) => Float64Array.from(x, (v) => v * v);
/** [times, ...shape]: the whole of x repeated `times` times. */
export function tileRef(x: ArrayLike<number>, times: number): Float64Array {
  const out = new Float64Array(x.length * times);
  for (let t = 0; t < times; t++) for (let i = 0; i < x.length; i++) out[t * x.length + i] = x[i];
  return out;
}
