// The SBOM stage: /sbom.spdx.json, the package images' SBOMs (made at `stele pkg build`, or now
// from their layers) merged into one document for the OS image, as a layout step.
import { createHash } from 'node:crypto';
import { parseImageRef } from '@stele/manifest';
import type { Store } from '@stele/oci';
import { loadOrGenerateSbom, mergeSbomsToBytes, storeSbom } from '@stele/pkg';
import type { LayoutStep } from '../assemble/index.ts';
import { BuildError } from './errors.ts';
import type { LockFile, ResolvedImage } from './resolve.ts';

/** The step that writes /sbom.spdx.json, or undefined when there are no images. */
export async function sbomStep(
  store: Store,
  images: ResolvedImage[],
  opts: { name: string; mtime: number; lock: LockFile },
): Promise<LayoutStep | undefined> {
  if (!images.length) return undefined;
  const docs = [];
  for (const r of images) {
    const ref = parseImageRef(r.ref);
    const subject = ref.ok
      ? { name: `${ref.ref.registry}/${ref.ref.repository}`, version: ref.ref.tag ?? r.top.digest }
      : { name: r.ref, version: r.top.digest };
    try {
      const sbom = await loadOrGenerateSbom([store], r.manifest, subject, { created: new Date(opts.mtime * 1000) });
      // Kept in the store like a package's own SBOM: the next build reads it instead of
      // reading every layer again.
      if (sbom.generated) await storeSbom(store, r.manifest, sbom.document, subject.name);
      docs.push(sbom.document);
    } catch (err) {
      throw new BuildError(`sbom: ${r.ref}: ${(err as Error).message}`);
    }
  }
  const lockHash = createHash('sha256').update(JSON.stringify(opts.lock)).digest('hex');
  const data = mergeSbomsToBytes(docs, {
    name: opts.name,
    namespace: `https://stele.invalid/spdx/os/${opts.name}/sha256-${lockHash}`,
    created: new Date(opts.mtime * 1000),
  });
  return {
    kind: 'entry',
    entry: {
      path: 'sbom.spdx.json',
      type: 'file',
      mode: 0o644, // as LinuxKit's SbomGenerator
      uid: 0,
      gid: 0,
      mtime: opts.mtime,
      source: { kind: 'bytes', data },
      origin: { source: 'stele.sbom', location: 'sbom' },
    },
  };
}
