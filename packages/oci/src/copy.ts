import { pipeline } from 'node:stream/promises';
import {
  type Descriptor,
  formatPlatform,
  type ImageIndex,
  MAX_MANIFEST_BYTES,
  type Platform,
  parseManifest,
  platformMatches,
} from './descriptor.ts';
import { DigestVerifier, sha256 } from './digest.ts';
import { MediaType } from './mediatypes.ts';
import { RegistryError, Repository } from './registry/client.ts';
import type { Sink, Source } from './target.ts';

export type CopyEvent =
  | { type: 'blob-start'; digest: string; size: number }
  | { type: 'blob-progress'; digest: string; size: number; bytes: number }
  | { type: 'blob-done'; digest: string; size: number; ms: number }
  | { type: 'blob-skip'; digest: string; size: number; reason: 'exists' | 'mounted' }
  | { type: 'manifest'; digest: string; mediaType: string; tags: string[]; skipped: boolean };

export interface CopyOptions {
  /** Copy only these platforms' manifests out of an index (the index itself is copied as is). */
  platforms?: Platform[];
  /** Blobs moved at once (default 4). */
  concurrency?: number;
  onEvent?: (e: CopyEvent) => void;
}

export interface CopyResult {
  descriptor: Descriptor;
  blobsCopied: number;
  blobsSkipped: number;
  bytesCopied: number;
}

/** Runs `fn` over `items`, `limit` at a time; after a failure starts no more, waits for the running ones, rethrows. */
async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const errors: unknown[] = [];
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !failed) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        errors.push(err);
      }
    }
  });
  await Promise.all(workers);
  if (errors.length) throw errors[0];
}

/**
 * Copies the image or index `ref` names in `src` to `dst` under `tags` (for the store: reference
 * names). Blobs the destination already has are skipped (HEAD first), a manifest a registry
 * already has skips its blobs entirely (the store checks each one: it may hold a damaged blob),
 * and between two repositories of one registry blobs are mounted.
 */
export async function copy(
  src: Source,
  ref: string,
  dst: Sink,
  tags: string[],
  opts: CopyOptions = {},
): Promise<CopyResult> {
  const desc = await src.resolve(ref);
  const result: CopyResult = { descriptor: desc, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0 };
  await copyDescriptor(src, desc, dst, tags, opts, result);
  return result;
}

export async function copyDescriptor(
  src: Source,
  desc: Descriptor,
  dst: Sink,
  tags: string[],
  opts: CopyOptions,
  result: CopyResult,
): Promise<void> {
  const emit = opts.onEvent ?? (() => {});
  const bytes = await src.fetchManifest(desc);
  const m = parseManifest(bytes, desc.mediaType);
  if (m.kind === 'index') {
    const wanted = m.index.manifests.filter(
      (c) => !opts.platforms || !c.platform || opts.platforms.some((p) => platformMatches(c.platform, p)),
    );
    if (opts.platforms && !wanted.some((c) => c.platform)) {
      throw new Error(
        `no manifest for ${opts.platforms.map(formatPlatform).join(', ')} in ${desc.digest} (it has: ${m.index.manifests
          .map((c) => (c.platform ? formatPlatform(c.platform) : c.digest))
          .join(', ')})`,
      );
    }
    for (const child of wanted) await copyDescriptor(src, child, dst, [], opts, result);
  } else {
    const had = await dst.hasManifest(desc);
    // A registry that has a manifest has every blob it refers to.
    if (had && dst instanceof Repository) {
      const n = 1 + m.manifest.layers.length;
      result.blobsSkipped += n;
      emit({ type: 'manifest', digest: desc.digest, mediaType: desc.mediaType, tags, skipped: true });
      if (tags.length) await dst.pushManifest(desc, bytes, tags);
      return;
    }
    const config = m.manifest.config;
    if (src instanceof Repository && config.size > MAX_MANIFEST_BYTES) {
      throw new RegistryError(
        `${src.describe()}: the config ${config.digest} of ${desc.digest} is ${config.size} bytes, more than the ${MAX_MANIFEST_BYTES} a config may have`,
      );
    }
    const copied = result.blobsCopied;
    const blobs = [config, ...m.manifest.layers].filter((b) => !b.urls?.length);
    const mountFrom =
      src instanceof Repository &&
      dst instanceof Repository &&
      src.client.host === dst.client.host &&
      src.name !== dst.name
        ? src.name
        : undefined;
    await mapLimit(blobs, opts.concurrency ?? 4, async (b) => {
      if (await dst.hasBlob(b)) {
        result.blobsSkipped++;
        emit({ type: 'blob-skip', digest: b.digest, size: b.size, reason: 'exists' });
        return;
      }
      if (mountFrom && dst instanceof Repository && (await dst.mountBlob(b, mountFrom))) {
        result.blobsSkipped++;
        emit({ type: 'blob-skip', digest: b.digest, size: b.size, reason: 'mounted' });
        return;
      }
      const t0 = Date.now();
      let moved = 0;
      emit({ type: 'blob-start', digest: b.digest, size: b.size });
      await dst.pushBlob(
        b,
        () => src.fetchBlob(b),
        (n) => {
          moved += n;
          emit({ type: 'blob-progress', digest: b.digest, size: b.size, bytes: moved });
        },
      );
      result.blobsCopied++;
      result.bytesCopied += b.size;
      emit({ type: 'blob-done', digest: b.digest, size: b.size, ms: Date.now() - t0 });
    });
    if (had && result.blobsCopied === copied) {
      if (tags.length) await dst.pushManifest(desc, bytes, tags);
      emit({ type: 'manifest', digest: desc.digest, mediaType: desc.mediaType, tags, skipped: true });
      return;
    }
  }
  await dst.pushManifest(desc, bytes, tags);
  emit({ type: 'manifest', digest: desc.digest, mediaType: desc.mediaType, tags, skipped: false });
}

/** An OCI index over per-platform manifests. */
export function buildIndex(
  manifests: { descriptor: Descriptor; platform: Platform }[],
  annotations?: Record<string, string>,
): { descriptor: Descriptor; bytes: Buffer } {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: manifests.map(({ descriptor, platform }) => ({
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      platform,
    })),
    ...(annotations ? { annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { descriptor: { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length }, bytes };
}

/** The platform an image manifest's config declares. */
export async function platformOf(src: Source, desc: Descriptor): Promise<Platform> {
  const m = parseManifest(await src.fetchManifest(desc), desc.mediaType);
  if (m.kind !== 'manifest') throw new Error(`${desc.digest} is an index, not a single-platform image`);
  const config = m.manifest.config;
  if (config.size > MAX_MANIFEST_BYTES) {
    throw new Error(
      `the config of ${desc.digest} is ${config.size} bytes, more than the ${MAX_MANIFEST_BYTES} a config may have`,
    );
  }
  const chunks: Buffer[] = [];
  await pipeline(await src.fetchBlob(config), new DigestVerifier(config.digest, config.size), async (source) => {
    for await (const c of source) chunks.push(c as Buffer);
  });
  let cfg: { os?: unknown; architecture?: unknown; variant?: unknown } | null;
  try {
    cfg = JSON.parse(Buffer.concat(chunks).toString()) as typeof cfg;
  } catch {
    throw new Error(`the config of ${desc.digest} is not valid JSON`);
  }
  const { os, architecture, variant } = cfg ?? {};
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture) {
    throw new Error(`config of ${desc.digest} names no os/architecture`);
  }
  return { os, architecture, ...(typeof variant === 'string' && variant ? { variant } : {}) };
}

/**
 * Pushes per-platform images (refs in `src`) to `dst` as `<tag>-<os>-<arch>[-<variant>]`, then an
 * OCI index over them as `<tag>`.
 */
export async function pushMultiArch(
  src: Source,
  refs: string[],
  dst: Sink,
  tag: string,
  opts: CopyOptions = {},
): Promise<{ index: Descriptor; manifests: { descriptor: Descriptor; platform: Platform; tag: string }[] }> {
  const out: { descriptor: Descriptor; platform: Platform; tag: string }[] = [];
  for (const ref of refs) {
    const desc = await src.resolve(ref);
    const platform = await platformOf(src, desc);
    const archTag = `${tag}-${[platform.os, platform.architecture, platform.variant].filter(Boolean).join('-')}`;
    if (out.some((o) => o.tag === archTag)) throw new Error(`two images for ${formatPlatform(platform)}: ${ref}`);
    await copy(src, ref, dst, [archTag], opts);
    out.push({ descriptor: desc, platform, tag: archTag });
  }
  const { descriptor, bytes } = buildIndex(out);
  await dst.pushManifest(descriptor, bytes, [tag]);
  opts.onEvent?.({
    type: 'manifest',
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    tags: [tag],
    skipped: false,
  });
  return { index: descriptor, manifests: out };
}
