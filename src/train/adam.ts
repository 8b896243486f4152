/**
 * Adam over a model's trainable parameters (Kingma & Ba 2015, Algorithm 1),
 * one GPU dispatch per parameter tensor, with its first and second moments
 * kept on the GPU and saved in checkpoints for resuming. The moments live on
 * the parameters' context: `new Adam(model, { lr })` or
 * `new Adam(model.namedParameters(), { lr })`, no context argument.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError, argumentError, checkNumber } from '../errors.js';
import { type AdamGate, adamStep } from '../ops/adam.js';
import { Module, type Parameter } from '../nn/module.js';

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
  /**
   * The [4] figures of the last trainStep with this optimizer (src/train/step.ts): kept until the
   * next trainStep or dispose, so that the step's caller never has to free them.
   */
  stepFigures: Tensor | null = null;
  private readonly params: Map<string, Parameter>;

  /** `params`: a model (its namedParameters()) or the parameters by state-dict name; only the trainable ones are updated. */
  constructor(params: Module | ReadonlyMap<string, Parameter>, config: AdamConfig) {
    if (params instanceof Module) params = params.namedParameters();
    if (!(params instanceof Map)) throw argumentError('Adam', 'params', 'a model or its namedParameters() (a Map of parameters)', params);
    if (config === null || typeof config !== 'object') throw argumentError('Adam', 'config', '{ lr, beta1?, beta2?, eps?, weightDecay? }', config);
    this.lr = checkNumber('Adam', 'lr', config.lr, (v) => v > 0 && Number.isFinite(v), 'a positive number');
    this.beta1 = checkNumber('Adam', 'beta1', config.beta1 ?? 0.9, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    this.beta2 = checkNumber('Adam', 'beta2', config.beta2 ?? 0.999, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    this.eps = checkNumber('Adam', 'eps', config.eps ?? 1e-8, (v) => v > 0, 'a positive number');
    this.weightDecay = checkNumber('Adam', 'weightDecay', config.weightDecay ?? 0, (v) => v >= 0, 'a number >= 0');
    this.params = new Map([...params].filter(([, p]) => p.trainable));
    // The moments go where the parameters are; parameters on two contexts cannot be updated together.
    const contexts = new Set([...this.params.values()].map((p) => p.value.ctx));
    if (contexts.size > 1) throw argumentError('Adam', 'params', 'parameters on one context', `parameters on ${contexts.size} contexts`);
    for (const [name, p] of this.params) {
      const ctx = p.value.ctx;
      this.state.set(name, { m: ctx.keep(ctx.zeros(p.value.shape)), v: ctx.keep(ctx.zeros(p.value.shape)) });
    }
  }

  /** The context its parameters and moments live on, or null without trainable parameters. */
  get ctx(): Context | null {
    const first = this.params.values().next();
    return first.done ? null : first.value.value.ctx;
  }

  /** The trainable parameters it updates, by state-dict name, in update order. */
  get parameters(): ReadonlyMap<string, Parameter> {
    return this.params;
  }

  /**
   * Applies one update with the gradients of the last backward. With `gate` (fit's non-finite
   * guard) the GPU skips the whole update when the gate's flag says so; `step` counts it either way.
   */
  update(gate?: AdamGate): void {
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
    this.stepFigures?.dispose();
    this.stepFigures = null;
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}
