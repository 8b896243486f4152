/**
 * A tensor is a shape, a dtype and a pooled GPU buffer on one Context.
 * It is disposed explicitly (or by the scope that created it); using a
 * disposed tensor, or one from another context, is an error before any GPU work.
 */
import { BayesError } from '../errors.js';
import type { Context } from './context.js';

export type DType = 'f32' | 'u32' | 'i32';

export type TypedArrayFor<D extends DType> = D extends 'f32' ? Float32Array : D extends 'u32' ? Uint32Array : Int32Array;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

let nextId = 1;

export class Tensor<D extends DType = DType> {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: D;
  readonly size: number;
  readonly ctx: Context;
  /** @internal the pooled buffer; its byte size may exceed size * 4. */
  buffer: GPUBuffer;
  private alive = true;

  /** @internal use Context.tensor / Context.zeros / Context.empty. */
  constructor(ctx: Context, shape: readonly number[], dtype: D, buffer: GPUBuffer) {
    this.ctx = ctx;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.buffer = buffer;
  }

  get disposed(): boolean {
    return !this.alive;
  }

  get byteLength(): number {
    return this.size * 4;
  }

  /** Frees the buffer back to the pool. Disposing twice is harmless. */
  dispose(): void {
    if (!this.alive) return;
    this.alive = false;
    this.ctx.release(this);
  }

  /** Reads the values back to the CPU (flushes pending GPU work first). */
  read(): Promise<TypedArrayFor<D>> {
    return this.ctx.read(this);
  }

  /** Same data, another shape with the same element count; shares the buffer (disposing either frees it). */
  reshape(shape: readonly number[]): Tensor<D> {
    this.check('reshape', 'tensor');
    if (sizeOf(shape) !== this.size) {
      throw new BayesError('SHAPE_MISMATCH', `reshape: argument 'shape' expected ${this.size} elements, got [${shape.join(', ')}] (${sizeOf(shape)} elements)`);
    }
    return this.ctx.view(this, shape);
  }

  /** Throws unless the tensor is alive; `op` and `argument` name the call in the message. */
  check(op: string, argument: string): this {
    if (!this.alive) throw new BayesError('DISPOSED_TENSOR', `${op}: argument '${argument}' is a disposed tensor (shape [${this.shape.join(', ')}])`);
    return this;
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}])`;
  }
}
