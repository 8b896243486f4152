/**
 * Timings of the matmul / linear family (shaders/matmul.wgsl) on this machine's adapter.
 *
 *   node bench/run.mjs linear [--quick] [--only=<substring of kernel or shape>]
 *
 * Uses `timeKernel` of bench/kernels.ts (warm-up, then the median of timed runs, each ended by
 * ctx.sync(); one JSON line per measurement). FLOPs are 2 per multiply-add of the mathematical
 * operation: 2 M N K for a product; the LRT passes count their two products (mean and variance).
 * Not a test: numbers depend on the machine and its load.
 */
import { type Context, createContext } from '../src/node.js';
import { linearBackward, linearForward, lrtLinearBackward, lrtLinearForward, matmul } from '../src/ops/linear.js';
import { type TimingOptions, timeKernel, uniformTensor } from './kernels.js';

async function benchMatmul(ctx: Context, size: number, timing: TimingOptions, only?: string): Promise<void> {
  await ctx.scope(async () => {
    const a = uniformTensor(ctx, [size, size], 1);
    const b = uniformTensor(ctx, [size, size], 2);
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const shape = `${size}x${size}x${size}${transposeA ? ' A^T' : ''}${transposeB ? ' B^T' : ''}`;
        if (only && !`matmul ${shape}`.includes(only)) continue;
        await timeKernel(ctx, 'matmul', shape, 2 * size ** 3, () => matmul(a, b, { transposeA, transposeB }), timing);
      }
    }
  });
}

interface FcCase {
  name: string;
  batch: number;
  inF: number;
  outF: number;
}

/** The fully connected layers of LeNet-5 (src/nn/models.ts) at the CLI's default batch of 256. */
function fcCases(quick: boolean): FcCase[] {
  const lenet = (batch: number): FcCase[] => [
    { name: 'lenet.fc1 (MNIST)', batch, inF: 256, outF: 120 },
    { name: 'lenet.fc1 (CIFAR)', batch, inF: 400, outF: 120 },
    { name: 'lenet.fc2', batch, inF: 120, outF: 84 },
    { name: 'lenet.fc3', batch, inF: 84, outF: 10 },
  ];
  return quick ? lenet(256) : [...lenet(1), ...lenet(256)];
}

async function benchFc(ctx: Context, c: FcCase, timing: TimingOptions): Promise<void> {
  const shape = `${c.name} N=${c.batch} ${c.inF} -> ${c.outF}`;
  const product = 2 * c.batch * c.inF * c.outF;
  const key = { seed: 1, step: 1, stream: 0 };
  await ctx.scope(async () => {
    const x = uniformTensor(ctx, [c.batch, c.inF], 1);
    const w = uniformTensor(ctx, [c.outF, c.inF], 2, -0.1, 0.1);
    const wSigma2 = uniformTensor(ctx, [c.outF, c.inF], 3, 1e-4, 1e-3);
    const b = uniformTensor(ctx, [c.outF], 4);
    const dy = uniformTensor(ctx, [c.batch, c.outF], 5);
    await timeKernel(ctx, 'linear.forward', shape, product, () => linearForward(x, w, b), timing);
    await timeKernel(ctx, 'linear.backward(input+weight+bias)', shape, 2 * product, () => linearBackward(dy, x, w, { needInput: true, needBias: true }), timing);
    await timeKernel(ctx, 'lrt_linear.forward', shape, 2 * product, () => lrtLinearForward(x, w, wSigma2, b, b, { key }), timing);
    const { std } = lrtLinearForward(x, w, wSigma2, b, b, { key });
    await timeKernel(ctx, 'lrt_linear.backward(input+weight+bias)', shape, 4 * product, () => lrtLinearBackward(dy, x, std, w, wSigma2, { key, needInput: true, needBias: true }), timing);
  });
}

export async function main(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const timing: TimingOptions = quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 5 };
  const ctx = await createContext();
  try {
    await benchMatmul(ctx, 512, timing, only);
    for (const c of fcCases(quick)) {
      if (only && !`${c.name} N=${c.batch}`.includes(only)) continue;
      await benchFc(ctx, c, timing);
    }
  } finally {
    ctx.destroy();
  }
}
