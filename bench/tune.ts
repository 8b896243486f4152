/**
 * Measures the GEMM variants (src/gpu/gemm_variants.ts) for every shape class that training and
 * prediction of the seed's models use, on this machine's adapter, and prints the tuning table.
 *
 *   node bench/run.mjs tune [--models lenet,alexnet,3conv3fc] [--batches 32,256] [--channels 1,3] [--write]
 *
 * With --write the table replaces this adapter's entry in src/gpu/gemm_tables.ts, the tables
 * shipped for adapters measured here (a context on such an adapter then skips tuning). Each class
 * is timed once per variant with ctx.tune (a warm-up run, then the median of three), during one
 * training step (BBB-LRT, BBB and frequentist) and one 25-sample prediction per model and batch.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Adam, BBB3Conv3FC, BBBAlexNet, BBBLeNet, AlexNet, LeNet, ThreeConvThreeFC, createContext, trainStep } from '../src/node.js';
import type { TuningTable } from '../src/gpu/tuning.js';

const MODELS = {
  lenet: { bayes: BBBLeNet, plain: LeNet },
  alexnet: { bayes: BBBAlexNet, plain: AlexNet },
  '3conv3fc': { bayes: BBB3Conv3FC, plain: ThreeConvThreeFC },
} as const;

function option(args: string[], name: string, fallback: string): string {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  return args[i].includes('=') ? args[i].split('=')[1] : args[i + 1];
}

export async function main(args: string[]): Promise<void> {
  const models = option(args, 'models', 'lenet,alexnet,3conv3fc').split(',') as (keyof typeof MODELS)[];
  const batches = option(args, 'batches', '32,256').split(',').map(Number);
  const channels = option(args, 'channels', '1,3').split(',').map(Number);
  const ctx = await createContext({ gemm: { tuning: 'off' } });
  console.error(`tuning on ${ctx.adapterName}`);
  let table: TuningTable = ctx.tuningTable();
  for (const name of models) {
    for (const batch of batches) {
      for (const inChannels of channels) {
      for (const layerType of ['lrt', 'bbb', 'frequentist'] as const) {
        const model = layerType === 'frequentist' ? MODELS[name].plain(ctx, { inChannels }) : MODELS[name].bayes(ctx, { layerType, inChannels });
        const adam = new Adam(model, { lr: 1e-3 });
        const x = ctx.tensor(Float32Array.from({ length: batch * inChannels * 32 * 32 }, (_, i) => Math.sin(i)), [batch, inChannels, 32, 32]);
        const labels = ctx.tensor(Uint32Array.from({ length: batch }, (_, i) => i % 10), [batch], 'u32');
        const t0 = performance.now();
        table = await ctx.tune(async () => {
          trainStep(model, adam, x, labels, { samples: 1, beta: 0.1, trainSize: 50000, seed: 1 });
          if (layerType !== 'frequentist') await model.predict(x, { samples: batch <= 32 ? 25 : 4, batchSize: batch });
        }, { onClass: (key, times) => console.error(`  ${key}: ${Object.entries(times).map(([v, ms]) => `${v} ${ms.toFixed(1)}`).join(', ')}`) });
        console.error(`${name} ${layerType} ${inChannels} channel(s), batch ${batch}: ${Object.keys(table.choices).length} classes so far, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        x.dispose();
        labels.dispose();
      }
      }
    }
  }
  console.log(JSON.stringify(table, null, 1));
  if (args.includes('--write')) {
    const file = fileURLToPath(new URL('../src/gpu/gemm_tables.ts', import.meta.url).href.replace('/node_modules/.bench/', '/bench/'));
    const text = readFileSync(file, 'utf8');
    const head = text.slice(0, text.indexOf('export const SHIPPED_TABLES'));
    const existing = JSON.parse(text.slice(text.indexOf('= [') + 2, text.lastIndexOf(']') + 1)) as TuningTable[];
    const tables = [...existing.filter((t) => t.adapter !== table.adapter), { ...table, times: undefined }];
    writeFileSync(file, `${head}export const SHIPPED_TABLES: readonly TuningTable[] = ${JSON.stringify(tables, null, 2)};\n`);
    console.error(`wrote ${file}`);
  }
  ctx.destroy();
  process.exit(0);
}
