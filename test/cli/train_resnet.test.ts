/**
 * `bayesgpu train --model resnet20` through the built binary (dist/cli.js): a Bayesian ResNet-20
 * trains one epoch on 64 MNIST images, saves, and reloads as the named model with its config.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBuilt } from './run_cli.js';
import { loadModelFile } from '../../src/io/checkpoint_files.js';
import { Model } from '../../src/nn/models.js';
import { context } from '../helpers.js';

describe('bayesgpu train --model resnet20 (CLI)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-cli-resnet-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('trains one epoch, saves, and the file loads as BBB ResNet-20', async () => {
    const path = join(scratch, 'resnet.safetensors');
    const run = await runBuilt([
      'train', '--model', 'resnet20', '--dataset', 'mnist', '--train-size', '64', '--valid-fraction', '0.25', '--epochs', '1',
      '--batch-size', '32', '--test-samples', '1', '--test-size', '16', '--json', '--out', path,
    ], { timeoutMs: 170_000 });
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.split('\n').filter(Boolean)[0]);
    expect(result).toMatchObject({ command: 'train', dataset: 'mnist', out: path, written: true, model: { model: 'resnet20', bayesian: true, layerType: 'lrt', activation: 'relu', shortcut: 'A', inChannels: 1, classes: 10 } });
    expect(run.stderr).toMatch(/BBB-LRT resnet20 on mnist \(48 images for training, 16 held out for validation/);
    const ctx = await context();
    const model = await loadModelFile(ctx, path);
    expect(model).toBeInstanceOf(Model);
    expect((model as Model).config).toMatchObject({ model: 'resnet20', shortcut: 'A' });
    expect(model.namedParameters().has('layer3.block3.body.conv2.W_mu')).toBe(true);
    model.dispose();
  }, 180_000);

  it('--shortcut B trains a frequentist ResNet-20 with 1x1 projection shortcuts', async () => {
    const path = join(scratch, 'resnet_b.safetensors');
    const run = await runBuilt([
      'train', '--model', 'resnet20', '--layer-type', 'frequentist', '--shortcut', 'B', '--dataset', 'mnist', '--train-size', '16',
      '--valid-fraction', '0', '--epochs', '1', '--batch-size', '16', '--test-samples', '0', '--json', '--out', path,
    ], { timeoutMs: 170_000 });
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.split('\n').filter(Boolean)[0]);
    expect(result.model).toMatchObject({ model: 'resnet20', bayesian: false, shortcut: 'B' });
    const ctx = await context();
    const model = await loadModelFile(ctx, path);
    expect((model as Model).config).toMatchObject({ model: 'resnet20', shortcut: 'B' });
    // Option B: stages 2 and 3 open with a strided 1x1 convolution and a BatchNorm on the shortcut.
    const names = [...model.namedParameters().keys()].filter((n) => n.includes('shortcut'));
    expect(names.some((n) => n.startsWith('layer2.block1.shortcut.conv.'))).toBe(true);
    expect(names.some((n) => n.startsWith('layer3.block1.shortcut.bn.'))).toBe(true);
    model.dispose();
  }, 180_000);

  it('refuses --shortcut for a model without shortcuts', async () => {
    const run = await runBuilt(['train', '--model', 'lenet', '--shortcut', 'B', '--out', join(scratch, 'never.safetensors')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/option '--shortcut' is for --model resnet20, got --model lenet --shortcut B/);
  });
});
