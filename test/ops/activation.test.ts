import { describe, expect, it } from 'vitest';
import { activationBackward, activationForward } from '../../src/ops/activation.js';
import { context, dot, expectClose, numericGradient, randomArray } from '../helpers.js';
import { reluBackwardRef, reluRef, softplusBackwardRef, softplusRef } from '../reference/activation.js';

describe('activation', () => {
  for (const n of [1, 7, 1000, 70001]) {
    it(`relu and softplus forward/backward match float64, n=${n}`, async () => {
      const ctx = await context();
      const xs = randomArray(n, n, -25, 25);
      const dys = randomArray(n, n + 1);
      const x = ctx.tensor(xs, [n]);
      const dy = ctx.tensor(dys, [n]);
      // Tolerance: 1e-6 relative to the tensor's magnitude (f32 rounding of exp/log).
      expectClose(await activationForward(x, { kind: 'relu' }).read(), reluRef(xs), 1e-6, 'relu');
      expectClose(await activationForward(x, { kind: 'softplus' }).read(), softplusRef(xs), 1e-6, 'softplus');
      expectClose(await activationBackward(dy, x, { kind: 'relu' }).read(), reluBackwardRef(xs, dys), 1e-6, 'relu backward');
      expectClose(await activationBackward(dy, x, { kind: 'softplus' }).read(), softplusBackwardRef(xs, dys), 1e-6, 'softplus backward');
    });
  }

  it('softplus keeps small values accurate (rho = -20 gives sigma ~ 2e-9, not 0)', async () => {
    const ctx = await context();
    const xs = [-20, -16, -15.5, -30];
    const got = await activationForward(ctx.tensor(xs, [4]), { kind: 'softplus' }).read();
    const want = softplusRef(xs);
    for (let i = 0; i < 4; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(1e-5);
  });

  it('softplus reference backward equals central finite differences', () => {
    const xs = randomArray(20, 3, -5, 5);
    const dys = randomArray(20, 4);
    const fd = numericGradient((x) => dot(softplusRef(x), dys), Float64Array.from(xs));
    expectClose(softplusBackwardRef(xs, dys), fd, 1e-7, 'fd');
  });

  it('rejects a disposed tensor and a size mismatch before GPU work', async () => {
    const ctx = await context();
    const x = ctx.tensor([1, 2, 3], [3]);
    const dy = ctx.tensor([1, 2], [2]);
    expect(() => activationBackward(dy, x, { kind: 'relu' })).toThrow(/reluBackward: argument 'dy' expected shape \[3\]/);
    x.dispose();
    expect(() => activationForward(x, { kind: 'relu' })).toThrow(/reluForward: argument 'x' is a disposed tensor/);
  });
});

describe('softplus accuracy per element', () => {
  it('is within 2e-6 relative of float64 at every rho in [-15, 20] (sigma = softplus(rho) in Bayesian layers)', async () => {
    const ctx = await context();
    const xs = Array.from({ length: 701 }, (_, i) => -15 + i * 0.05);
    const got = await activationForward(ctx.tensor(xs, [xs.length]), { kind: 'softplus' }).read();
    const want = softplusRef(xs);
    let worst = 0;
    // Relative per element, not against the largest value: small sigmas must stay accurate.
    for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / want[i]);
    expect(worst).toBeLessThan(2e-6);
  });
});
