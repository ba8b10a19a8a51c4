import { type Digest, parseDigest } from './digest.ts';
import { parseJson } from './json.ts';
import { isIndexType, isManifestType, MediaType } from './mediatypes.ts';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type Manifest = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

/**
 * The most bytes a manifest, index or image config may have: they are read whole into memory.
 * (Registries put the same limit on manifests.)
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The annotation LinuxKit's cache (and the OCI image layout) name index.json entries by. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o !== 'object') throw new Error(`${where}: not a descriptor`);
  if (typeof o.mediaType !== 'string') throw new Error(`${where}.mediaType: missing`);
  if (typeof o.digest !== 'string') throw new Error(`${where}.digest: missing`);
  parseDigest(o.digest);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new Error(`${where}.size: not a non-negative integer`);
  }
  const strings = (v: unknown) =>
    typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
  if (o.annotations !== undefined && (!strings(o.annotations) || Array.isArray(o.annotations))) {
    throw new Error(`${where}.annotations: not a map of strings`);
  }
  if (o.urls !== undefined && (!Array.isArray(o.urls) || !strings(o.urls))) {
    throw new Error(`${where}.urls: not a list of strings`);
  }
  const p = o.platform;
  if (
    p !== undefined &&
    (typeof p !== 'object' || p === null || typeof p.os !== 'string' || typeof p.architecture !== 'string')
  ) {
    throw new Error(`${where}.platform: wants os and architecture`);
  }
  return o as Descriptor;
}

/**
 * Parses manifest or index bytes. `mediaType` is what the registry or descriptor said; the
 * document's own mediaType wins when present, and shape decides when neither says.
 */
export function parseManifest(bytes: Buffer | string, mediaType?: string): Manifest {
  let doc: Record<string, unknown>;
  try {
    doc = parseJson(bytes.toString()) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`manifest is ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('manifest is not a JSON object');
  if (doc.schemaVersion !== 2) {
    throw new Error(`unsupported manifest schemaVersion ${JSON.stringify(doc.schemaVersion ?? null).slice(0, 40)}`);
  }
  const type = typeof doc.mediaType === 'string' ? doc.mediaType : mediaType;
  const looksIndex = Array.isArray(doc.manifests);
  if (isIndexType(type) || (!isManifestType(type) && looksIndex)) {
    if (!looksIndex) throw new Error('index has no manifests array');
    (doc.manifests as unknown[]).forEach((m, i) => {
      checkDescriptor(m, `manifests[${i}]`);
    });
    return { kind: 'index', index: doc as unknown as ImageIndex };
  }
  checkDescriptor(doc.config, 'config');
  if (!Array.isArray(doc.layers)) throw new Error('manifest has no layers array');
  (doc.layers as unknown[]).forEach((l, i) => {
    checkDescriptor(l, `layers[${i}]`);
  });
  return { kind: 'manifest', manifest: doc as unknown as ImageManifest };
}

/** The media type a manifest document declares, else the one implied by its shape. */
export function manifestMediaType(bytes: Buffer | string): string {
  let doc: { mediaType?: unknown; manifests?: unknown } | null;
  try {
    doc = parseJson(bytes.toString()) as typeof doc;
  } catch (err) {
    throw new Error(`manifest is ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object') throw new Error('manifest is not a JSON object');
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  return Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
}

/** Every blob a manifest refers to (config first, then layers), or the children of an index. */
export function children(m: Manifest): Descriptor[] {
  return m.kind === 'index' ? m.index.manifests : [m.manifest.config, ...m.manifest.layers];
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new Error(`malformed platform '${s}' (want os/arch[/variant], e.g. linux/amd64)`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function normalVariant(p: Platform): string | undefined {
  if (p.variant) return p.variant;
  if (p.architecture === 'arm64') return 'v8';
  return undefined;
}

/** Does `candidate` run on `want`? A wanted variant must match; an unset one matches any. */
export function platformMatches(candidate: Platform | undefined, want: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== want.os || candidate.architecture !== want.architecture) return false;
  if (want.variant && normalVariant(candidate) !== normalVariant(want)) return false;
  return true;
}

/** The index entry for `want`, or an error listing what the index offers. */
export function selectPlatform(index: ImageIndex, want: Platform): Descriptor {
  const hit = index.manifests.find((d) => isManifestType(d.mediaType) && platformMatches(d.platform, want));
  if (hit) return hit;
  const offered = index.manifests
    .filter((d) => d.platform)
    .map((d) => formatPlatform(d.platform as Platform))
    .join(', ');
  throw new Error(`no image for ${formatPlatform(want)} in the index (it has: ${offered || 'no platforms'})`);
}

/** Host platform in OCI terms. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}
