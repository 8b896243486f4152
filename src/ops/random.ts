/**
 * The key of the in-shader counter-based generator (shaders/random.wgsl).
 * A draw is a pure function of (seed, step, stream, element index): the
 * forward and backward passes of a step regenerate the same epsilon, and
 * different steps or streams (one per layer and tensor) never share draws.
 */
import { argumentError, checkInt } from '../errors.js';

export interface RandomKey {
  /** 32-bit seed of the run. */
  seed: number;
  /** Training step (or prediction call) counter. */
  step: number;
  /** Distinguishes tensors drawn in the same step (one per layer and use). */
  stream: number;
  /**
   * Counter index of the first draw (default 0): element i of the call draws at
   * index offset + i. A pass that runs Monte Carlo samples s0, s0 + 1, ... sets it
   * to s0 times one sample's draws, so that it draws exactly what those samples of
   * one larger batched pass draw (Pass.sampleOffset). Used by sampleWeights, the
   * LRT ops and dropout.
   */
  offset?: number;
}

/** Checks a key and returns the uniform values `key: vec2<u32>, stream: u32` shaders expect. */
export function keyUniforms(op: string, key: RandomKey): { key: [number, number]; stream: number } {
  if (key === null || typeof key !== 'object') throw argumentError(op, 'key', '{ seed, step, stream }', key);
  for (const field of ['seed', 'step', 'stream'] as const) {
    checkInt(op, `key.${field}`, key[field], 0);
    // Values are 32-bit in the shader: a larger one would silently wrap onto another stream.
    if (key[field] > 0xffffffff) throw argumentError(op, `key.${field}`, 'an integer <= 2^32 - 1', key[field]);
  }
  return { key: [key.seed >>> 0, key.step >>> 0], stream: key.stream >>> 0 };
}

/** The key's index offset (0 when absent), checked so that offset + draws indices fit the 32-bit counter. */
export function keyOffset(op: string, key: RandomKey, draws: number): number {
  const offset = key.offset ?? 0;
  checkInt(op, 'key.offset', offset, 0);
  if (offset + draws > 2 ** 32) throw argumentError(op, 'key.offset', `at most ${2 ** 32 - draws} (offset + ${draws} draws must fit the 32-bit counter)`, offset);
  return offset;
}
