// Image references → digests for one platform: the local store first, the registry when the store
// lacks an image (or always, with `pull`). LinuxKit `@pkg:PATH` templates become the package's
// `org/image:tag` first. The result is pinned in a lock file beside the manifest.
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { OsManifest } from '@stele/manifest';
import { formatImageRef, pkgTemplatePath } from '@stele/manifest';
import {
  type CopyResult,
  copy,
  copyDescriptor,
  type Descriptor,
  formatPlatform,
  type ImageIndex,
  type ImageManifest,
  isIndexType,
  isManifestType,
  type Platform,
  parseManifest,
  parseReference,
  platformMatches,
  RegistryClient,
  type RegistryOptions,
  referenceTarget,
  type Source,
  type Store,
  selectPlatform,
  writeJsonAtomic,
} from '@stele/oci';
import { gitCli, loadPackage } from '@stele/pkg';
import type { OciImageConfig } from '../assemble/index.ts';
import { BuildError } from './errors.ts';

export interface ResolvedImage {
  /** The reference as the (template-expanded) manifest writes it. */
  ref: string;
  /** Fully qualified name: the store's name for it. */
  name: string;
  /** What the name points at: an index or a single manifest. */
  top: Descriptor;
  /** The image manifest for the wanted platform. */
  manifest: Descriptor;
  layers: Descriptor[];
  config: { config?: OciImageConfig; architecture?: string; os?: string };
}

export interface ResolveOptions {
  store: Store;
  platform: Platform;
  /** Ask the registry even when the store has the image. */
  pull?: boolean;
  /** Never talk to a registry. */
  offline?: boolean;
  registry?: (host: string) => RegistryOptions;
  onEvent?: (e: { type: 'resolve'; ref: string; from: 'store' | 'registry'; digest: string }) => void;
}

/** Every image reference of a manifest, in manifest order, without duplicates. */
export function manifestRefs(m: OsManifest): string[] {
  const refs = [
    ...(m.kernel?.image ? [m.kernel.image] : []),
    ...(m.init ?? []),
    ...[...(m.onboot ?? []), ...(m.onshutdown ?? []), ...(m.services ?? [])].map((e) => e.image),
    ...(m.volumes ?? []).flatMap((v) => (v.image ? [v.image] : [])),
  ];
  return [...new Set(refs)];
}

/**
 * Replaces `@pkg:PATH` values (relative to the manifest's directory) by the package's
 * `org/image:tag`, as `linuxkit pkg show-tag` prints it; `org` overrides build.yml's org.
 */
export async function expandTemplates(m: OsManifest, manifestDir: string, org?: string): Promise<OsManifest> {
  const cache = new Map<string, string>();
  const git = gitCli();
  const expand = async (value: string): Promise<string> => {
    const path = pkgTemplatePath(value);
    if (path === undefined) return value;
    const dir = resolvePath(manifestDir, path.trim());
    let ref = cache.get(dir);
    if (!ref) {
      try {
        ref = (await loadPackage(dir, { git, ...(org ? { org } : {}) })).ref;
      } catch (err) {
        throw new BuildError(`${value}: ${(err as Error).message}`);
      }
      cache.set(dir, ref);
    }
    return ref;
  };
  const entries = async <T extends { image: string }>(list: T[] | undefined) =>
    list ? Promise.all(list.map(async (e) => ({ ...e, image: await expand(e.image) }))) : list;
  const out: OsManifest = { ...m };
  if (m.kernel?.image) out.kernel = { ...m.kernel, image: await expand(m.kernel.image) };
  if (m.init) out.init = await Promise.all(m.init.map(expand));
  if (m.onboot) out.onboot = await entries(m.onboot);
  if (m.onshutdown) out.onshutdown = await entries(m.onshutdown);
  if (m.services) out.services = await entries(m.services);
  if (m.volumes) {
    out.volumes = await Promise.all(m.volumes.map(async (v) => (v.image ? { ...v, image: await expand(v.image) } : v)));
  }
  return out;
}

function qualified(ref: string): ReturnType<typeof parseReference> {
  try {
    return parseReference(ref);
  } catch (err) {
    throw new BuildError(`image ${ref}: ${(err as Error).message}`);
  }
}

async function readJson<T>(src: Source, desc: Descriptor): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const c of await src.fetchBlob(desc)) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

/** Opens registries lazily, one client per host, and closes them all at the end. */
export class Registries {
  private readonly clients = new Map<string, RegistryClient>();
  constructor(private readonly options: (host: string) => RegistryOptions = () => ({})) {}
  client(host: string): RegistryClient {
    let c = this.clients.get(host);
    if (!c) {
      c = new RegistryClient(host, this.options(host));
      this.clients.set(host, c);
    }
    return c;
  }
  async close(): Promise<void> {
    await Promise.allSettled([...this.clients.values()].map((c) => c.close()));
  }
}

/** Resolves one reference for `opts.platform`, fetching it into the store when needed. */
export async function resolveImage(ref: string, opts: ResolveOptions, registries: Registries): Promise<ResolvedImage> {
  const r = qualified(ref);
  const name = formatImageRef(r);
  // In the store only if it also holds the manifest for this platform: an index fetched for
  // another arch brought only that arch's manifest along.
  const inStore = async () => {
    const d = await opts.store.resolve(r.digest ?? name).catch(() => undefined);
    if (!d || !isIndexType(d.mediaType)) return d;
    try {
      const idx = parseManifest(await opts.store.fetchManifest(d), d.mediaType);
      if (idx.kind !== 'index') return d;
      return (await opts.store.hasManifest(selectPlatform(idx.index, opts.platform))) ? d : undefined;
    } catch {
      return d; // no such platform: reported below, with the image named
    }
  };
  let top = opts.pull ? undefined : await inStore();
  let from: 'store' | 'registry' = 'store';
  if (!top) {
    if (opts.offline) {
      throw new BuildError(`image ${ref} is not in the ${opts.store.describe()} (and --offline forbids the registry)`);
    }
    const repo = registries.client(r.registry).repository(r.repository);
    try {
      const res = await copy(repo, referenceTarget(r), opts.store, r.digest ? [] : [name], {
        platforms: [opts.platform],
      });
      top = res.descriptor;
      if (r.digest && top.digest !== r.digest) {
        throw new BuildError(`image ${ref}: the registry returned ${top.digest}, not the pinned digest`);
      }
      from = 'registry';
    } catch (err) {
      if (err instanceof BuildError) throw err;
      const cached = opts.pull ? await inStore() : undefined;
      if (!cached) {
        throw new BuildError(
          `image ${ref} is neither in the ${opts.store.describe()} nor available from ${r.registry}: ${(err as Error).message}`,
        );
      }
      top = cached;
    }
  }
  if (r.digest && top.digest !== r.digest) {
    throw new BuildError(`image ${ref}: digest mismatch: the store has ${top.digest}`);
  }
  const src = opts.store;
  let manifestDesc = top;
  let parsed = parseManifest(await src.fetchManifest(top), top.mediaType);
  if (parsed.kind === 'index') {
    try {
      manifestDesc = selectPlatform(parsed.index, opts.platform);
    } catch (err) {
      throw new BuildError(`image ${ref}: ${(err as Error).message}`);
    }
    parsed = parseManifest(await src.fetchManifest(manifestDesc), manifestDesc.mediaType);
    if (parsed.kind !== 'manifest')
      throw new BuildError(`image ${ref}: nested index for ${formatPlatform(opts.platform)}`);
  }
  const manifest: ImageManifest = parsed.manifest;
  const config = await readJson<ResolvedImage['config']>(src, manifest.config);
  if (config.architecture && config.architecture !== opts.platform.architecture) {
    throw new BuildError(
      `image ${ref} is for ${config.os ?? 'linux'}/${config.architecture}, not ${formatPlatform(opts.platform)}`,
    );
  }
  opts.onEvent?.({ type: 'resolve', ref, from, digest: top.digest });
  return { ref, name, top, manifest: manifestDesc, layers: manifest.layers, config };
}

/** A `format: oci` volume's image: what its OCI image layout holds. */
export interface ResolvedOciVolume {
  /** The reference as the (template-expanded) manifest writes it. */
  ref: string;
  /** Fully qualified name: the store's name for it, and the layout's `ref.name` annotation. */
  name: string;
  /** What the name points at: an index or a single manifest. */
  top: Descriptor;
  /**
   * The selected image manifests, as the index lists them (with their platform). For a single
   * manifest: `top` itself, with the platform its config declares.
   */
  manifests: Descriptor[];
}

/** What the manifest schema accepts for `volumes[].platforms`: `os/arch[/variant]`. */
const VOLUME_PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

/**
 * A volume's `platforms` list → platforms. `where` names the volume in errors (`volumes[2]`);
 * without it the error names the image.
 */
export function parseVolumePlatforms(platforms: string[], ref: string, where?: string): Platform[] {
  return platforms.map((s) => {
    if (!VOLUME_PLATFORM.test(s)) {
      const what = where ? `${where}.platforms` : `image ${ref}: volume platforms`;
      throw new BuildError(`${what}: malformed platform '${s}' (want os/arch[/variant], e.g. linux/amd64)`);
    }
    const [os = '', architecture = '', variant] = s.split('/');
    return variant ? { os, architecture, variant } : { os, architecture };
  });
}

function offeredPlatforms(index: ImageIndex): string {
  const all = index.manifests.filter((d) => isManifestType(d.mediaType) && d.platform);
  const names = [...new Set(all.map((d) => formatPlatform(d.platform as Platform)))];
  return names.length ? names.join(', ') : 'no platforms';
}

/**
 * The image manifests of `index` a volume for `want` gets: all of them when `want` is empty,
 * else those matching one of `want` (os and architecture; the variant when `want` gives one).
 * Every wanted platform must match something.
 */
function selectVolumeManifests(ref: string, index: ImageIndex, want: Platform[]): Descriptor[] {
  const images = index.manifests.filter((d) => isManifestType(d.mediaType));
  if (!want.length) return images;
  const missing = want.filter((p) => !images.some((d) => platformMatches(d.platform, p)));
  if (missing.length) {
    throw new BuildError(
      `image ${ref} has no ${missing.map(formatPlatform).join(', ')} (it has: ${offeredPlatforms(index)})`,
    );
  }
  return images.filter((d) => want.some((p) => platformMatches(d.platform, p)));
}

/** The platform a single manifest's config declares, if it declares one. */
async function configPlatform(src: Source, manifest: ImageManifest): Promise<Platform | undefined> {
  const cfg = await readJson<{ os?: unknown; architecture?: unknown; variant?: unknown }>(src, manifest.config);
  if (typeof cfg.os !== 'string' || typeof cfg.architecture !== 'string' || !cfg.os || !cfg.architecture) {
    return undefined;
  }
  return {
    architecture: cfg.architecture,
    os: cfg.os,
    ...(typeof cfg.variant === 'string' && cfg.variant ? { variant: cfg.variant } : {}),
  };
}

/**
 * The selected manifests of `top` as `store` has it. Throws BuildError when a wanted platform is
 * not there, a plain Error when the store lacks the top manifest (or a single image's config).
 */
async function volumeManifests(store: Store, ref: string, top: Descriptor, want: Platform[]): Promise<Descriptor[]> {
  const parsed = parseManifest(await store.fetchManifest(top), top.mediaType);
  if (parsed.kind === 'index') return selectVolumeManifests(ref, parsed.index, want);
  const platform = await configPlatform(store, parsed.manifest);
  const bad = want.filter((p) => !platformMatches(platform, p));
  if (bad.length) {
    throw new BuildError(
      `image ${ref} is a single image for ${platform ? formatPlatform(platform) : 'an unnamed platform'}, not ${bad
        .map(formatPlatform)
        .join(', ')}`,
    );
  }
  return [{ mediaType: top.mediaType, digest: top.digest, size: top.size, ...(platform ? { platform } : {}) }];
}

/**
 * The first blob of `manifests` (each manifest, its config, its layers) that the store lacks, or
 * undefined when it has them all. Layers with `urls` (foreign layers) are never copied, so their
 * absence does not count.
 */
async function firstMissingBlob(store: Store, manifests: Descriptor[]): Promise<string | undefined> {
  for (const m of manifests) {
    if (!(await store.hasManifest(m))) return m.digest;
    const parsed = parseManifest(await store.fetchManifest(m), m.mediaType);
    if (parsed.kind !== 'manifest') continue; // reported by ociLayoutEntries
    for (const b of [parsed.manifest.config, ...parsed.manifest.layers]) {
      if (b.urls?.length) continue;
      if (!(await store.hasBlob(b))) return b.digest;
    }
  }
  return undefined;
}

/**
 * Resolves the image of a `format: oci` volume: all of its platforms (`platforms` empty), or the
 * listed ones — never the build's platform. The store is used when it holds every selected
 * manifest with its config and layers; otherwise (or always, with `pull`) the registry, which
 * copies only the selected platforms into the store (the index itself is kept as it is).
 * `where` (e.g. `volumes[2]`) names the volume in platform syntax errors.
 */
export async function resolveOciVolume(
  ref: string,
  platforms: string[],
  opts: Omit<ResolveOptions, 'platform'>,
  registries: Registries,
  where?: string,
): Promise<ResolvedOciVolume> {
  const want = parseVolumePlatforms(platforms, ref, where);
  const r = qualified(ref);
  const name = formatImageRef(r);
  const store = opts.store;
  const wanted = want.length ? want.map(formatPlatform).join(', ') : 'all platforms';

  // The store's answer: complete, a platform it lacks (a BuildError), or nothing usable.
  const fromStore = async (): Promise<ResolvedOciVolume | BuildError | undefined> => {
    const top = await store.resolve(r.digest ?? name).catch(() => undefined);
    if (!top) return undefined;
    try {
      const manifests = await volumeManifests(store, ref, top, want);
      return (await firstMissingBlob(store, manifests)) ? undefined : { ref, name, top, manifests };
    } catch (err) {
      return err instanceof BuildError ? err : undefined;
    }
  };

  let found = opts.pull ? undefined : await fromStore();
  let from: 'store' | 'registry' = 'store';
  if (!found || found instanceof BuildError) {
    if (opts.offline) {
      if (found) throw found;
      throw new BuildError(
        `image ${ref} (${wanted}) is not complete in the ${store.describe()} (and --offline forbids the registry)`,
      );
    }
    const repo = registries.client(r.registry).repository(r.repository);
    try {
      const top = await repo.resolve(referenceTarget(r));
      if (r.digest && top.digest !== r.digest) {
        throw new BuildError(`image ${ref}: the registry returned ${top.digest}, not the pinned digest`);
      }
      // Check the platforms before copying anything, so a missing one is reported as such.
      const parsed = parseManifest(await repo.fetchManifest(top), top.mediaType);
      if (parsed.kind === 'index') selectVolumeManifests(ref, parsed.index, want);
      const result: CopyResult = { descriptor: top, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0 };
      await copyDescriptor(repo, top, store, r.digest ? [] : [name], want.length ? { platforms: want } : {}, result);
      const manifests = await volumeManifests(store, ref, top, want);
      const missing = await firstMissingBlob(store, manifests);
      if (missing) throw new BuildError(`image ${ref}: blob ${missing} is missing after the pull from ${r.registry}`);
      found = { ref, name, top, manifests };
      from = 'registry';
    } catch (err) {
      if (err instanceof BuildError) throw err;
      const cached = opts.pull ? await fromStore() : found;
      if (cached instanceof BuildError) throw cached;
      if (!cached) {
        throw new BuildError(
          `image ${ref} (${wanted}) is neither in the ${store.describe()} nor available from ${r.registry}: ${(err as Error).message}`,
        );
      }
      found = cached;
    }
  }
  if (r.digest && found.top.digest !== r.digest) {
    throw new BuildError(`image ${ref}: digest mismatch: the store has ${found.top.digest}`);
  }
  opts.onEvent?.({ type: 'resolve', ref, from, digest: found.top.digest });
  return found;
}

export interface LockFile {
  version: 1;
  platform: string;
  images: Record<string, { name: string; digest: string; manifest: string }>;
}

export function lockOf(
  images: Pick<ResolvedImage, 'ref' | 'name' | 'top' | 'manifest'>[],
  platform: Platform,
): LockFile {
  const entries = [...images]
    .sort((a, b) => a.ref.localeCompare(b.ref))
    .map((i) => [i.ref, { name: i.name, digest: i.top.digest, manifest: i.manifest.digest }] as const);
  return { version: 1, platform: formatPlatform(platform), images: Object.fromEntries(entries) };
}

export async function readLock(path: string): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const lock = JSON.parse(text) as LockFile;
    if (lock.version !== 1 || typeof lock.images !== 'object') throw new Error('unknown lock format');
    return lock;
  } catch (err) {
    throw new BuildError(`${path}: ${(err as Error).message}`);
  }
}

/** Why `lock` does not pin exactly `want`, or undefined when it does. */
export function lockDifference(lock: LockFile, want: LockFile): string | undefined {
  if (lock.platform !== want.platform) return `it is for ${lock.platform}, not ${want.platform}`;
  for (const [ref, w] of Object.entries(want.images)) {
    const l = lock.images[ref];
    if (!l) return `${ref} is not in it`;
    if (l.digest !== w.digest) return `${ref} now resolves to ${w.digest}, the lock says ${l.digest}`;
  }
  const extra = Object.keys(lock.images).find((ref) => !(ref in want.images));
  return extra ? `it pins ${extra}, which the manifest no longer uses` : undefined;
}

export async function writeLock(path: string, lock: LockFile): Promise<void> {
  await writeJsonAtomic(path, lock);
}
