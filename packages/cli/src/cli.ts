import { parseArgs } from 'node:util';

/** Where a command reads and writes; tests pass their own. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in help after the flag, e.g. `--format F`. */
  placeholder?: string;
  description: string;
}

export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Context {
  io: Io;
  values: Values;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** Arguments after the command name, e.g. `[--json] FILE...`. */
  usage?: string;
  examples: string[];
  options?: Record<string, OptionSpec>;
  /** Inclusive bounds on positional arguments; default 0..0. */
  positionals?: { min: number; max: number };
  subcommands?: Command[];
  run?: (ctx: Context) => Promise<number>;
}

/** Misuse of the command line: printed on one line, exit 2. */
export class UsageError extends Error {}

/** A failure the user can act on: printed without a stack trace, exit 1. */
export class UserError extends Error {}

export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

/** Edit distance (Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      let best = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The candidate closest to `input`, or undefined when nothing is plausibly meant. */
export function nearest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const score = c.startsWith(input) && input.length >= 2 ? 0.5 : editDistance(input, c);
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  const limit = Math.max(2, Math.floor(input.length / 3));
  return bestScore <= limit ? best : undefined;
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };

function optionTable(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.placeholder ? ` ${spec.placeholder}` : ''}`;
    return [flag, spec.description + (spec.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.max(0, ...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
}

export function commandHelp(path: string[], cmd: Command): string {
  const lines: string[] = [];
  const full = path.join(' ');
  lines.push(`${full}: ${cmd.summary}`, '');
  if (cmd.subcommands?.length) {
    lines.push(`Usage: ${full} <command> [flags]`, '', 'Commands:');
    const width = Math.max(...cmd.subcommands.map((s) => s.name.length));
    for (const s of cmd.subcommands) lines.push(`  ${s.name.padEnd(width)}  ${s.summary}`);
  } else {
    lines.push(`Usage: ${full}${cmd.usage ? ` ${cmd.usage}` : ''}`);
  }
  lines.push('', 'Flags:', ...optionTable({ ...(cmd.options ?? {}), help: HELP_OPTION }));
  if (cmd.examples.length) {
    lines.push('', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  }
  if (cmd.subcommands?.length) lines.push('', `Run '${full} <command> --help' for a command's flags.`);
  return `${lines.join('\n')}\n`;
}

/**
 * Finds the command named by argv (descending into subcommands), parses its flags and runs it.
 * Usage errors name the nearest valid command or flag and exit 2.
 */
export async function dispatch(root: Command, argv: string[], io: Io): Promise<number> {
  const path = [root.name];
  let cmd = root;
  let rest = argv;
  while (cmd.subcommands?.length) {
    const head = rest[0];
    if (head === undefined || head === '-h' || head === '--help' || head === 'help') {
      if (head === 'help' && rest[1] !== undefined) {
        // `stele help build` is `stele build --help`.
        rest = [...rest.slice(1), '--help'];
        continue;
      }
      if (head === undefined && cmd.run) break;
      io.stdout.write(commandHelp(path, cmd));
      return head === undefined && cmd !== root ? EXIT_USAGE : EXIT_OK;
    }
    if (head.startsWith('-')) {
      if (cmd.run) break;
      const flags = Object.keys(cmd.options ?? {}).map((f) => `--${f}`);
      throw usage(`unknown flag ${head}`, path, nearest(head, [...flags, '--help']));
    }
    const sub = cmd.subcommands.find((s) => s.name === head);
    if (!sub) {
      throw usage(
        `unknown command '${head}'`,
        path,
        nearest(
          head,
          cmd.subcommands.map((s) => s.name),
        ),
      );
    }
    path.push(sub.name);
    cmd = sub;
    rest = rest.slice(1);
  }
  const options = { ...(cmd.options ?? {}), help: HELP_OPTION };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw translateParseError(err, path, options);
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(path, cmd));
    return EXIT_OK;
  }
  const bounds = cmd.positionals ?? { min: 0, max: 0 };
  const n = parsed.positionals.length;
  if (n < bounds.min) throw usage(`missing argument: ${cmd.usage ?? ''}`.trim(), path);
  if (n > bounds.max) throw usage(`unexpected argument '${parsed.positionals[bounds.max]}'`, path);
  if (!cmd.run) throw usage('nothing to run', path);
  return cmd.run({ io, values: parsed.values as Values, positionals: parsed.positionals });
}

function usage(message: string, path: string[], suggestion?: string): UsageError {
  const hint = suggestion ? ` (did you mean ${suggestion}?)` : ` (see '${path.join(' ')} --help')`;
  return new UsageError(`${path.join(' ')}: ${message}${hint}`);
}

function translateParseError(err: unknown, path: string[], options: Record<string, OptionSpec>): Error {
  const e = err as { code?: string; message?: string };
  const flag = /'(-{1,2}[^'\s]+)/.exec(e.message ?? '')?.[1] ?? '';
  const names = Object.keys(options).map((o) => `--${o}`);
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return usage(`unknown flag ${flag}`, path, nearest(flag.split('=')[0] ?? flag, names));
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return usage(
        flag
          ? `flag ${flag} ${/argument missing/.test(e.message ?? '') ? 'needs a value' : 'takes no value'}`
          : 'bad flag value',
        path,
      );
    default:
      return usage(e.message?.split('\n')[0] ?? String(err), path);
  }
}
