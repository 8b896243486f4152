/**
 * Adam over a model's trainable parameters (Kingma & Ba 2015, Algorithm 1),
 * one GPU dispatch per parameter tensor, with its first and second moments
 * kept on the GPU and saved in checkpoints for resuming.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, checkNumber } from '../errors.js';
import { type AdamGate, adamStep } from '../ops/adam.js';
import type { Parameter } from '../nn/module.js';

export interface AdamConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class Adam {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of updates done (Algorithm 1's t). */
  step = 0;
  readonly state = new Map<string, { m: Tensor; v: Tensor }>();
  private readonly params: Map<string, Parameter>;

  constructor(ctx: Context, params: Map<string, Parameter>, config: AdamConfig) {
    this.lr = checkNumber('Adam', 'lr', config.lr, (v) => v > 0 && Number.isFinite(v), 'a positive number');
    this.beta1 = checkNumber('Adam', 'beta1', config.beta1 ?? 0.9, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    this.beta2 = checkNumber('Adam', 'beta2', config.beta2 ?? 0.999, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    this.eps = checkNumber('Adam', 'eps', config.eps ?? 1e-8, (v) => v > 0, 'a positive number');
    this.weightDecay = checkNumber('Adam', 'weightDecay', config.weightDecay ?? 0, (v) => v >= 0, 'a number >= 0');
    this.params = new Map([...params].filter(([, p]) => p.trainable));
    for (const [name, p] of this.params) {
      this.state.set(name, { m: ctx.keep(ctx.zeros(p.value.shape)), v: ctx.keep(ctx.zeros(p.value.shape)) });
    }
  }

  /** The trainable parameters it updates, by state-dict name, in update order. */
  get parameters(): ReadonlyMap<string, Parameter> {
    return this.params;
  }

  /**
   * Applies one update with the gradients of the last backward. With `gate` (fit's non-finite
   * guard) the GPU skips the whole update when the gate's flag says so; `step` counts it either way.
   */
  update(ctx: Context, gate?: AdamGate): void {
    for (const [name, p] of this.params) {
      if (!p.grad) throw new BayesError('INVALID_ARGUMENT', `Adam.update: parameter '${name}' has no gradient; run backward first`);
    }
    this.step++;
    for (const [name, p] of this.params) {
      const s = this.state.get(name)!;
      adamStep(p.value, p.grad!, s.m, s.v, { lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.step, gate });
    }
  }

  dispose(): void {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}
