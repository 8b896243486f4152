/**
 * Last-layer Laplace (Daxberger et al. 2021) against the Bayesian baselines on MNIST: a frequentist
 * LeNet is trained (or loaded with --checkpoint), then its last layer gets a Laplace posterior (KFAC and
 * diagonal, prior precision by marginal likelihood, probit predictive; KFAC also with MC); a BBB-LRT
 * LeNet and an MC-dropout LeNet are trained on the same images for the same epochs. For each, on the
 * MNIST test images: accuracy, ECE, NLL, and the OOD AUROC against Fashion-MNIST's test images
 * (predictive entropy, mutual information, max probability), with the training (or fitting) and the
 * prediction seconds.
 *
 *   node bench/run.mjs laplace [--images 10000] [--epochs 1] [--test-images 10000] [--ood-images 2000]
 *     [--batch 128] [--lr 0.001] [--beta 0.1] [--samples 20] [--mc-samples 100] [--checkpoint lenet.safetensors] [--json out.json]
 *
 * The defaults take about 15 minutes on SwiftShader (CPU), mostly the three trainings and the T = 20
 * passes of the two sampled baselines; a smoke run: --images 512 --test-images 500 --ood-images 500.
 */
import { writeFileSync } from 'node:fs';
import { createContext } from '../src/node.js';
import { BBBLeNet, LeNet } from '../src/nn/models.js';
import type { Prediction, PredictOptions } from '../src/nn/predict.js';
import type { Sequential } from '../src/nn/sequential.js';
import { loadModelFile } from '../src/io/checkpoint_files.js';
import { fit } from '../src/train/fit.js';
import { loadDataset } from '../src/cli/datasets.js';
import { type LaplacePredictOptions, fitLaplace } from '../src/uncertainty/laplace.js';
import { classificationMetrics, oodDetection, type OodDetection } from '../src/uncertainty/metrics.js';
import { loadNamedOodSet } from '../src/uncertainty/ood_files.js';

interface Row {
  name: string;
  accuracy: number;
  ece: number;
  nll: number;
  ood: OodDetection;
  /** Training seconds (for a Laplace row: the fit of the posterior alone, after the MAP training). */
  trainSeconds: number;
  /** Seconds to predict the test and OOD images. */
  predictSeconds: number;
  priorPrecision?: number;
  logMarginalLikelihood?: number;
}

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const images = Number(arg('images', '10000'));
  const epochs = Number(arg('epochs', '1'));
  const testImages = Number(arg('test-images', '10000'));
  const oodImages = Number(arg('ood-images', '2000'));
  const batchSize = Number(arg('batch', '128'));
  const lr = Number(arg('lr', '0.001'));
  const beta = Number(arg('beta', '0.1'));
  const samples = Number(arg('samples', '20'));
  const mcSamples = Number(arg('mc-samples', '100'));
  const checkpoint = args.includes('--checkpoint') ? arg('checkpoint', '') : null;
  const jsonPath = args.includes('--json') ? arg('json', 'laplace.json') : null;

  const ctx = await createContext();
  const train = await loadDataset('mnist', 'train', { limit: images });
  const test = await loadDataset('mnist', 'test', { limit: testImages });
  const oodSet = await loadNamedOodSet('fashion-mnist', { channels: 1, imageSize: 32 }, { limit: oodImages });
  if (!oodSet) throw new Error('the OOD figures need the Fashion-MNIST test images (scripts/setup.sh installs them)');
  const first = Math.min(oodImages, test.count, oodSet.count);
  console.log(`adapter: ${ctx.adapterName}; ${train.count} training, ${test.count} test, ${oodSet.count} Fashion-MNIST images; ${epochs} epoch(s), batch ${batchSize}, lr ${lr}`);
  const rows: Row[] = [];

  /** Metrics of the test predictive and OOD AUROC of the first `first` test images against as many OOD images. */
  function record(name: string, inDist: Prediction, ood: Prediction, trainSeconds: number, predictSeconds: number, extra: Partial<Row> = {}): void {
    const m = classificationMetrics(inDist.mean, test.labels, inDist.classes);
    const cut = (a: Float32Array) => a.subarray(0, first);
    const o = oodDetection(
      { predictiveEntropy: cut(inDist.predictiveEntropy), mutualInformation: cut(inDist.mutualInformation), maxProb: cut(inDist.maxProb) },
      { predictiveEntropy: cut(ood.predictiveEntropy), mutualInformation: cut(ood.mutualInformation), maxProb: cut(ood.maxProb) },
    );
    const row: Row = { name, accuracy: m.accuracy, ece: m.ece, nll: m.nll, ood: o, trainSeconds, predictSeconds, ...extra };
    rows.push(row);
    console.log(
      `${name.padEnd(22)} accuracy ${(m.accuracy * 100).toFixed(2)}%  ECE ${m.ece.toFixed(4)}  NLL ${m.nll.toFixed(4)}  OOD AUROC entropy ${o.aurocEntropy.toFixed(4)} MI ${o.aurocMutualInformation.toFixed(4)} maxprob ${o.aurocMaxProb.toFixed(4)}  ` +
        `train ${trainSeconds.toFixed(1)} s, predict ${predictSeconds.toFixed(1)} s${extra.priorPrecision !== undefined ? `  delta ${extra.priorPrecision.toPrecision(4)}, log p(D|delta) ${extra.logMarginalLikelihood!.toFixed(1)}` : ''}`,
    );
  }

  async function trainModel(model: Sequential): Promise<number> {
    const t0 = performance.now();
    await fit(model, train, { epochs, batchSize, lr, beta, validFraction: 0, restoreBest: false, seed: 1 });
    return (performance.now() - t0) / 1000;
  }

  async function predictBoth(model: Sequential, options: PredictOptions): Promise<{ inDist: Prediction; ood: Prediction; seconds: number }> {
    const t0 = performance.now();
    const inDist = await model.predict(test, { batchSize: 500, ...options });
    // The OOD set's random keys start past the test set's, as bayesgpu eval does.
    const ood = await model.predict(oodSet!, { batchSize: 500, ...options, step: 2 ** 24 });
    return { inDist, ood, seconds: (performance.now() - t0) / 1000 };
  }

  // The MAP network and its last-layer Laplace posteriors.
  let map: Sequential;
  let mapSeconds = 0;
  if (checkpoint) {
    map = await loadModelFile(ctx, checkpoint);
    console.log(`loaded ${checkpoint}`);
  } else {
    map = LeNet(ctx, { seed: 1 });
    mapSeconds = await trainModel(map);
  }
  const plain = await predictBoth(map, { samples: 1 });
  record('map (softmax)', plain.inDist, plain.ood, mapSeconds, plain.seconds);
  for (const curvature of ['kron', 'diag'] as const) {
    const t0 = performance.now();
    const la = await fitLaplace(map, train, { curvature, batchSize: 500 });
    const fitSeconds = (performance.now() - t0) / 1000;
    const methods: LaplacePredictOptions[] = curvature === 'kron' ? [{ method: 'probit' }, { method: 'mc', samples: mcSamples, seed: 7 }] : [{ method: 'probit' }];
    for (const options of methods) {
      const t1 = performance.now();
      const inDist = await la.predict(test, { ...options, batchSize: 500 });
      const ood = await la.predict(oodSet, { ...options, batchSize: 500 });
      const name = `laplace-${curvature} ${options.method === 'mc' ? `mc T=${mcSamples}` : 'probit'}`;
      record(name, inDist, ood, fitSeconds, (performance.now() - t1) / 1000, { priorPrecision: la.priorPrecision, logMarginalLikelihood: la.logMarginalLikelihood });
    }
  }
  map.dispose();

  // The baselines, trained on the same images.
  const bbb = BBBLeNet(ctx, { layerType: 'lrt', activation: 'relu', seed: 1, priors: { posterior_mu_initial: [0, 0.1], posterior_rho_initial: [-5, 0.1] } });
  const bbbSeconds = await trainModel(bbb);
  const bbbPred = await predictBoth(bbb, { samples, seed: 7 });
  record(`bbb-lrt T=${samples}`, bbbPred.inDist, bbbPred.ood, bbbSeconds, bbbPred.seconds);
  bbb.dispose();

  const dropout = LeNet(ctx, { seed: 1, dropout: 0.5 });
  const dropoutSeconds = await trainModel(dropout);
  const dropoutPred = await predictBoth(dropout, { samples, mcDropout: true, seed: 7 });
  record(`mc-dropout T=${samples}`, dropoutPred.inDist, dropoutPred.ood, dropoutSeconds, dropoutPred.seconds);
  dropout.dispose();

  if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify({ adapter: ctx.adapterName, images: train.count, testImages: test.count, oodImages: first, epochs, batchSize, lr, beta, samples, mcSamples, checkpoint, rows }, null, 1)}\n`);
  ctx.destroy();
  process.exit(0);
}
