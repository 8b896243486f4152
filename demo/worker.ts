/**
 * The training worker: a dedicated Web Worker with its own WebGPU device, so
 * that training never blocks the page. The page starts one worker per job kind
 * (digits, regression) and sends it jobs (protocol.ts); progress comes back as
 * messages, and the trained LeNet as safetensors bytes (transferred, no copy).
 *
 * Both jobs are one `fit` each: no loop of the worker's own. A 'stop' message
 * aborts the job's AbortSignal; fit checks it before every step, so the model
 * is left at its last complete step. (The message itself is delivered while fit
 * awaits: a progress report, an evaluation or an epoch's end.)
 *
 * Digits: a fresh BBB-LRT LeNet trained by the ELBO on the 2,000 shipped MNIST
 * images. fit reads nothing per step; its onBatch reports come about four times
 * a second at most (reportSeconds; on SwiftShader, where a step takes longer,
 * after every step) and carry each step's own figures since the last report,
 * so the page gets a 'digits-step' for every step, in bursts. The held-out
 * evaluation runs at the first report after each multiple of `evalEvery` steps.
 * Regression: the seed tutorial's noisy sine through the same fit (the model's
 * task is regression), its predictive distribution on a grid redrawn every few
 * epochs from onEpoch.
 */
import { type Adam, BBBLeNet, type Context, type EpochSummary, Rng, bayesianRegressor, createContext, evaluate, fit, saveModel } from '../src/index.js';
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
/** The running job's stop: fit's signal. */
let stop: AbortController | null = null;

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
    stop?.abort();
    return;
  }
  if (busy) {
    post({ type: 'error', message: `worker: a job is already running (got '${job.type}')` });
    return;
  }
  busy = true;
  stop = new AbortController();
  const run = job.type === 'train-digits' ? trainDigits(job, stop.signal) : trainSine(job, stop.signal);
  run
    .catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }))
    .finally(() => {
      busy = false;
      stop = null;
    });
};

// ------------------------------------------------------------------ digits

async function trainDigits(job: TrainDigitsJob, signal: AbortSignal): Promise<void> {
  post({ type: 'status', text: 'opening a WebGPU device in the worker…' });
  const ctx = await openContext();
  post({ type: 'status', text: 'loading the 2,000 MNIST training images…' });
  const [train, test] = await Promise.all([loadDataSet('mnist-train'), loadDataSet('mnist-test')]);
  const heldOut = firstImages(test, job.evalImages);
  // relu rather than the seed's softplus: on 2,000 images it learns within the first epoch.
  const model = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: job.seed });
  let steps = 0; // steps posted
  let images = 0;
  let lastEval = -1;
  let started = 0;
  const evaluateHeldOut = async () => {
    const r = await evaluate(model, heldOut, { batchSize: 100, samples: 1, seed: job.seed + 7 });
    lastEval = steps;
    post({ type: 'digits-eval', step: steps, accuracy: r.accuracy, nll: r.nll, images: r.count });
  };
  let optimizer: Adam | null = null;
  try {
    post({ type: 'status', text: `training on ${train.count} images, ${Math.ceil(train.count / job.batchSize)} steps per epoch…` });
    started = performance.now();
    const result = await fit(model, train, {
      epochs: job.epochs, batchSize: job.batchSize, lr: job.lr, beta: job.beta, seed: job.seed, samples: 1,
      // Every image trains; the page's model is the last step's, whenever it stops.
      validFraction: 0, restoreBest: false, signal,
      reportEvery: 1, reportSeconds: 0.25,
      onBatch: async (p) => {
        const before = steps;
        for (const f of p.stepFigures) {
          images += f.count;
          steps = f.step + 1;
          const imagesPerSecond = images / ((performance.now() - started) / 1000);
          post({ type: 'digits-step', step: steps, epoch: p.epoch + 1, nll: f.nll, kl: f.kl, accuracy: (f.correct ?? 0) / f.count, imagesPerSecond });
        }
        if (Math.floor(steps / job.evalEvery) > Math.floor(before / job.evalEvery)) await evaluateHeldOut();
      },
    });
    optimizer = result.optimizer;
    if (steps > 0 && lastEval !== steps) await evaluateHeldOut();
    const checkpoint = await saveModel(model, { metadata: { trainedBy: 'bayesgpu demo (browser worker)', steps: String(result.steps), trainImages: String(train.count) } });
    post({ type: 'digits-done', checkpoint, steps: result.steps, stopped: result.stopped === 'aborted' }, [checkpoint.buffer]);
  } finally {
    optimizer?.dispose();
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
    y[i] = Math.sin(x[i]) + noise * rng.normal();
  }
  return { x, y };
}

/** Where the predictive distribution is drawn: beyond the data on both sides, where the epistemic part grows. */
const REGRESSION_GRID = Float32Array.from({ length: 141 }, (_, i) => -7 + i * 0.1);

async function trainSine(job: TrainRegressionJob, signal: AbortSignal): Promise<void> {
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
  const started = performance.now();
  const frame = async (e: { epoch: number; loss: number; nll: number; kl: number }) => {
    for (const [name, p] of model.namedParameters()) ctx.copy(p.value, twinParameters.get(name)!.value);
    // A fixed random key for every frame: the band moves because the posterior moves, not because of new noise.
    const p = await twin.predict({ data: REGRESSION_GRID, shape: [REGRESSION_GRID.length, 1] }, { samples: job.predictSamples, seed: 7 });
    const message: FromWorker = { type: 'regression-frame', epochs: job.epochs, ...e, xs: REGRESSION_GRID.slice(), mean: p.mean, epistemicVar: p.epistemicVar, aleatoricVar: p.aleatoricVar };
    post(message, [p.mean.buffer, p.epistemicVar.buffer, p.aleatoricVar.buffer]);
  };
  const figures = (e: EpochSummary) => ({ epoch: e.epoch, loss: e.trainLoss, nll: e.trainNll, kl: e.kl });
  let drawn = 0;
  let optimizer: Adam | null = null;
  let stopped = false;
  try {
    await frame({ epoch: 0, loss: NaN, nll: NaN, kl: NaN });
    post({ type: 'status', text: `training on ${job.points} points…` });
    // The ELBO proper (beta 1) on every point, lr 0.03: the tutorial's settings (examples/regression.ts).
    const result = await fit(model, { x, y, count: job.points, features: 1 }, {
      epochs: job.epochs, batchSize: 256, samples: 1, seed: job.seed, lr: 0.03, beta: 1, validFraction: 0, restoreBest: false, signal,
      onEpoch: async (e) => {
        if (e.epoch % job.redrawEvery === 0 || e.epoch === e.epochs || signal.aborted) {
          await frame(figures(e));
          drawn = e.epoch;
        }
      },
    });
    optimizer = result.optimizer;
    stopped = result.stopped === 'aborted';
    const last = result.history.at(-1);
    if (last && drawn !== last.epoch) await frame(figures(last));
  } finally {
    optimizer?.dispose();
    twin.dispose();
    model.dispose();
  }
  post({ type: 'regression-done', stopped, seconds: (performance.now() - started) / 1000 });
}
