/**
 * The command line's option tables: one table per command is the single source of both the
 * parser (node:util parseArgs, then each value's type check) and the `--help` text, so the two
 * cannot drift apart. A value type carries its placeholder (`N`, `FILE`), what it expects (the
 * words of the error message and of the help's type column) and its parse; an option adds its
 * default and meaning.
 */
import { parseArgs } from 'node:util';
import { BayesError } from '../errors.js';

/** How an option's text becomes its value. */
export interface ValueType<T> {
  /** The argument's name in the usage and the help: N, FILE, lrt|bbb. */
  placeholder: string;
  /** What it expects, for the help's type column and the error message ("an integer >= 1"). */
  expected: string;
  /** The value, or undefined when the text is not one (the caller reports `expected`). */
  parse(text: string): T | undefined;
}

export interface OptionSpec<T = unknown> {
  /** A value type, or 'flag' for an option without a value (true when given). */
  type: ValueType<T> | 'flag';
  /** What it does: one sentence or two (wrapped by the help). */
  description: string;
  /** The value when the option is not given. */
  default?: T;
  /** The default as the help shows it, when it is not a plain value (e.g. "softplus for Bayesian"). */
  defaultText?: string;
  /** May be given more than once (the value is then an array). */
  multiple?: boolean;
}

export type OptionTable = Record<string, OptionSpec<any>>;

/** The value type T of an option (read from its `type` only, so that a literal default does not widen it). */
type ValueOf<S> = S extends { type: ValueType<infer T> } ? T : never;

/** The parsed value of each option: flags are booleans, multiple options arrays, others T (or undefined without a default). */
export type OptionValues<O extends OptionTable> = {
  -readonly [K in keyof O]: O[K]['type'] extends 'flag'
    ? boolean
    : O[K] extends { multiple: true }
      ? ValueOf<O[K]>[]
      : O[K] extends { default: infer D }
        ? (undefined extends D ? ValueOf<O[K]> | undefined : ValueOf<O[K]>)
        : ValueOf<O[K]> | undefined;
};

export interface CommandSpec<O extends OptionTable = OptionTable> {
  name: string;
  /** One line, for `bayesgpu --help`. */
  summary: string;
  /** What follows `bayesgpu NAME` in the usage line, e.g. "[options] IMAGE... | FOLDER". */
  usage: string;
  /** A paragraph or two under the usage line. */
  about: string[];
  /** Positional arguments, when the command takes any: their name and meaning. */
  positionals?: { name: string; description: string; min: number };
  options: O;
  /** Example command lines (without the leading `bayesgpu`). */
  examples: string[];
}

/** Declares a command (the identity, for type inference of its option table). */
export function command<O extends OptionTable>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

export function usageError(message: string): BayesError {
  return new BayesError('INVALID_ARGUMENT', message);
}

/** Number(v), except that an empty or blank value is NaN (Number('') is 0). */
export function toNumber(v: string): number {
  return v.trim() === '' ? NaN : Number(v);
}

// ---- value types ----------------------------------------------------------------------------

export function integer(min = 0, placeholder = 'N'): ValueType<number> {
  return {
    placeholder,
    expected: `an integer >= ${min}`,
    parse: (v) => {
      const n = toNumber(v);
      return Number.isInteger(n) && n >= min ? n : undefined;
    },
  };
}

export function number(expected: string, test: (n: number) => boolean = () => true, placeholder = 'X'): ValueType<number> {
  return {
    placeholder,
    expected,
    parse: (v) => {
      const n = toNumber(v);
      return Number.isFinite(n) && test(n) ? n : undefined;
    },
  };
}

export function oneOf<T extends string>(allowed: readonly T[]): ValueType<T> {
  return { placeholder: allowed.join('|'), expected: allowed.join('|'), parse: (v) => (allowed.includes(v as T) ? (v as T) : undefined) };
}

export function path(placeholder = 'FILE', expected = 'a path'): ValueType<string> {
  return { placeholder, expected, parse: (v) => (v.trim() === '' ? undefined : v) };
}

/** Comma-separated numbers, `count` of them, each passing `test`. */
export function numbers(count: number, placeholder: string, expected: string, test: (parts: number[]) => boolean): ValueType<number[]> {
  return {
    placeholder,
    expected,
    parse: (v) => {
      const parts = v.split(',').map(toNumber);
      return parts.length === count && parts.every(Number.isFinite) && test(parts) ? parts : undefined;
    },
  };
}

// ---- parsing --------------------------------------------------------------------------------

/** True when the arguments ask for help (`--help` or `-h` before a `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** The parseArgs configuration of a table: every option takes a value except flags. */
export function parserOptions(options: OptionTable): Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(options)) out[name] = { type: o.type === 'flag' ? 'boolean' : 'string', ...(o.multiple ? { multiple: true } : {}) };
  return out;
}

/**
 * Parses a command's arguments against its table: unknown options and missing values are
 * parseArgs' errors (ERR_PARSE_ARGS_*), a value that is not of its type is a BayesError naming the
 * option, what it expected and what it got.
 */
export function parseCommand<O extends OptionTable>(spec: CommandSpec<O>, argv: string[]): { values: OptionValues<O>; positionals: string[] } {
  const parsed = parseArgs({ args: argv, options: parserOptions(spec.options), strict: true, allowPositionals: spec.positionals !== undefined });
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const given = (parsed.values as Record<string, string | boolean | string[] | undefined>)[name];
    if (o.type === 'flag') {
      values[name] = given === true;
      continue;
    }
    const type = o.type;
    const one = (text: string) => {
      const v = type.parse(text);
      if (v === undefined) throw usageError(`option '--${name}' expected ${type.expected}, got ${JSON.stringify(text)}`);
      return v;
    };
    if (given === undefined) values[name] = o.multiple ? [] : o.default;
    else values[name] = Array.isArray(given) ? given.map(one) : one(given as string);
  }
  const positionals = parsed.positionals;
  if (spec.positionals && positionals.length < spec.positionals.min) {
    throw usageError(`expected ${spec.positionals.name} (at least ${spec.positionals.min}), got none (bayesgpu ${spec.name} --help shows the usage)`);
  }
  return { values: values as OptionValues<O>, positionals };
}

// ---- help -----------------------------------------------------------------------------------

const WIDTH = 100;

/** Words of `text` wrapped to lines of at most `width` characters after `indent` spaces (the first line's indent is the caller's). */
function wrap(text: string, width: number, indent: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width - indent) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function defaultText(o: OptionSpec): string | null {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.type === 'flag' || o.default === undefined) return null;
  return Array.isArray(o.default) ? o.default.join(',') : String(o.default);
}

/** The help of one command: usage line, about, positionals, every option of its table (type, default, meaning), examples. */
export function commandHelp(spec: CommandSpec): string {
  const out = [`usage: bayesgpu ${spec.name} ${spec.usage}`, ''];
  for (const p of spec.about) out.push(...wrap(p, WIDTH, 0), '');
  if (spec.positionals) {
    out.push('arguments:');
    out.push(`  ${spec.positionals.name}`);
    for (const l of wrap(spec.positionals.description, WIDTH, 6)) out.push(`      ${l}`);
    out.push('');
  }
  out.push('options:');
  const rows: [string, OptionSpec][] = [...Object.entries(spec.options), ['help', { type: 'flag', description: `print this help and exit (also -h, and bayesgpu help ${spec.name})` }]];
  for (const [name, o] of rows) {
    const head = o.type === 'flag' ? `--${name}` : `--${name} ${o.type.placeholder}`;
    const type = o.type === 'flag' ? 'flag' : o.type.expected;
    const d = defaultText(o);
    out.push(`  ${head}`);
    for (const l of wrap(o.description, WIDTH, 6)) out.push(`      ${l}`);
    const facts = `type: ${type}${d !== null ? `; default: ${d}` : ''}${o.multiple ? '; repeatable' : ''}`;
    for (const l of wrap(facts, WIDTH, 6)) out.push(`      ${l}`);
  }
  out.push('', 'examples:');
  for (const e of spec.examples) out.push(`  bayesgpu ${spec.name} ${e}`);
  return out.join('\n');
}
