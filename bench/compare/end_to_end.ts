/**
 * The end-to-end part of `npm run bench`: BBB-LRT LeNet training throughput, Monte Carlo
 * prediction batched against looped, and GPU memory during training against its minimum.
 * All timed by wall clock around ctx.sync(): a step is many submissions with JavaScript in
 * between, which is what a user waits for. The data is synthetic (uniform pixels, labels
 * 0..9): the cost of a step does not depend on the values.
 */
import { Adam, BBBLeNet, type Context, type Model, type StepResult, trainStep } from '../../src/node.js';
import { BBBConv2d, BBBLinear } from '../../src/nn/bayes.js';
import { Conv2d, Linear, MaxPool2d, ReLU, Softplus } from '../../src/nn/layers.js';
import { uniformData } from './implementations.js';
import { median, round } from './timing.js';

export interface TrainingOptions {
  batch: number;
  /** Untimed steps first (pipeline compilation, pool warm-up, the gradients' first allocation). */
  warmupSteps: number;
  /** Steps per timed round; samples/s of a round = steps * batch / its wall time. */
  steps: number;
  rounds: number;
}

export interface TrainingResult {
  samplesPerSecond: number;
  batch: number;
  model: string;
  msPerStep: number;
  stepsPerRound: number;
  rounds: number;
  timing: 'wall';
  /** The loss of the last step, read back once after timing: a finite number shows the steps computed something. */
  lastLoss: number;
}

export interface MemoryResult {
  /** ctx.memory().peakLiveBytes over the timed training steps, after ctx.resetPeak(). */
  peakBytes: number;
  minimumBytes: number;
  peakOverMinimum: number;
  formula: string;
  breakdown: { parameters: number; gradients: number; adamMoments: number; savedActivations: number };
  /** Live GPU buffers and bytes after every timed step: equal values mean nothing accumulates. */
  liveBuffers: { perStep: number[]; liveBytesPerStep: number[]; growth: number; stable: boolean };
}

export interface McResult {
  batchedMs: number;
  loopedMs: number;
  /** loopedMs / batchedMs. */
  speedup: number;
  samples: number;
  batch: number;
  rounds: number;
  timing: 'wall';
}

/**
 * The least GPU memory a training step of `model` on a batch of `batch` needs, in bytes of f32:
 *
 *   minimum = 4 * (P + P + 2P + B * A)
 *
 * P: trainable scalars (mu and rho of every weight and bias), once as values, once as gradients,
 * twice as Adam's moments m and v. A: scalars per example that some backward must read, each
 * layer's own (a tensor shared by two layers is counted once, by the layer that reads it):
 *   conv / linear (BBB-LRT or plain): its input;  BBB-LRT layer: also the std of its outputs
 *     (Kingma et al. 2015: the backward of the sampled pre-activation needs it; eps is regenerated
 *     from its random key, so it is not counted);
 *   relu / softplus: its input;  max-pool: one index per output;  flatten: nothing (a view);
 *   the loss: the log-probabilities [B, classes].
 * Everything else (temporaries of one kernel, the incoming gradient of the layer being
 * differentiated) is transient and not counted, so a real step always needs somewhat more.
 */
export function trainingMinimumBytes(model: Model, batch: number): { bytes: number; breakdown: MemoryResult['breakdown'] } {
  let p = 0;
  for (const param of model.namedParameters().values()) if (param.trainable) p += param.value.size;
  const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  let perExample = 0;
  let shape: readonly number[] = model.inputShape;
  for (const [, layer] of model.layers) {
    const out = layer.outputShape(shape);
    if (layer instanceof BBBConv2d || layer instanceof BBBLinear) perExample += size(shape) + (layer.layerType === 'lrt' ? size(out) : 0);
    else if (layer instanceof Conv2d || layer instanceof Linear || layer instanceof ReLU || layer instanceof Softplus) perExample += size(shape);
    else if (layer instanceof MaxPool2d) perExample += size(out);
    shape = out;
  }
  perExample += size(shape);
  const breakdown = { parameters: 4 * p, gradients: 4 * p, adamMoments: 8 * p, savedActivations: 4 * batch * perExample };
  return { bytes: breakdown.parameters + breakdown.gradients + breakdown.adamMoments + breakdown.savedActivations, breakdown };
}

const MINIMUM_FORMULA =
  '4 bytes * (P values + P gradients + 2P Adam moments + B * A saved activations); P = trainable scalars; ' +
  'A per example = inputs of conv/linear/activation layers + std of each BBB-LRT layer output + one max-pool index per pooled output + log-probabilities';

function lenet(ctx: Context): Model {
  return BBBLeNet(ctx, { layerType: 'lrt', inChannels: 1, classes: 10, seed: 1 });
}

function syntheticBatch(ctx: Context, batch: number, seed: number) {
  const x = ctx.keep(ctx.tensor(uniformData(batch * 1024, seed, 0, 1), [batch, 1, 32, 32]));
  const labels = ctx.keep(ctx.tensor(Uint32Array.from({ length: batch }, (_, i) => i % 10), [batch], 'u32'));
  return { x, labels };
}

/** Training throughput, peak memory and live buffers of BBB-LRT LeNet with Adam (lr 1e-3, 1 MC sample, beta 0.1). */
export async function benchTraining(ctx: Context, o: TrainingOptions, log: (line: string) => void): Promise<{ training: TrainingResult; memory: MemoryResult }> {
  const model = lenet(ctx);
  const adam = new Adam(model, { lr: 1e-3 });
  const { x, labels } = syntheticBatch(ctx, o.batch, 21);
  // The last step's result: its figures stay on the GPU (the optimizer frees them at the next step).
  const last: { result: StepResult | null } = { result: null };
  const oneStep = () => {
    last.result = trainStep(model, adam, x, labels, { samples: 1, beta: 0.1, trainSize: 60000, seed: 1 });
  };
  try {
    const w0 = performance.now();
    for (let i = 0; i < o.warmupSteps; i++) oneStep();
    await ctx.sync();
    log(`training warm-up: ${o.warmupSteps} step(s) in ${round((performance.now() - w0) / 1000, 1)} s`);
    ctx.resetPeak();
    const perStep: number[] = [];
    const liveBytesPerStep: number[] = [];
    const rates: number[] = [];
    const stepMs: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < o.steps; i++) {
        oneStep();
        const m = ctx.memory();
        perStep.push(m.liveBuffers);
        liveBytesPerStep.push(m.liveBytes);
      }
      await ctx.sync();
      const ms = performance.now() - t0;
      rates.push((o.steps * o.batch * 1000) / ms);
      stepMs.push(ms / o.steps);
      log(`training round ${r + 1}/${o.rounds}: ${round((o.steps * o.batch * 1000) / ms, 1)} samples/s`);
    }
    const peakBytes = ctx.memory().peakLiveBytes;
    const loss = (await last.result!.read()).loss;
    const minimum = trainingMinimumBytes(model, o.batch);
    const growth = perStep.length ? perStep[perStep.length - 1] - perStep[0] : 0;
    return {
      training: {
        samplesPerSecond: round(median(rates), 2), batch: o.batch, model: 'BBB-LRT LeNet (1x32x32, 10 classes), Adam lr 1e-3, 1 MC sample',
        msPerStep: round(median(stepMs)), stepsPerRound: o.steps, rounds: o.rounds, timing: 'wall', lastLoss: loss,
      },
      memory: {
        peakBytes, minimumBytes: minimum.bytes, peakOverMinimum: round(peakBytes / minimum.bytes), formula: MINIMUM_FORMULA, breakdown: minimum.breakdown,
        liveBuffers: { perStep, liveBytesPerStep, growth, stable: perStep.every((n) => n === perStep[0]) && liveBytesPerStep.every((n) => n === liveBytesPerStep[0]) },
      },
    };
  } finally {
    adam.dispose();
    model.dispose();
    x.dispose();
    labels.dispose();
  }
}

/**
 * T Monte Carlo samples of BBB-LRT LeNet's logits in eval mode with posterior sampling: one
 * batched pass of T * B rows (model.run with samples T) against T passes of B rows (samples 1,
 * sampleOffset t, which draw the same noise). Rounds alternate the two.
 */
export async function benchMcPrediction(ctx: Context, o: { batch: number; samples: number; rounds: number }, log: (line: string) => void): Promise<McResult> {
  const model = lenet(ctx);
  model.eval();
  const { x, labels } = syntheticBatch(ctx, o.batch, 22);
  const batched = async () => {
    ctx.scope(() => void model.run(x, { samples: o.samples, sample: true, seed: 2, step: 0, kl: false }));
    await ctx.sync();
  };
  const looped = async () => {
    for (let t = 0; t < o.samples; t++) ctx.scope(() => void model.run(x, { samples: 1, sample: true, seed: 2, step: 0, sampleOffset: t, kl: false }));
    await ctx.sync();
  };
  const wall = async (f: () => Promise<void>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  try {
    log(`mc prediction warm-up: batched ${round((await wall(batched)) / 1000, 1)} s, looped ${round((await wall(looped)) / 1000, 1)} s`);
    const b: number[] = [];
    const l: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      b.push(await wall(batched));
      l.push(await wall(looped));
      log(`mc prediction round ${r + 1}/${o.rounds}: batched ${round(b[r], 1)} ms, looped ${round(l[r], 1)} ms`);
    }
    const batchedMs = median(b);
    const loopedMs = median(l);
    return { batchedMs: round(batchedMs), loopedMs: round(loopedMs), speedup: round(loopedMs / batchedMs), samples: o.samples, batch: o.batch, rounds: o.rounds, timing: 'wall' };
  } finally {
    model.dispose();
    x.dispose();
    labels.dispose();
  }
}
