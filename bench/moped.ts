/**
 * MOPED vs from scratch (Krishnan et al. 2020): epochs of Bayesian training until the MNIST test
 * accuracy reaches a target (default 98%), for
 *   - "moped":   a frequentist LeNet trained first (--pre-epochs), converted with toBayesian
 *                (mu = w, sigma = delta |w|, prior N(w, (delta |w|)^2)), then trained with the ELBO;
 *   - "scratch": BBBLeNet with the CLI's initialisation (mu ~ N(0, 0.1), rho ~ N(-5, 0.1), prior N(0, 0.1^2)).
 * Both Bayesian runs use the same layer type, activation (ReLU, the frequentist model's), optimizer,
 * beta and batches. After every epoch the test accuracy is measured with --test-samples MC samples.
 *
 *   node bench/run.mjs moped [--delta 0.1] [--layer-type lrt] [--target 0.98] [--max-epochs 30]
 *     [--pre-epochs 3] [--batch 256] [--lr 0.001] [--beta 0.1] [--test-samples 10] [--images 60000] [--ood-images 3000] [--json out.json]
 *
 * A long run: 3 frequentist epochs plus up to 2 x --max-epochs Bayesian ones over 60,000 images, each
 * followed by a 10-sample pass over the 10,000 test images. On a discrete GPU an epoch takes seconds
 * (a few minutes in all); on SwiftShader (CPU) about 1-2 minutes an epoch, an hour or more in all.
 */
import { writeFileSync } from 'node:fs';
import { createContext } from '../src/node.js';
import { BBBLeNet, LeNet } from '../src/nn/models.js';
import { toBayesian } from '../src/nn/convert.js';
import type { LayerType } from '../src/nn/bayes.js';
import type { Sequential } from '../src/nn/sequential.js';
import { Adam } from '../src/train/adam.js';
import { fit } from '../src/train/fit.js';
import { loadDataset } from '../src/cli/datasets.js';
import { classificationMetrics, oodDetection, type OodDetection } from '../src/uncertainty/metrics.js';
import { loadNamedOodSet } from '../src/uncertainty/ood_files.js';

interface Run {
  name: string;
  epochs: { epoch: number; testAccuracy: number; testNll: number; testEce: number; trainLoss: number; kl: number; seconds: number }[];
  epochsToTarget: number | null;
  /** At the last epoch: the first --ood-images MNIST test images against as many Fashion-MNIST test images. */
  ood: OodDetection | null;
}

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const delta = Number(arg('delta', '0.1'));
  const layerType = arg('layer-type', 'lrt') as LayerType;
  const target = Number(arg('target', '0.98'));
  const maxEpochs = Number(arg('max-epochs', '30'));
  const preEpochs = Number(arg('pre-epochs', '3'));
  const batchSize = Number(arg('batch', '256'));
  const lr = Number(arg('lr', '0.001'));
  const beta = Number(arg('beta', '0.1'));
  const testSamples = Number(arg('test-samples', '10'));
  const images = Number(arg('images', '60000'));
  const oodImages = Number(arg('ood-images', '3000'));
  const jsonPath = args.includes('--json') ? arg('json', 'moped.json') : null;

  const ctx = await createContext();
  const train = await loadDataset('mnist', 'train', { limit: images });
  const test = await loadDataset('mnist', 'test', {});
  const oodSet = await loadNamedOodSet('fashion-mnist', { channels: 1, imageSize: 32 }, { limit: oodImages });
  if (!oodSet) throw new Error('the OOD figures need the Fashion-MNIST test images (scripts/setup.sh installs them)');
  console.log(`adapter: ${ctx.adapterName}; ${train.count} training and ${test.count} test images; delta ${delta}, ${layerType}, target ${target}, beta ${beta}, batch ${batchSize}, lr ${lr}`);

  /** Trains `model` one epoch at a time until the test accuracy reaches the target or maxEpochs pass. */
  async function trainUntil(name: string, model: Sequential, epochs: number, bayesian: boolean, stopAtTarget: boolean): Promise<Run> {
    const optimizer = new Adam(model, { lr });
    const run: Run = { name, epochs: [], epochsToTarget: null, ood: null };
    const predictOptions = { batchSize: 500, samples: bayesian ? testSamples : 1, sample: bayesian, seed: 7 };
    for (let e = 0; e < epochs; e++) {
      const t0 = performance.now();
      const r = await fit(model, train, { epochs: e + 1, initialEpoch: e, optimizer, batchSize, lr, lrSchedule: 'constant', beta, validFraction: 0, restoreBest: false, seed: 1 });
      const inDist = await model.predict(test, predictOptions);
      const m = classificationMetrics(inDist.mean, test.labels, inDist.classes);
      const last = r.history[r.history.length - 1];
      const row = { epoch: e + 1, testAccuracy: m.accuracy, testNll: m.nll, testEce: m.ece, trainLoss: last.trainLoss, kl: last.kl, seconds: (performance.now() - t0) / 1000 };
      run.epochs.push(row);
      console.log(`${name} epoch ${row.epoch}: test accuracy ${(m.accuracy * 100).toFixed(2)}%, NLL ${m.nll.toFixed(4)}, ECE ${m.ece.toFixed(4)}, train loss ${row.trainLoss.toFixed(2)}, KL ${row.kl.toFixed(1)} (${row.seconds.toFixed(1)} s)`);
      const reached = run.epochsToTarget === null && m.accuracy >= target;
      if (reached) run.epochsToTarget = e + 1;
      if ((reached && stopAtTarget) || e === epochs - 1) {
        // Same images and noise convention as bayesgpu eval: the OOD set's step keys start past the test set's.
        const ood = await model.predict(oodSet!, { ...predictOptions, step: 2 ** 24 });
        const first = (a: Float32Array) => a.subarray(0, oodImages);
        run.ood = oodDetection({ predictiveEntropy: first(inDist.predictiveEntropy), mutualInformation: first(inDist.mutualInformation), maxProb: first(inDist.maxProb) }, ood);
        console.log(`${name}: OOD AUROC vs Fashion-MNIST (first ${oodImages} test images of each): entropy ${run.ood.aurocEntropy.toFixed(4)}, MI ${run.ood.aurocMutualInformation.toFixed(4)}, max prob ${run.ood.aurocMaxProb.toFixed(4)}`);
        break;
      }
    }
    optimizer.dispose();
    return run;
  }

  const frequentist = LeNet(ctx, { seed: 1 });
  const pre = await trainUntil('frequentist', frequentist, preEpochs, false, false);
  const converted = await toBayesian(frequentist, { layerType, moped: { delta } });
  frequentist.dispose();
  const moped = await trainUntil('moped', converted, maxEpochs, true, true);
  converted.dispose();
  const scratchModel = BBBLeNet(ctx, { layerType, activation: 'relu', seed: 1, priors: { posterior_mu_initial: [0, 0.1], posterior_rho_initial: [-5, 0.1] } });
  const scratch = await trainUntil('scratch', scratchModel, maxEpochs, true, true);
  scratchModel.dispose();

  const text = (r: Run) => (r.epochsToTarget === null ? `not reached in ${maxEpochs}` : String(r.epochsToTarget));
  console.log(`epochs to ${(target * 100).toFixed(1)}% test accuracy: MOPED ${text(moped)} Bayesian (+ ${preEpochs} frequentist, which reached ${(pre.epochs[pre.epochs.length - 1].testAccuracy * 100).toFixed(2)}%), from scratch ${text(scratch)}`);
  if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify({ adapter: ctx.adapterName, delta, layerType, target, beta, batchSize, lr, testSamples, frequentist: pre, moped, scratch }, null, 1)}\n`);
  ctx.destroy();
  process.exit(0);
}
