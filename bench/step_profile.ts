/**
 * Where a training step's time goes: each layer's forward and backward of a
 * LeNet on one batch, timed with a GPU sync around each call.
 *   node bench/run.mjs step_profile [--batch 256] [--layer-type lrt|bbb|frequentist]
 */
import { createContext, type Tensor } from '../src/node.js';
import { buildModel, resolveConfig } from '../src/nn/models.js';
import { logSoftmax, logSoftmaxBackward, nllLoss, nllLossBackward } from '../src/ops/loss.js';

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const batch = Number(arg('batch', '256'));
  const layerType = arg('layer-type', 'lrt');
  const model = arg('model', 'lenet');
  const ctx = await createContext();
  const bayesian = layerType !== 'frequentist';
  const net = buildModel(ctx, resolveConfig('profile', model, bayesian, { layerType: bayesian ? (layerType as 'lrt' | 'bbb') : undefined }));
  const x = ctx.tensor(Float32Array.from({ length: batch * 1024 }, () => Math.random()), [batch, 1, 32, 32]);
  const labels = ctx.tensor(Uint32Array.from({ length: batch }, (_, i) => i % 10), [batch], 'u32');
  const pass = { ...net.makePass({ samples: 1, seed: 1, step: 1 }), training: true, sample: bayesian };
  const rows: { layer: string; forwardMs: number; backwardMs: number }[] = [];
  for (let rep = 0; rep < 3; rep++) {
    ctx.scope(() => undefined);
    await ctx.scope(async () => {
      const acts: Tensor[] = [x];
      const fwd: number[] = [];
      for (const [, layer] of net.layers) {
        const t0 = performance.now();
        acts.push(layer.forward(acts[acts.length - 1], pass));
        await ctx.sync();
        fwd.push(performance.now() - t0);
      }
      const logp = logSoftmax(acts[acts.length - 1]);
      nllLoss(logp, labels);
      let g: Tensor = logSoftmaxBackward(nllLossBackward(logp, labels, { scale: 1 }), logp);
      const bwd: number[] = new Array(net.layers.length).fill(0);
      for (let i = net.layers.length - 1; i >= 0; i--) {
        const t0 = performance.now();
        g = net.layers[i][1].backward(g, { ...pass, needInputGrad: i > 0 })!;
        await ctx.sync();
        bwd[i] = performance.now() - t0;
      }
      if (rep === 2) net.layers.forEach(([name], i) => rows.push({ layer: name, forwardMs: +fwd[i].toFixed(1), backwardMs: +bwd[i].toFixed(1) }));
    });
  }
  console.log(JSON.stringify({ adapter: ctx.adapterName, model, layerType, batch }));
  console.table(rows);
  ctx.destroy();
  process.exit(0);
}
