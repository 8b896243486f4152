/**
 * Tuning tables measured on adapters this project has run on (`ctx.tune()`, then
 * `ctx.tuningTable()`), so those adapters skip first-use tuning. Regenerate with
 * `node bench/run.mjs tune --write`.
 */
export const TUNING_FORMAT = 'bayesgpu-gemm-tuning';
export const TUNING_VERSION = 1;

export interface TuningTable {
  format: typeof TUNING_FORMAT;
  version: typeof TUNING_VERSION;
  /** The adapter the times were measured on (`adapterId`); a table is never applied to another. */
  adapter: string;
  /** Winning variant name by shape class key (`op|m..|n..|k..|z..`). */
  choices: Record<string, string>;
  /** Median milliseconds of each variant measured, by shape class key (informative). */
  times?: Record<string, Record<string, number>>;
}

export const SHIPPED_TABLES: readonly TuningTable[] = [];
