/**
 * The host-side random number generator of the data pipeline: shuffling,
 * train/validation splits and augmentation. (Randomness on the GPU is Philox in
 * shaders/random.wgsl; this one never leaves the CPU.)
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna, "Scrambled linear pseudorandom
 * number generators", 2021; reference C at https://prng.di.unimi.it/xoshiro128starstar.c),
 * 128 bits of state, period 2^128 - 1. Its state is filled from the seed with
 * SplitMix64, as the authors recommend, so seed s gives the same stream in any
 * language that follows the reference code.
 */
import { argumentError, checkInt } from '../errors.js';

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 (Steele, Lea & Flood 2014): one 64-bit output per call, state advanced in `box`. */
function splitMix64(box: { x: bigint }): bigint {
  box.x = (box.x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = box.x;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed`: an integer 0 <= seed <= 2^53 - 1. */
  constructor(seed: number) {
    checkInt('Rng', 'seed', seed, 0);
    if (!Number.isSafeInteger(seed)) throw argumentError('Rng', 'seed', 'an integer <= 2^53 - 1', seed);
    const box = { x: BigInt(seed) };
    const a = splitMix64(box);
    const b = splitMix64(box);
    this.s0 = Number(a & 0xffffffffn) >>> 0;
    this.s1 = Number(a >> 32n) >>> 0;
    this.s2 = Number(b & 0xffffffffn) >>> 0;
    this.s3 = Number(b >> 32n) >>> 0;
    // An all-zero state would only ever produce zeros; SplitMix64 never gives two zero outputs in a row, but be explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator started from a raw xoshiro128** state (four uint32, not all zero): for test vectors. */
  static fromState(state: readonly [number, number, number, number]): Rng {
    const rng = new Rng(0);
    if (state.every((v) => v >>> 0 === 0)) throw argumentError('Rng.fromState', 'state', 'four uint32 not all zero', state);
    [rng.s0, rng.s1, rng.s2, rng.s3] = state.map((v) => v >>> 0);
    return rng;
  }

  /** The next uint32 of the stream. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * A standard normal draw by Box-Muller (Box & Muller 1958), from two uniforms; 1 - u keeps the
   * logarithm's argument in (0, 1]. One draw per call (the pair's sine half is not kept).
   */
  normal(): number {
    const u = this.nextFloat();
    const v = this.nextFloat();
    return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n), 1 <= n <= 2^32, without modulo bias (rejects the short last block). */
  nextInt(n: number): number {
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Accepts a seed or a generator; a seed starts a fresh generator. */
export function toRng(op: string, seedOrRng: number | Rng): Rng {
  if (seedOrRng instanceof Rng) return seedOrRng;
  if (typeof seedOrRng !== 'number' || !Number.isSafeInteger(seedOrRng) || seedOrRng < 0) {
    throw argumentError(op, 'seed', 'an integer 0 <= seed <= 2^53 - 1 or an Rng', seedOrRng);
  }
  return new Rng(seedOrRng);
}
