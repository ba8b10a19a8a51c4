// The plan stage: the assembly core's layout of the image (what goes where, container by
// container), the summary `--dry-run` prints, and the check that every `files` source is there
// before anything is written.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { OsManifest } from '@stele/manifest';
import { type OsManifest as AssemblyManifest, type LayoutPlan, planLayout } from '../assemble/index.ts';
import { BuildError } from './errors.ts';
import type { ResolvedImages } from './pin.ts';
import type { BuildSettings } from './settings.ts';

export interface PlanSummary {
  manifest: string;
  platform: string;
  images: { ref: string; name: string; digest: string; manifest: string }[];
  containers: { section: string; name: string; image: string; dir: string }[];
  files: string[];
}

/** A `files` entry's `source` on the build host: `~/…` in the home directory, else relative to the manifest. */
export function resolveSourcePath(manifestDir: string, source: string): string {
  if (source.startsWith('~/')) return join(homedir(), source.slice(2));
  return resolve(manifestDir, source);
}

export function planBuild(
  manifest: OsManifest,
  s: BuildSettings,
  resolved: ResolvedImages,
): { layout: LayoutPlan; plan: PlanSummary } {
  const byRef = new Map(resolved.images.map((r) => [r.ref, r]));
  const layout = planLayout({
    manifest: manifest as unknown as AssemblyManifest,
    imageConfig: (ref) => byRef.get(ref)?.config.config ?? {},
    mtime: s.mtime,
    resolveSource: (src) => resolveSourcePath(s.manifestDir, src),
    sourceExists: (p) => existsSync(p),
  });
  const plan: PlanSummary = {
    manifest: s.manifestPath,
    platform: `${s.platform.os}/${s.platform.architecture}`,
    images: resolved.pinned.map((r) => ({
      ref: r.ref,
      name: r.name,
      digest: r.top.digest,
      manifest: r.manifest.digest,
    })),
    containers: layout.containers.map((c) => ({ section: c.section, name: c.name, image: c.image, dir: c.dir })),
    files: (manifest.files ?? []).map((f) => f.path ?? ''),
  };
  return { layout, plan };
}

/** Missing `files` sources fail before anything is written. */
export function checkSources(manifest: OsManifest, s: BuildSettings): void {
  for (const [i, f] of (manifest.files ?? []).entries()) {
    if (f.source && !f.optional && !existsSync(resolveSourcePath(s.manifestDir, f.source))) {
      throw new BuildError(`files[${i}] (${f.path}): source ${f.source} does not exist`);
    }
  }
}
