/**
 * The small descriptor file a build target writes and Nx caches, and the check that what it
 * names is really there: the digest as a blob in the local OCI layout store, and any listed
 * artifact files next to it. A cache hit that restores a descriptor for a digest the store has
 * lost is not a hit (nx#15116); `hooks.ts` and `executor.ts` act on this check.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

export interface Artifact {
  /** Relative to the descriptor's directory. */
  path: string;
  digest?: string;
  size?: number;
}

export interface BuildDescriptor {
  digest: string;
  mediaType: string;
  size: number;
  refs: string[];
  artifacts?: Artifact[];
}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseDescriptor(text: string): Parsed<BuildDescriptor> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, message: `not JSON: ${(e as Error).message}` };
  }
  const d = v as Partial<BuildDescriptor> | null;
  if (typeof d !== 'object' || d === null) return { ok: false, message: 'expected an object' };
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest))
    return { ok: false, message: 'digest: expected sha256:<64 hex>' };
  if (typeof d.mediaType !== 'string' || d.mediaType === '')
    return { ok: false, message: 'mediaType: expected a string' };
  if (typeof d.size !== 'number' || !Number.isInteger(d.size) || d.size < 0) {
    return { ok: false, message: 'size: expected a non-negative integer' };
  }
  if (!Array.isArray(d.refs) || d.refs.some((r) => typeof r !== 'string')) {
    return { ok: false, message: 'refs: expected a list of strings' };
  }
  if (d.artifacts !== undefined) {
    if (!Array.isArray(d.artifacts) || d.artifacts.some((a) => typeof a?.path !== 'string' || isAbsolute(a.path))) {
      return { ok: false, message: 'artifacts: expected a list of { path } relative to the descriptor' };
    }
  }
  return { ok: true, value: d as BuildDescriptor };
}

export function readDescriptor(path: string): Parsed<BuildDescriptor> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseDescriptor(text);
}

/** Same default as `@stele/oci`'s store: `$STELE_CACHE`, else the XDG cache dir. */
export function resolveStoreDir(configured: string | undefined, workspaceRoot: string, env = process.env): string {
  if (configured) return isAbsolute(configured) ? configured : join(workspaceRoot, configured);
  if (env.STELE_CACHE) return env.STELE_CACHE;
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'stele', 'oci');
}

/** Blob path in an OCI image layout (`blobs/<alg>/<hex>`). */
export function blobPath(storeDir: string, digest: string): string {
  const [alg = '', hex = ''] = digest.split(':');
  return join(storeDir, 'blobs', alg, hex);
}

/** Why the descriptor's content is not all present, or undefined when it is. */
export function missingContent(d: BuildDescriptor, descriptorDir: string, storeDir: string): string | undefined {
  if (!existsSync(blobPath(storeDir, d.digest))) return `${d.digest} is not in the store ${storeDir}`;
  for (const a of d.artifacts ?? []) {
    if (!existsSync(join(descriptorDir, a.path))) return `artifact ${a.path} is missing from ${descriptorDir}`;
  }
  return undefined;
}
