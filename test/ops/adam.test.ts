import { describe, expect, it } from 'vitest';
import { adamStep } from '../../src/ops/adam.js';
import { context, expectClose, randomArray } from '../helpers.js';
import { type AdamState, adamStepRef } from '../reference/adam.js';

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

describe('adamStep', () => {
  const settings = [
    { name: 'defaults', opts: { lr: 1e-3 }, full: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 } },
    { name: 'custom betas, eps and weight decay', opts: { lr: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 }, full: { lr: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 } },
  ];
  for (const shape of [[5], [3, 7, 5], [1000, 30]]) {
    for (const { name, opts, full } of settings) {
      it(`6 steps match float64 Algorithm 1, shape [${shape}], ${name}`, async () => {
        const ctx = await context();
        const n = shape.reduce((p, d) => p * d, 1);
        const start = f32(randomArray(n, n, -1, 1));
        const want: AdamState = { param: Float64Array.from(start), m: new Float64Array(n), v: new Float64Array(n) };
        const param = ctx.tensor(start, shape);
        const m = ctx.zeros(shape);
        const v = ctx.zeros(shape);
        for (let step = 1; step <= 6; step++) {
          // Gradients of varying scale and sign, so that m, v and the bias corrections all matter.
          const gs = f32(randomArray(n, 100 * step + n, -step, step));
          const grad = ctx.tensor(gs, shape);
          adamStep(param, grad, m, v, { ...opts, step });
          grad.dispose();
          adamStepRef(want, gs, step, full);
        }
        // Tolerance 1e-6 of the largest magnitude: a few f32 roundings per step over 6 steps.
        expectClose(await param.read(), want.param, 1e-6, 'param');
        expectClose(await m.read(), want.m, 1e-6, 'm');
        expectClose(await v.read(), want.v, 1e-6, 'v');
      });
    }
  }

  it('the first step moves each parameter by about lr against the gradient sign (bias correction at work)', async () => {
    const ctx = await context();
    const param = ctx.tensor([0, 0, 0], [3]);
    adamStep(param, ctx.tensor([1e-3, -5, 100], [3]), ctx.zeros([3]), ctx.zeros([3]), { lr: 0.1, step: 1 });
    // Tolerance 1e-4: m_hat / sqrt(v_hat) = g / |g| only up to eps / |g| = 1e-5 at g = 1e-3.
    expectClose(await param.read(), [-0.1, 0.1, -0.1], 1e-4, 'first step');
  });

  it('rejects bad input before GPU work', async () => {
    const ctx = await context();
    const [param, grad, m, v] = [0, 1, 2, 3].map(() => ctx.zeros([2, 3]));
    const ok = { lr: 1e-3 };
    expect(() => adamStep(param, grad, m, v, { lr: 0, step: 1 })).toThrow(/adamStep: argument 'opts.lr' expected a finite number > 0, got 0/);
    expect(() => adamStep(param, grad, m, v, { lr: -1, step: 1 })).toThrow(/argument 'opts.lr' expected a finite number > 0, got -1/);
    expect(() => adamStep(param, grad, m, v, { lr: NaN, step: 1 })).toThrow(/argument 'opts.lr' expected a finite number > 0, got NaN/);
    expect(() => adamStep(param, grad, m, v, { lr: 1e-3, beta1: 1, step: 1 })).toThrow(/argument 'opts.beta1' expected a number in \[0, 1\), got 1/);
    expect(() => adamStep(param, grad, m, v, { lr: 1e-3, beta2: -0.1, step: 1 })).toThrow(/argument 'opts.beta2' expected a number in \[0, 1\)/);
    expect(() => adamStep(param, grad, m, v, { lr: 1e-3, eps: 0, step: 1 })).toThrow(/argument 'opts.eps' expected a finite number > 0, got 0/);
    expect(() => adamStep(param, grad, m, v, { lr: 1e-3, weightDecay: -1, step: 1 })).toThrow(/argument 'opts.weightDecay' expected a finite number >= 0/);
    expect(() => adamStep(param, grad, m, v, { ...ok, step: 0 })).toThrow(/adamStep: argument 'step' expected an integer >= 1, got 0/);
    expect(() => adamStep(param, grad, m, v, { ...ok, step: 1.5 })).toThrow(/argument 'step' expected an integer >= 1, got 1.5/);
    expect(() => adamStep(param, grad.reshape([3, 2]), m, v, { ...ok, step: 1 })).toThrow(/adamStep: argument 'grad' expected shape \[2, 3\] \(the shape of param\), got \[3, 2\]/);
    expect(() => adamStep(param, grad, m, ctx.zeros([7]), { ...ok, step: 1 })).toThrow(/argument 'v' expected shape \[2, 3\]/);
    expect(() => adamStep(param, grad, m, m, { ...ok, step: 1 })).toThrow(/adamStep: argument 'v' expected a tensor with its own buffer \(not shared with 'm'\)/);
    expect(() => adamStep(param, param, m, v, { ...ok, step: 1 })).toThrow(/argument 'grad' expected a tensor with its own buffer \(not shared with 'param'\)/);
    expect(() => adamStep(param, grad, m, v, null as never)).toThrow(/adamStep: argument 'options' expected an options object, got null/);
    grad.dispose();
    expect(() => adamStep(param, grad, m, v, { ...ok, step: 1 })).toThrow(/adamStep: argument 'grad' is a disposed tensor/);
  });
});
