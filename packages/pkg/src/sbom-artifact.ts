/**
 * SBOMs as OCI artifacts next to the image they describe.
 *
 * The artifact is an OCI image manifest with `artifactType: application/spdx+json`, the empty
 * config (`application/vnd.oci.empty.v1+json`, the 2-byte `{}` blob), one
 * `application/spdx+json` layer holding the document, and `subject` pointing at the image
 * manifest — so a registry with the OCI 1.1 referrers API lists it among the image's referrers.
 *
 * Finding it does not depend on that API (the registry peer, distribution 2.8, has none): the
 * artifact is also tagged `sha256-<hex>.sbom`, where `sha256:<hex>` is the image manifest's
 * digest — the tag scheme cosign uses for attachments (`.sig`, `.att`, `.sbom`). We chose this
 * over the OCI 1.1 referrers tag schema (`sha256-<hex>` pointing at an index of every referrer)
 * because that index must be read, merged and rewritten by every writer of any referrer, racing
 * with the others; one tag per (image, kind) is written once and never merged. In the local
 * store the entry is named `<repository>:sha256-<hex>.sbom`; `findSbom` on a store accepts any
 * repository (or the bare tag), on a registry repository it resolves the tag.
 */
import type { Readable } from 'node:stream';
import {
  type Descriptor,
  type Digest,
  type ImageManifest,
  MediaType,
  parseDigest,
  parseManifest,
  type Source,
  Store,
  sha256,
} from '@stele/oci';
import type { Remote } from './remote.ts';
import {
  checkSpdx,
  generateSbom,
  SbomError,
  type SbomOptions,
  type SbomResult,
  type SbomSubject,
  SPDX_JSON_MEDIA_TYPE,
  type SpdxDocument,
} from './sbom.ts';

/** The empty JSON object OCI artifacts use as config. */
export const EMPTY_CONFIG = Buffer.from('{}');
export const EMPTY_CONFIG_DESCRIPTOR: Descriptor = {
  mediaType: MediaType.OciEmpty,
  digest: sha256(EMPTY_CONFIG),
  size: EMPTY_CONFIG.length,
};
const TITLE = 'org.opencontainers.image.title';
const CREATED = 'org.opencontainers.image.created';

/** `sha256-<hex>.sbom`: the tag an image's SBOM artifact is found under. */
export function sbomTag(imageDigest: Digest): string {
  const { algorithm, hex } = parseDigest(imageDigest);
  return `${algorithm}-${hex}.sbom`;
}

/** The artifact manifest for an SBOM document of `image`. */
export function sbomManifest(
  image: Descriptor,
  docBytes: Buffer,
  created?: string,
): { manifest: ImageManifest; bytes: Buffer; descriptor: Descriptor; layer: Descriptor } {
  const layer: Descriptor = {
    mediaType: SPDX_JSON_MEDIA_TYPE,
    digest: sha256(docBytes),
    size: docBytes.length,
    annotations: { [TITLE]: 'sbom.spdx.json' },
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: SPDX_JSON_MEDIA_TYPE,
    config: EMPTY_CONFIG_DESCRIPTOR,
    layers: [layer],
    subject: { mediaType: image.mediaType, digest: image.digest, size: image.size },
    ...(created ? { annotations: { [CREATED]: created } } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return {
    manifest,
    bytes,
    layer,
    descriptor: {
      mediaType: MediaType.OciManifest,
      digest: sha256(bytes),
      size: bytes.length,
      artifactType: SPDX_JSON_MEDIA_TYPE,
    },
  };
}

/**
 * Writes the SBOM artifact of `image` into the store and names it
 * `<repository>:sha256-<hex>.sbom` (the bare tag without a repository).
 */
export async function storeSbom(
  store: Store,
  image: Descriptor,
  document: SpdxDocument | Buffer,
  repository?: string,
): Promise<{ descriptor: Descriptor; name: string }> {
  const docBytes = Buffer.isBuffer(document) ? document : Buffer.from(`${JSON.stringify(document, null, 2)}\n`);
  const created = (JSON.parse(docBytes.toString('utf8')) as SpdxDocument).creationInfo?.created;
  const art = sbomManifest(image, docBytes, created);
  await store.writeBlob(EMPTY_CONFIG, EMPTY_CONFIG_DESCRIPTOR);
  await store.writeBlob(docBytes, art.layer);
  const name = repository ? `${repository}:${sbomTag(image.digest)}` : sbomTag(image.digest);
  await store.pushManifest(art.descriptor, art.bytes, [name]);
  return { descriptor: art.descriptor, name };
}

/**
 * Generates the SBOM of an image manifest in the store and stores it as an artifact named
 * `<subject.name>:sha256-<hex>.sbom`.
 */
export async function writeImageSbom(
  store: Store,
  image: Descriptor,
  subject: SbomSubject,
  opts: SbomOptions = {},
): Promise<SbomResult & { descriptor: Descriptor; name: string }> {
  const result = await generateSbom(store, image, subject, opts);
  const stored = await storeSbom(store, image, result.bytes, subject.name);
  return { ...result, ...stored };
}

/**
 * Pushes the stored SBOM artifact of `image` to `<repository>:sha256-<hex>.sbom` (the image
 * must be there first: the artifact's subject refers to it). Returns the pushed reference, or
 * undefined when the store has no SBOM for the image.
 */
export async function pushSbom(
  store: Store,
  remote: Remote,
  image: Descriptor,
  repository: string,
): Promise<string | undefined> {
  const found = await findSbom(store, image.digest);
  if (!found) return undefined;
  const ref = `${repository}:${sbomTag(image.digest)}`;
  const there = await remote.resolve(ref).catch(() => undefined);
  if (there?.digest !== found.descriptor.digest) await remote.push(store, found.descriptor, ref);
  return ref;
}

export interface FoundSbom {
  /** The artifact manifest. */
  descriptor: Descriptor;
  manifest: ImageManifest;
  /** The SPDX JSON as stored. */
  bytes: Buffer;
  document: SpdxDocument;
}

function notFound(err: unknown): boolean {
  return (err as { status?: number }).status === 404 || /not found|not in the store|unknown/i.test(String(err));
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The SBOM of the image manifest `imageDigest`, read back from a store or a registry
 * repository (through its `sha256-<hex>.sbom` tag), or undefined when there is none. Throws
 * when what the tag holds is not an SPDX artifact for that image, or not valid SPDX 2.3.
 */
export async function findSbom(src: Source, imageDigest: Digest): Promise<FoundSbom | undefined> {
  const tag = sbomTag(imageDigest);
  let candidates: Descriptor[] = [];
  if (src instanceof Store) {
    const suffix = `:${tag}`;
    candidates = (await src.list())
      .filter((e) => e.name === tag || e.name.endsWith(suffix))
      .map(({ descriptor: { annotations: _a, ...d } }) => d);
  } else {
    try {
      candidates = [await src.resolve(tag)];
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }
  if (!candidates.length) return undefined;
  // In the store several repositories may name an SBOM of the same image; they describe the
  // same content. Take the first (index order: oldest first) that is well formed.
  const desc = candidates[0] as Descriptor;
  const where = `${src.describe()} ${tag}`;
  const parsed = parseManifest(await src.fetchManifest(desc), desc.mediaType);
  if (parsed.kind !== 'manifest') throw new SbomError(`${where} is an index, not an SBOM artifact`);
  const manifest = parsed.manifest;
  const layer = manifest.layers.find((l) => l.mediaType === SPDX_JSON_MEDIA_TYPE);
  if (!layer) throw new SbomError(`${where} has no ${SPDX_JSON_MEDIA_TYPE} layer`);
  if (manifest.subject && manifest.subject.digest !== imageDigest) {
    throw new SbomError(`${where} is the SBOM of ${manifest.subject.digest}, not of ${imageDigest}`);
  }
  const bytes = await readAll(await src.fetchBlob(layer));
  if (sha256(bytes) !== layer.digest) throw new SbomError(`${where}: the SPDX document does not match its digest`);
  let document: SpdxDocument;
  try {
    document = JSON.parse(bytes.toString('utf8')) as SpdxDocument;
  } catch (err) {
    throw new SbomError(`${where}: the SPDX document is not JSON: ${(err as Error).message}`);
  }
  const problems = checkSpdx(document);
  if (problems.length) throw new SbomError(`${where}: not a valid SPDX 2.3 document:\n  ${problems.join('\n  ')}`);
  return { descriptor: desc, manifest, bytes, document };
}

/**
 * The stored SBOM of `image`, generating and storing it when the store has none. Returns what
 * was generated, or undefined when it was already there.
 */
export async function ensureImageSbom(
  store: Store,
  image: Descriptor,
  subject: SbomSubject,
  opts: SbomOptions = {},
): Promise<(SbomResult & { descriptor: Descriptor; name: string }) | undefined> {
  const name = `${subject.name}:${sbomTag(image.digest)}`;
  if ((await store.list()).some((e) => e.name === name)) return undefined;
  return writeImageSbom(store, image, subject, opts);
}

/**
 * The SBOM document of `image` for an OS image build: the stored artifact from the first of
 * `sources` that has one (the store, then the image's registry repository), else one generated
 * from the image's layers in `sources[0]` — for images built elsewhere (e.g. pulled from Docker
 * Hub) that carry no SBOM. `generated` says which.
 */
export async function loadOrGenerateSbom(
  sources: Source[],
  image: Descriptor,
  subject: SbomSubject,
  opts: SbomOptions = {},
): Promise<{ document: SpdxDocument; generated: boolean }> {
  const first = sources[0];
  if (!first) throw new SbomError('loadOrGenerateSbom: no source to read the image from');
  for (const src of sources) {
    const found = await findSbom(src, image.digest);
    if (found) return { document: found.document, generated: false };
  }
  return { document: (await generateSbom(first, image, subject, opts)).document, generated: true };
}
