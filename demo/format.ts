/** Number formatting for the demo's text and tables (the charts are the library's, src/charts). */

/** A short number for labels: 0.0123 -> "0.012", 1.2e-5 -> "1.2e-5". */
export function short(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(1);
  return v.toFixed(digits);
}
