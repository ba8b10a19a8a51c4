/**
 * How Nx should name this plugin's executors from a given workspace: by package name when the
 * workspace resolves `@stele/nx-plugin` to this very directory, else by a relative path (a
 * workspace that loads the plugin from elsewhere, such as the test fixtures).
 */
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const PACKAGE_NAME = '@stele/nx-plugin';

export function executorsRef(workspaceRoot: string): string {
  const own = realpathSync(PACKAGE_DIR);
  try {
    const req = createRequire(`${workspaceRoot}/package.json`);
    const found = realpathSync(dirname(req.resolve(`${PACKAGE_NAME}/package.json`)));
    if (found === own) return PACKAGE_NAME;
  } catch {
    // not a dependency of the workspace root: fall through to a path
  }
  const rel = relative(realpathSync(workspaceRoot), own).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}
