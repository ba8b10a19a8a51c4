import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compatibility corpus, read in place: `<repo>/../shared/corpus/linuxkit` (or $STELE_CORPUS). */
export const CORPUS =
  process.env.STELE_CORPUS ??
  resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../shared/corpus/linuxkit');

export const corpusPresent = existsSync(join(CORPUS, 'classes.json'));

export interface Classes {
  os_manifest: string[];
  pkg_build_yml: string[];
  os_manifest_unknown_keys: Array<[string, string[]]>;
  parse_error: string[];
}

export function classes(): Classes {
  return JSON.parse(readFileSync(join(CORPUS, 'classes.json'), 'utf8')) as Classes;
}

export function read(rel: string): string {
  return readFileSync(join(CORPUS, rel), 'utf8');
}

/** Corpus-relative paths of every file called `name` below `dir`. */
export function findNamed(dir: string, name: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (entry === name) out.push(relative(CORPUS, p));
    }
  };
  walk(join(CORPUS, dir));
  return out.sort();
}
