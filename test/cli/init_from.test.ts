/**
 * `bayesgpu train --init-from FILE --moped DELTA` (src/cli/init_from.ts), run as the built binary
 * (dist/cli.js): a frequentist LeNet trained by the CLI is converted with MOPED priors and trained
 * on; a file of another architecture is refused naming each mismatched tensor (exit 2), as are a
 * Bayesian file and options that cannot go with --init-from.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuilt, TINY_TRAIN } from './run_cli.js';
import { loadModelFile, saveModelFile } from '../../src/io/checkpoint_files.js';
import type { Context } from '../../src/gpu/context.js';
import { BBBLeNet, LeNet } from '../../src/nn/models.js';
import { context } from '../helpers.js';

describe('bayesgpu train --init-from (MOPED)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-cli-init-from-'));
  let ctx: Context;
  beforeAll(async () => {
    ctx = await context();
  });
  afterAll(() => {
    ctx.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });
  const tiny = TINY_TRAIN;

  it('converts a frequentist LeNet trained by the CLI with the given delta and layer type, then trains it', async () => {
    const frequentist = join(scratch, 'frequentist.safetensors');
    const first = await runBuilt([...tiny, '--layer-type', 'frequentist', '--out', frequentist]);
    expect(first.code, first.stderr).toBe(0);
    const out = join(scratch, 'moped.safetensors');
    const run = await runBuilt([...tiny, '--init-from', frequentist, '--moped', '0.2', '--layer-type', 'bbb', '--json', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/BBB-BBB lenet on mnist .*initialised from .*frequentist\.safetensors \(MOPED, delta 0\.2\)/);
    const json = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(json.model).toMatchObject({ model: 'lenet', bayesian: true, layerType: 'bbb', activation: 'relu' });
    expect(json.test.samples).toBe(2);
    // The saved model is Bayesian with per-weight priors equal to the frequentist weights (the priors are not trained).
    const freq = await loadModelFile(ctx, frequentist);
    const bnn = await loadModelFile(ctx, out);
    const f = freq.namedParameters();
    const b = bnn.namedParameters();
    for (const layer of ['conv1', 'conv2', 'fc1', 'fc2', 'fc3']) {
      expect(await b.get(`${layer}.prior_W_mu`)!.value.read(), layer).toEqual(await f.get(`${layer}.weight`)!.value.read());
      const w = (await f.get(`${layer}.weight`)!.value.read()) as Float32Array;
      const sp = (await b.get(`${layer}.prior_W_sigma`)!.value.read()) as Float32Array;
      for (let i = 0; i < w.length; i += 97) expect(sp[i]).toBe(Math.fround(Math.max(0.2 * Math.abs(w[i]), 1e-8)));
    }
    expect(bnn.modelOptions.classNames).toEqual(freq.modelOptions.classNames);
    freq.dispose();
    bnn.dispose();
    // The converted run's checkpoint resumes (its ModelConfig travels as metadata).
    const resumed = await runBuilt([...tiny.map((a, i) => (tiny[i - 1] === '--epochs' ? '2' : a)), '--resume', out, '--json', '--out', join(scratch, 'resumed.safetensors')]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/BBB-BBB lenet on mnist .*resuming .*moped\.safetensors after epoch 1/);
    expect(JSON.parse(resumed.stdout.trim().split('\n').pop()!).history.map((h: { epoch: number }) => h.epoch)).toEqual([2]);
  }, 240_000);

  it('refuses a file of another architecture naming each mismatched tensor, a Bayesian file, and clashing options (exit 2)', async () => {
    const other = join(scratch, 'lenet5.safetensors');
    const m = LeNet(ctx, { classes: 5 });
    await saveModelFile(other, m);
    m.dispose();
    const run = await runBuilt([...tiny, '--init-from', other]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/option '--init-from' expected a frequentist model file of the architecture of --model .*its tensors differ: fc3\.weight \(shape \[5, 84\]; expected \[10, 84\]\), fc3\.bias \(shape \[5\]; expected \[10\]\)/);

    const bayes = join(scratch, 'bayes.safetensors');
    const bm = BBBLeNet(ctx);
    await saveModelFile(bayes, bm);
    bm.dispose();
    const b = await runBuilt([...tiny, '--init-from', bayes]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/it holds a Bayesian network/);

    for (const [args, message] of [
      [['--moped', '0.1'], /option '--moped' needs '--init-from'/],
      [['--init-from', other, '--moped', '0'], /option '--moped'.*a finite number > 0/],
      [['--init-from', other, '--layer-type', 'frequentist'], /'--init-from' cannot be combined with '--layer-type'/],
      [['--init-from', other, '--prior-mixture', '0.5,1,0.01'], /'--init-from' cannot be combined with '--prior-mixture'/],
    ] as const) {
      const r = await runBuilt([...tiny, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  }, 240_000);
});
