/**
 * Messages between the page (main.ts and its tabs) and the training worker
 * (worker.ts). The page sends one job per worker; the worker answers with
 * progress messages and one final message ('digits-done', 'regression-done'
 * or 'error'). 'stop' aborts the running job's fit (an AbortSignal): it stops
 * before its next step, and the final message says `stopped: true`. The worker
 * reads the message while fit awaits (the digits job reports at most about four
 * times a second, see worker.ts), so the model may take a few more steps first.
 */
import type { RegressionHead } from '../src/index.js';

export interface TrainDigitsJob {
  type: 'train-digits';
  epochs: number;
  batchSize: number;
  lr: number;
  /** KL weight of the ELBO (see worker.ts for the choice). */
  beta: number;
  seed: number;
  /** Held-out accuracy on this many shipped test images every `evalEvery` steps. */
  evalImages: number;
  evalEvery: number;
}

export interface TrainRegressionJob {
  type: 'train-regression';
  head: RegressionHead;
  epochs: number;
  points: number;
  noise: number;
  seed: number;
  /** Monte Carlo samples of each redraw's predictive distribution. */
  predictSamples: number;
  /** Redraw after every this many epochs. */
  redrawEvery: number;
}

export type ToWorker = TrainDigitsJob | TrainRegressionJob | { type: 'stop' };

/** One training step's own figures (every step gets one, posted in bursts at fit's onBatch reports). */
export interface DigitsStep {
  type: 'digits-step';
  /** Steps done, this one included (1 for the first). */
  step: number;
  epoch: number;
  /** Mean NLL per image of this batch (nats), the ELBO's data term. */
  nll: number;
  /** KL(q || p) of the current posterior (nats). */
  kl: number;
  /** Fraction of this batch classified correctly. */
  accuracy: number;
  imagesPerSecond: number;
}

export interface DigitsEval {
  type: 'digits-eval';
  step: number;
  accuracy: number;
  nll: number;
  images: number;
}

export interface RegressionFrame {
  type: 'regression-frame';
  epoch: number;
  epochs: number;
  loss: number;
  nll: number;
  kl: number;
  xs: Float32Array;
  mean: Float32Array;
  epistemicVar: Float32Array;
  aleatoricVar: Float32Array;
}

export type FromWorker =
  | { type: 'adapter'; name: string; fallback: boolean }
  | { type: 'status'; text: string }
  | DigitsStep
  | DigitsEval
  | { type: 'digits-done'; checkpoint: Uint8Array; steps: number; stopped: boolean }
  | { type: 'regression-data'; x: Float32Array; y: Float32Array }
  | RegressionFrame
  | { type: 'regression-done'; stopped: boolean; seconds: number }
  | { type: 'error'; message: string };
