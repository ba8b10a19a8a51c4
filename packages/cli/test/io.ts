import { PassThrough } from 'node:stream';
import type { Io } from '../src/cli.ts';

/** An Io that records what a command prints. */
export function fakeIo(env: NodeJS.ProcessEnv = {}): Io & { out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return { stdout, stderr, env, cwd: process.cwd(), out: () => out, err: () => err };
}
