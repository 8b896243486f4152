/**
 * The Adam optimiser step (shaders/adam.wgsl): Kingma & Ba 2015, Algorithm 1,
 * with bias correction, in place on the parameter and its two moment buffers;
 * optional decoupled weight decay as in AdamW. With a gate (the flag tensor of
 * src/ops/finite.ts) the whole update is skipped on the GPU when the step met a
 * NaN or an infinity, without the CPU reading anything.
 */
import type { Context } from '../gpu/context.js';
import { grid } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { argumentError, checkInt, checkNumber, shapeError } from '../errors.js';
import { contextOf, optionsOf } from './check.js';

const WG = 64;
/** Elements per invocation (see shaders/elementwise.wgsl). */
const PER_THREAD = 8;

export interface AdamOptions {
  /** Step size alpha, > 0. */
  lr: number;
  /** Decay of the first moment, in [0, 1); default 0.9. */
  beta1?: number;
  /** Decay of the second moment, in [0, 1); default 0.999. */
  beta2?: number;
  /** Added to sqrt(v_hat), > 0; default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (param -= lr * weightDecay * param before the step), >= 0; default 0. */
  weightDecay?: number;
}

/**
 * Holds an update back on the GPU: it is skipped (param, m and v unchanged) when word 0 of `flags`
 * (the latest non-finite step's mark, src/ops/finite.ts) is >= `from`.
 */
export interface AdamGate {
  flags: Tensor<'u32'>;
  /** A mark >= 1: the step's own mark (step + 1) skips only a non-finite step; 1 skips after any. */
  from: number;
}

/** Updates param, m and v in place for step `step` (1-based: the first step is 1); with `gate`, only if the gate is open. */
/** adamStep's settings: the hyperparameters, the update's step t (from 1) and an optional gate. */
export interface AdamStepOptions extends AdamOptions {
  step: number;
  gate?: AdamGate;
}

export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, options: AdamStepOptions): void {
  const ctx = contextOf('adamStep', { param, grad, m, v });
  const opts = optionsOf('adamStep', options);
  const { step, gate } = opts;
  const op = 'adamStep';
  const tensors = { param, grad, m, v };
  for (const [name, t] of Object.entries(tensors)) {
    ctx.own(op, name, t);
    if (t.dtype !== 'f32') throw argumentError(op, name, "a tensor of dtype 'f32'", `a tensor of dtype '${t.dtype}'`);
    if (t.size !== param.size || t.shape.length !== param.shape.length || t.shape.some((d, i) => d !== param.shape[i])) {
      throw shapeError(op, name, `[${param.shape.join(', ')}] (the shape of param)`, t.shape);
    }
  }
  // param, m and v are written; WebGPU forbids one buffer bound twice when either binding is writable.
  const names = Object.keys(tensors) as (keyof typeof tensors)[];
  for (let a = 0; a < names.length; a++) {
    for (let b = a + 1; b < names.length; b++) {
      if (tensors[names[a]].buffer === tensors[names[b]].buffer) throw argumentError(op, names[b], `a tensor with its own buffer (not shared with '${names[a]}')`, 'a shared buffer');
    }
  }
  checkInt(op, 'step', step, 1);
  if (opts === null || typeof opts !== 'object') throw argumentError(op, 'opts', '{ lr, beta1?, beta2?, eps?, weightDecay? }', opts);
  const lr = checkNumber(op, 'opts.lr', opts.lr, (x) => Number.isFinite(x) && x > 0, 'a finite number > 0');
  const inUnit = (x: number) => x >= 0 && x < 1;
  const beta1 = checkNumber(op, 'opts.beta1', opts.beta1 ?? 0.9, inUnit, 'a number in [0, 1)');
  const beta2 = checkNumber(op, 'opts.beta2', opts.beta2 ?? 0.999, inUnit, 'a number in [0, 1)');
  const eps = checkNumber(op, 'opts.eps', opts.eps ?? 1e-8, (x) => Number.isFinite(x) && x > 0, 'a finite number > 0');
  const weightDecay = checkNumber(op, 'opts.weightDecay', opts.weightDecay ?? 0, (x) => Number.isFinite(x) && x >= 0, 'a finite number >= 0');

  if (gate !== undefined) {
    if (gate === null || typeof gate !== 'object') throw argumentError(op, 'gate', '{ flags, from }', gate);
    ctx.own(op, 'gate.flags', gate.flags);
    if (gate.flags.dtype !== 'u32') throw argumentError(op, 'gate.flags', "a tensor of dtype 'u32'", `a tensor of dtype '${gate.flags.dtype}'`);
    checkInt(op, 'gate.from', gate.from, 1);
    if (gate.from > 0xffffffff) throw argumentError(op, 'gate.from', 'an integer <= 2^32 - 1', gate.from);
  }

  const uniforms = {
    n: param.size, lr, beta1, beta2, eps,
    // float64 here: 1 - beta2 (and 1 - beta2^t) are ~1e-3 and lose digits if formed from an f32 beta2.
    one_minus_beta1: 1 - beta1, one_minus_beta2: 1 - beta2, lr_weight_decay: lr * weightDecay,
    inv_bias1: 1 / (1 - beta1 ** step), inv_bias2: 1 / (1 - beta2 ** step),
  };
  const workgroups = grid(Math.ceil(param.size / (WG * PER_THREAD)));
  if (gate) {
    ctx.dispatch({
      shader: 'adam.wgsl', entry: 'adam_step_guarded', constants: { WG, PER_THREAD },
      uniforms: { ...uniforms, gate_from: gate.from }, bindings: { param, grad, m, v, gate: gate.flags }, workgroups,
    });
  } else {
    ctx.dispatch({ shader: 'adam.wgsl', entry: 'adam_step', constants: { WG, PER_THREAD }, uniforms, bindings: { param, grad, m, v }, workgroups });
  }
}
