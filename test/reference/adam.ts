/** float64 reference of one Adam step (Kingma & Ba 2015, Algorithm 1) with optional decoupled weight decay. */
export interface AdamState { param: Float64Array; m: Float64Array; v: Float64Array }

export function adamStepRef(s: AdamState, grad: ArrayLike<number>, step: number, o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }): void {
  for (let i = 0; i < s.param.length; i++) {
    const g = grad[i];
    s.param[i] -= o.lr * o.weightDecay * s.param[i];
    s.m[i] = o.beta1 * s.m[i] + (1 - o.beta1) * g;
    s.v[i] = o.beta2 * s.v[i] + (1 - o.beta2) * g * g;
    const mHat = s.m[i] / (1 - o.beta1 ** step);
    const vHat = s.v[i] / (1 - o.beta2 ** step);
    s.param[i] -= (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
  }
}
