/**
 * Layers own their parameters and gradients and a readable forward/backward
 * pair (llm.c style: no hidden autograd tape). A forward stores in the layer
 * what its backward needs; the caller runs the pair inside one `ctx.scope`,
 * which frees those intermediates when the step ends.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import { BayesError } from '../errors.js';
import type { RandomKey } from '../ops/random.js';

/** A trainable tensor, its gradient from the last backward, and its role in a Bayesian layer. */
export interface Parameter {
  value: Tensor;
  grad: Tensor | null;
  /** 'mu' / 'rho' for variational parameters, 'weight' for point estimates. */
  role: 'mu' | 'rho' | 'weight';
  /** Non-trainable state (BatchNorm running statistics) is saved but never updated by the optimizer. */
  trainable: boolean;
}

/** What one forward pass needs to know besides its input. */
export interface Pass {
  /** Training mode: sampling on, batch statistics, dropout active. */
  training: boolean;
  /** Draw from the posterior (false: use the posterior means, deterministic). */
  sample: boolean;
  /** Monte Carlo samples T batched along the leading dimension: the input batch is T * B. */
  samples: number;
  /** Keep dropout active outside training (MC dropout prediction). */
  mcDropout: boolean;
  /** Seed and step key every random draw of this pass. */
  seed: number;
  step: number;
  /**
   * Index of this pass's first Monte Carlo sample (default 0). The noise of sample t is
   * keyed by its position in the T * B batch, so a pass with offset s draws what samples
   * s, s + 1, ... of one larger batched pass draw: T single passes with offsets 0..T-1
   * reproduce a T-sample pass, and a large T can be split into chunks.
   */
  sampleOffset?: number;
  /** False for the first layer: nobody needs the gradient of the data. */
  needInputGrad?: boolean;
}

/**
 * The random key of one tensor of a pass. `drawsPerSample` is the number of draws one
 * Monte Carlo sample of the pass makes from this stream (its outputs for the LRT and
 * dropout, its weights for Bayes by Backprop): the key starts at sample sampleOffset.
 */
export function passKey(pass: Pass, stream: number, drawsPerSample = 0): RandomKey {
  return { seed: pass.seed >>> 0, step: pass.step >>> 0, stream, offset: (pass.sampleOffset ?? 0) * drawsPerSample };
}

export abstract class Module {
  /** Set by the container: the name in the state dict ('conv1'). */
  name = '';
  /** Unique per layer inside a model; separates the random streams of layers. */
  streamBase = 0;

  /** Output shape (without the batch dimension) for an input shape (without batch); validates the input. */
  abstract outputShape(input: readonly number[]): number[];
  abstract forward(ctx: Context, x: Tensor, pass: Pass): Tensor;
  /** Gradient w.r.t. the input (null when pass.needInputGrad is false); parameter gradients go to `grad`. */
  abstract backward(ctx: Context, dy: Tensor, pass: Pass): Tensor | null;

  /** Parameters by their local name (W_mu, weight, running_mean, ...). */
  parameters(): Map<string, Parameter> {
    return new Map();
  }

  /** Called once the input shape is known (lazy layers create parameters here). */
  build(_ctx: Context, _input: readonly number[]): void {}

  /** KL(q || p) of this layer's variational parameters for the last forward, or null. */
  kl(_ctx: Context, _pass: Pass): Tensor | null {
    return null;
  }

  /** Adds scale * dKL/dparams into the parameter gradients. */
  klBackward(_ctx: Context, _pass: Pass, _scale: number): void {}

  dispose(): void {
    for (const p of this.parameters().values()) {
      p.value.dispose();
      p.grad?.dispose();
      p.grad = null;
    }
  }
}

/** Replaces a parameter's gradient, freeing the old one and keeping the new one out of the step's scope. */
export function setGrad(ctx: Context, p: Parameter, grad: Tensor): void {
  if (grad.size !== p.value.size) {
    throw new BayesError('SHAPE_MISMATCH', `setGrad: gradient of ${grad.size} elements for a parameter of ${p.value.size}`);
  }
  p.grad?.dispose();
  p.grad = ctx.keep(grad.shape.length === p.value.shape.length ? grad : grad.reshape(p.value.shape));
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
