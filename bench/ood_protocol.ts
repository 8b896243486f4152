/**
 * Issue 12's evaluation of trained checkpoints, before and after temperature scaling, so that OOD
 * detection, accuracy and calibration can be read off one table (e.g. the epochs of one run):
 *   - all 10,000 MNIST test images, 10 MC samples: accuracy, NLL, ECE (the targets: >= 98.5%, <= 0.01);
 *   - the first 3,000 MNIST test images against the first 3,000 Fashion-MNIST test images: accuracy,
 *     ECE and the entropy / MI / max-prob AUROC (the target: entropy AUROC >= 0.96);
 *   - each again at the temperature fitted on the checkpoint's own validation split, as
 *     `bayesgpu eval --calibrate` fits it (the same held-out images, noise keys and options).
 *
 *   node bench/run.mjs ood_protocol --checkpoints a.safetensors,b.safetensors [--samples 10] [--json out.json]
 *     [--valid-fraction F --train-images N --seed S]
 *
 * The checkpoints must come from `bayesgpu train` on MNIST with a validation hold-out; their metadata
 * records it, or (files of older versions) --valid-fraction, --train-images and --seed give it. The
 * predictions are made once on the GPU with their per-sample probabilities kept; the tempered
 * predictive is then computed from them on the CPU in float64: softmax(log p_t / tau) equals
 * softmax(z_t / tau), the logits being known up to a constant. The untempered figures are recomputed
 * the same way and checked against the GPU's.
 */
import { writeFileSync } from 'node:fs';
import { createContext } from '../src/node.js';
import type { Prediction } from '../src/nn/predict.js';
import { loadCheckpointFile } from '../src/io/checkpoint_files.js';
import { splitTrainValid } from '../src/data/batches.js';
import { loadDataset, subset } from '../src/cli/datasets.js';
import { fitTemperature } from '../src/uncertainty/calibration.js';
import { classificationMetrics, oodDetection } from '../src/uncertainty/metrics.js';
import { loadNamedOodSet } from '../src/uncertainty/ood_files.js';

const FIRST = 3000;

/** The predictive of kept per-sample probabilities [T, N, C] at temperature tau, in float64. */
function tempered(p: Prediction, tau: number) {
  const { samples: T, classes: C, count } = p;
  const probs = p.probs!;
  const mean = new Float64Array(count * C);
  const expectedEntropy = new Float64Array(count);
  const q = new Float64Array(C);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < count; i++) {
      const row = (t * count + i) * C;
      let max = -Infinity;
      for (let c = 0; c < C; c++) {
        q[c] = Math.log(probs[row + c]) / tau;
        if (q[c] > max) max = q[c];
      }
      let z = 0;
      for (let c = 0; c < C; c++) z += (q[c] = Math.exp(q[c] - max));
      let h = 0;
      for (let c = 0; c < C; c++) {
        const v = q[c] / z;
        mean[i * C + c] += v / T;
        if (v > 0) h -= v * Math.log(v);
      }
      expectedEntropy[i] += h / T;
    }
  }
  const predictiveEntropy = new Float64Array(count);
  const mutualInformation = new Float64Array(count);
  const maxProb = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let h = 0;
    let m = 0;
    for (let c = 0; c < C; c++) {
      const v = mean[i * C + c];
      if (v > 0) h -= v * Math.log(v);
      m = Math.max(m, v);
    }
    predictiveEntropy[i] = h;
    mutualInformation[i] = h - expectedEntropy[i];
    maxProb[i] = m;
  }
  return { mean, predictiveEntropy, mutualInformation, maxProb };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string | null) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const files = arg('checkpoints', null)?.split(',');
  if (!files?.length) throw new Error('--checkpoints: expected a comma-separated list of bayesgpu train checkpoints, got none');
  const samples = Number(arg('samples', '10'));
  const jsonPath = arg('json', null);
  const splitGiven = { validFraction: arg('valid-fraction', null), trainImages: arg('train-images', null), seed: arg('seed', null) };
  const ctx = await createContext();
  const test = await loadDataset('mnist', 'test', {});
  const ood = await loadNamedOodSet('fashion-mnist', { channels: 1, imageSize: 32 }, { limit: FIRST });
  if (!ood) throw new Error('the protocol needs the Fashion-MNIST test images (scripts/setup.sh installs them)');
  console.log(`adapter: ${ctx.adapterName}; ${samples} MC samples; ${files.length} checkpoint(s)`);
  // bayesgpu eval's options and noise keys: the test set at step 0, the first OOD set at 2^24, the held-out set at 2 * 2^24.
  const options = { samples, seed: 1, batchSize: 500 };
  const rows = [];
  for (const file of files) {
    const { model, metadata } = await loadCheckpointFile(ctx, file);
    const validFraction = Number(metadata.validFraction ?? splitGiven.validFraction);
    const trainImages = Number(metadata.trainImages ?? splitGiven.trainImages);
    const splitSeed = Number(metadata.seed ?? splitGiven.seed);
    if (!(validFraction > 0) || !(trainImages > 0) || !Number.isInteger(splitSeed) || (metadata.dataset ?? 'mnist') !== 'mnist') {
      throw new Error(`${file}: not a bayesgpu train checkpoint of MNIST with a recorded validation hold-out (give --valid-fraction, --train-images and --seed for older files)`);
    }
    const train = await loadDataset('mnist', 'train', { limit: trainImages });
    const heldOut = subset(train, splitTrainValid(trainImages, validFraction, splitSeed).valid);
    const t0 = performance.now();
    const fit = await fitTemperature(model, heldOut, { ...options, step: 2 * 2 ** 24 });
    const p = (await model.predict(test, { ...options, temperature: 1, keepSamples: true })) as Prediction;
    const o = (await model.predict(ood, { ...options, temperature: 1, step: 2 ** 24, keepSamples: true })) as Prediction;
    const seconds = (performance.now() - t0) / 1000;
    const figures = (tau: number) => {
      const pt = tempered(p, tau);
      const ot = tempered(o, tau);
      const full = classificationMetrics(pt.mean, test.labels, 10);
      const part = classificationMetrics(pt.mean.subarray(0, FIRST * 10), test.labels.subarray(0, FIRST), 10);
      const head = { predictiveEntropy: pt.predictiveEntropy.subarray(0, FIRST), mutualInformation: pt.mutualInformation.subarray(0, FIRST), maxProb: pt.maxProb.subarray(0, FIRST) };
      const d = oodDetection(head, ot);
      return {
        temperature: tau, accuracy10k: full.accuracy, nll10k: full.nll, ece10k: full.ece, accuracy3k: part.accuracy, ece3k: part.ece,
        aurocEntropy: d.aurocEntropy, aurocMutualInformation: d.aurocMutualInformation, aurocMaxProb: d.aurocMaxProb,
        check: { meanVsGpu: maxDiff(pt.mean, p.mean), entropyVsGpu: maxDiff(pt.predictiveEntropy, p.predictiveEntropy) },
      };
    };
    const raw = figures(1);
    // The float64 recomputation at tau = 1 is the GPU's predictive (float32 rounding apart).
    if (raw.check.meanVsGpu > 1e-4 || raw.check.entropyVsGpu > 1e-3) throw new Error(`${file}: the CPU predictive differs from the GPU's by ${JSON.stringify(raw.check)}`);
    const cal = figures(fit.temperature);
    const row = { file, epochs: Number(metadata.epochs), validFraction, trainImages, heldOutImages: heldOut.count, heldOutNllBefore: fit.nllBefore, heldOutNllAfter: fit.nllAfter, seconds, raw, calibrated: cal };
    rows.push(row);
    const line = (f: typeof raw) => `10k ${(f.accuracy10k * 100).toFixed(2)}% NLL ${f.nll10k.toFixed(4)} ECE ${f.ece10k.toFixed(4)}; 3k ${(f.accuracy3k * 100).toFixed(2)}% ECE ${f.ece3k.toFixed(4)}; AUROC H ${f.aurocEntropy.toFixed(4)} MI ${f.aurocMutualInformation.toFixed(4)} maxp ${f.aurocMaxProb.toFixed(4)}`;
    console.log(`${file} (epoch ${row.epochs}): T=1: ${line(raw)} | tau ${fit.temperature.toFixed(4)}: ${line(cal)} | ${seconds.toFixed(0)} s`);
    if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify({ adapter: ctx.adapterName, samples, rows }, null, 1)}\n`);
    model.dispose();
  }
  ctx.destroy();
  process.exit(0);
}
