/**
 * The implementations a case runs on: bayesgpu (ours) and the peers, TensorFlow.js 4.22 on
 * its WebGPU backend (on bayesgpu's own GPUDevice, so both share one adapter and queue) and
 * on its CPU backend (plain JavaScript).
 *
 * Each library gets its own native layout: NCHW and [Cout, Cin, KH, KW] for bayesgpu, NHWC
 * and [KH, KW, Cin, Cout] for tfjs. The mathematical operation and its FLOPs are the same.
 *
 *   op                     bayesgpu                                    tfjs
 *   conv2d.forward         conv2dForward(x, w, null)                   tf.conv2d
 *   conv2d.backwardInput   conv2dBackward(..., { input: true })        kernel Conv2DBackpropInput (tf.conv2dTranspose's)
 *   conv2d.backwardWeight  conv2dBackward(..., {})  (dw only)          kernel Conv2DBackpropFilter
 *   matmul                 matmul(x, w, { transposeB: true })          tf.matMul(x, w, false, true)
 *
 * bayesgpu's conv2dBackward computes dw whenever it runs. Unless it returns dw = null for
 * need.weight === false (probed once, see `oursBackwardInputOnly`), the backward-to-input case
 * is reported as 'conv2d.backwardInput+Weight': bayesgpu runs dx and dw, the peers run both of
 * their kernels in the same timed run, and the FLOPs are those of two convolutions.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Context, Tensor } from '../../src/node.js';
import { conv2dBackward, conv2dForward } from '../../src/ops/conv2d.js';
import { matmul } from '../../src/ops/linear.js';
import type { Case, ConvLayer, DenseLayer } from './cases.js';
import type { GpuWork } from './timing.js';

export const PEERS = ['tfjs-webgpu', 'tfjs-cpu'] as const;
export type PeerName = (typeof PEERS)[number];
export type ImplementationName = 'ours' | PeerName;

/** One prepared case on one implementation: `gpu` work is timed by GpuTimer, `cpu` work by wall time. */
export type Runner =
  | { kind: 'gpu'; work: GpuWork; activate?: () => Promise<void>; dispose: () => void }
  | { kind: 'cpu'; run: () => Promise<void>; activate?: () => Promise<void>; dispose: () => void };

/** Deterministic values in [lo, hi) (an LCG: the numbers only need to be finite and varied). */
export function uniformData(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = lo + ((hi - lo) * s) / 4294967296;
  }
  return data;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

// ------------------------------------------------------------------ bayesgpu

/**
 * True when conv2dBackward can compute dx without dw: it returns dw = null for
 * need.weight === false. Today's signature always computes dw, and the bench then times
 * dx and dw together (see the file comment).
 */
export async function oursBackwardInputOnly(ctx: Context): Promise<boolean> {
  return ctx.scope(async () => {
    const x = ctx.tensor(uniformData(16, 1), [1, 1, 4, 4]);
    const w = ctx.tensor(uniformData(4, 2), [1, 1, 2, 2]);
    const dy = ctx.tensor(uniformData(9, 3), [1, 1, 3, 3]);
    const g = conv2dBackward(dy, x, w, { needInput: true, needBias: false });
    await ctx.sync();
    return g.dWeight === null;
  });
}

function oursRunner(ctx: Context, c: Case, backwardInputOnly: boolean): Runner {
  const tensors: Tensor[] = [];
  const make = (shape: number[], seed: number, scale = 1) => {
    const t = ctx.keep(ctx.tensor(uniformData(count(shape), seed, -scale, scale), shape));
    tensors.push(t);
    return t;
  };
  let op: () => void;
  if (c.layer.kind === 'dense') {
    const l: DenseLayer = c.layer;
    const x = make([c.batch, l.inFeatures], 1);
    const w = make([l.outFeatures, l.inFeatures], 2, 0.1);
    op = () => void matmul(x, w, { transposeB: true });
  } else {
    const l: ConvLayer = c.layer;
    const opts = { stride: l.stride, padding: l.padding };
    const x = make([c.batch, l.cin, l.height, l.width], 1);
    const w = make([l.cout, l.cin, ...l.kernel], 2, 0.1);
    const dy = make([c.batch, l.cout, l.outH, l.outW], 3);
    if (c.op === 'conv2d.forward') op = () => void conv2dForward(x, w, null, opts);
    else if (c.op === 'conv2d.backwardWeight') op = () => void conv2dBackward(dy, x, w, { ...opts });
    else {
      op = () => void conv2dBackward(dy, x, w, { ...opts, needInput: true, needBias: false });
    }
  }
  return {
    kind: 'gpu',
    // Outputs are freed as soon as they are recorded: recorded work runs in order, so a pooled buffer's next user comes after it.
    work: { record: () => ctx.scope(op), submit: () => ctx.flush() },
    dispose: () => tensors.forEach((t) => t.dispose()),
  };
}

// ------------------------------------------------------------------ tfjs

let webgpuBackend: WebGPUBackend | null = null;

/**
 * Registers tfjs-backend-webgpu as the 'webgpu' backend on `device` (bayesgpu's). Its
 * constructor checks `navigator.gpu`, which Node 20 lacks: `gpu` (Dawn's GPU object) is set there.
 */
export async function setupTfjs(device: GPUDevice, gpu: GPU | null, peers: readonly PeerName[]): Promise<void> {
  if (peers.includes('tfjs-webgpu')) {
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    if (!g.navigator!.gpu) Object.defineProperty(g.navigator!, 'gpu', { value: gpu ?? {}, configurable: true });
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => (webgpuBackend = new WebGPUBackend(device)), 3);
    // Every dispatch of a run stays in one command buffer until submitQueue(), so that the timestamps bracket all of it.
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 1 << 20);
    if (!(await tf.setBackend('webgpu'))) throw new Error('bench: tfjs could not initialise its webgpu backend on bayesgpu\'s device');
  }
  if (peers.includes('tfjs-cpu') && !(await tf.setBackend('cpu'))) throw new Error('bench: tfjs could not initialise its cpu backend');
}

export function tfjsVersion(): string {
  return tf.version_core;
}

/** Frees tfjs's backends (their GPU buffers) before bayesgpu destroys the device. */
export function teardownTfjs(): void {
  for (const name of ['webgpu', 'cpu']) if (tf.findBackend(name)) tf.removeBackend(name);
  webgpuBackend = null;
}

type TfPad = 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
const tfPad = (l: ConvLayer): TfPad => {
  const [ph, pw] = l.padding;
  if (ph === 0 && pw === 0) return 'valid';
  return ph === pw ? ph : [[0, 0], [ph, ph], [pw, pw], [0, 0]];
};

function tfjsOp(c: Case, made: tf.Tensor[], backwardInputOnly: boolean): () => tf.Tensor[] {
  const make = (shape: number[], seed: number, scale = 1) => {
    const t = tf.tensor(uniformData(count(shape), seed, -scale, scale), shape, 'float32');
    made.push(t);
    return t;
  };
  if (c.layer.kind === 'dense') {
    const l = c.layer;
    const x = make([c.batch, l.inFeatures], 1) as tf.Tensor2D;
    const w = make([l.outFeatures, l.inFeatures], 2, 0.1) as tf.Tensor2D;
    return () => [tf.matMul(x, w, false, true)];
  }
  const l = c.layer;
  const x = make([c.batch, l.height, l.width, l.cin], 1) as tf.Tensor4D;
  const filter = make([...l.kernel, l.cin, l.cout], 2, 0.1) as tf.Tensor4D;
  const dy = make([c.batch, l.outH, l.outW, l.cout], 3) as tf.Tensor4D;
  const attrs = { strides: l.stride, pad: tfPad(l), dataFormat: 'NHWC' as const };
  const backpropInput = () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: [c.batch, l.height, l.width, l.cin] }) as tf.Tensor;
  const backpropFilter = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [...l.kernel, l.cin, l.cout] }) as tf.Tensor;
  switch (c.op) {
    case 'conv2d.forward':
      return () => [tf.conv2d(x, filter, l.stride, tfPad(l) as 'valid', 'NHWC')];
    case 'conv2d.backwardWeight':
      return () => [backpropFilter()];
    default:
      return backwardInputOnly ? () => [backpropInput()] : () => [backpropInput(), backpropFilter()];
  }
}

/** Prepares `c` on tfjs's `backend`; inputs are created on that backend. */
async function tfjsRunner(peer: PeerName, c: Case, backwardInputOnly: boolean): Promise<Runner> {
  const backend = peer === 'tfjs-webgpu' ? 'webgpu' : 'cpu';
  const activate = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  await activate();
  const made: tf.Tensor[] = [];
  const op = tfjsOp(c, made, backwardInputOnly);
  let outputs: tf.Tensor[] = [];
  const dispose = () => made.forEach((t) => t.dispose());
  if (peer === 'tfjs-cpu') {
    return {
      kind: 'cpu', activate, dispose,
      run: async () => {
        const out = op();
        await Promise.all(out.map((t) => t.data()));
        out.forEach((t) => t.dispose());
      },
    };
  }
  return {
    kind: 'gpu', activate, dispose,
    work: {
      record: () => void (outputs = op()),
      submit: () => {
        // What tfjs does before its own submits: close the open compute pass, then submit the encoder.
        webgpuBackend!.endComputePassEncoder();
        webgpuBackend!.ensureCommandEncoderReady();
        webgpuBackend!.submitQueue();
      },
      cleanup: () => outputs.forEach((t) => t.dispose()),
    },
  };
}

export async function prepare(impl: ImplementationName, ctx: Context, c: Case, backwardInputOnly: boolean): Promise<Runner> {
  return impl === 'ours' ? oursRunner(ctx, c, backwardInputOnly) : tfjsRunner(impl, c, backwardInputOnly);
}
