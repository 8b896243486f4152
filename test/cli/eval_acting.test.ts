/**
 * `bayesgpu eval` acting on uncertainty: --calibrate (temperature), --conformal (split conformal
 * sets), the selective-classification figures every run reports, and several --checkpoint files as
 * one ensemble. Each figure the CLI prints is recomputed here through the library calls it stands
 * for, on the same images and noise keys, so a wrong held-out set, a wrong key or a figure from the
 * wrong predictive shows as a mismatch; the bad-input cases are refused before any GPU work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './run_cli.js';
import { loadModelFile, saveModelFile } from '../../src/io/checkpoint_files.js';
import { BBBLeNet, LeNet } from '../../src/nn/models.js';
import type { Prediction } from '../../src/nn/predict.js';
import { loadDataset } from '../../src/cli/datasets.js';
import { permutation, splitTrainValid } from '../../src/data/batches.js';
import type { FloatDataset } from '../../src/train/fit.js';
import { fitTemperature } from '../../src/uncertainty/calibration.js';
import { conformalPrediction } from '../../src/uncertainty/conformal.js';
import { Ensemble } from '../../src/uncertainty/ensemble.js';
import { classificationMetrics } from '../../src/uncertainty/metrics.js';
import { riskCoverage } from '../../src/uncertainty/selective.js';
import { context } from '../helpers.js';

function rows(data: FloatDataset, indices: ArrayLike<number>): FloatDataset {
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  const x = new Float32Array(indices.length * per);
  const labels = new Uint32Array(indices.length);
  Array.from(indices).forEach((j, i) => {
    x.set(data.x.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = data.labels[j];
  });
  return { ...data, x, labels, count: indices.length };
}

describe('bayesgpu eval: calibration, conformal sets, selective classification, ensembles (CLI)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-eval-acting-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const a = join(scratch, 'a.safetensors');
  const b = join(scratch, 'b.safetensors');
  const three = join(scratch, 'three.safetensors');
  beforeAll(async () => {
    const ctx = await context();
    // Seeded, untrained weights: the plumbing is under test, and every figure is recomputed below.
    for (const [path, seed] of [[a, 5], [b, 6]] as const) {
      const m = BBBLeNet(ctx, { seed });
      await saveModelFile(path, m);
      m.dispose();
    }
    const m = LeNet(ctx, { classes: 3, seed: 1 });
    await saveModelFile(three, m);
    m.dispose();
  });
  const json = async (args: string[]) => {
    const r = await cli(['eval', ...args, '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.out[0]);
  };

  it('--calibrate --conformal with --calibration-size: the held-out test images are drawn with --seed and left out; every figure matches the library', async () => {
    const calibratedPath = join(scratch, 'calibrated.safetensors');
    const o = await json(['--checkpoint', a, '--test-size', '60', '--samples', '2', '--batch-size', '32', '--ood', 'none', '--calibrate', '--conformal', '0.2', '--calibration-size', '20', '--seed', '3', '--out', calibratedPath]);
    const ctx = await context();
    const model = await loadModelFile(ctx, a);
    const all = await loadDataset('mnist', 'test', { limit: 60 });
    const order = permutation(60, 3);
    const heldOut = rows(all, order.subarray(0, 20));
    const test = rows(all, Uint32Array.from(order.subarray(20)).sort());
    const options = { samples: 2, seed: 3, batchSize: 32 };
    const p = (await model.predict(test, options)) as Prediction;
    const before = classificationMetrics(p.mean, test.labels, 10);
    expect(o.images).toBe(40);
    expect([o.accuracy, o.nll, o.ece]).toEqual([before.accuracy, before.nll, before.ece]);
    // The held-out set draws its noise past the OOD sets' keys (none here: 2^24).
    const fit = await fitTemperature(model, heldOut, { ...options, step: 2 ** 24 });
    const after = (await model.predict(test, { ...options, temperature: fit.temperature })) as Prediction;
    const afterMetrics = classificationMetrics(after.mean, test.labels, 10);
    expect(o.calibration).toMatchObject({ temperature: fit.temperature, eceBefore: before.ece, nllBefore: before.nll, eceAfter: afterMetrics.ece, nllAfter: afterMetrics.nll, heldOutImages: 20, heldOutNllBefore: fit.nllBefore, heldOutNllAfter: fit.nllAfter });
    expect(o.calibration.heldOut).toMatch(/20 random mnist test images \(--calibration-size, seed 3\), left out of the 40 tested/);
    // --out: the same weights with the fitted temperature, which predict then uses by default.
    expect(o.calibration.out).toBe(calibratedPath);
    const saved = await loadModelFile(ctx, calibratedPath);
    expect(saved.temperature).toBe(fit.temperature);
    expect(model.temperature).toBe(1);
    expect(((await saved.predict(test, options)) as Prediction).mean).toEqual(after.mean);
    saved.dispose();
    // Conformal sets at the fitted temperature, calibrated on the held-out images.
    const held = (await model.predict(heldOut, { ...options, step: 2 ** 24, temperature: fit.temperature })) as Prediction;
    const c = conformalPrediction(held, after, { alpha: 0.2, score: 'lac' });
    expect(o.conformal).toMatchObject({ alpha: 0.2, score: 'lac', coverage: c.coverage, meanSetSize: c.meanSetSize, qhat: c.qhat, calibrationImages: 20, images: 40, calibrated: true });
    expect(o.conformal.byClass).toHaveLength(10);
    // Selective classification on the uncalibrated predictive, as the other test figures.
    const r = riskCoverage(p, test.labels, { by: 'maxProb' });
    expect(o.selective).toMatchObject({ by: 'maxProb', aurc: r.aurc, eaurc: r.eaurc, errors: r.errors, count: 40 });
    expect(o.selective.accuracyAtCoverage.map((x: { coverage: number }) => x.coverage)).toEqual([0.9, 0.95, 0.99]);
    expect(o.selective.byRanking.entropy.aurc).toBe(riskCoverage(p, test.labels, { by: 'entropy' }).aurc);
    expect(o.selective.byRanking.mutualInformation.aurc).toBe(riskCoverage(p, test.labels, { by: 'mutualInformation' }).aurc);
    model.dispose();
  });

  it('the default held-out set is the validation split bayesgpu train recorded; aps scores; text output', async () => {
    const trained = join(scratch, 'trained.safetensors');
    const t = await cli(['train', '--train-size', '40', '--valid-fraction', '0.25', '--epochs', '1', '--batch-size', '20', '--test-samples', '0', '--seed', '4', '--out', trained, '--json']);
    expect(t.code, t.err).toBe(0);
    const o = await json(['--checkpoint', trained, '--test-size', '30', '--samples', '2', '--ood', 'none', '--calibrate', '--conformal', '0.25', '--conformal-score', 'aps']);
    expect(o.calibration.heldOutImages).toBe(10);
    expect(o.calibration.heldOut).toMatch(/the checkpoint's validation split \(10 mnist training images: --valid-fraction 0.25 of 40, seed 4\)/);
    const ctx = await context();
    const model = await loadModelFile(ctx, trained);
    const train = await loadDataset('mnist', 'train', { limit: 40 });
    const valid = rows(train, splitTrainValid(40, 0.25, 4).valid);
    const fit = await fitTemperature(model, valid, { samples: 2, seed: 1, step: 2 ** 24, batchSize: 500 });
    expect(o.calibration).toMatchObject({ temperature: fit.temperature, heldOutNllBefore: fit.nllBefore, heldOutNllAfter: fit.nllAfter });
    expect(o.conformal).toMatchObject({ score: 'aps', alpha: 0.25, calibrationImages: 10, images: 30 });
    model.dispose();

    const text = await cli(['eval', '--checkpoint', trained, '--test-size', '30', '--samples', '2', '--ood', 'none', '--calibrate', '--conformal', '0.25']);
    expect(text.code, text.err).toBe(0);
    const all = text.out.join('\n');
    expect(all).toMatch(/selective, ranked by maxProb: AURC \d\.\d{4}, E-AURC -?\d\.\d{4}; accuracy at coverage 90% \d+\.\d\d%, 95% \d+\.\d\d%, 99% \d+\.\d\d%/);
    expect(all).toMatch(/temperature \d+\.\d{4}, fitted on the checkpoint's validation split .*: test ECE \d\.\d{4} -> \d\.\d{4}, NLL \d+\.\d{4} -> \d+\.\d{4}/);
    expect(all).toMatch(/conformal sets \(LAC, alpha 0.25, calibrated on .* at the fitted temperature\): coverage \d+\.\d\d% \(target >= 75.00%\), mean set size \d\.\d{3}/);
  });

  it('several --checkpoint files are one ensemble: its figures are the Ensemble predictive', async () => {
    const o = await json(['--checkpoint', a, '--checkpoint', b, '--test-size', '24', '--samples', '2', '--ood', 'none']);
    const ctx = await context();
    const members = [await loadModelFile(ctx, a), await loadModelFile(ctx, b)];
    const test = await loadDataset('mnist', 'test', { limit: 24 });
    const p = await new Ensemble(members).predict(test, { samples: 2, seed: 1, batchSize: 500 });
    const m = classificationMetrics(p.mean, test.labels, 10);
    expect([o.accuracy, o.nll, o.ece, o.brier]).toEqual([m.accuracy, m.nll, m.ece, m.brier]);
    expect(o.members).toEqual([a, b]);
    expect(o.selective.aurc).toBe(riskCoverage(p, test.labels).aurc);
    for (const member of members) member.dispose();
  });

  it('bad input is refused by name before any GPU work', async () => {
    const err = async (args: string[]) => {
      const r = await cli(['eval', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      return r.err;
    };
    const base = ['--checkpoint', a, '--test-size', '30'];
    expect(await err([...base, '--conformal', '1.5'])).toMatch(/option '--conformal' expected a miscoverage level in \(0, 1\), got "1.5"/);
    expect(await err([...base, '--conformal', '0'])).toMatch(/option '--conformal' expected a miscoverage level in \(0, 1\), got "0"/);
    expect(await err([...base, '--conformal', '0.05', '--calibration-size', '10'])).toMatch(/option '--conformal 0.05' needs a held-out set of at least ceil\(1\/alpha - 1\) = 19 images, got 10/);
    expect(await err([...base, '--calibrate'])).toMatch(/need a held-out set: .*a.safetensors" records no validation split .*pass --calibration-size N/);
    expect(await err([...base, '--calibration-size', '10'])).toMatch(/option '--calibration-size' sets the held-out set of --calibrate and --conformal, and neither was given/);
    expect(await err([...base, '--calibrate', '--calibration-size', '30'])).toMatch(/option '--calibration-size' expected fewer than the 30 test images .*got 30/);
    expect(await err([...base, '--out', join(scratch, 'never.safetensors')])).toMatch(/option '--out' saves the model with the temperature --calibrate fits, and --calibrate was not given/);
    expect(await err([...base, '--conformal-score', 'raps'])).toMatch(/option '--conformal-score' expected lac\|aps, got "raps"/);
    expect(await err(['--checkpoint', a, '--checkpoint', b, '--calibrate', '--calibration-size', '5'])).toMatch(/option '--calibrate' fits the temperature of one model, got 2 --checkpoint files/);
    expect(await err(['--checkpoint', a, '--checkpoint', three])).toMatch(/option '--checkpoint' ".*three.safetensors" has 3 classes, but ".*a.safetensors" has 10: ensemble members must predict the same classes/);
  });
});
