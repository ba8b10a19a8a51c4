import { readFileSync } from 'node:fs';
import { escapeControl } from '@stele/manifest';
import { type Command, dispatch, EXIT_FAIL, EXIT_USAGE, type Io, UsageError, UserError } from './cli.ts';
import { commands } from './commands/index.ts';
import { isOciUserError } from './commands/oci.ts';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export const root: Command = {
  name: 'stele',
  summary: 'LinuxKit-style immutable host images and blue-green fleet rollouts',
  examples: ['stele --version', 'stele doctor', 'stele help doctor'],
  options: { version: { type: 'boolean', short: 'V', description: 'print the version' } },
  subcommands: commands,
};

/** Runs the CLI; returns the exit code. Never throws for user-facing failures. */
export async function main(argv: string[], io: Io): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    io.stdout.write(`stele ${VERSION}\n`);
    return 0;
  }
  try {
    return await dispatch(root, argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(printable(err.message));
      return EXIT_USAGE;
    }
    if (err instanceof UserError || isOciUserError(err)) {
      io.stderr.write(printable(err.message, 'stele: '));
      return EXIT_FAIL;
    }
    const e = err as Error;
    io.stderr.write(printable(`internal error: ${e?.message ?? String(err)}`, 'stele: '));
    if (io.env.STELE_DEBUG) io.stderr.write(printable(e?.stack ?? ''));
    return EXIT_FAIL;
  }
}

/**
 * A message as printed: each line starting with `prefix`, and control and bidi characters
 * escaped (a message may quote a manifest, and a manifest must not drive the terminal).
 */
function printable(message: string, prefix = ''): string {
  return escapeControl(message, { keepNewlines: true })
    .split('\n')
    .map((line) => `${prefix}${line}\n`)
    .join('');
}
