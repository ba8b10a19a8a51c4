// Secret references of a fleet.yml (`{env: NAME}` or `{file: PATH}`) read for an adapter. The
// value is returned, never printed: errors name the field and the reference, not the contents.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { SecretRef } from '@stele/manifest';
import { RuntimeError } from './errors.ts';

export function secretReader(fleetFile: string, env: NodeJS.ProcessEnv) {
  return async (ref: SecretRef, field: string): Promise<string> => {
    if ('env' in ref) {
      const v = env[ref.env];
      if (!v) throw new RuntimeError(`${field}: the environment variable ${ref.env} is not set`);
      return v;
    }
    const path = ref.file.startsWith('~/')
      ? join(env.HOME ?? homedir(), ref.file.slice(2))
      : resolve(dirname(fleetFile), ref.file);
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new RuntimeError(
        `${field}: cannot read ${ref.file}${path !== ref.file ? ` (${path})` : ''}: ${code ?? 'error'}`,
      );
    }
  };
}
