/**
 * SIGINT and SIGTERM for the CLI. Node runs a signal handler only when the event loop gets control,
 * and fit's loop yields only at its readbacks (the paced progress reports, the validation, the
 * per-epoch save), so a handler cannot stop training by itself: while training runs it only records
 * the signal, and the training callbacks (`check`) stop at the next report, where every recorded
 * step has finished on the GPU, or at the epoch's end when the signal comes during its last steps
 * or its validation; the CLI then saves a resumable checkpoint. Outside training there is
 * nothing unsaved: the run is abandoned at once (`abandoned` settles and main returns). A second
 * signal always abandons the run at once (checkpoint writes are atomic, so no file is ever half
 * written). Exit codes follow the shell's 128 + signal number: 130 for SIGINT, 143 for SIGTERM.
 */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;
const SIGNALS = Object.keys(SIGNAL_EXIT_CODES) as StopSignal[];

/** `process`, or a stand-in EventEmitter in tests. */
export interface SignalSource {
  on(event: StopSignal, listener: (signal: StopSignal) => void): unknown;
  off(event: StopSignal, listener: (signal: StopSignal) => void): unknown;
}

/** Thrown by `check` inside the training loop, and by `abandoned`: the run stops with `exitCode`. */
export class Interrupted extends Error {
  readonly exitCode: number;
  constructor(readonly signal: StopSignal, message: string) {
    super(message);
    this.name = 'Interrupted';
    this.exitCode = SIGNAL_EXIT_CODES[signal];
  }
}

export class Interrupts {
  /** The first signal received, or null. */
  signal: StopSignal | null = null;
  /** True while fit runs: the first signal is recorded for `check`, not acted on at once. */
  deferring = false;
  /** Said when a signal abandons the run at once: what is saved and where (set by the command as it goes). */
  note = 'nothing was saved';
  /** Rejects with Interrupted when the run is to be abandoned at once. */
  readonly abandoned: Promise<never>;
  private abandon!: (e: Interrupted) => void;
  private readonly listener = (signal: StopSignal) => this.received(signal);

  constructor(private readonly source: SignalSource, private readonly log: (line: string) => void, private readonly command: string) {
    this.abandoned = new Promise<never>((_, reject) => (this.abandon = reject));
    this.abandoned.catch(() => undefined); // settled only when someone races it
    for (const s of SIGNALS) source.on(s, this.listener);
  }

  private received(signal: StopSignal): void {
    if (this.signal === null && this.deferring) {
      this.signal = signal;
      this.log(`bayesgpu ${this.command}: ${signal} received: stopping at the next progress report (or the end of this epoch) to save a resumable checkpoint (send it again to exit at once without saving)`);
      return;
    }
    const again = this.signal !== null;
    this.signal = signal;
    this.abandon(new Interrupted(signal, `bayesgpu ${this.command}: ${again ? `second signal (${signal})` : signal}: exited at once; ${this.note}`));
  }

  /** In the training callbacks: throws Interrupted when a signal has been recorded. */
  check(): void {
    if (this.signal !== null) throw new Interrupted(this.signal, `bayesgpu ${this.command}: ${this.signal}`);
  }

  dispose(): void {
    for (const s of SIGNALS) this.source.off(s, this.listener);
  }
}
