/**
 * The build descriptor: the small JSON file `stele pkg build --descriptor` and `stele build
 * --descriptor` write and the Nx plugin caches — what a build made, by digest — and the check
 * that what it names is really there: the digest as a blob in the local store, and any listed
 * artifact files next to it. A cache hit that restores a descriptor for a digest the store has
 * lost is not a hit (nx#15116). Imports no more than node's fs and path, so the Nx plugin loads
 * it (`@stele/oci/build-descriptor`) for every Nx command at no cost.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { writeJsonAtomic } from './atomic.ts';
import { blobPath } from './store-paths.ts';

export interface BuildArtifact {
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
  artifacts?: BuildArtifact[];
}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export type BuildDescriptorResult = { ok: true; value: BuildDescriptor } | { ok: false; message: string };

/** Checks a descriptor file's text; the message names the field that is wrong. */
export function parseBuildDescriptor(text: string): BuildDescriptorResult {
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

/** The descriptor at `path`, checked; undefined when there is no file to read. */
export function readBuildDescriptor(path: string): BuildDescriptorResult | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseBuildDescriptor(text);
}

/** Writes a descriptor whole or not at all. */
export function writeBuildDescriptor(path: string, d: BuildDescriptor): Promise<void> {
  return writeJsonAtomic(path, d);
}

/** Why the descriptor's content is not all present, or undefined when it is. */
export function missingBuildContent(d: BuildDescriptor, descriptorDir: string, storeDir: string): string | undefined {
  if (!existsSync(blobPath(storeDir, d.digest))) return `${d.digest} is not in the store ${storeDir}`;
  for (const a of d.artifacts ?? []) {
    if (!existsSync(join(descriptorDir, a.path))) return `artifact ${a.path} is missing from ${descriptorDir}`;
  }
  return undefined;
}
