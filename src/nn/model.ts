/**
 * What a model is, as the code that serves one sees it: the options a model is built with (input
 * shape, task, class names, preprocessing), a forward pass's options and result, and `BuiltModel`,
 * the surface of a model built on a context that prediction and image input use. Sequential
 * (src/nn/sequential.ts) implements it; keeping the description here lets predict.ts, input.ts and
 * image_input.ts serve Sequential.predict without importing Sequential back.
 */
import type { Context } from '../gpu/context.js';
import type { Tensor } from '../gpu/tensor.js';
import type { Module, Pass } from './module.js';

export interface ForwardOptions {
  /** Monte Carlo samples T, batched on the GPU as a leading dimension (default 1). */
  samples?: number;
  /** Draw from the posterior; default: true in training mode, false in eval mode (the seed's `self.training or sample`). */
  sample?: boolean;
  /** Keep dropout on outside training (MC dropout). */
  mcDropout?: boolean;
  /** Random key of this pass. */
  seed?: number;
  step?: number;
  /** Index of the first Monte Carlo sample in the random streams (default 0; see Pass.sampleOffset). */
  sampleOffset?: number;
  /** Also compute the KL term (default true). */
  kl?: boolean;
}

export interface ForwardResult {
  /** Shape [T * B, classes]: sample t of example b at row t * B + b. */
  logits: Tensor;
  /** Shape [1]: KL(q || p) summed over the Bayesian layers, or null without Bayesian layers or with kl: false. */
  kl: Tensor | null;
  pass: Pass;
}

/** What a model is for: the likelihood `fit` trains it with and what `predict` returns. */
export type Task = 'classification' | 'regression';

/**
 * How raw images become this model's input (browser images, image files in the CLI): resized to
 * the input's height and width, turned grey (ITU-R BT.601 luma) or RGB to its channels, scaled to
 * [0, 1], optionally inverted and centred by mass, then normalized per channel: (v - mean[c]) / std[c]
 * (shaders/image.wgsl, src/nn/image_input.ts).
 */
export interface Preprocessing {
  /**
   * Resampling filter for the resize. Default 'area': the average of the source over each output
   * pixel when shrinking (a box filter, so a stroke thinner than the shrink factor keeps its share
   * of ink), bilinear when enlarging. 'bilinear': bilinear with half-pixel centres always (PyTorch's
   * align_corners = False, the training data's resize); 'nearest': the source pixel under each
   * output pixel's centre.
   */
  resize?: 'bilinear' | 'area' | 'nearest';
  /** 1 - v after scaling: dark strokes on a light page become MNIST's light strokes on black (default false). */
  invert?: boolean;
  /**
   * Shift the image (sub-pixel, resampling the source) so that the centre of mass of its grey
   * values lies at pixel (W / 2, H / 2), as MNIST's digits were prepared (LeCun et al. 1998,
   * section III.A; default false).
   */
  centerByMass?: boolean;
  /** Per-channel normalization; default mean 0, std 1 (the [0, 1] values as they are). */
  mean?: number[];
  std?: number[];
}

export interface ModelOptions {
  /** One example's shape, e.g. [1, 32, 32] for a greyscale 32 x 32 image or [features] for a vector. */
  inputShape: readonly number[];
  /** Seed of the initialisation of the layers that have no `seed` of their own (default 0). */
  seed?: number;
  /** 'classification' (default) or 'regression'. */
  task?: Task;
  /** Class names, one per output (saved with the model, used by predict's reports and the CLI). */
  classNames?: string[];
  /** How raw images become this model's input (see Preprocessing). */
  preprocessing?: Preprocessing;
  /**
   * A classifier's temperature tau > 0 (default 1): predict divides each sample's logits by it before
   * the softmax (Guo et al. 2017, temperature scaling). Saved with the model when it is not 1; set it
   * on a built model with `model.temperature = fit.temperature` (fitTemperature, src/uncertainty/calibration.ts).
   */
  temperature?: number;
}

/** A model built on a context: what model.predict and the image input read of it. */
export interface BuiltModel extends Module {
  readonly ctx: Context;
  readonly inputShape: readonly number[];
  readonly outputShapeOf: readonly number[];
  readonly modelOptions: Readonly<ModelOptions>;
  readonly task: Task;
  readonly isModel: boolean;
  readonly isBayesian: boolean;
  /** The temperature predict uses by default (ModelOptions.temperature; 1 unless set). */
  temperature: number;
  training: boolean;
  train(): this;
  eval(): this;
  run(x: Tensor, options?: ForwardOptions): ForwardResult;
}
