/** float64 references for relu and softplus. */
export const reluRef = (x: ArrayLike<number>) => Float64Array.from(x, (v) => Math.max(v, 0));
export const reluBackwardRef = (x: ArrayLike<number>, dy: ArrayLike<number>) => Float64Array.from(x, (v, i) => (v > 0 ? dy[i] : 0));
export const softplusRef = (x: ArrayLike<number>) => Float64Array.from(x, (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))));
export const sigmoidRef = (v: number) => 1 / (1 + Math.exp(-v));
export const softplusBackwardRef = (x: ArrayLike<number>, dy: ArrayLike<number>) => Float64Array.from(x, (v, i) => dy[i] * sigmoidRef(v));
