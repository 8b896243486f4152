/**
 * Layers own their parameters and gradients and a readable forward/backward
 * pair (llm.c style: no hidden autograd tape). A forward stores in the layer
 * what its backward needs; the caller runs the pair inside one `ctx.scope`,
 * which frees those intermediates when the step ends.
 *
 * A layer is made without a device: its constructor records its settings, and
 * `build` allocates its parameters on a context once the input shape is known
 * (a Sequential built on a context builds its layers). Forward and backward take
 * no context: each tensor carries its own.
 *
 * A layer describes itself with `getConfig()`, the JSON object its registered
 * factory (src/nn/registry.ts) rebuilds it from, so any network of registered
 * layers saves and loads with its architecture (saveModel / loadModel).
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

/** A layer's description: its registered type name and the settings its factory rebuilds it from (JSON values only). */
export interface LayerConfig {
  type: string;
  [setting: string]: unknown;
}

/** Random streams reserved per layer: see Module.streamBase. */
export const STREAMS_PER_LAYER = 8;

/**
 * What a container hands down while it builds its layers: the model's initialisation seed, the next
 * free random stream and the count of layers built so far (each layer's default init seed comes from
 * its position, so two layers of one shape never start alike).
 */
export interface BuildState {
  seed: number;
  nextStream: number;
  layers: number;
}

/** The init seed of the layer built `index`-th (from 0) in a model seeded `seed`; the seed's models derive theirs the same way. */
export function layerSeed(seed: number, index: number): number {
  return (seed * 1000003 + (index + 1) * 7919) >>> 0;
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
  abstract forward(x: Tensor, pass: Pass): Tensor;
  /** Gradient w.r.t. the input (null when pass.needInputGrad is false); parameter gradients go to `grad`. */
  abstract backward(dy: Tensor, pass: Pass): Tensor | null;
  /** The registered type and the settings that rebuild this layer (see src/nn/registry.ts). */
  abstract getConfig(): LayerConfig;

  /** This layer's own parameters by their local name (W_mu, weight, running_mean, ...); containers return none. */
  parameters(): Map<string, Parameter> {
    return new Map();
  }

  /** The layers a container holds, by their names; a plain layer holds none. */
  children(): [string, Module][] {
    return [];
  }

  /** Every parameter of this layer and the layers under it, by state-dict name ('block1.conv1.W_mu'). */
  namedParameters(): Map<string, Parameter> {
    const out = new Map<string, Parameter>(this.parameters());
    for (const [name, child] of this.children()) for (const [k, p] of child.namedParameters()) out.set(`${name}.${k}`, p);
    return out;
  }

  /** The gradient of every trainable parameter from the last backward, by state-dict name (null before one). */
  gradients(): Map<string, Tensor | null> {
    const out = new Map<string, Tensor | null>();
    for (const [name, p] of this.namedParameters()) if (p.trainable) out.set(name, p.grad);
    return out;
  }

  /**
   * Allocates the parameters on `ctx` for one example's input shape (lazy layers infer their sizes here).
   * A plain layer takes its random streams from `state`; a container passes `state` to its layers in order.
   */
  build(_ctx: Context, _input: readonly number[], state: BuildState): void {
    this.streamBase = state.nextStream;
    state.nextStream += STREAMS_PER_LAYER;
    state.layers++;
  }

  /** KL(q || p) of this layer's variational parameters for the last forward, or null. */
  kl(_pass: Pass): Tensor | null {
    return null;
  }

  /** Adds scale * dKL/dparams into the parameter gradients. */
  klBackward(_pass: Pass, _scale: number): void {}

  dispose(): void {
    for (const p of this.parameters().values()) {
      p.value.dispose();
      p.grad?.dispose();
      p.grad = null;
    }
    for (const [, child] of this.children()) child.dispose();
  }
}

/** Replaces a parameter's gradient, freeing the old one and keeping the new one out of the step's scope. */
export function setGrad(p: Parameter, grad: Tensor): void {
  if (grad.size !== p.value.size) {
    throw new BayesError('SHAPE_MISMATCH', `setGrad: gradient of ${grad.size} elements for a parameter of ${p.value.size}`);
  }
  p.grad?.dispose();
  p.grad = grad.ctx.keep(grad.shape.length === p.value.shape.length ? grad : grad.reshape(p.value.shape));
}

/** A parameter made from CPU values on `ctx`, kept out of every scope. */
export function createParameter(ctx: Context, data: ArrayLike<number>, shape: readonly number[], role: Parameter['role'] = 'weight', trainable = true): Parameter {
  return { value: ctx.keep(ctx.tensor(data, shape)), grad: null, role, trainable };
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
