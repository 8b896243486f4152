/** A one-line progress bar on stderr (a plain line per update when stderr is not a terminal); the per-epoch figures' formats. */
import type { LayerSigma } from '../train/diagnostics.js';

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** The bar whose line is unfinished on a terminal (a message must start on a new line). */
let openBar: ProgressBar | null = null;

/** Ends an unfinished progress line, so that the next message starts a line of its own. */
export function endProgressLine(): void {
  openBar?.done();
}

export class ProgressBar {
  private readonly tty: boolean;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly width = 24) {
    this.tty = Boolean(stream.isTTY);
  }

  update(label: string, done: number, total: number, fields: Record<string, string>, etaSeconds: number): void {
    const filled = Math.round((done / total) * this.width);
    const bar = '#'.repeat(filled) + '.'.repeat(this.width - filled);
    const text = `${label} [${bar}] ${done}/${total} ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ')}  ETA ${formatSeconds(etaSeconds)}`;
    if (this.tty) {
      this.stream.write(`\r\x1b[K${text}`);
      openBar = this;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** Ends the bar's line (a no-op when it has none open). */
  done(): void {
    if (openBar !== this) return;
    openBar = null;
    this.stream.write('\n');
  }
}

/** A figure of any scale in about 5 significant digits: fixed between 1e-3 and 1e5, else exponential; NaN as 'n/a'. */
export function formatFigure(v: number): string {
  if (Number.isNaN(v)) return 'n/a';
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(3) : v.toPrecision(5);
}

/**
 * The per-epoch sigma line: each Bayesian layer's weight sigma = softplus(rho), mean [min, max]
 * (the bias sigma is in --json); null for a model without a Bayesian layer.
 */
export function formatSigmaLine(sigma: readonly LayerSigma[]): string | null {
  const parts = sigma.filter((l) => l.weight).map((l) => `${l.layer} ${formatFigure(l.weight!.mean)} [${formatFigure(l.weight!.min)}, ${formatFigure(l.weight!.max)}]`);
  return parts.length > 0 ? `  sigma mean [min, max]: ${parts.join('  ')}` : null;
}
