import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Writes JSON to a temp file beside `path`, then renames it into place: never half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * The build descriptor Nx caches for a target (see packages/nx-plugin/src/descriptor.ts): what
 * was built, by digest, so a cache hit can be checked against the store.
 */
export interface BuildDescriptor {
  digest: string;
  mediaType: string;
  size: number;
  refs: string[];
  artifacts?: { path: string; digest?: string; size?: number }[];
}
