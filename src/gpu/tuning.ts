/**
 * Kernel variants chosen by measurement: the GEMM core (shaders/gemm.wgsl) has several tilings,
 * and which is fastest depends on the adapter, the op and the shape. A `Tuner` holds one choice
 * per (op, shape class) for one adapter:
 *
 * - a forced variant (context option `gemm.variant`, for tests and for users who know best);
 * - else the tuning table (measured on first use, by `ctx.tune(...)`, imported as JSON, or shipped
 *   in gemm_tables.ts for adapters measured here);
 * - else a stated default until a measurement exists.
 *
 * With tuning 'auto' a class seen for the first time runs the default and is measured at the
 * next `ctx.sync()` / `ctx.read()` (after the work that was waiting is done); later calls use
 * the winner. The table is plain JSON, so a web app can ship it for the adapters it knows.
 */
import { BayesError } from '../errors.js';
import { type AdapterDescription } from './device.js';
import { GEMM_VARIANTS, type GemmVariant } from './gemm_variants.js';
import { SHIPPED_TABLES, TUNING_FORMAT, TUNING_VERSION, type TuningTable } from './gemm_tables.js';

export { TUNING_FORMAT, TUNING_VERSION, type TuningTable };

export type TuningMode = 'auto' | 'off';

export interface GemmOptions {
  /** One variant for every GEMM op, or one per op name (e.g. { conv2d_forward: 'registers-8x8' }). */
  variant?: string | Readonly<Record<string, string>>;
  /**
   * 'auto': measure a shape class on first use; 'off': use the table or the default. Default: 'auto'
   * on GPUs, 'off' on software adapters (where tables shipped for them apply).
   */
  tuning?: TuningMode;
  /** A table exported by `ctx.tuningTable()` on the same adapter (an object or its JSON text). */
  table?: TuningTable | string;
}

/** The adapter as a tuning table names it: vendor / architecture / device / description (fallback). */
export function adapterId(a: AdapterDescription): string {
  const parts = [a.vendor || 'unknown vendor', a.architecture, a.device, a.description].filter((s) => s);
  return `${parts.join(' / ')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
}

/** The size classes a tuning choice is shared by: powers of two of M, N, K and the batch count. */
export interface GemmProblem {
  m: number;
  n: number;
  k: number;
  batches: number;
}

const bucket = (v: number) => Math.ceil(Math.log2(Math.max(1, v)));

export function shapeClass(op: string, p: GemmProblem): string {
  return `${op}|m${bucket(p.m)}|n${bucket(p.n)}|k${bucket(p.k)}|z${bucket(p.batches)}`;
}

const variantNames = () => GEMM_VARIANTS.map((v) => v.name).join(', ');

function variantNamed(name: unknown, where: string): GemmVariant {
  const v = GEMM_VARIANTS.find((x) => x.name === name);
  if (!v) throw new BayesError('INVALID_ARGUMENT', `${where} expected a GEMM variant name (${variantNames()}), got ${JSON.stringify(name)}`);
  return v;
}

/** Validates a table (object or JSON text) for `adapter`; throws naming what is wrong. */
export function parseTuningTable(input: unknown, adapter: string, where: string): TuningTable {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw new BayesError('INVALID_ARGUMENT', `${where}: expected the JSON text of a tuning table, got text that does not parse (${(e as Error).message})`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BayesError('INVALID_ARGUMENT', `${where}: expected a tuning table object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  const t = value as Record<string, unknown>;
  if (t.format !== TUNING_FORMAT) throw new BayesError('INVALID_ARGUMENT', `${where}: expected format '${TUNING_FORMAT}', got ${JSON.stringify(t.format)}`);
  if (t.version !== TUNING_VERSION) throw new BayesError('INVALID_ARGUMENT', `${where}: expected version ${TUNING_VERSION}, got ${JSON.stringify(t.version)}`);
  if (typeof t.adapter !== 'string') throw new BayesError('INVALID_ARGUMENT', `${where}: expected 'adapter' to be a string, got ${JSON.stringify(t.adapter)}`);
  if (t.adapter !== adapter) throw new BayesError('WRONG_DEVICE', `${where}: the table was measured on '${t.adapter}', not on this adapter '${adapter}'; tune here with ctx.tune() instead`);
  if (t.choices === null || typeof t.choices !== 'object' || Array.isArray(t.choices)) throw new BayesError('INVALID_ARGUMENT', `${where}: expected 'choices' to be an object of shape class -> variant name, got ${JSON.stringify(t.choices)}`);
  const choices: Record<string, string> = {};
  for (const [key, name] of Object.entries(t.choices as Record<string, unknown>)) {
    if (!/^[a-z0-9_]+\|m\d+\|n\d+\|k\d+\|z\d+$/.test(key)) throw new BayesError('INVALID_ARGUMENT', `${where}: expected shape class keys like 'conv2d_forward|m4|n10|k5|z8', got ${JSON.stringify(key)}`);
    choices[key] = variantNamed(name, `${where}: entry choices['${key}']`).name;
  }
  return { format: TUNING_FORMAT, version: TUNING_VERSION, adapter, choices, ...(t.times && typeof t.times === 'object' ? { times: t.times as TuningTable['times'] } : {}) };
}

/** Measures the candidates of one shape class; resolves to median ms by variant name. */
export type Measure = (variants: readonly GemmVariant[]) => Promise<Record<string, number>>;

export class Tuner {
  readonly adapter: string;
  readonly mode: TuningMode;
  private readonly fallback: boolean;
  private forced: { all: GemmVariant | null; byOp: Map<string, GemmVariant> };
  private readonly choices = new Map<string, string>();
  private readonly times = new Map<string, Record<string, number>>();
  private readonly pending = new Map<string, Measure>();
  /** Shape classes seen while `ctx.tune(fn)` runs fn. */
  private collecting: Map<string, Measure> | null = null;

  constructor(adapter: AdapterDescription, options: GemmOptions = {}) {
    const where = 'createContext';
    if (options === null || typeof options !== 'object') throw new BayesError('INVALID_ARGUMENT', `${where}: argument 'gemm' expected an object { variant, tuning, table }, got ${JSON.stringify(options)}`);
    this.adapter = adapterId(adapter);
    this.fallback = adapter.isFallbackAdapter || /swiftshader/i.test(this.adapter);
    // A software adapter (SwiftShader) runs a GEMM in tens of milliseconds to seconds, so timing
    // every variant at first use would stall the first step for minutes: there the shipped table
    // (measured on it) or the default applies unless tuning is asked for ('auto' or ctx.tune).
    const mode = options.tuning ?? (this.fallback ? 'off' : 'auto');
    if (mode !== 'auto' && mode !== 'off') throw new BayesError('INVALID_ARGUMENT', `${where}: argument 'gemm.tuning' expected 'auto' or 'off', got ${JSON.stringify(mode)}`);
    this.mode = mode;
    this.forced = { all: null, byOp: new Map() };
    if (typeof options.variant === 'string') this.forced.all = variantNamed(options.variant, `${where}: argument 'gemm.variant'`);
    else if (options.variant !== undefined) {
      if (options.variant === null || typeof options.variant !== 'object') throw new BayesError('INVALID_ARGUMENT', `${where}: argument 'gemm.variant' expected a variant name or an object of op -> variant name, got ${JSON.stringify(options.variant)}`);
      for (const [op, name] of Object.entries(options.variant)) this.forced.byOp.set(op, variantNamed(name, `${where}: argument 'gemm.variant.${op}'`));
    }
    const shipped = SHIPPED_TABLES.find((t) => t.adapter === this.adapter);
    if (shipped) this.load(shipped);
    if (options.table !== undefined) this.load(parseTuningTable(options.table, this.adapter, `${where}: argument 'gemm.table'`));
  }

  private load(table: TuningTable): void {
    for (const [k, v] of Object.entries(table.choices)) this.choices.set(k, v);
    for (const [k, v] of Object.entries(table.times ?? {})) this.times.set(k, v);
  }

  /** Replaces choices from a table of this adapter (object or JSON); throws before changing anything. */
  import(table: TuningTable | string): void {
    this.load(parseTuningTable(table, this.adapter, 'importTuning'));
  }

  /** The table as JSON-ready data: every measured or imported choice. */
  export(): TuningTable {
    const choices: Record<string, string> = {};
    for (const k of [...this.choices.keys()].sort()) choices[k] = this.choices.get(k)!;
    const times: Record<string, Record<string, number>> = {};
    for (const k of [...this.times.keys()].sort()) times[k] = this.times.get(k)!;
    return { format: TUNING_FORMAT, version: TUNING_VERSION, adapter: this.adapter, choices, times };
  }

  /** @internal forces one variant for every op until called again with null (bench/compare/ceiling.ts). */
  forceAll(name: string | null): void {
    this.forced.all = name === null ? null : variantNamed(name, 'forceAll: argument \'name\'');
  }

  /**
   * The variant for `op` on problem `p`. `measure` times candidates in isolation when a
   * measurement is wanted (first use under 'auto', or inside ctx.tune).
   */
  choose(op: string, p: GemmProblem, measure: Measure): GemmVariant {
    const forced = this.forced.byOp.get(op) ?? this.forced.all;
    if (forced) return forced;
    const key = shapeClass(op, p);
    if (this.collecting && !this.collecting.has(key)) this.collecting.set(key, measure);
    const chosen = this.choices.get(key);
    if (chosen) return variantNamed(chosen, 'tuning table:');
    if (this.mode === 'auto' && !this.pending.has(key)) this.pending.set(key, measure);
    return this.defaultVariant(p);
  }

  /**
   * Before any measurement: on a software adapter the barrier-free register tiles (8 x 8, or
   * 4 wide along a dimension of at most 4, where a second block would be pure padding); on a GPU
   * the workgroup-memory tiling. Measurement replaces this as soon as it exists.
   */
  defaultVariant(p: GemmProblem): GemmVariant {
    if (!this.fallback) return variantNamed(p.m <= 16 || p.n <= 16 ? 'workgroup-32x32' : 'workgroup-64x64', 'default:');
    return variantNamed(`registers-${p.m <= 4 ? 4 : 8}x${p.n <= 4 ? 4 : 8}`, 'default:');
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Measures the classes waiting since their first use (called by the context at sync points). */
  async runPending(): Promise<void> {
    const work = [...this.pending.entries()];
    this.pending.clear();
    for (const [key, measure] of work) await this.measureClass(key, measure);
  }

  private async measureClass(key: string, measure: Measure): Promise<void> {
    const times = await measure(GEMM_VARIANTS);
    let best = '';
    for (const [name, ms] of Object.entries(times)) if (Number.isFinite(ms) && (best === '' || ms < times[best])) best = name;
    if (best) {
      this.choices.set(key, best);
      this.times.set(key, times);
    }
  }

  /**
   * Runs `fn` (which records the GEMM ops to tune, e.g. one training step) and measures every
   * shape class it used; with `retune` false, only those without a choice yet.
   */
  async tune(fn: () => unknown, run: (fn: () => unknown) => Promise<void>, retune: boolean, onClass?: (key: string, times: Record<string, number>) => void): Promise<TuningTable> {
    this.collecting = new Map();
    let seen: Map<string, Measure>;
    try {
      await run(fn);
    } finally {
      seen = this.collecting;
      this.collecting = null;
    }
    for (const [key, measure] of seen) {
      this.pending.delete(key);
      if (retune || !this.choices.has(key)) {
        await this.measureClass(key, measure);
        onClass?.(key, this.times.get(key) ?? {});
      }
    }
    return this.export();
  }
}
