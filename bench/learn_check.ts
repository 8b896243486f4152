/**
 * Does a configuration learn? Trains LeNet variants for a fixed number of
 * steps on an MNIST subset and prints the training accuracy of the last steps.
 *   node bench/run.mjs learn_check [--images 3840] [--batch 64] [--epochs 1] [--configs freq-relu,lrt-softplus,...] [--beta 0.1]
 */
import { createContext } from '../src/node.js';
import { buildModel, resolveConfig } from '../src/nn/models.js';
import { fit } from '../src/train/fit.js';
import { loadDataset } from '../src/cli/datasets.js';

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const images = Number(arg('images', '3840'));
  const batchSize = Number(arg('batch', '64'));
  const epochs = Number(arg('epochs', '1'));
  const configs = arg('configs', 'freq-relu,freq-softplus,lrt-relu,lrt-softplus,bbb-softplus').split(',');
  const ctx = await createContext();
  const data = await loadDataset('mnist', 'train', { limit: images });
  console.log(`adapter: ${ctx.adapterName}; ${images} images, batch ${batchSize}, ${epochs} epoch(s)`);
  for (const c of configs) {
    const [kind, activation] = c.split('-');
    const bayesian = kind !== 'freq';
    const model = buildModel(ctx, resolveConfig('learn_check', 'lenet', bayesian, { layerType: bayesian ? (kind as 'lrt' | 'bbb') : undefined, activation: activation as 'relu' | 'softplus' }), 1);
    let last = '';
    const t0 = performance.now();
    await fit(model, data, {
      epochs, batchSize, validFraction: 0, lrSchedule: 'constant', beta: Number(arg('beta', '0.1')), seed: 1, reportEvery: 10,
      onBatch: (p) => void (last = `batch ${p.batch}/${p.batches} running acc ${p.accuracy.toFixed(3)} loss ${p.loss.toFixed(1)} kl ${p.kl.toFixed(0)}`),
    });
    console.log(`${c}: ${last} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    model.dispose();
  }
  ctx.destroy();
  process.exit(0);
}
