/**
 * bayesgpu command line: the commands (train.ts, eval.ts, predict.ts), their help, and how a
 * failure ends a run.
 *   bayesgpu train   --model lenet --dataset mnist --epochs 3 --out model.safetensors
 *   bayesgpu eval    --checkpoint model.safetensors --dataset mnist --samples 25 [--ood FILE]... [--report report.html] [--json]
 *   bayesgpu predict --checkpoint model.safetensors digit.png photos/ [--json]
 *   bayesgpu help [COMMAND] | bayesgpu COMMAND --help
 *
 * Each command's option table (options.ts) is both its parser and its help. Options and input files
 * are checked before anything slow runs; every failure is one line on stderr naming the option (or
 * file), what it expected and what it got. Exit codes: see EXIT and describeFailure.
 */
import { createContext, type Context } from '../node.js';
import { BayesError, type BayesErrorCode } from '../errors.js';
import { endProgressLine } from './progress.js';
import { Interrupted, Interrupts, type SignalSource } from './interrupt.js';
import type { CommandEnv } from './common.js';
import { type CommandSpec, commandHelp, wantsHelp } from './options.js';
import { TRAIN, train } from './train.js';
import { EVAL, evalCommand } from './eval.js';
import { PREDICT, predictCommand } from './predict.js';

export { interruptPath } from './train.js';

interface Command {
  spec: CommandSpec;
  run(argv: string[], env: CommandEnv): Promise<void>;
  /** What an interrupt that abandons the command at once leaves behind, before the command says more. */
  interruptNote: string;
}

const COMMANDS: readonly Command[] = [
  { spec: TRAIN, run: train, interruptNote: 'training had not started, so nothing was saved' },
  { spec: EVAL, run: evalCommand, interruptNote: 'the evaluation had not finished; nothing was written' },
  { spec: PREDICT, run: predictCommand, interruptNote: 'the prediction had not finished' },
];
const NAMES = COMMANDS.map((c) => c.spec.name);
const namesText = `${NAMES.slice(0, -1).join(', ')} or ${NAMES[NAMES.length - 1]}`;

/**
 * Exit codes: 0 success; 2 a bad command line or a bad input file (unknown command or option, a bad
 * option value, a missing, unreadable or unparsable file, a checkpoint that does not fit); 1 a failure
 * while running (GPU, driver, an unexpected error); 130 / 143 stopped by SIGINT / SIGTERM (train saves
 * a resumable checkpoint first, see interrupt.ts). Errors are one line on stderr, without a stack trace
 * (BAYESGPU_DEBUG=1 adds it for unexpected errors).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
const USAGE_ERRORS: readonly BayesErrorCode[] = ['INVALID_ARGUMENT', 'SHAPE_MISMATCH', 'DATA_NOT_FOUND', 'BAD_FILE', 'CHECKPOINT_MISMATCH'];
// Node's errors for a path the user gave (e.g. --report into a missing folder).
const FILE_ERRORS = ['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EEXIST'];

/** `bayesgpu --help`: the commands, how to get their help, the exit codes. */
export function generalHelp(): string {
  const width = Math.max(...NAMES.map((n) => n.length));
  return [
    'usage: bayesgpu COMMAND [options]',
    '',
    'Bayesian CNNs (Bayes by Backprop, local reparameterization) trained and run on WebGPU.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`),
    `  ${'help'.padEnd(width)}  print the help of a command: bayesgpu help COMMAND (or bayesgpu COMMAND --help)`,
    '',
    'exit codes: 0 done; 1 a failure while running; 2 bad arguments or input files (one line on stderr);',
    '  130 / 143 stopped by SIGINT / SIGTERM',
    '',
    'examples:',
    ...COMMANDS.map((c) => `  bayesgpu ${c.spec.name} ${c.spec.examples[0]}`),
  ].join('\n');
}

/** The help text of a command, or null for an unknown one. */
export function helpOf(name: string): string | null {
  const c = COMMANDS.find((x) => x.spec.name === name);
  return c ? commandHelp(c.spec) : null;
}

/** The option tables of the commands, by name (the help and the parser read them). */
export const COMMAND_SPECS: Readonly<Record<string, CommandSpec>> = Object.fromEntries(COMMANDS.map((c) => [c.spec.name, c.spec]));

/** The one stderr line and the exit code of an error that ended a command. */
export function describeFailure(command: string, e: unknown): { line: string; code: number } {
  const oneLine = (m: string) => m.replace(/\s*\n\s*/g, ' ').trim();
  if (e instanceof Interrupted) return { line: oneLine(e.message), code: e.exitCode };
  const err = e as Error & { code?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  if (e instanceof BayesError) return { line: `bayesgpu ${command}: ${oneLine(e.message)}`, code: USAGE_ERRORS.includes(e.code) ? EXIT.usage : EXIT.failure };
  if (code.startsWith('ERR_PARSE_ARGS_')) return { line: `bayesgpu ${command}: ${oneLine(err.message)} (bayesgpu ${command} --help lists the options)`, code: EXIT.usage };
  if (FILE_ERRORS.includes(code)) return { line: `bayesgpu ${command}: ${oneLine(err.message)}`, code: EXIT.usage };
  const debug = process.env.BAYESGPU_DEBUG === '1' && err?.stack ? `\n${err.stack}` : ' (BAYESGPU_DEBUG=1 prints the stack trace)';
  return { line: `bayesgpu ${command}: unexpected error: ${oneLine(String(err?.message ?? e))}${debug}`, code: EXIT.failure };
}

export interface MainOptions {
  /**
   * Where SIGINT and SIGTERM come from: `process` in the bayesgpu binary (src/cli.ts); a stand-in
   * EventEmitter in tests. Without it the command installs no signal handlers.
   */
  signals?: SignalSource;
  /** Called with the error that ended the command, before its line is printed (tests read its code). */
  onFailure?: (error: unknown) => void;
}

function usageFailure(line: string): number {
  process.stderr.write(`${line}\n`);
  return EXIT.usage;
}

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    console.log(generalHelp());
    return EXIT.ok;
  }
  if (name === 'help') {
    const text = helpOf(rest[0]);
    if (text === null || rest.length > 1) {
      const given = rest.length > 1 ? `${rest.length} arguments ${JSON.stringify(rest)}` : `unknown command ${JSON.stringify(rest[0])}`;
      return usageFailure(`bayesgpu help: expected one command (${namesText}), got ${given}`);
    }
    console.log(text);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (!command) {
    const given = name === undefined ? 'no command given' : `unknown command ${JSON.stringify(name)}`;
    return usageFailure(`bayesgpu: ${given}; expected ${namesText} (bayesgpu --help lists the commands)`);
  }
  if (wantsHelp(rest)) {
    console.log(commandHelp(command.spec));
    return EXIT.ok;
  }
  const say = (line: string) => {
    endProgressLine();
    process.stderr.write(`${line}\n`);
  };
  const interrupts = options.signals ? new Interrupts(options.signals, say, name) : undefined;
  if (interrupts) interrupts.note = command.interruptNote;
  let ctx: Context | null = null;
  let opening: Promise<Context> | null = null;
  const env: CommandEnv = {
    interrupts,
    // Created on first use, so that a command checks its arguments and files before the GPU starts.
    context: () => (opening ??= createContext().then((c) => (ctx = c))),
  };
  try {
    const work = command.run(rest, env);
    if (interrupts) {
      // An abandoned run keeps going until the process exits; its later failures are moot.
      work.catch(() => undefined);
      await Promise.race([work, interrupts.abandoned]);
    } else {
      await work;
    }
    return EXIT.ok;
  } catch (e) {
    options.onFailure?.(e);
    const { line, code } = describeFailure(name, e);
    say(line);
    return code;
  } finally {
    interrupts?.dispose();
    (ctx as Context | null)?.destroy();
  }
}
