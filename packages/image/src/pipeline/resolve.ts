// Image references → digests for one platform: the local store first, the registry when the store
// lacks an image (or always, with `pull`). LinuxKit `@pkg:PATH` templates become the package's
// `org/image:tag` first. The result is pinned in a lock file beside the manifest.
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { OsManifest } from '@stele/manifest';
import { pkgTemplatePath } from '@stele/manifest';
import {
  copy,
  type Descriptor,
  formatPlatform,
  formatReference,
  type ImageManifest,
  isIndexType,
  type Platform,
  parseManifest,
  parseReference,
  RegistryClient,
  type RegistryOptions,
  referenceTarget,
  type Source,
  type Store,
  selectPlatform,
} from '@stele/oci';
import { gitCli, loadPackage } from '@stele/pkg';
import type { OciImageConfig } from '../assemble/index.ts';
import { writeJsonAtomic } from './atomic.ts';
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
  const name = formatReference(r);
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
      throw new BuildError(
        `image ${ref} is not in the store ${opts.store.describe()} (and --offline forbids the registry)`,
      );
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
          `image ${ref} is neither in the store ${opts.store.describe()} nor available from ${r.registry}: ${(err as Error).message}`,
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

export interface LockFile {
  version: 1;
  platform: string;
  images: Record<string, { name: string; digest: string; manifest: string }>;
}

export function lockOf(images: ResolvedImage[], platform: Platform): LockFile {
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
