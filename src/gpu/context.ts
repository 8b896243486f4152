/**
 * The runtime: a device, a buffer pool, a pipeline cache and a command
 * recorder. Four nouns carry everything: Context, Tensor, Kernel, dispatch.
 *
 * - Buffers are pooled by size class (four classes per octave) and reused. The
 *   pool is bounded (`maxPooledBytes`): beyond it, the least recently used
 *   classes are freed first, so changing shapes cannot grow it without end.
 * - A Kernel is plain data: shader file, entry point, override constants,
 *   uniform values by name, tensors by binding name, workgroup counts.
 *   Each (file, entry, constants) compiles once; shapes travel as uniforms.
 * - Dispatches are recorded into one command encoder and submitted together
 *   at the next readback, upload or explicit flush.
 * - Device loss (a driver reset, a GPU removed, `device.destroy()`): every pending
 *   readback and sync rejects at once with a BayesError naming the loss, and every
 *   later call throws one. Nothing on the lost device can be saved: recover by
 *   opening a new context and restoring a checkpoint or a CPU copy
 *   (src/train/recovery.ts).
 */
import { BayesError } from '../errors.js';
import { type AdapterDescription, type DeviceOptions, describeAdapter, openDevice } from './device.js';
import { type EntryInfo, ShaderRegistry, packUniforms } from './shaders.js';
import { type DType, Tensor, type TypedArrayFor, sizeOf } from './tensor.js';
import { loadShaderFiles } from './shader_files.js';
import { type GemmOptions, type TuningTable, Tuner } from './tuning.js';

export interface Kernel {
  /** File name in `shaders/`, e.g. 'conv2d_forward.wgsl'. */
  shader: string;
  entry: string;
  /** WGSL `override` constants; each distinct set compiles one pipeline. */
  constants?: Readonly<Record<string, number | boolean>>;
  /** Values for the members of the entry's uniform struct, by member name. */
  uniforms?: Readonly<Record<string, number | readonly number[]>>;
  /** Tensors by the WGSL variable name they bind to. */
  bindings: Readonly<Record<string, Tensor>>;
  /**
   * Bindings the entry declares that this dispatch never reads or writes (a branch its override
   * constants switch off); each gets a small placeholder buffer of its own.
   */
  unbound?: readonly string[];
  /** Workgroup counts; see `grid` for 1-D work larger than 65535 groups. */
  workgroups: readonly [number, number?, number?];
  /** Name used in error messages; defaults to `shader:entry`. */
  label?: string;
}

export interface MemoryInfo {
  /** Tensors alive (not disposed). */
  liveTensors: number;
  /** GPU buffers held by live tensors. */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers kept in the pool for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
  /** The most bytes live buffers held at once since the context was made or `resetPeak()` was called. */
  peakLiveBytes: number;
  /** The pool's bound in bytes now (ContextOptions.maxPooledBytes); `pooledBytes` never stays above it. */
  poolLimitBytes: number;
}

export interface ContextOptions extends DeviceOptions {
  /** Shader sources by file name; the default loads `shaders/` (Node, Deno) or the inlined copy (browser bundle). */
  shaderFiles?: Record<string, string>;
  /** Dispatches recorded before an automatic submit. */
  maxDispatchesPerSubmit?: number;
  /** GEMM variant choice: a forced variant, tuning 'auto' | 'off', an imported table (src/gpu/tuning.ts). */
  gemm?: GemmOptions;
  /**
   * Most bytes the pool of free buffers keeps for reuse; beyond it the least recently used size
   * classes are freed. Default: the larger of 256 MiB and the most bytes ever live at once (a
   * working set that fitted on the device once also fits in the pool, so a steady training loop
   * never frees and re-creates buffers). Without a bound, a loop whose shapes keep changing
   * (growing batches, new image sizes) would keep one set of buffers per shape forever.
   */
  maxPooledBytes?: number;
}

const UNIFORM_ARENA_BYTES = 64 * 1024;
const DEFAULT_POOL_FLOOR_BYTES = 256 * 1024 * 1024;
/**
 * How long a failed readback waits for `device.lost` to explain it: the platform's error (Dawn:
 * an AbortError with an empty message) can arrive a few milliseconds before the lost promise.
 */
const LOST_GRACE_MS = 2000;
const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

/** Smallest size class >= bytes: 256 B minimum, then four steps per octave. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  const octave = 2 ** Math.floor(Math.log2(b));
  const step = octave / 4;
  return Math.ceil(b / step) * step;
}

interface Pipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  entry: EntryInfo;
}

export class Context {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  /** @internal the WGSL sources and their reflected layouts. */
  readonly shaders: ShaderRegistry;
  readonly limits: GPUSupportedLimits;
  /** @internal the GEMM variant choices of this adapter; see tune() and tuningTable(). */
  readonly tuner: Tuner;

  /** Free buffers by size class; the Map's order is least recently used first (see touch). */
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly refs = new Map<GPUBuffer, number>();
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  /** Pending asynchronous checks (compile info, error scopes); they never reject, they record into `errors`. */
  private readonly checks: Promise<void>[] = [];
  private readonly errors: BayesError[] = [];
  private readonly scopes: Set<Tensor>[] = [];
  private readonly maxDispatches: number;
  private live = new Set<Tensor>();
  private liveBuffers = 0;
  private liveBytes = 0;
  private peakBytes = 0;
  /** The most bytes ever live at once (never reset): the default pool bound follows it. */
  private highWaterBytes = 0;
  private readonly maxPooled: number | undefined;
  private pooledBuffers = 0;
  private pooledBytes = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private arena: GPUBuffer;
  private arenaData = new Uint8Array(UNIFORM_ARENA_BYTES);
  private arenaUsed = 0;
  private uniformAlign: number;
  private lostError: string | null = null;
  /** Resolves with the loss's message when the device is lost (or destroyed by `destroy()`). */
  private readonly lostMessage: Promise<string>;
  /** Rejecters of the readbacks and syncs in flight, called at once when the device is lost. */
  private readonly waiters = new Set<() => void>();
  private placeholders = new Map<number, GPUBuffer>();
  private tuning = false;
  private destroyed = false;

  /** @internal use createContext. */
  constructor(device: GPUDevice, adapter: AdapterDescription, files: Record<string, string>, options: ContextOptions = {}) {
    this.device = device;
    this.adapter = adapter;
    this.limits = device.limits;
    this.shaders = new ShaderRegistry(files);
    this.tuner = new Tuner(adapter, options.gemm);
    this.maxDispatches = options.maxDispatchesPerSubmit ?? 512;
    this.maxPooled = options.maxPooledBytes;
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.arena = device.createBuffer({ size: UNIFORM_ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'bayesgpu uniform arena' });
    this.lostMessage = device.lost.then((info) => {
      const message = `the GPU device was lost (reason '${info.reason}'${info.message ? `: ${info.message}` : ''}); work recorded since the last readback is gone. Open a new context and restore the model from a checkpoint or a CPU copy (restoreSnapshot, or fit's recoverDeviceLoss)`;
      if (!this.destroyed) this.onLost(message);
      return message;
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(new BayesError('GPU_ERROR', `WebGPU error: ${err.message}`));
    });
  }

  /** One line naming the adapter: vendor / architecture / device / description, fallback flag and runtime. */
  get adapterName(): string {
    return describeAdapter(this.adapter);
  }

  // ---------------------------------------------------------------- tensors

  private acquire(bytes: number, label: string): GPUBuffer {
    const cls = sizeClass(bytes);
    const free = this.pool.get(cls);
    let buffer = free?.pop();
    if (buffer) {
      this.pooledBuffers--;
      this.pooledBytes -= cls;
      this.touch(cls, free!);
    } else {
      if (cls > this.limits.maxStorageBufferBindingSize) {
        throw new BayesError('ADAPTER_LIMIT', `${label}: a tensor of ${bytes} bytes exceeds the adapter's limit 'maxStorageBufferBindingSize' (${this.limits.maxStorageBufferBindingSize})`);
      }
      buffer = this.device.createBuffer({ size: cls, usage: STORAGE_USAGE, label });
    }
    this.liveBuffers++;
    this.liveBytes += cls;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    if (this.liveBytes > this.highWaterBytes) this.highWaterBytes = this.liveBytes;
    this.refs.set(buffer, 1);
    return buffer;
  }

  private track(t: Tensor): Tensor {
    this.live.add(t);
    this.scopes[this.scopes.length - 1]?.add(t);
    return t;
  }

  private checkShape(op: string, shape: readonly number[]): void {
    if (!Array.isArray(shape) || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new BayesError('INVALID_ARGUMENT', `${op}: argument 'shape' expected a non-empty array of positive integers, got ${JSON.stringify(shape)}`);
    }
  }

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  empty<D extends DType = 'f32'>(shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
    this.assertUsable('empty');
    this.checkShape('empty', shape);
    const buffer = this.acquire(sizeOf(shape) * 4, `tensor[${shape.join(',')}]`);
    return this.track(new Tensor(this, shape, dtype, buffer)) as Tensor<D>;
  }

  zeros<D extends DType = 'f32'>(shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
    const t = this.empty(shape, dtype);
    this.recordPassless((enc) => enc.clearBuffer(t.buffer, 0, sizeOf(shape) * 4));
    return t;
  }

  /** Uploads `data` (any numeric array) as a tensor of `shape`. */
  tensor<D extends DType = 'f32'>(data: ArrayLike<number>, shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
    this.checkShape('tensor', shape);
    if (data.length !== sizeOf(shape)) {
      throw new BayesError('SHAPE_MISMATCH', `tensor: argument 'data' expected ${sizeOf(shape)} values for shape [${shape.join(', ')}], got ${data.length}`);
    }
    const t = this.empty(shape, dtype);
    this.write(t, data);
    return t;
  }

  /** Overwrites a tensor's contents from the CPU. */
  write(t: Tensor, data: ArrayLike<number>): void {
    this.assertUsable('write');
    this.own('write', 'tensor', t);
    if (data.length !== t.size) throw new BayesError('SHAPE_MISMATCH', `write: argument 'data' expected ${t.size} values, got ${data.length}`);
    const Typed = t.dtype === 'f32' ? Float32Array : t.dtype === 'u32' ? Uint32Array : Int32Array;
    const typed = data instanceof Typed ? data : Typed.from(data);
    // The pooled buffer may still be read by recorded work of a tensor that
    // owned it before; submit that work first so the write lands after it.
    if (this.pending > 0 || this.encoder) this.flush();
    this.device.queue.writeBuffer(t.buffer, 0, typed.buffer, typed.byteOffset, typed.byteLength);
  }

  /** @internal a second tensor over the same buffer (reshape). */
  view<D extends DType>(t: Tensor<D>, shape: readonly number[]): Tensor<D> {
    this.refs.set(t.buffer, (this.refs.get(t.buffer) ?? 0) + 1);
    return this.track(new Tensor(this, shape, t.dtype, t.buffer)) as Tensor<D>;
  }

  /** @internal called by Tensor.dispose. */
  release(t: Tensor): void {
    this.live.delete(t);
    for (const s of this.scopes) s.delete(t);
    const n = (this.refs.get(t.buffer) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(t.buffer, n);
      return;
    }
    this.refs.delete(t.buffer);
    const cls = t.buffer.size;
    this.liveBuffers--;
    this.liveBytes -= cls;
    // A destroyed or lost device's buffers are dead: nothing to keep for reuse.
    if (this.destroyed || this.lostError) return;
    const free = this.pool.get(cls) ?? [];
    this.touch(cls, free);
    free.push(t.buffer);
    this.pooledBuffers++;
    this.pooledBytes += cls;
    if (this.pooledBytes > this.poolLimit()) this.evict(this.poolLimit());
  }

  /** Marks size class `cls` as the most recently used: the Map keeps insertion order, so re-insert it last. */
  private touch(cls: number, list: GPUBuffer[]): void {
    this.pool.delete(cls);
    this.pool.set(cls, list);
  }

  private poolLimit(): number {
    return this.maxPooled ?? Math.max(DEFAULT_POOL_FLOOR_BYTES, this.highWaterBytes);
  }

  /** Frees pooled buffers, least recently used size classes first, until at most `limit` bytes stay pooled. */
  private evict(limit: number): void {
    if (this.pooledBytes <= limit) return;
    // Recorded but unsubmitted work may still use a freed tensor's buffer: submit it first
    // (a buffer destroyed after its submit stays alive until that work is done).
    if (this.encoder && !this.lostError && !this.destroyed) this.flush();
    for (const [cls, list] of this.pool) {
      while (list.length > 0 && this.pooledBytes > limit) {
        list.pop()!.destroy();
        this.pooledBuffers--;
        this.pooledBytes -= cls;
      }
      if (list.length === 0) this.pool.delete(cls);
      if (this.pooledBytes <= limit) break;
    }
  }

  /** Throws unless `t` is a live tensor of this context. */
  own(op: string, argument: string, t: Tensor): void {
    if (!(t instanceof Tensor)) throw new BayesError('INVALID_ARGUMENT', `${op}: argument '${argument}' expected a Tensor, got ${t === null ? 'null' : typeof t}`);
    if (t.ctx !== this) throw new BayesError('WRONG_DEVICE', `${op}: argument '${argument}' is a tensor from another device/context (${t.ctx.adapterName}); move it with ctx.tensor(await t.read(), t.shape)`);
    t.check(op, argument);
  }

  memory(): MemoryInfo {
    return {
      liveTensors: this.live.size, liveBuffers: this.liveBuffers, liveBytes: this.liveBytes, pooledBuffers: this.pooledBuffers, pooledBytes: this.pooledBytes,
      peakLiveBytes: this.peakBytes, poolLimitBytes: this.poolLimit(),
    };
  }

  /** Restarts `memory().peakLiveBytes` from the bytes live now. */
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Frees every pooled (unused) buffer. */
  trimPool(): void {
    this.evict(0);
    this.pool.clear();
  }

  /**
   * Runs `fn` and disposes every tensor created inside it that `fn` does not
   * return (tensors nested anywhere in the returned value survive). Works for
   * synchronous and asynchronous functions.
   */
  scope<T>(fn: () => T): T {
    const created = new Set<Tensor>();
    this.scopes.push(created);
    const finish = (result: unknown) => {
      const idx = this.scopes.lastIndexOf(created);
      if (idx >= 0) this.scopes.splice(idx, 1);
      const keep = new Set<Tensor>();
      collectTensors(result, keep, new Set());
      for (const t of created) if (!keep.has(t)) t.dispose();
      const parent = this.scopes[this.scopes.length - 1];
      if (parent) for (const t of keep) if (created.has(t)) parent.add(t);
    };
    let result: T;
    try {
      result = fn();
    } catch (e) {
      finish(undefined);
      throw e;
    }
    if (result instanceof Promise) {
      return result.then(
        (r) => (finish(r), r),
        (e) => {
          finish(undefined);
          throw e;
        },
      ) as T;
    }
    finish(result);
    return result;
  }

  /** Removes `t` from the enclosing scopes so that it outlives them. */
  keep<T extends Tensor>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  // -------------------------------------------------------------- pipelines

  private module(file: string): GPUShaderModule {
    let mod = this.modules.get(file);
    if (mod) return mod;
    const info = this.shaders.get(file);
    mod = this.device.createShaderModule({ code: info.code, label: file });
    this.modules.set(file, mod);
    if (typeof mod.getCompilationInfo === 'function') {
      this.check(
        mod.getCompilationInfo().then((ci) => {
          const errors = ci.messages.filter((m) => m.type === 'error');
          if (errors.length) {
            const text = errors.map((m) => `${info.origin(m.lineNum)}:${m.linePos}: ${m.message}`).join('\n');
            throw new BayesError('SHADER_COMPILE', `WGSL compile error in ${file}:\n${text}`);
          }
        }),
      );
    }
    return mod;
  }

  private pipeline(k: Kernel): Pipeline {
    const constants = k.constants ?? {};
    const keys = Object.keys(constants).sort();
    const key = `${k.shader}:${k.entry}:${keys.map((c) => `${c}=${Number(constants[c])}`).join(',')}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const info = this.shaders.get(k.shader);
    const entry = info.entries.get(k.entry);
    if (!entry) throw new BayesError('SHADER_COMPILE', `${k.shader}: no compute entry point '${k.entry}' (have: ${[...info.entries.keys()].join(', ')})`);
    for (const c of keys) {
      if (!info.overrides.includes(c)) throw new BayesError('SHADER_COMPILE', `${k.shader}: '${c}' is not an override constant (have: ${info.overrides.join(', ')})`);
    }
    const layout = this.device.createBindGroupLayout({
      label: key,
      entries: entry.bindings.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind, hasDynamicOffset: false },
      })),
    });
    const numericConstants: Record<string, number> = {};
    for (const c of keys) numericConstants[c] = Number(constants[c]);
    this.device.pushErrorScope('validation');
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module: this.module(k.shader), entryPoint: k.entry, constants: numericConstants },
    });
    this.check(
      this.device.popErrorScope().then((err) => {
        if (err) throw new BayesError('SHADER_COMPILE', `pipeline ${key}: ${err.message}`);
      }),
    );
    p = { pipeline, layout, entry };
    this.pipelines.set(key, p);
    return p;
  }

  /** Number of compiled pipelines (each variant compiles once). */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  // -------------------------------------------------------------- recording

  private assertUsable(op: string): void {
    if (this.destroyed) throw new BayesError('GPU_ERROR', `${op}: the context was destroyed`);
    if (this.lostError) throw this.lostErrorFor(op);
  }

  // ------------------------------------------------------------ device loss

  /** True once the device is lost (not after `destroy()`): every call then fails; see `lostErrorFor`. */
  get isLost(): boolean {
    return this.lostError !== null;
  }

  private lostErrorFor(op: string): BayesError {
    return new BayesError('GPU_ERROR', `${op}: ${this.lostError}`);
  }

  /** The device is gone: reject what waits on it, drop the recording and the pool (their buffers died with it). */
  private onLost(message: string): void {
    this.lostError = message;
    this.encoder = null;
    this.pass = null;
    this.pending = 0;
    this.arenaUsed = 0;
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.pooledBuffers = 0;
    this.pooledBytes = 0;
    this.rejectWaiters();
  }

  private rejectWaiters(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const reject of waiters) reject();
  }

  /** Why nothing can run any more (`destroy()` or a lost device), naming `op`; null while usable. */
  private deadError(op: string, pending: boolean): BayesError | null {
    if (this.destroyed) return new BayesError('GPU_ERROR', `${op}: the context was destroyed${pending ? ' while the call was pending' : ''}`);
    return this.lostError ? this.lostErrorFor(op) : null;
  }

  /**
   * `p` (a map, a work-done promise), settled at once with the loss's BayesError if the device
   * is lost first. The platform's own rejection is translated the same way when the device turns
   * out to be lost. (A Set of rejecters rather than Promise.race on device.lost, which would keep
   * one reaction per call on that promise for the context's lifetime.)
   */
  private untilLost<T>(op: string, p: Promise<T>): Promise<T> {
    const dead = this.deadError(op, false);
    if (dead) return Promise.reject(dead);
    return new Promise<T>((resolve, reject) => {
      const onLost = () => reject(this.deadError(op, true));
      this.waiters.add(onLost);
      p.then(
        (v) => {
          this.waiters.delete(onLost);
          resolve(v);
        },
        (e: unknown) => {
          this.waiters.delete(onLost);
          this.explainFailure(op, e).then(reject, reject);
        },
      );
    });
  }

  /** A readback that failed: a BayesError naming the loss if the device is (or within LOST_GRACE_MS turns out) lost. */
  private async explainFailure(op: string, e: unknown): Promise<BayesError> {
    if (e instanceof BayesError) return e;
    if (!this.lostError && !this.destroyed) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.lostMessage, new Promise<void>((r) => (timer = setTimeout(r, LOST_GRACE_MS)))]);
      clearTimeout(timer);
    }
    const dead = this.deadError(op, true);
    if (dead) return dead;
    const err = e as { name?: string; message?: string };
    return new BayesError('GPU_ERROR', `${op}: ${err?.name ?? 'Error'}: ${err?.message || String(e)}`);
  }

  private ensureEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'bayesgpu' });
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private recordPassless(fn: (enc: GPUCommandEncoder) => void): void {
    this.assertUsable('record');
    this.endPass();
    fn(this.ensureEncoder());
    this.pending++;
  }

  /** @internal Records one dispatch (the op wrappers' path to the GPU). Validation of tensors happens here, before any GPU work. */
  dispatch(k: Kernel): void {
    const label = k.label ?? `${k.shader}:${k.entry}`;
    this.assertUsable(label);
    const p = this.pipeline(k);
    const entries: GPUBindGroupEntry[] = [];
    for (const name of k.unbound ?? []) {
      if (!p.entry.bindings.some((b) => b.name === name && b.kind !== 'uniform')) throw new BayesError('INVALID_ARGUMENT', `${label}: unbound '${name}' is not a buffer binding of entry '${k.entry}' (have: ${p.entry.bindings.map((b) => b.name).join(', ')})`);
      if (k.bindings[name]) throw new BayesError('INVALID_ARGUMENT', `${label}: '${name}' is both bound and listed as unbound`);
    }
    for (const b of p.entry.bindings) {
      if (b.kind === 'uniform') continue;
      const t = k.bindings[b.name];
      if (!t && k.unbound?.includes(b.name)) {
        entries.push({ binding: b.binding, resource: { buffer: this.placeholder(b.binding) } });
        continue;
      }
      if (!t) throw new BayesError('INVALID_ARGUMENT', `${label}: binding '${b.name}' was not given`);
      this.own(label, b.name, t);
      entries.push({ binding: b.binding, resource: { buffer: t.buffer, offset: 0, size: Math.max(4, t.size * 4) } });
    }
    for (const name of Object.keys(k.bindings)) {
      if (!p.entry.bindings.some((b) => b.name === name)) throw new BayesError('INVALID_ARGUMENT', `${label}: '${name}' is not a binding of entry '${k.entry}' (have: ${p.entry.bindings.map((b) => b.name).join(', ')})`);
    }
    if (p.entry.uniform) {
      const bytes = new Uint8Array(packUniforms(p.entry.uniform, k.uniforms ?? {}, label));
      if (this.arenaUsed + bytes.byteLength > UNIFORM_ARENA_BYTES) this.flush();
      const offset = this.arenaUsed;
      this.arenaData.set(bytes, offset);
      this.arenaUsed = Math.ceil((offset + bytes.byteLength) / this.uniformAlign) * this.uniformAlign;
      const ub = p.entry.bindings.find((b) => b.kind === 'uniform')!;
      entries.push({ binding: ub.binding, resource: { buffer: this.arena, offset, size: bytes.byteLength } });
    }
    const [x, y = 1, z = 1] = k.workgroups;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    for (const [axis, n] of [['x', x], ['y', y], ['z', z]] as const) {
      if (!Number.isInteger(n) || n < 0 || n > maxDim) throw new BayesError('ADAPTER_LIMIT', `${label}: workgroup count ${axis}=${n} is outside 0..${maxDim} (maxComputeWorkgroupsPerDimension)`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries, label });
    if (!this.pass) this.pass = this.ensureEncoder().beginComputePass({ label: 'bayesgpu' });
    this.pass.setPipeline(p.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    this.pending++;
    if (this.pending >= this.maxDispatches) this.flush();
  }

  /** A 16-byte buffer for binding slot `binding` of entries that never touch it (one per slot, so two never alias). */
  private placeholder(binding: number): GPUBuffer {
    let b = this.placeholders.get(binding);
    if (!b) {
      b = this.device.createBuffer({ size: 16, usage: STORAGE_USAGE, label: `bayesgpu placeholder ${binding}` });
      this.placeholders.set(binding, b);
    }
    return b;
  }

  // ------------------------------------------------------------------ tuning

  /**
   * Measures the GEMM variants for every shape class `fn` uses (run it once: e.g. one training
   * step or one prediction), keeps the fastest per class and returns the whole table. With
   * `retune` false (the default) classes that already have a choice are not measured again;
   * `onClass` hears each class's times as they come.
   */
  async tune(fn: () => unknown, opts: { retune?: boolean; onClass?: (key: string, msByVariant: Record<string, number>) => void } = {}): Promise<TuningTable> {
    if (typeof fn !== 'function') throw new BayesError('INVALID_ARGUMENT', `tune: argument 'fn' expected a function that runs the ops to tune, got ${fn === null ? 'null' : typeof fn}`);
    if (opts === null || typeof opts !== 'object' || (opts.retune !== undefined && typeof opts.retune !== 'boolean')) throw new BayesError('INVALID_ARGUMENT', `tune: argument 'opts' expected { retune?: boolean }, got ${JSON.stringify(opts)}`);
    this.assertUsable('tune');
    return this.tuner.tune(fn, async (run) => {
      await this.scope(async () => {
        await run();
      });
      await this.sync();
    }, opts.retune === true, opts.onClass);
  }

  /** The tuning table of this adapter (JSON-ready): ship it and pass it as `gemm.table` to skip tuning. */
  tuningTable(): TuningTable {
    return this.tuner.export();
  }

  /** Adds the choices of a table exported on this same adapter (object or JSON text). */
  importTuning(table: TuningTable | string): void {
    this.tuner.import(table);
  }

  /** @internal times work in isolation for the tuner: everything recorded before is finished first. */
  async timeIt(run: () => void, reps: number): Promise<number> {
    await this.sync();
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      run();
      await this.sync();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  /** Measures shape classes first used since the last sync point (tuning 'auto'). */
  private async tunePending(): Promise<void> {
    if (this.tuning || !this.tuner.hasPending) return;
    this.tuning = true;
    try {
      await this.tuner.runPending();
    } finally {
      this.tuning = false;
    }
  }

  /** Records a buffer copy of `src` into `dst` (same element count). */
  copy(src: Tensor, dst: Tensor): void {
    this.own('copy', 'src', src);
    this.own('copy', 'dst', dst);
    if (src.size !== dst.size) throw new BayesError('SHAPE_MISMATCH', `copy: argument 'dst' expected ${src.size} elements, got ${dst.size}`);
    this.recordPassless((enc) => enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.size * 4));
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder || this.lostError) return;
    this.endPass();
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaData.buffer, 0, this.arenaUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pending = 0;
    this.arenaUsed = 0;
  }

  /** Waits for submitted work and reports any shader or validation error so far. */
  async sync(): Promise<void> {
    this.assertUsable('sync');
    this.flush();
    await this.untilLost('sync', this.device.queue.onSubmittedWorkDone());
    await this.reportErrors('sync');
    await this.tunePending();
  }

  private check(p: Promise<void>): void {
    this.checks.push(p.catch((e) => void this.errors.push(e instanceof BayesError ? e : new BayesError('GPU_ERROR', String(e)))));
  }

  /** Throws the first error recorded since the last report (shader compile errors first: they explain the rest). */
  private async reportErrors(op: string): Promise<void> {
    await Promise.all(this.checks.splice(0));
    if (this.lostError) throw this.lostErrorFor(op);
    if (this.errors.length === 0) return;
    const errors = this.errors.splice(0);
    const first = errors.find((e) => e.code === 'SHADER_COMPILE') ?? errors[0];
    throw errors.length > 1 ? new BayesError(first.code, `${first.message}\n(and ${errors.length - 1} more error(s) caused by it or later)`) : first;
  }

  async read<D extends DType>(t: Tensor<D>): Promise<TypedArrayFor<D>> {
    this.own('read', 'tensor', t);
    return (await this.readback('read', [t]))[0] as TypedArrayFor<D>;
  }

  /** Reads several tensors with one submit and one wait (one staging buffer), in order. */
  async readMany(tensors: readonly Tensor[]): Promise<(Float32Array | Uint32Array | Int32Array)[]> {
    if (!Array.isArray(tensors)) throw new BayesError('INVALID_ARGUMENT', `readMany: argument 'tensors' expected an array of tensors, got ${tensors === null ? 'null' : typeof tensors}`);
    tensors.forEach((t, i) => this.own('readMany', `tensors[${i}]`, t));
    return tensors.length === 0 ? [] : this.readback('readMany', tensors);
  }

  private async readback(op: string, tensors: readonly Tensor[]): Promise<(Float32Array | Uint32Array | Int32Array)[]> {
    this.assertUsable(op);
    const offsets: number[] = [];
    let total = 0;
    for (const t of tensors) {
      offsets.push(total);
      total += t.size * 4;
    }
    const staging = this.device.createBuffer({ size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
    try {
      this.recordPassless((enc) => tensors.forEach((t, i) => enc.copyBufferToBuffer(t.buffer, 0, staging, offsets[i], t.size * 4)));
      this.flush();
      await this.untilLost(op, staging.mapAsync(GPUMapMode.READ));
      const mapped = staging.getMappedRange();
      const results = tensors.map((t, i) => {
        const Typed = t.dtype === 'f32' ? Float32Array : t.dtype === 'u32' ? Uint32Array : Int32Array;
        return new Typed(mapped.slice(offsets[i], offsets[i] + t.size * 4));
      });
      staging.unmap();
      await this.reportErrors(op);
      await this.tunePending();
      return results;
    } finally {
      staging.destroy();
    }
  }

  /** Destroys the device; afterwards every call fails. Node processes then exit normally. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* the device is going away anyway */
    }
    this.destroyed = true;
    this.trimPool();
    this.rejectWaiters();
    for (const b of this.placeholders.values()) b.destroy();
    this.arena.destroy();
    this.device.destroy();
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

function collectTensors(value: unknown, out: Set<Tensor>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (ArrayBuffer.isView(value)) return;
  const items = value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
  for (const v of items) collectTensors(v, out, seen);
}

/** Splits `count` workgroups over x and y so that neither exceeds 65535; shaders rebuild the index with `linear_index` (common.wgsl). */
export function grid(count: number): [number, number] {
  if (count <= 65535) return [Math.max(count, 0), 1];
  const y = Math.ceil(count / 65535);
  return [Math.ceil(count / y), y];
}

export async function createContext(options: ContextOptions = {}): Promise<Context> {
  // Checked before a device is opened: an open device would keep a Node process alive.
  const maxPooled = options.maxPooledBytes;
  if (maxPooled !== undefined && !(typeof maxPooled === 'number' && maxPooled >= 0 && Number.isFinite(maxPooled))) {
    throw new BayesError('INVALID_ARGUMENT', `createContext: argument 'maxPooledBytes' expected a number of bytes >= 0, got ${JSON.stringify(maxPooled)}`);
  }
  const files = options.shaderFiles ?? (await loadShaderFiles());
  const opened = await openDevice(options);
  return new Context(opened.device, opened.adapter, files, options);
}
