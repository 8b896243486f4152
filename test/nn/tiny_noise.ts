/**
 * The noise a training step of the tiny CNN of test/reference/model.ts drew, read back from the
 * generator by the layers' stream contract (streamBase = layer index * STREAMS_PER_LAYER; conv1 is
 * layer 0, fc1 layer 4): per output for LRT, one weight and bias draw per Monte Carlo sample for BBB.
 */
import type { Context } from '../../src/gpu/context.js';
import { STREAMS_PER_LAYER } from '../../src/nn/module.js';
import { drawNormal } from '../../src/ops/sample.js';
import type { TinyDims, TinyNoise } from '../reference/model.js';

export async function tinyStepNoise(
  ctx: Context, d: TinyDims, layerType: 'lrt' | 'bbb', key: { seed: number; step: number }, weights: { conv1: number; fc1: number },
): Promise<TinyNoise> {
  const draw = async (n: number, layer: number, offset: number) =>
    Float64Array.from(await drawNormal(ctx, [n], { key: { seed: key.seed, step: key.step, stream: layer * STREAMS_PER_LAYER + offset } }).read());
  const rows = d.samples * d.batch;
  const oh = d.size - d.k + 1;
  return layerType === 'lrt'
    ? { conv1: { out: await draw(rows * d.outC * oh * oh, 0, 0) }, fc1: { out: await draw(rows * d.classes, 4, 0) } }
    : {
        conv1: { w: await draw(d.samples * weights.conv1, 0, 1), b: await draw(d.samples * d.outC, 0, 2) },
        fc1: { w: await draw(d.samples * weights.fc1, 4, 1), b: await draw(d.samples * d.classes, 4, 2) },
      };
}
