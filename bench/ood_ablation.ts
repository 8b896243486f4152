/**
 * Why does our BBB-LRT LeNet tell Fashion-MNIST from MNIST worse than an independent PyTorch run of
 * the seed recipe (entropy AUROC 0.910 against 0.961, issue 12)? Ablations of the candidates, each a
 * BBB-LRT LeNet trained as `bayesgpu train` does (softplus, Adam 1e-3, batch 256, beta 0.1, priors
 * N(0, 0.1^2), mu ~ N(0, 0.1^2)), and evaluated with the protocol:
 *   - the first 3,000 MNIST test images against the first 3,000 Fashion-MNIST test images, 10 MC
 *     samples: accuracy, ECE, entropy / MI / max-prob AUROC;
 *   - all 10,000 MNIST test images, 10 samples: accuracy, NLL, ECE (the targets: >= 98.5%, <= 0.01);
 *   - sigma = softplus(rho) per layer at the end (mean and range), as the training diagnostics report it.
 *
 *   node bench/run.mjs ood_ablation [--configs rho5-valid,rho3-valid,rho5-all,rho3-all] [--epochs 3]
 *     [--images 60000] [--seed 1] [--per-epoch] [--json out.json]
 *
 * A config name is rho<K>-<split>[-relu]: rho ~ N(-K, 0.1^2) at the start; split 'valid' holds out 20%
 * for validation (the old CLI default; the best validation epoch is kept), 'valid<P>' holds out P%,
 * 'all' trains on every image (as the PyTorch run did; the last epoch is kept); '-relu' uses ReLU
 * instead of the seed's softplus. --per-epoch also evaluates the 3,000 / 3,000 protocol after every
 * epoch (about a minute and a half each on SwiftShader), to show how detection moves with epochs.
 * On SwiftShader (CPU) a 60,000-image epoch takes ~3-4 minutes and the evaluation ~3 minutes, so each
 * config of 3 epochs takes ~15 minutes.
 */
import { writeFileSync } from 'node:fs';
import { createContext } from '../src/node.js';
import { BBBLeNet } from '../src/nn/models.js';
import type { Prediction } from '../src/nn/predict.js';
import { fit } from '../src/train/fit.js';
import { loadDataset } from '../src/cli/datasets.js';
import { classificationMetrics, oodDetection } from '../src/uncertainty/metrics.js';
import { loadNamedOodSet } from '../src/uncertainty/ood_files.js';

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const configs = arg('configs', 'rho5-valid,rho3-valid,rho5-all,rho3-all').split(',');
  const epochs = Number(arg('epochs', '3'));
  const images = Number(arg('images', '60000'));
  const seed = Number(arg('seed', '1'));
  const jsonPath = args.includes('--json') ? arg('json', 'ood_ablation.json') : null;
  const perEpoch = args.includes('--per-epoch');
  const parsed = configs.map((name) => {
    const m = /^rho(\d+(?:\.\d+)?)-(valid(\d+)?|all)(-relu)?$/.exec(name);
    if (!m || (m[3] !== undefined && !(Number(m[3]) > 0 && Number(m[3]) < 100))) {
      throw new Error(`--configs: '${name}' is not rho<K>-valid, rho<K>-valid<P> (0 < P < 100) or rho<K>-all, optionally followed by -relu`);
    }
    const validFraction = m[2] === 'all' ? 0 : m[3] === undefined ? 0.2 : Number(m[3]) / 100;
    return { name, rho: -Number(m[1]), validFraction, activation: m[4] ? ('relu' as const) : ('softplus' as const) };
  });

  const ctx = await createContext();
  const train = await loadDataset('mnist', 'train', { limit: images });
  const test = await loadDataset('mnist', 'test', {});
  const ood = await loadNamedOodSet('fashion-mnist', { channels: 1, imageSize: 32 }, { limit: 3000 });
  if (!ood) throw new Error('the ablation needs the Fashion-MNIST test images (scripts/setup.sh installs them)');
  console.log(`adapter: ${ctx.adapterName}; ${train.count} training images, ${epochs} epochs per config: ${configs.join(', ')}`);

  const rows = [];
  for (const c of parsed) {
    const model = BBBLeNet(ctx, { seed, activation: c.activation, priors: { posterior_mu_initial: [0, 0.1], posterior_rho_initial: [c.rho, 0.1] } });
    const options = { samples: 10, seed: 1, batchSize: 500 };
    const first3k = { ...test, x: test.x.subarray(0, 3000 * test.shape.reduce((a, b) => a * b, 1)), labels: test.labels.subarray(0, 3000), count: 3000 };
    const epochRows: { epoch: number; accuracy3k: number; ece3k: number; aurocEntropy: number; aurocMutualInformation: number; seconds: number }[] = [];
    let evalSeconds = 0;
    const onEpoch = async (e: { epoch: number }) => {
      const e0 = performance.now();
      const p = (await model.predict(first3k, options)) as Prediction;
      const q = (await model.predict(ood, { ...options, step: 2 ** 24 })) as Prediction;
      const m = classificationMetrics(p.mean, first3k.labels, 10);
      const d = oodDetection(p, q);
      const seconds = (performance.now() - e0) / 1000;
      evalSeconds += seconds;
      epochRows.push({ epoch: e.epoch, accuracy3k: m.accuracy, ece3k: m.ece, aurocEntropy: d.aurocEntropy, aurocMutualInformation: d.aurocMutualInformation, seconds });
      console.log(`  ${c.name} epoch ${e.epoch}: first 3k accuracy ${(m.accuracy * 100).toFixed(2)}%, ECE ${m.ece.toFixed(4)}, AUROC entropy ${d.aurocEntropy.toFixed(4)} / MI ${d.aurocMutualInformation.toFixed(4)}`);
    };
    const t0 = performance.now();
    const r = await fit(model, train, {
      epochs, batchSize: 256, lr: 1e-3, beta: 0.1, validFraction: c.validFraction, restoreBest: c.validFraction > 0, seed, ...(perEpoch ? { onEpoch } : {}),
    });
    const trainSeconds = (performance.now() - t0) / 1000 - evalSeconds;
    const all = (await model.predict(test, options)) as Prediction;
    const full = classificationMetrics(all.mean, test.labels, 10);
    // The first 3,000 test images: rows 0..2999 of the same prediction (same keys as predicting them alone).
    const first = 3000 * 10;
    const part = classificationMetrics(all.mean.subarray(0, first), test.labels.subarray(0, 3000), 10);
    const o = (await model.predict(ood, { ...options, step: 2 ** 24 })) as Prediction;
    const head = (a: Float32Array) => a.subarray(0, 3000);
    const detection = oodDetection({ predictiveEntropy: head(all.predictiveEntropy), mutualInformation: head(all.mutualInformation), maxProb: head(all.maxProb) }, o);
    const last = r.history[r.history.length - 1];
    const row = {
      config: c.name, rhoInit: c.rho, validFraction: c.validFraction, activation: c.activation, epochs, keptEpoch: r.best?.epoch ?? last.epoch, trainSeconds,
      accuracy10k: full.accuracy, nll10k: full.nll, ece10k: full.ece, accuracy3k: part.accuracy, ece3k: part.ece,
      aurocEntropy: detection.aurocEntropy, aurocMutualInformation: detection.aurocMutualInformation, aurocMaxProb: detection.aurocMaxProb,
      sigma: last.sigma, perEpoch: epochRows, history: r.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss, validAccuracy: h.validAccuracy, kl: h.kl, nllTerm: h.nllTerm, klTerm: h.klTerm })),
    };
    rows.push(row);
    const sigmaText = last.sigma.map((s) => `${s.layer} ${s.weight ? s.weight.mean.toPrecision(3) : '-'}`).join(', ');
    console.log(`${c.name}: 10k accuracy ${(full.accuracy * 100).toFixed(2)}%, NLL ${full.nll.toFixed(4)}, ECE ${full.ece.toFixed(4)}; first 3k: accuracy ${(part.accuracy * 100).toFixed(2)}%, ECE ${part.ece.toFixed(4)}, AUROC entropy ${detection.aurocEntropy.toFixed(4)} / MI ${detection.aurocMutualInformation.toFixed(4)} / max prob ${detection.aurocMaxProb.toFixed(4)}; kept epoch ${row.keptEpoch}; sigma (weights, mean) ${sigmaText}; ${trainSeconds.toFixed(0)} s training`);
    if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify({ adapter: ctx.adapterName, images, epochs, seed, rows }, null, 1)}\n`);
    model.dispose();
  }
  ctx.destroy();
  process.exit(0);
}
