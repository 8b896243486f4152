/**
 * `bayesgpu train`'s diagnostics, from the built binary: the per-epoch line's NLL and beta*KL terms
 * and KL per weight, the sigma line, the --json figures, and the warnings on stderr (one line each).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBuilt } from './run_cli.js';
import { formatFigure } from '../../src/cli/progress.js';

interface Sigma {
  layer: string;
  weight: { mean: number; min: number; max: number; count: number } | null;
  bias: { mean: number; min: number; max: number; count: number } | null;
}

describe('bayesgpu train diagnostics (CLI)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bayesgpu-cli-diagnostics-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const tiny = ['train', '--train-size', '96', '--valid-fraction', '0.25', '--epochs', '2', '--batch-size', '24', '--test-samples', '0', '--seed', '2', '--json'];

  it('a huge beta: the epoch lines show the two terms, KL per weight and sigma; both warnings once each on stderr and in the JSON', async () => {
    const run = await runBuilt([...tiny, '--beta', '1e6', '--chance-warning-steps', '0', '--out', join(scratch, 'huge.safetensors')]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim());
    const lines = run.stderr.split('\n');
    const epochLines = lines.filter((l) => l.startsWith('Epoch: '));
    expect(epochLines).toHaveLength(2);
    for (const [i, e] of result.history.entries()) {
      expect(e.klTerm).toBeCloseTo(1e6 * e.kl, 0);
      expect(e.nllTerm).toBeCloseTo(e.trainNll * 72, 6);
      expect(e.klPerWeight).toBeGreaterThan(0);
      const count = (e.sigma as Sigma[]).reduce((a, l) => a + (l.weight?.count ?? 0) + (l.bias?.count ?? 0), 0);
      expect(e.klPerWeight).toBeCloseTo(e.kl / count, 10);
      expect(epochLines[i]).toContain(`\tnll_term: ${formatFigure(e.nllTerm)} \tbeta_kl: ${formatFigure(e.klTerm)} \tkl_per_weight: ${formatFigure(e.klPerWeight)} \t`);
      // The sigma line follows its epoch's line: each Bayesian layer's weight sigma, mean [min, max].
      const sigmaLine = lines[lines.indexOf(epochLines[i]) + 1];
      const sigma = e.sigma as Sigma[];
      expect(sigma.map((l) => l.layer)).toEqual(['conv1', 'conv2', 'fc1', 'fc2', 'fc3']);
      for (const l of sigma) {
        expect(l.weight!.min).toBeLessThanOrEqual(l.weight!.mean);
        expect(l.weight!.mean).toBeLessThanOrEqual(l.weight!.max);
        expect(l.bias!.count).toBeGreaterThan(0);
      }
      expect(sigmaLine).toBe(`  sigma mean [min, max]: ${sigma.map((l) => `${l.layer} ${formatFigure(l.weight!.mean)} [${formatFigure(l.weight!.min)}, ${formatFigure(l.weight!.max)}]`).join('  ')}`);
    }
    expect(result.warnings.map((w: { code: string; epoch: number; step: number }) => [w.code, w.epoch, w.step])).toEqual([['kl-dominates', 1, 3], ['chance-accuracy', 1, 3]]);
    const warningLines = lines.filter((l) => l.startsWith('bayesgpu train: warning '));
    expect(warningLines).toEqual(result.warnings.map((w: { code: string; message: string }) => `bayesgpu train: warning ${w.code}: ${w.message}`));
    expect(warningLines[0]).toContain('--beta');
    expect(warningLines[1]).toContain('--activation relu');
  }, 300_000);

  it('a frequentist model: no sigma line, no KL per weight, no warning', async () => {
    const run = await runBuilt([...tiny, '--layer-type', 'frequentist', '--out', join(scratch, 'plain.safetensors')]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim());
    expect(result.warnings).toEqual([]);
    for (const e of result.history) expect(e).toMatchObject({ kl: 0, klTerm: 0, klPerWeight: null, sigma: [] });
    expect(run.stderr).not.toContain('sigma mean');
    expect(run.stderr).not.toContain('warning');
    expect(run.stderr.split('\n').filter((l) => l.startsWith('Epoch: ')).every((l) => l.includes('\tkl_per_weight: n/a \t'))).toBe(true);
  }, 300_000);
});
