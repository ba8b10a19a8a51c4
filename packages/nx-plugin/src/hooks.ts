/**
 * Cache hits must not restore a descriptor for content that is gone. Before tasks run, every
 * descriptor left by an earlier build is checked against the store; for each one whose digest
 * (or artifact) is missing, the project's `STELE_NX_STORE_*` env input changes, so its build
 * hash changes and Nx builds it again instead of replaying the cache. After tasks run, cache
 * hits are checked the same way (a remote-cache hit on a fresh machine lands here) and reported.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { missingBuildContent, readBuildDescriptor } from '@stele/oci/build-descriptor';
import { type NormalizedOptions, resolveStoreDir } from './options.ts';
import { DESCRIPTOR, storeEnvVar, targetOutDir } from './targets.ts';

/** Env updates for projects whose last built content is missing: `{ STELE_NX_STORE_X: 'missing:sha256:…' }`. */
export function missingStoreEnv(root: string, opts: NormalizedOptions): Record<string, string> {
  const env: Record<string, string> = {};
  const base = join(root, opts.outDir);
  if (!existsSync(base)) return env;
  const storeDir = resolveStoreDir(opts.storeDir, root);
  for (const project of readdirSync(base)) {
    const file = join(root, targetOutDir(opts, project, 'build'), DESCRIPTOR);
    const d = readBuildDescriptor(file);
    if (!d?.ok) continue;
    if (missingBuildContent(d.value, dirname(file), storeDir)) env[storeEnvVar(project)] = `missing:${d.value.digest}`;
  }
  return env;
}

interface TaskResultLike {
  status: string;
  task: { target: { project: string; target: string } };
}

/** Messages for cache-hit build tasks whose restored descriptor names missing content. */
export function checkCacheHits(
  root: string,
  opts: NormalizedOptions,
  results: Record<string, TaskResultLike>,
): string[] {
  const storeDir = resolveStoreDir(opts.storeDir, root);
  const out: string[] = [];
  for (const r of Object.values(results)) {
    if (!r.status.includes('cache') || r.task.target.target !== 'build') continue;
    const file = join(root, targetOutDir(opts, r.task.target.project, 'build'), DESCRIPTOR);
    const d = readBuildDescriptor(file);
    if (!d?.ok) continue;
    const missing = missingBuildContent(d.value, dirname(file), storeDir);
    if (missing)
      out.push(`${r.task.target.project}:build came from the Nx cache but ${missing}; the next run rebuilds it`);
  }
  return out;
}
