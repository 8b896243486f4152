/**
 * `--help` for every command, from the built binary: usage, every option the parser accepts with
 * its type and default, examples; stdout, exit 0. The option tables are the parser's and the
 * help's one source, so the test also checks the other way: every option the help names is one
 * the parser accepts.
 */
import { describe, expect, it } from 'vitest';
import { COMMAND_SPECS, generalHelp, helpOf } from '../../src/cli/main.js';
import { parseCommand, parserOptions } from '../../src/cli/options.js';
import { cli, runBuilt } from './run_cli.js';

const COMMANDS = Object.keys(COMMAND_SPECS);

/** The `--name` of every option the help lists (the lines of its options section that start one). */
function helpOptions(text: string): string[] {
  const section = text.slice(text.indexOf('\noptions:\n'), text.indexOf('\nexamples:\n'));
  return [...section.matchAll(/^ {2}--([a-z][a-z-]*)/gm)].map((m) => m[1]);
}

describe('bayesgpu --help', () => {
  it('has train, eval and predict', () => expect(COMMANDS).toEqual(['train', 'eval', 'predict']));

  it('bayesgpu --help, -h and help list every command with its summary, on stdout, exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const run = await runBuilt(args);
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stderr).toBe('');
      expect(run.stdout.trimEnd()).toBe(generalHelp());
      for (const name of COMMANDS) expect(run.stdout).toMatch(new RegExp(`^ {2}${name} +${COMMAND_SPECS[name].summary.replace(/[()]/g, '\\$&')}$`, 'm'));
    }
  });

  for (const name of ['train', 'eval', 'predict']) {
    it(`${name} --help, -h and 'help ${name}': usage, each option with type, default and meaning, examples`, async () => {
      const spec = COMMAND_SPECS[name];
      const want = helpOf(name)!;
      for (const args of [[name, '--help'], [name, '-h'], ['help', name], [name, '--checkpoint', 'x', '--help']]) {
        const run = await runBuilt(args);
        expect(run.code, args.join(' ')).toBe(0);
        expect(run.stderr, args.join(' ')).toBe('');
        expect(run.stdout.trimEnd()).toBe(want);
      }
      expect(want).toMatch(new RegExp(`^usage: bayesgpu ${name} `));
      expect(want).toMatch(/\nexamples:\n {2}bayesgpu /);
      // Every option the parser accepts is in the help, with its placeholder, type and default.
      const listed = helpOptions(want);
      expect(listed).toEqual([...Object.keys(parserOptions(spec.options)), 'help']);
      for (const [option, o] of Object.entries(spec.options)) {
        const at = want.indexOf(`\n  --${option}`);
        const block = want.slice(at + 1, want.indexOf('\n  --', at + 1));
        if (o.type === 'flag') {
          expect(block, option).toMatch(new RegExp(`^ {2}--${option}\\n`));
          expect(block, option).toContain('type: flag');
        } else {
          expect(block, option).toContain(`--${option} ${o.type.placeholder}`);
          expect(block.replace(/\s+/g, ' '), option).toContain(`type: ${o.type.expected}`);
        }
        const shown = o.defaultText ?? (o.default === undefined ? null : String(o.default));
        if (shown !== null) expect(block.replace(/\s+/g, ' '), option).toContain(`default: ${shown}`);
        expect(block.replace(/\s+/g, ' '), option).toContain(o.description.split(/\s+/).slice(0, 4).join(' '));
      }
      // And the other way: every option the help names is one the parser knows (an unknown one
      // would be parseArgs' ERR_PARSE_ARGS_UNKNOWN_OPTION, whatever its value).
      for (const option of listed.filter((o) => o !== 'help')) {
        const o = spec.options[option];
        const args = o.type === 'flag' ? [`--${option}`] : [`--${option}`, o.type.placeholder.split('|')[0]];
        try {
          parseCommand(spec, [...args, ...(spec.positionals ? ['image.png'] : [])]);
        } catch (e) {
          expect((e as { code?: string }).code, `${name} ${args.join(' ')}: ${(e as Error).message}`).not.toMatch(/^ERR_PARSE_ARGS/);
        }
      }
    });
  }

  it('an unknown option, command or help topic: one line on stderr, exit 2, pointing at the help', async () => {
    const cases: [string[], RegExp][] = [
      [['predict', '--sample', '3', 'x.png'], /^bayesgpu predict: Unknown option '--sample'.*\(bayesgpu predict --help lists the options\)$/],
      [['eval', '--checkpoint'], /^bayesgpu eval: Option '--checkpoint <value>' argument missing.*bayesgpu eval --help/],
      [['predict', '--samples', '0', 'x.png'], /^bayesgpu predict: option '--samples' expected an integer >= 1, got "0"$/],
      [['predict', '--checkpoint', 'm.safetensors'], /^bayesgpu predict: expected IMAGE\.\.\. \| FOLDER \(at least 1\), got none/],
      [['fit'], /^bayesgpu: unknown command "fit"; expected train, eval or predict \(bayesgpu --help lists the commands\)$/],
      [[], /^bayesgpu: no command given; expected train, eval or predict/],
      [['help', 'fit'], /^bayesgpu help: expected one command \(train, eval or predict\), got unknown command "fit"$/],
    ];
    for (const [args, line] of cases) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.out, args.join(' ')).toEqual([]);
      const lines = run.err.split('\n').filter(Boolean);
      expect(lines, run.err).toHaveLength(1);
      expect(lines[0]).toMatch(line);
    }
  });
});
