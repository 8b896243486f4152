/**
 * How `npm run bench` times GPU work: GPU timestamps where the device has the optional
 * 'timestamp-query' feature, wall time otherwise.
 *
 * The GPU timestamp of a measurement brackets the submissions of the work: the work is
 * recorded first (by bayesgpu's context or by tfjs-backend-webgpu, which both batch their
 * dispatches into a command encoder), then one empty compute pass that writes a timestamp
 * at its beginning is submitted, then the work itself, then an empty pass that writes one at
 * its end. The queue runs them in order, so the difference is the GPU time of the work,
 * without the JavaScript that recorded it. Wall time is always measured too: from before
 * recording to the end of queue.onSubmittedWorkDone().
 *
 * Dawn quantizes timestamps (its 'timestamp_quantization' toggle): on SwiftShader every interval
 * is a multiple of 2^16 ns = 65.5 us, which matters only for kernels below a millisecond or so.
 */

export type TimingMethod = 'gpu-timestamp' | 'wall';

export interface Sample {
  wallMs: number;
  /** GPU time in ms between the bracketing timestamps; null without timestamps. */
  gpuMs: number | null;
}

/** What a case reports for one implementation: medians over rounds. */
export interface Measurement {
  /** Median GPU time when every round had a usable timestamp interval, else median wall time. */
  ms: number;
  gflops: number;
  wallMs: number;
  timing: TimingMethod;
  rounds: number;
  /** Every timed round's ms (by `timing`), in order: how noisy the median is. */
  samples: number[];
}

/** One timed run: `record` records GPU work without submitting it; `submit` submits what was recorded. */
export interface GpuWork {
  record: () => void;
  submit: () => void;
  /** Frees what `record` made, after the work is done. */
  cleanup?: () => void;
}

export class GpuTimer {
  readonly method: TimingMethod;
  private readonly querySet: GPUQuerySet | null = null;
  private readonly resolveBuffer: GPUBuffer | null = null;
  private readonly readBuffer: GPUBuffer | null = null;

  constructor(private readonly device: GPUDevice, useTimestamps = true) {
    const has = useTimestamps && device.features.has('timestamp-query');
    this.method = has ? 'gpu-timestamp' : 'wall';
    if (has) {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: 2, label: 'bench timestamps' });
      this.resolveBuffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'bench timestamps resolve' });
      this.readBuffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'bench timestamps read' });
    }
  }

  /** An empty compute pass that writes timestamp `index` at its beginning (0) or end (1). */
  private mark(index: 0 | 1): void {
    const encoder = this.device.createCommandEncoder({ label: `bench timestamp ${index}` });
    const timestampWrites: GPUComputePassTimestampWrites = index === 0 ? { querySet: this.querySet!, beginningOfPassWriteIndex: 0 } : { querySet: this.querySet!, endOfPassWriteIndex: 1 };
    encoder.beginComputePass({ timestampWrites }).end();
    if (index === 1) {
      encoder.resolveQuerySet(this.querySet!, 0, 2, this.resolveBuffer!, 0);
      encoder.copyBufferToBuffer(this.resolveBuffer!, 0, this.readBuffer!, 0, 16);
    }
    this.device.queue.submit([encoder.finish()]);
  }

  /** Times one run of `work`: records it, brackets its submission with timestamps and waits for the queue. */
  async time(work: GpuWork): Promise<Sample> {
    const t0 = performance.now();
    work.record();
    if (this.querySet) this.mark(0);
    work.submit();
    if (this.querySet) this.mark(1);
    await this.device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    work.cleanup?.();
    if (!this.querySet) return { wallMs, gpuMs: null };
    await this.readBuffer!.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigUint64Array(this.readBuffer!.getMappedRange().slice(0));
    this.readBuffer!.unmap();
    return { wallMs, gpuMs: Number(end - begin) / 1e6 };
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
    this.readBuffer?.destroy();
  }
}

/** Wall time of an asynchronous CPU-side run (tfjs-cpu, whole training steps). */
export async function timeWall(run: () => Promise<void> | void): Promise<Sample> {
  const t0 = performance.now();
  await run();
  return { wallMs: performance.now() - t0, gpuMs: null };
}

/**
 * Medians over the rounds. A zero or negative timestamp interval (quantized away, or a driver
 * whose timestamps do not advance) makes the whole measurement fall back to wall time, so that
 * one measurement never mixes the two methods.
 */
export function summarize(samples: readonly Sample[], flops: number): Measurement {
  const wallMs = median(samples.map((s) => s.wallMs));
  const gpu = samples.every((s) => s.gpuMs !== null && s.gpuMs > 0);
  const ms = gpu ? median(samples.map((s) => s.gpuMs!)) : wallMs;
  const each = samples.map((s) => round(gpu ? s.gpuMs! : s.wallMs));
  return { ms: round(ms), gflops: round(gflops(flops, ms), 4), wallMs: round(wallMs), timing: gpu ? 'gpu-timestamp' : 'wall', rounds: samples.length, samples: each };
}

export function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** GFLOP/s of `flops` floating point operations (a multiply-add counts 2) done in `ms`. */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}
