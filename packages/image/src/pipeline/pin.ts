// The resolve, lock and verify stages: every image of the manifest to a digest (fetched into the
// store when needed), the lock file those digests make (checked against the one on disk with
// `--frozen`), and the signatures the manifest's `trust` section (or a key) asks for.
import type { KeyObject } from 'node:crypto';
import { extname } from 'node:path';
import { type OsManifest, parseImageRef } from '@stele/manifest';
import { type Store, verifyImage } from '@stele/oci';
import { BuildError } from './errors.ts';
import type { BuildEvent } from './index.ts';
import {
  type LockFile,
  lockDifference,
  lockOf,
  manifestRefs,
  type Registries,
  type ResolvedImage,
  type ResolvedOciVolume,
  readLock,
  resolveImage,
  resolveOciVolume,
} from './resolve.ts';
import type { BuildSettings } from './settings.ts';

/** What the lock pins and trust checks of an image. */
export type PinnedImage = Pick<ResolvedImage, 'ref' | 'name' | 'top' | 'manifest'>;

export interface ResolvedImages {
  /** The images for the build's platform, in manifest order. */
  images: ResolvedImage[];
  /** `format: oci` volumes' images, by `volumeKey`. */
  volumes: Map<string, ResolvedOciVolume>;
  /** Every image, volumes' by their top digest. */
  pinned: PinnedImage[];
}

/** Key of a `format: oci` volume's image in `ResolvedImages.volumes`. */
export const volumeKey = (image: string, platforms: string[]) => `${image}\0${platforms.join(',')}`;

export function lockPathOf(manifest: string): string {
  const ext = extname(manifest);
  return `${ext ? manifest.slice(0, -ext.length) : manifest}.lock.json`;
}

/**
 * Volumes with `format: oci` carry their image as data (any platforms); everything else is
 * resolved for the build's platform.
 */
export async function resolveImages(
  manifest: OsManifest,
  s: BuildSettings,
  opts: { store: Store; pull?: boolean; offline?: boolean },
  registries: Registries,
  emit: (e: BuildEvent) => void,
): Promise<ResolvedImages> {
  const isOci = (v: NonNullable<OsManifest['volumes']>[number]) => v.format === 'oci' && !!v.image;
  const refs = manifestRefs({ ...manifest, volumes: (manifest.volumes ?? []).filter((v) => !isOci(v)) });
  const ociVolumes = (manifest.volumes ?? []).flatMap((v, i) => (isOci(v) ? [{ v, i }] : []));
  emit({
    type: 'phase',
    phase: 'resolve',
    detail: `${refs.length + ociVolumes.length} images for ${s.platform.os}/${s.platform.architecture}`,
  });
  const resolveOpts = {
    store: opts.store,
    ...(opts.pull ? { pull: true } : {}),
    ...(opts.offline ? { offline: true } : {}),
    onEvent: emit,
  };
  const images: ResolvedImage[] = [];
  for (const ref of refs) images.push(await resolveImage(ref, { ...resolveOpts, platform: s.platform }, registries));
  const volumes = new Map<string, ResolvedOciVolume>();
  for (const { v, i } of ociVolumes) {
    const image = v.image ?? '';
    volumes.set(
      volumeKey(image, v.platforms ?? []),
      await resolveOciVolume(image, v.platforms ?? [], resolveOpts, registries, `volumes[${i}]`),
    );
  }
  const pinned = [
    ...images,
    ...[...volumes.values()].map((v) => ({ ref: v.ref, name: v.name, top: v.top, manifest: v.top })),
  ];
  return { images, volumes, pinned };
}

/** The lock the pinned images make; with `frozen`, the one on disk must say the same. */
export async function lockImages(
  s: BuildSettings,
  pinned: PinnedImage[],
  frozen: boolean | undefined,
): Promise<{ lockFile: string; lock: LockFile }> {
  const lockFile = lockPathOf(s.manifestPath);
  const lock = lockOf(pinned, s.platform);
  if (frozen) {
    const existing = await readLock(lockFile);
    if (!existing) throw new BuildError(`--frozen: no lock file ${lockFile} (build once without --frozen)`);
    const why = lockDifference(existing, lock);
    if (why) throw new BuildError(`--frozen: ${lockFile} is stale: ${why}`);
  }
  return { lockFile, lock };
}

/** Which images `trust` (or a configured key) says must be signed. */
function mustVerify(m: OsManifest, ref: string, allByKey: boolean): boolean {
  if (allByKey) return true;
  const r = parseImageRef(ref);
  if (!r.ok) return false;
  const repo = `${r.ref.registry}/${r.ref.repository}`;
  const names = (m.trust?.image ?? []).map((i) => {
    const t = parseImageRef(i);
    return t.ok ? `${t.ref.registry}/${t.ref.repository}` : i;
  });
  const org = r.ref.repository.split('/')[0] ?? '';
  return names.includes(repo) || (m.trust?.org ?? []).includes(org);
}

/** Trust: images the manifest names (or all, with a key) must carry a valid signature. */
export async function verifyTrust(
  manifest: OsManifest,
  pinned: PinnedImage[],
  key: KeyObject | undefined,
  registries: Registries,
  emit: (e: BuildEvent) => void,
): Promise<void> {
  const needTrust = pinned.filter((r) => mustVerify(manifest, r.ref, key !== undefined));
  if (!needTrust.length) return;
  if (!key) {
    throw new BuildError(
      `trust: ${needTrust.map((r) => r.ref).join(', ')} must be signed: give the public key with --verify-key`,
    );
  }
  emit({ type: 'phase', phase: 'verify', detail: `${needTrust.length} signatures` });
  for (const r of needTrust) {
    const ref = parseImageRef(r.ref);
    if (!ref.ok) continue;
    const repo = registries.client(ref.ref.registry).repository(ref.ref.repository);
    try {
      await verifyImage(repo, r.top, key); // throws with every reason unless all verify
    } catch (err) {
      throw new BuildError(`trust: ${r.ref}: ${(err as Error).message}`);
    }
  }
}
