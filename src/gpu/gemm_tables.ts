/**
 * Tuning tables measured on adapters this project has run on (`ctx.tune()`, then
 * `ctx.tuningTable()`), so those adapters skip first-use tuning. Regenerate with
 * `node bench/run.mjs tune --write`.
 */
import type { TuningTable } from './tuning.js';

export const SHIPPED_TABLES: readonly TuningTable[] = [];
