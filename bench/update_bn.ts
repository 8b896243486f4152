/**
 * Recomputes a checkpoint's BatchNorm statistics with updateBatchNorm (src/train/batchnorm_stats.ts)
 * over the first --images training images of a data set, and saves the result (weights unchanged):
 *
 *   node bench/run.mjs update_bn --checkpoint in.safetensors --dataset fashion-mnist --images 1500 --batch 32 --out out.safetensors
 *
 * then evaluate `out.safetensors` with `bayesgpu eval` as any checkpoint.
 */
import { createContext } from '../src/node.js';
import { loadModelFile, saveModelFile } from '../src/io/checkpoint_files.js';
import { loadDataset } from '../src/cli/datasets.js';
import { updateBatchNorm } from '../src/train/batchnorm_stats.js';

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback?: string) => {
    const i = args.indexOf(`--${name}`);
    if (i >= 0) return args[i + 1];
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  };
  const ctx = await createContext();
  const model = await loadModelFile(ctx, arg('checkpoint'));
  const data = await loadDataset(arg('dataset', 'mnist'), 'train', { limit: Number(arg('images', '1500')), imageSize: model.inputShape[1] });
  const t0 = performance.now();
  const layers = await updateBatchNorm(model, data, { batchSize: Number(arg('batch', '32')), seed: Number(arg('seed', '1')) });
  console.log(`updated ${layers} BatchNorm layers over ${data.count} images in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${ctx.adapterName}`);
  await saveModelFile(arg('out'), model);
  ctx.destroy();
  process.exit(0);
}
