/**
 * The one error class of bayesgpu. Every message names the operation, the
 * argument, what was expected and what was given, so a caller can fix the
 * call without reading the library's source.
 */
export type BayesErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SHAPE_MISMATCH'
  | 'DISPOSED_TENSOR'
  | 'WRONG_DEVICE'
  | 'NO_WEBGPU'
  | 'ADAPTER_LIMIT'
  | 'SHADER_COMPILE'
  | 'GPU_ERROR'
  | 'DATA_NOT_FOUND'
  | 'BAD_FILE'
  | 'CHECKPOINT_MISMATCH'
  | 'NON_FINITE';

export class BayesError extends Error {
  readonly code: BayesErrorCode;
  constructor(code: BayesErrorCode, message: string) {
    super(message);
    this.name = 'BayesError';
    this.code = code;
  }
}

function show(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? name : JSON.stringify(value);
  }
  return String(value);
}

/** `op: argument 'name' expected E, got G`. */
export function argumentError(op: string, argument: string, expected: string, given: unknown): BayesError {
  return new BayesError('INVALID_ARGUMENT', `${op}: argument '${argument}' expected ${expected}, got ${show(given)}`);
}

export function shapeError(op: string, argument: string, expected: string, given: readonly number[]): BayesError {
  return new BayesError('SHAPE_MISMATCH', `${op}: argument '${argument}' expected shape ${expected}, got [${given.join(', ')}]`);
}

/** A whole number >= min (sizes, strides, paddings, dilations, counts). */
export function checkInt(op: string, argument: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw argumentError(op, argument, `an integer >= ${min}`, value);
  }
  return value;
}

export function checkNumber(op: string, argument: string, value: unknown, test: (v: number) => boolean = Number.isFinite, expected = 'a finite number'): number {
  if (typeof value !== 'number' || !test(value)) throw argumentError(op, argument, expected, value);
  return value;
}

export function checkOneOf<T extends string>(op: string, argument: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw argumentError(op, argument, `one of ${allowed.map((a) => `'${a}'`).join(' | ')}`, value);
  return value as T;
}

/** Accepts `n` or `[a, b]` and returns the pair; each entry is checked with checkInt. */
export function pair(op: string, argument: string, value: number | readonly number[] | undefined, fallback: number, min = 0): [number, number] {
  const v = value ?? fallback;
  if (typeof v === 'number') {
    checkInt(op, argument, v, min);
    return [v, v];
  }
  if (!Array.isArray(v) || v.length !== 2) throw argumentError(op, argument, 'an integer or a pair [h, w]', v);
  return [checkInt(op, `${argument}[0]`, v[0], min), checkInt(op, `${argument}[1]`, v[1], min)];
}
