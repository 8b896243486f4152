/** A one-line progress bar on stderr (a plain line per update when stderr is not a terminal). */
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
