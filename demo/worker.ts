/**
 * The training worker: a dedicated Web Worker with its own WebGPU device, so
 * that training never blocks the page. The page starts one worker per job kind
 * (digits, regression) and sends it jobs (protocol.ts); progress comes back as
 * messages, and the trained LeNet as safetensors bytes (transferred, no copy).
 *
 * Digits: a fresh BBB-LRT LeNet trained by the ELBO on the 2,000 shipped MNIST
 * images, one trainStep (src/train/step.ts) at a time, every step reported.
 * A readback stalls the GPU (a submit and a full wait, longer than a LeNet step
 * on a GPU), so steps are not read one by one: each step's NLL, KL and correct
 * count go into its slots of one small per-epoch tensor on the GPU, and a
 * report reads that tensor once and posts a 'digits-step' for every step since
 * the last report. Reports come about four times a second at most (ReportPacer
 * picks the stride in steps from the pace it measures; on SwiftShader, where a
 * step takes longer, that is every step), before each held-out evaluation, at
 * each epoch's end and at the end, so the page gets every step's exact figures,
 * in bursts. A 'stop' message takes effect at the next report.
 * Regression: the seed tutorial's noisy sine with trainRegression, its
 * predictive distribution on a grid re-evaluated every few epochs.
 */
import {
  Adam, BBBLeNet, type Context, type FloatDataset, Rng, bayesianRegressor, createContext, evaluate, permutation,
  predictWithUncertainty, saveCheckpoint, trainRegression, trainStep,
} from '../src/index.js';
// Internal pieces (not in the package entry): the one-slot copy into a tensor and the report pacing of fit.
import { sumInto } from '../src/ops/reduce.js';
import { ReportPacer } from '../src/train/fit.js';
import { firstImages, loadDataSet } from './data.js';
import type { FromWorker, ToWorker, TrainDigitsJob, TrainRegressionJob } from './protocol.js';

/** The parts of DedicatedWorkerGlobalScope used here (tsconfig's lib is DOM, not WebWorker). */
interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
}
const scope = self as unknown as WorkerScope;

function post(message: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

let context: Promise<Context> | undefined;
let busy = false;
let stopRequested = false;

function openContext(): Promise<Context> {
  context ??= createContext().then((ctx) => {
    post({ type: 'adapter', name: ctx.adapterName, fallback: ctx.adapter.isFallbackAdapter });
    return ctx;
  });
  return context;
}

scope.onmessage = (ev) => {
  const job = ev.data;
  if (job.type === 'stop') {
    stopRequested = true;
    return;
  }
  if (busy) {
    post({ type: 'error', message: `worker: a job is already running (got '${job.type}')` });
    return;
  }
  busy = true;
  stopRequested = false;
  const run = job.type === 'train-digits' ? trainDigits(job) : trainSine(job);
  run
    .catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }))
    .finally(() => {
      busy = false;
    });
};

// ------------------------------------------------------------------ digits

/** Copies the examples order[from, from + n) of `data` into the batch buffers. */
function gather(data: FloatDataset, order: Uint32Array, from: number, n: number, x: Float32Array, labels: Uint32Array): void {
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  for (let i = 0; i < n; i++) {
    const j = order[from + i];
    x.set(data.x.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = data.labels[j];
  }
}

async function trainDigits(job: TrainDigitsJob): Promise<void> {
  post({ type: 'status', text: 'opening a WebGPU device in the worker…' });
  const ctx = await openContext();
  post({ type: 'status', text: 'loading the 2,000 MNIST training images…' });
  const [train, test] = await Promise.all([loadDataSet('mnist-train'), loadDataSet('mnist-test')]);
  const heldOut = firstImages(test, job.evalImages);
  // relu rather than the seed's softplus: on 2,000 images it learns within the first epoch.
  const model = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: job.seed });
  const adam = new Adam(ctx, model.namedParameters(), { lr: job.lr });
  const B = job.batchSize;
  const per = train.shape[0] * train.shape[1] * train.shape[2];
  const x = ctx.keep(ctx.empty([B, ...train.shape]));
  const labels = ctx.keep(ctx.empty([B], 'u32'));
  const hx = new Float32Array(B * per);
  const hl = new Uint32Array(B);
  // Whole batches only: one batch shape, so the step's kernels and buffers are reused.
  const batches = Math.floor(train.count / B);
  // Step b of the epoch: NLL in slot b, KL in batches + b, correct count in 2 * batches + b.
  const stats = ctx.keep(ctx.empty([3, Math.max(batches, 1)]));
  const pacer = new ReportPacer(1, 0.25);
  let step = 0;
  let epoch = 0;
  let done = 0; // steps of this epoch run
  let posted = 0; // ... and posted
  let lastEval = -1;
  let started = 0;
  /** One readback; a 'digits-step' for each step of this epoch not posted yet, with its own figures. */
  const report = async () => {
    if (posted === done) return;
    const v = await stats.read();
    const now = performance.now();
    pacer.read(done, now);
    const imagesPerSecond = (step * B) / ((now - started) / 1000);
    for (; posted < done; posted++) {
      post({ type: 'digits-step', step: step - done + posted + 1, epoch: epoch + 1, nll: v[posted], kl: v[batches + posted], accuracy: v[2 * batches + posted] / B, imagesPerSecond });
    }
  };
  const evaluateHeldOut = async () => {
    const r = await evaluate(ctx, model, heldOut, { batchSize: 100, samples: 1, seed: job.seed + 7 });
    lastEval = step;
    post({ type: 'digits-eval', step, accuracy: r.accuracy, nll: r.nll, images: r.count });
  };
  try {
    post({ type: 'status', text: `training on ${train.count} images, ${batches} steps per epoch…` });
    started = performance.now();
    training: for (epoch = 0; epoch < job.epochs; epoch++) {
      const order = permutation(train.count, job.seed + 1000 + epoch);
      done = 0;
      posted = 0;
      pacer.restart(performance.now());
      for (let b = 0; b < batches; b++) {
        // stopRequested changes only while this loop awaits, i.e. at a report or an evaluation.
        if (stopRequested) break training;
        gather(train, order, b * B, B, hx, hl);
        ctx.write(x, hx);
        ctx.write(labels, hl);
        ctx.scope(() => {
          const r = trainStep(ctx, model, adam, x, labels, { samples: 1, beta: job.beta, trainSize: train.count, seed: job.seed, step });
          sumInto(r.nll, stats, { index: b });
          sumInto(r.kl, stats, { index: batches + b });
          sumInto(r.correct, stats, { index: 2 * batches + b });
        });
        step++;
        done = b + 1;
        const evaluating = step % job.evalEvery === 0;
        if (evaluating || pacer.due(done) || done === batches) await report();
        if (evaluating) await evaluateHeldOut();
      }
    }
    await report();
    if (step > 0 && lastEval !== step) await evaluateHeldOut();
    const checkpoint = await saveCheckpoint(model, { extra: { trainedBy: 'bayesgpu demo (browser worker)', steps: String(step), trainImages: String(train.count) } });
    post({ type: 'digits-done', checkpoint, steps: step, stopped: stopRequested }, [checkpoint.buffer]);
  } finally {
    stats.dispose();
    x.dispose();
    labels.dispose();
    adam.dispose();
    model.dispose();
  }
}

// -------------------------------------------------------------- regression

/** y = sin(x) + N(0, noise^2) with x uniform on [-3, 3]: the seed tutorial's data (examples/regression.ts). */
function noisySine(count: number, noise: number, seed: number): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(count);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    x[i] = -3 + 6 * rng.nextFloat();
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const normal = Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
    y[i] = Math.sin(x[i]) + noise * normal;
  }
  return { x, y };
}

class Stopped extends Error {}

/** Where the predictive distribution is drawn: beyond the data on both sides, where the epistemic part grows. */
const REGRESSION_GRID = Float32Array.from({ length: 141 }, (_, i) => -7 + i * 0.1);

async function trainSine(job: TrainRegressionJob): Promise<void> {
  post({ type: 'status', text: 'opening a WebGPU device in the worker…' });
  const ctx = await openContext();
  const { x, y } = noisySine(job.points, job.noise, job.seed);
  post({ type: 'regression-data', x: x.slice(), y: y.slice() });
  // The tutorial's network: 1 -> 50 -> 50 -> head, N(0, 1) priors (REGRESSION_PRIORS).
  const model = bayesianRegressor(ctx, { features: 1, hidden: [50, 50], head: job.head, seed: job.seed });
  // The frames sample the same posterior as whole networks ('bbb': one weight draw per Monte Carlo sample,
  // shared by every x) rather than as per-activation noise (LRT, which training keeps for its lower-variance
  // gradients, Kingma et al. 2015). For each x both give the same distribution, but with LRT every grid point
  // gets independent noise, so a T-sample mean zigzags; whole-network samples are smooth curves.
  const twin = bayesianRegressor(ctx, { features: 1, hidden: [50, 50], head: job.head, seed: job.seed, layerType: 'bbb' });
  const twinParameters = twin.namedParameters();
  const optimizer = new Adam(ctx, model.namedParameters(), { lr: 0.03 });
  const started = performance.now();
  const frame = async (e: { epoch: number; loss: number; nll: number; kl: number }) => {
    for (const [name, p] of model.namedParameters()) ctx.copy(p.value, twinParameters.get(name)!.value);
    // A fixed random key for every frame: the band moves because the posterior moves, not because of new noise.
    const p = await predictWithUncertainty(ctx, twin, REGRESSION_GRID, { samples: job.predictSamples, seed: 7 });
    const message: FromWorker = { type: 'regression-frame', epochs: job.epochs, ...e, xs: REGRESSION_GRID.slice(), mean: p.mean, epistemicVar: p.epistemicVar, aleatoricVar: p.aleatoricVar };
    post(message, [p.mean.buffer, p.epistemicVar.buffer, p.aleatoricVar.buffer]);
  };
  let stopped = false;
  try {
    await frame({ epoch: 0, loss: NaN, nll: NaN, kl: NaN });
    post({ type: 'status', text: `training on ${job.points} points…` });
    await trainRegression(ctx, model, { x, y, count: job.points, features: 1 }, {
      epochs: job.epochs, batchSize: 256, samples: 1, seed: job.seed, optimizer,
      onEpoch: async (e) => {
        if (e.epoch % job.redrawEvery === 0 || e.epoch === e.epochs || stopRequested) await frame(e);
        if (stopRequested) throw new Stopped();
      },
    });
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
    stopped = true;
  } finally {
    optimizer.dispose();
    twin.dispose();
    model.dispose();
  }
  post({ type: 'regression-done', stopped, seconds: (performance.now() - started) / 1000 });
}
