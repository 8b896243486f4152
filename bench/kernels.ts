/**
 * Kernel timings on the adapter this machine offers (SwiftShader without a GPU).
 *
 *   node bench/run.mjs kernels [--quick] [--only=<substring of a case, e.g. 'lenet.conv2 N=256'>]
 *
 * Node 20 cannot run TypeScript and tsx is not installed, so bench/run.mjs bundles
 * this file with esbuild and calls `main`. Prints one JSON line per measurement:
 *   {"adapter", "kernel", "shape", "ms": median, "gflops": FLOPs / median, "best_ms": fastest run}
 * FLOPs are those of the mathematical operation, 2 per multiply-add of a dense convolution
 * (2 * N * Cout * OH * OW * Cin * KH * KW, taps that land in padding included), not the
 * instructions a kernel happens to execute. Each measurement is warm-up runs, then the
 * median of timed runs, each ended by ctx.sync() so that the GPU work is inside the time.
 * Not a test: numbers depend on the machine and its load (on a shared 2-core machine the
 * median can be several times the best run). conv2dBackward always computes dw, so the
 * backward rows are (weight+bias) and (input+weight+bias); dx costs their difference.
 *
 * Add other kernel families with `timeKernel` (exported) and a block in `main`.
 */
import { type Context, createContext } from '../src/node.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { type Conv2dOptions, conv2dBackward, conv2dForward, conv2dOutputShape, lrtConv2dBackward, lrtConv2dForward } from '../src/ops/conv2d.js';

export interface TimingOptions {
  /** Untimed runs first (pipeline compilation, buffer pool warm-up). */
  warmup?: number;
  /** Timed runs; the median is reported. */
  runs?: number;
}

export interface KernelTiming {
  adapter: string;
  kernel: string;
  shape: string;
  ms: number;
  gflops: number;
  /** The fastest timed run: on a shared machine, the closest to what the kernel costs alone. */
  best_ms: number;
}

/**
 * Times `run` (which records GPU work on ctx) and prints a JSON line. Tensors that
 * `run` creates are disposed after each run (ctx.scope), so repeated runs reuse pooled buffers.
 */
export async function timeKernel(ctx: Context, kernel: string, shape: string, flops: number, run: () => unknown, options: TimingOptions = {}): Promise<KernelTiming> {
  const { warmup = 1, runs = 3 } = options;
  await ctx.sync();
  const once = async () => {
    const t0 = performance.now();
    ctx.scope(() => {
      run();
    });
    await ctx.sync();
    return performance.now() - t0;
  };
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)];
  const timing = { adapter: ctx.adapterName, kernel, shape, ms: Number(ms.toFixed(3)), gflops: Number((flops / (ms * 1e6)).toFixed(4)), best_ms: Number(times[0].toFixed(3)) };
  console.log(JSON.stringify(timing));
  return timing;
}

/** A tensor of uniform values in [lo, hi) (a cheap LCG: the numbers only need to be finite and varied). */
export function uniformTensor(ctx: Context, shape: readonly number[], seed: number, lo = -1, hi = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = lo + ((hi - lo) * s) / 4294967296;
  }
  return ctx.tensor(data, shape);
}

interface ConvCase {
  name: string;
  batch: number;
  cin: number;
  size: number;
  cout: number;
  kernel: number;
  opts?: Conv2dOptions;
}

/** Layers of the seed models (src/nn/models.ts) at the input sizes they see. */
function convCases(quick: boolean): ConvCase[] {
  const lenet = (batch: number): ConvCase[] => [
    { name: 'lenet.conv1', batch, cin: 1, size: 32, cout: 6, kernel: 5 },
    { name: 'lenet.conv2', batch, cin: 6, size: 14, cout: 16, kernel: 5 },
  ];
  // AlexNet on 32x32 images: conv1 gives 8x8, pooled to 4x4 before conv2.
  const alexnet = (batch: number): ConvCase[] => [
    { name: 'alexnet.conv1', batch, cin: 3, size: 32, cout: 64, kernel: 11, opts: { stride: 4, padding: 5 } },
    { name: 'alexnet.conv2', batch, cin: 64, size: 4, cout: 192, kernel: 5, opts: { padding: 2 } },
  ];
  return quick ? [...lenet(1), ...lenet(256), ...alexnet(1)] : [...lenet(1), ...lenet(256), ...alexnet(1), ...alexnet(32)];
}

async function benchConv(ctx: Context, c: ConvCase, timing: TimingOptions): Promise<void> {
  const xShape = [c.batch, c.cin, c.size, c.size];
  const wShape = [c.cout, c.cin, c.kernel, c.kernel];
  const yShape = conv2dOutputShape(xShape, wShape, c.opts);
  const [, , oh, ow] = yShape;
  const opts = c.opts ?? {};
  const shape = `${c.name} N=${c.batch} ${c.cin}x${c.size}x${c.size} -> ${c.cout}x${oh}x${ow} k${c.kernel}${opts.stride ? ` s${opts.stride}` : ''}${opts.padding ? ` p${opts.padding}` : ''}`;
  // One dense convolution: 2 FLOPs per multiply-add.
  const conv = 2 * c.batch * c.cout * oh * ow * c.cin * c.kernel * c.kernel;
  const key = { seed: 1, step: 1, stream: 0 };
  await ctx.scope(async () => {
    const x = uniformTensor(ctx, xShape, 1);
    const w = uniformTensor(ctx, wShape, 2, -0.1, 0.1);
    const wSigma2 = uniformTensor(ctx, wShape, 3, 1e-4, 1e-3);
    const b = uniformTensor(ctx, [c.cout], 4);
    const dy = uniformTensor(ctx, yShape, 5);
    await timeKernel(ctx, 'conv2d.forward', shape, conv, () => conv2dForward(x, w, b, c.opts), timing);
    // conv2dBackward always computes dw; dx is the difference between these two rows.
    await timeKernel(ctx, 'conv2d.backward(weight+bias)', shape, conv, () => conv2dBackward(dy, x, w, { ...c.opts, needBias: true }), timing);
    await timeKernel(ctx, 'conv2d.backward(input+weight+bias)', shape, 2 * conv, () => conv2dBackward(dy, x, w, { ...c.opts, needInput: true, needBias: true }), timing);
    // LRT: two convolutions per pass (mean and variance).
    await timeKernel(ctx, 'lrt_conv2d.forward', shape, 2 * conv, () => lrtConv2dForward(x, w, wSigma2, b, b, { ...c.opts, key }), timing);
    const { std } = lrtConv2dForward(x, w, wSigma2, b, b, { ...c.opts, key });
    await timeKernel(ctx, 'lrt_conv2d.backward(input+weight+bias)', shape, 4 * conv, () => lrtConv2dBackward(dy, x, std, w, wSigma2, { ...c.opts, key, needInput: true, needBias: true }), timing);
  });
}

export async function main(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const timing: TimingOptions = quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 5 };
  const ctx = await createContext();
  try {
    for (const c of convCases(quick)) {
      if (only && !`${c.name} N=${c.batch}`.includes(only)) continue;
      await benchConv(ctx, c, timing);
    }
  } finally {
    ctx.destroy();
  }
}
