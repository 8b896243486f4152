import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, runBuilt, TINY_TRAIN } from './run_cli.js';
import { loadModelFile } from '../../src/io/checkpoint_files.js';
import { modelMetadata } from '../../src/io/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import type { SignalSource } from '../../src/cli/interrupt.js';
import type { Context } from '../../src/gpu/context.js';
import { loadCheckpointFile, saveCheckpointFile } from '../../src/io/checkpoint_files.js';
import { BBBLeNet } from '../../src/nn/models.js';
import { context } from '../helpers.js';

function meanStd(x: Float32Array): [number, number] {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return [mean, Math.sqrt(q / (x.length - 1))];
}

describe('bayesgpu train (CLI)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-cli-train-'));
  let ctx: Context;
  beforeAll(async () => {
    ctx = await context();
  });
  afterAll(() => {
    ctx.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });
  const tiny = TINY_TRAIN;

  it("trains, prints the seed's epoch line and writes a checkpoint whose posterior init follows the options", async () => {
    const path = join(scratch, 'custom.safetensors');
    const run = await cli([...tiny, '--posterior-rho-init=-4,0.2', '--posterior-mu-init', '0.05,0.02', '--out', path]);
    expect(run.err).not.toMatch(/error/i); // stderr carries only the progress bar
    expect(run.code).toBe(0);
    expect(run.out.join('\n')).toMatch(/72 images for training, 24 held out for validation/);
    expect(run.out.some((l) => /^Epoch: 1 \tTraining Loss: \d/.test(l))).toBe(true);
    expect(run.out.some((l) => /^test: accuracy \d+\.\d\d% with 2 MC samples, NLL \d/.test(l))).toBe(true);
    const loaded = loadCheckpointFile(ctx, path);
    const { model, tensors, metadata } = await loaded;
    const priors = JSON.parse(metadata.config).priors;
    expect(priors.posterior_rho_initial).toEqual([-4, 0.2]);
    expect(priors.posterior_mu_initial).toEqual([0.05, 0.02]);
    // 2,400 fc1 values were drawn from N(-4, 0.2²) and moved by at most 3 Adam steps of 1e-3.
    const [rhoMean, rhoStd] = meanStd(tensors.get('fc1.W_rho')!.data);
    expect(Math.abs(rhoMean + 4)).toBeLessThan(0.02);
    expect(Math.abs(rhoStd - 0.2)).toBeLessThan(0.02);
    const [muMean, muStd] = meanStd(tensors.get('fc1.W_mu')!.data);
    expect(Math.abs(muMean - 0.05)).toBeLessThan(0.01);
    expect(Math.abs(muStd - 0.02)).toBeLessThan(0.005);
    model.dispose();
  });

  it('defaults to the OOD ablation\'s recipe: ReLU, rho ~ N(-3, 0.1), 10% held out, 8 epochs', async () => {
    const path = join(scratch, 'default.safetensors');
    // Only the size of the run is given: no --valid-fraction, --epochs, --activation or --posterior-rho-init.
    const run = await cli(['train', '--train-size', '100', '--batch-size', '90', '--test-samples', '0', '--json', '--out', path]);
    expect(run.code).toBe(0);
    const { model, tensors, metadata } = await loadCheckpointFile(ctx, path);
    const config = JSON.parse(metadata.config);
    expect(config).toMatchObject({ model: 'lenet', bayesian: true, layerType: 'lrt', activation: 'relu' });
    expect(config.priors.posterior_rho_initial).toEqual([-3, 0.1]);
    // 2,400 conv2 values drawn from N(-3, 0.1²), moved by 8 Adam steps (one per epoch) of about 1e-3 at most.
    const [rhoMean, rhoStd] = meanStd(tensors.get('conv2.W_rho')!.data);
    expect(Math.abs(rhoMean + 3)).toBeLessThan(0.02);
    expect(Math.abs(rhoStd - 0.1)).toBeLessThan(0.01);
    expect(metadata.validFraction).toBe('0.1');
    const report = JSON.parse(run.out.at(-1)!);
    expect(report.history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(run.err).toMatch(/90 images for training, 10 held out for validation/);
    model.dispose();
  });

  it('--resume continues bit for bit where the first run stopped', async () => {
    const straight = join(scratch, 'straight.safetensors');
    const first = join(scratch, 'first.safetensors');
    const resumed = join(scratch, 'resumed.safetensors');
    const base = [...tiny, '--test-samples', '0'];
    const common = [...base, '--seed', '3'];
    const whole = await cli([...common, '--epochs', '2', '--out', straight]);
    expect(whole.code).toBe(0);
    // The run is deterministic: both of its epochs improve the validation loss and are saved.
    expect(whole.out.filter((l) => l.startsWith('Validation loss decreased: saving model to')).length).toBe(2);
    expect((await cli([...common, '--epochs', '1', '--out', first])).code).toBe(0);
    // The resumed run takes the seed (3) from the checkpoint.
    const run = await cli([...base, '--epochs', '2', '--resume', first, '--out', resumed]);
    expect(run.code).toBe(0);
    expect(run.out.join('\n')).toMatch(/resuming .*first\.safetensors after epoch 1 \(step 3\)/);
    expect(run.out.some((l) => l.startsWith('Epoch: 2 \t'))).toBe(true);
    expect(run.out.some((l) => l.startsWith('Epoch: 1 \t'))).toBe(false);
    const a = await loadCheckpointFile(ctx, straight);
    const b = await loadCheckpointFile(ctx, resumed);
    expect(b.metadata.epochs).toBe('2');
    expect(b.optimizer!.step).toBe(6);
    expect(b.optimizer).toEqual(a.optimizer);
    expect(b.metadata.validLoss).toBe(a.metadata.validLoss);
    // Weights and Adam moments match bitwise.
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    expect([...a.tensors.keys()].filter((k) => k.startsWith('optimizer.')).length).toBeGreaterThan(0);
    for (const [k, t] of a.tensors) expect(b.tensors.get(k)!.data, k).toEqual(t.data);
    a.model.dispose();
    b.model.dispose();
    // An epoch that does not beat the checkpoint's validation loss (here a learning rate far too
    // large) writes nothing, as the seed would not save it, and the test figures are the checkpoint's.
    const worse = join(scratch, 'worse.safetensors');
    const diverged = await cli([...common, '--epochs', '2', '--lr', '3', '--resume', first, '--out', worse, '--test-samples', '2']);
    expect(diverged.code).toBe(0);
    expect(diverged.out.join('\n')).toMatch(/no epoch improved on the validation loss of .*first\.safetensors .*worse\.safetensors not written/);
    expect(existsSync(worse)).toBe(false);
    // Nothing left to do, or a checkpoint without optimizer state: a clear error.
    const done = await cli([...common, '--epochs', '1', '--resume', first, '--out', join(scratch, 'x.safetensors')]);
    expect(done.err).toMatch(/option '--resume' .* has done 1 epochs already and --epochs 1 counts from the start of training/);
    const bare = join(scratch, 'bare.safetensors');
    const lenet = BBBLeNet(ctx);
    await saveCheckpointFile(lenet, bare, { extra: { epochs: '1' } });
    lenet.dispose();
    const noAdam = await cli([...common, '--epochs', '2', '--resume', bare, '--out', join(scratch, 'x.safetensors')]);
    expect(noAdam.err).toMatch(/option '--resume' .* carries no optimizer state/);
    const arch = await cli([...common, '--epochs', '3', '--resume', first, '--model', 'alexnet']);
    expect(arch.err).toMatch(/option '--model' cannot be combined with '--resume'/);
    // The split of the run it continues (metadata validFraction 0.25 of trainImages 96): another
    // --valid-fraction or --train-size is refused, and a file that does not record it needs --valid-fraction.
    const unsplit = TINY_TRAIN.filter((_, i, all) => all[i] !== '--valid-fraction' && all[i - 1] !== '--valid-fraction');
    expect(unsplit).toHaveLength(TINY_TRAIN.length - 2);
    const other = await cli([...unsplit, '--valid-fraction', '0.5', '--test-samples', '0', '--epochs', '2', '--resume', first, '--out', join(scratch, 'x.safetensors')]);
    expect(other.err).toMatch(/option '--valid-fraction' cannot change the validation split of the run --resume continues: .*first\.safetensors was trained with --valid-fraction 0\.25, got 0\.5/);
    const size = await cli([...tiny, '--train-size', '120', '--test-samples', '0', '--epochs', '2', '--resume', first, '--out', join(scratch, 'x.safetensors')]);
    expect(size.err).toMatch(/option '--resume' continues a run on 96 training images, but this run has 120 \(--train-size 120\); pass --train-size 96/);
    const file = decodeSafetensors(new Uint8Array(readFileSync(first)));
    const { validFraction, ...older } = file.metadata;
    expect(validFraction).toBe('0.25');
    const old = join(scratch, 'old.safetensors');
    writeFileSync(old, encodeSafetensors(Object.fromEntries(file.tensors), older));
    const unknown = await cli([...unsplit, '--test-samples', '0', '--epochs', '2', '--resume', old, '--out', join(scratch, 'x.safetensors')]);
    expect(unknown.err).toMatch(/option '--resume' needs '--valid-fraction': .*old\.safetensors does not record the validation split/);
    expect(existsSync(join(scratch, 'x.safetensors'))).toBe(false);
    // Without --valid-fraction the resumed run keeps the checkpoint's 0.25 (not the default 0.1).
    const kept = await cli([...unsplit, '--test-samples', '0', '--epochs', '2', '--resume', first, '--out', join(scratch, 'kept.safetensors')]);
    expect(kept.code).toBe(0);
    expect(kept.out.join('\n')).toMatch(/72 images for training, 24 held out for validation/);
    // ... and so repeats the resumed run above bit for bit.
    const k = await loadCheckpointFile(ctx, join(scratch, 'kept.safetensors'));
    for (const [name, t] of b.tensors) expect(k.tensors.get(name)!.data, name).toEqual(t.data);
    k.model.dispose();
  });

  // SIGINT/SIGTERM, in-process with a stand-in signal source (test/cli/signals.test.ts sends real ones).
  it('a signal at an epoch end saves an interrupt checkpoint that resumes bit for bit', async () => {
    const base = [...tiny, '--test-samples', '0', '--seed', '3', '--epochs', '2'];
    const straight = join(scratch, 'sig-straight.safetensors');
    expect((await cli([...base, '--out', straight])).code).toBe(0);
    const out = join(scratch, 'sig.safetensors');
    const signals = new EventEmitter() as SignalSource & EventEmitter;
    // The signal comes while epoch 1's line is printed: onEpoch saves the epoch, then stops.
    const run = await cli([...base, '--out', out], { signals, onOut: (line) => void (line.startsWith('Epoch: 1 ') && signals.emit('SIGTERM', 'SIGTERM')) });
    expect(run.code).toBe(143);
    const saved = join(scratch, 'sig.interrupted.safetensors');
    expect(run.err).toContain(`SIGTERM: saved a resumable checkpoint to ${saved} (after epoch 1, step 3); continue with --resume ${saved}; the best epoch so far (1) is in ${out}`);
    expect(run.err).not.toMatch(/\n\s+at /);
    expect(run.out.some((l) => l.startsWith('Epoch: 2'))).toBe(false);
    expect(signals.listenerCount('SIGTERM')).toBe(0); // the handlers are removed when the command ends
    const interrupted = await loadCheckpointFile(ctx, saved);
    expect(interrupted.metadata).toMatchObject({ interrupted: 'SIGTERM', epochs: '1', epochSteps: '0', bestFile: out, bestEpoch: '1', seed: '3' });
    interrupted.model.dispose();
    const resumed = join(scratch, 'sig-resumed.safetensors');
    const again = await cli([...base, '--resume', saved, '--out', resumed]);
    expect(again.code).toBe(0);
    expect(again.out.some((l) => l.startsWith('Epoch: 2 \t'))).toBe(true);
    const a = await loadCheckpointFile(ctx, straight);
    const b = await loadCheckpointFile(ctx, resumed);
    expect(b.optimizer).toEqual(a.optimizer);
    expect(b.metadata.validLoss).toBe(a.metadata.validLoss);
    for (const [k, t] of a.tensors) expect(b.tensors.get(k)!.data, k).toEqual(t.data);
    a.model.dispose();
    b.model.dispose();
  });

  it('a signal mid-epoch saves the last step; the resume runs that epoch again and completes', async () => {
    const base = [...tiny, '--test-samples', '0', '--batch-size', '8', '--epochs', '2']; // 9 steps per epoch, a report after 5
    const out = join(scratch, 'mid.safetensors');
    const signals = new EventEmitter() as SignalSource & EventEmitter;
    const run = await cli([...base, '--out', out], { signals, onErr: (text) => void (text.startsWith('epoch 1/2 [') && signals.emit('SIGINT', 'SIGINT')) });
    expect(run.code).toBe(130);
    const saved = join(scratch, 'mid.interrupted.safetensors');
    expect(run.err).toContain(`SIGINT: saved a resumable checkpoint to ${saved} (after 0 epoch(s) and 5 of the 9 steps of epoch 1, which a resume runs again from its first batch, step 5)`);
    expect(existsSync(out)).toBe(false); // no epoch ended
    const interrupted = await loadCheckpointFile(ctx, saved);
    expect(interrupted.metadata).toMatchObject({ interrupted: 'SIGINT', epochs: '0', epochSteps: '5' });
    expect(interrupted.metadata.validLoss).toBeUndefined();
    expect(interrupted.optimizer!.step).toBe(5);
    interrupted.model.dispose();
    const again = await cli([...base, '--resume', saved, '--out', out]);
    expect(again.code).toBe(0);
    expect(again.out[0]).toMatch(/resuming .*mid\.interrupted\.safetensors, stopped by SIGINT after 0 epoch\(s\) and 5 step\(s\) of epoch 1 \(step 5\): epoch 1 runs again/);
    expect(again.out.filter((l) => /^Epoch: [12] \t/.test(l))).toHaveLength(2);
    const done = await loadCheckpointFile(ctx, out);
    expect(done.optimizer!.step).toBe(done.metadata.epochs === '2' ? 23 : 14);
    done.model.dispose();
  });

  it('--json: progress and the human lines on stderr, stdout exactly one JSON line with the history and the test figures', async () => {
    const path = join(scratch, 'json.safetensors');
    const run = await runBuilt([...tiny, '--epochs', '2', '--seed', '4', '--json', '--out', path]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]);
    expect(result).toMatchObject({ command: 'train', dataset: 'mnist', out: path, written: true, seed: 4, model: { model: 'lenet', bayesian: true, layerType: 'lrt' } });
    expect(result.history.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2]);
    for (const e of result.history) {
      for (const key of ['trainLoss', 'trainAccuracy', 'validLoss', 'validAccuracy', 'validNll', 'kl', 'lr', 'seconds']) expect(Number.isFinite(e[key]), key).toBe(true);
    }
    expect(result.test).toMatchObject({ samples: 2, images: 24 });
    expect(result.test.accuracy).toBeGreaterThanOrEqual(0);
    expect(result.test.nll).toBeGreaterThan(0);
    // The lines a person reads went to stderr, with the same figures as the JSON.
    const epochLines = run.stderr.split('\n').filter((l) => l.startsWith('Epoch: '));
    expect(epochLines).toHaveLength(2);
    for (const [i, e] of result.history.entries()) expect(epochLines[i]).toContain(`Validation Loss: ${e.validLoss.toFixed(4)}`);
    expect(run.stderr).toContain(`test: accuracy ${(result.test.accuracy * 100).toFixed(2)}% with 2 MC samples, NLL ${result.test.nll.toFixed(4)} (24 images)`);
    // The best epoch is the one saved, with the class names and the preprocessing it trained with.
    const best = result.history.reduce((a: { validLoss: number }, e: { validLoss: number }) => (e.validLoss < a.validLoss ? e : a));
    expect(result.best.epoch).toBe(best.epoch);
    const bytes = new Uint8Array(readFileSync(path));
    expect(modelMetadata(bytes)).toMatchObject({ epochs: String(best.epoch), validLoss: String(best.validLoss), dataset: 'mnist', seed: '4' });
    const model = await loadModelFile(ctx, path);
    expect(model.modelOptions.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(model.modelOptions.preprocessing).toEqual({ resize: 'area', mean: [0], std: [1] });
    model.dispose();
  });

  it('rejects bad options with a message naming the option, and writes nothing', async () => {
    const path = join(scratch, 'never.safetensors');
    const bad: [string[], RegExp][] = [
      [['--batch-size', '0'], /option '--batch-size' expected an integer >= 1, got "0"/],
      [['--posterior-rho-init=-5'], /option '--posterior-rho-init' expected MEAN,STD with STD >= 0, got "-5"/],
      [['--posterior-mu-init', '0,-0.1'], /option '--posterior-mu-init' expected MEAN,STD with STD >= 0, got "0,-0.1"/],
      [['--data-dir', join(scratch, 'no-such-folder')], /no-such-folder/],
      [['--epochs', 'three'], /option '--epochs' expected an integer >= 1, got "three"/],
    ];
    for (const [args, message] of bad) {
      const run = await cli([...tiny, ...args, '--out', path]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.err.trim().split('\n'), args.join(' ')).toHaveLength(1); // one line
      expect(run.err).toMatch(message);
      expect(run.err).not.toMatch(/\n\s+at /); // a message, not a stack trace
    }
    const unknown = await cli([...tiny, '--learning-rate', '0.1', '--out', path]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/Unknown option '--learning-rate'/);
    expect(unknown.err).not.toMatch(/\n\s+at /);
    expect(existsSync(path)).toBe(false);
  });
});
