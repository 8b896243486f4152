/**
 * The ceiling the kernel cases are read against: the best GFLOP/s any of bayesgpu's GEMM
 * variants reaches on this adapter, over a few large square products C = op(A) op(B).
 *
 * `gemmVariants` lists what is measured: every tiling of the GEMM core (src/gpu/gemm_variants.ts),
 * forced in turn on the bench's context, with B stored transposed ([N, K], as a linear layer's
 * weights) and not.
 */
import type { Context, Tensor } from '../../src/node.js';
import { GEMM_VARIANTS } from '../../src/gpu/gemm_variants.js';
import { matmul } from '../../src/ops/linear.js';
import { uniformData } from './implementations.js';
import { type GpuTimer, type Measurement, summarize } from './timing.js';

export interface GemmVariant {
  name: string;
  /** Records C = op(A) op(B) for square [size, size] inputs. */
  run: (ctx: Context, a: Tensor, b: Tensor) => Tensor;
}

export function gemmVariants(): GemmVariant[] {
  const variants: GemmVariant[] = [];
  for (const v of GEMM_VARIANTS) {
    for (const transposeB of [false, true]) {
      variants.push({
        name: `matmul${transposeB ? ' B^T' : ''} [${v.name}]`,
        run: (ctx, a, b) => {
          ctx.tuner.forceAll(v.name);
          try {
            return matmul(a, b, { transposeB });
          } finally {
            ctx.tuner.forceAll(null);
          }
        },
      });
    }
  }
  return variants;
}

export interface CeilingMeasurement extends Measurement {
  variant: string;
  size: number;
}

export interface Ceiling {
  gflops: number;
  variant: string;
  size: number;
  ms: number;
  timing: string;
  measurements: CeilingMeasurement[];
}

export interface CeilingOptions {
  sizes: readonly number[];
  rounds: number;
  variants?: readonly GemmVariant[];
  log?: (line: string) => void;
}

/** Times every variant at every size (one warm-up, then `rounds` runs) and keeps the best median GFLOP/s. */
export async function measureCeiling(ctx: Context, timer: GpuTimer, options: CeilingOptions): Promise<Ceiling> {
  const variants = options.variants ?? gemmVariants();
  const measurements: CeilingMeasurement[] = [];
  for (const size of options.sizes) {
    const a = ctx.keep(ctx.tensor(uniformData(size * size, 11), [size, size]));
    const b = ctx.keep(ctx.tensor(uniformData(size * size, 12), [size, size]));
    try {
      for (const v of variants) {
        const work = { record: () => ctx.scope(() => void v.run(ctx, a, b)), submit: () => ctx.flush() };
        await timer.time(work);
        await ctx.sync();
        const samples = [];
        for (let r = 0; r < options.rounds; r++) samples.push(await timer.time(work));
        const m = { variant: v.name, size, ...summarize(samples, 2 * size ** 3) };
        measurements.push(m);
        options.log?.(`ceiling ${v.name} ${size}^3: ${m.ms} ms, ${m.gflops} GFLOP/s`);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  }
  const best = measurements.reduce((x, y) => (y.gflops > x.gflops ? y : x));
  return { gflops: best.gflops, variant: best.variant, size: best.size, ms: best.ms, timing: best.timing, measurements };
}
