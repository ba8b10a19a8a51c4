// An OS image's identity before it is built: what a fleet compares its hosts against. It changes
// exactly when the built image could: the manifest's text, the digest each image reference
// resolves to for the platform, or the contents of a `files` source on the build host.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseOsManifest } from '@stele/manifest';
import { type BuildImageOptions, buildImage, type PlanSummary, resolveSourcePath } from './index.ts';

export interface ImageIdentity {
  /** `sha256:<hex>` over the manifest, the resolved digests and the files' sources. */
  identity: string;
  plan: PlanSummary;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function imageIdentity(
  opts: Omit<BuildImageOptions, 'dryRun' | 'formats' | 'dir' | 'frozen'>,
): Promise<ImageIdentity> {
  const { plan } = await buildImage({ ...opts, dryRun: true });
  const text = await readFile(plan.manifest);
  const parsed = parseOsManifest(text.toString('utf8'), plan.manifest);
  const sources: [string, string][] = [];
  if (parsed.ok) {
    for (const f of parsed.value.files ?? []) {
      if (!f.source) continue;
      const path = resolveSourcePath(dirname(plan.manifest), f.source);
      sources.push([f.source, await readFile(path).then(sha256, () => 'missing')]);
    }
  }
  const input = {
    manifest: sha256(text),
    platform: plan.platform,
    images: plan.images.map((i) => [i.ref, i.digest]).sort(),
    sources,
  };
  return { identity: `sha256:${sha256(JSON.stringify(input))}`, plan };
}
