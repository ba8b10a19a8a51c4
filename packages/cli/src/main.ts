import { readFileSync } from 'node:fs';
import { type Command, dispatch, EXIT_FAIL, EXIT_USAGE, type Io, UsageError, UserError } from './cli.ts';
import { commands } from './commands/index.ts';

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
      io.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof UserError) {
      io.stderr.write(`stele: ${err.message}\n`);
      return EXIT_FAIL;
    }
    const e = err as Error;
    io.stderr.write(`stele: internal error: ${e?.message ?? String(err)}\n`);
    if (io.env.STELE_DEBUG) io.stderr.write(`${e?.stack ?? ''}\n`);
    return EXIT_FAIL;
  }
}
