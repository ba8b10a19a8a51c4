// An image's layers → its merged filesystem: the entry list the assembly core expands, in
// archive order, with OCI whiteouts applied (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties
// the directory of what earlier layers put there). The layers come unpacked from the layer cache
// (layercache.ts), so a regular file's contents are a byte range of a plain tar on disk that the
// writers read directly, in any order.
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { Descriptor, Store } from '@stele/oci';
import type { ImageFile } from '../assemble/index.ts';
import { BuildError } from './errors.ts';
import { type CachedEntry, type CachedLayer, unpackedLayer } from './layercache.ts';
import type { ResolvedImage } from './resolve.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Where a regular file's contents are: `size` bytes at `offset` of `file`. */
export interface ByteRange {
  file: string;
  offset: number;
  size: number;
}

export interface UnpackedImage {
  /** The merged filesystem, in archive order. */
  files: ImageFile[];
  /** A regular file's contents (hard links resolve to their target). */
  range(path: string): ByteRange;
  /** The same contents as a stream. */
  open(path: string): Readable;
  has(path: string): boolean;
}

interface Held {
  file: ImageFile;
  /** Index of the layer that put it there: whiteouts only hide lower layers. */
  layer: number;
  range?: ByteRange;
}

function normal(name: string): string {
  let p = posix.normalize(`/${name}`).slice(1);
  if (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Applies the layers (bottom first) in order: what is left is the image's filesystem. */
export function mergeLayers(layers: { tar: string; entries: CachedEntry[] }[]): Map<string, Held> {
  const held = new Map<string, Held>();
  const drop = (path: string, below = Number.POSITIVE_INFINITY) => {
    if ((held.get(path)?.layer ?? below) < below) held.delete(path);
    const prefix = `${path}/`;
    for (const [k, v] of held) if (k.startsWith(prefix) && v.layer < below) held.delete(k);
  };
  for (const [li, layer] of layers.entries()) {
    for (const e of layer.entries) {
      const path = normal(e.name);
      if (path === '' || e.type === 'other') continue;
      const base = posix.basename(path);
      const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
      if (base === OPAQUE) {
        // Everything earlier layers put below `dir` goes; the directory itself stays.
        const prefix = dir === '' ? '' : `${dir}/`;
        for (const [k, v] of held) if (k.startsWith(prefix) && k !== dir && v.layer < li) held.delete(k);
        continue;
      }
      if (base.startsWith(WHITEOUT)) {
        drop(dir === '' ? base.slice(WHITEOUT.length) : `${dir}/${base.slice(WHITEOUT.length)}`, li);
        continue;
      }
      const file: ImageFile = {
        path,
        type: e.type,
        mode: e.mode & 0o7777,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime,
        ...(e.linkname ? { linkname: e.type === 'hardlink' ? normal(e.linkname) : e.linkname } : {}),
        ...(e.type === 'char' || e.type === 'block' ? { devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 } : {}),
      };
      // A later entry for the same path replaces the earlier one (and moves to the end);
      // a directory over a directory keeps what is below it and its place, so it still comes
      // before its children (Docker layers repeat every parent directory; the kernel's
      // initramfs unpacker creates no missing parents).
      const before = held.get(path);
      if (before && !(before.file.type === 'dir' && e.type === 'dir')) drop(path);
      held.set(path, {
        file,
        layer: li,
        ...(e.type === 'file' ? { range: { file: layer.tar, offset: e.offset, size: e.size } } : {}),
      });
    }
  }
  return held;
}

/** The merged filesystem of an image's `layers` (bottom first); `diffIds` from its config. */
export async function unpackImage(
  store: Store,
  layers: Descriptor[],
  diffIds: readonly string[] | undefined,
  what: string,
): Promise<UnpackedImage> {
  const cached: CachedLayer[] = [];
  for (const [i, layer] of layers.entries()) {
    try {
      cached.push(await unpackedLayer(store, layer, diffIds?.[i]));
    } catch (err) {
      throw new BuildError(`${what}: ${(err as Error).message}`);
    }
  }
  const held = mergeLayers(cached);
  const rangeOf = (path: string, seen = 0): ByteRange => {
    const h = held.get(path);
    if (!h) throw new BuildError(`${what}: no file ${path} in the image`);
    if (h.file.type === 'hardlink' && h.file.linkname && seen < 16) return rangeOf(h.file.linkname, seen + 1);
    if (h.file.type !== 'file' || !h.range) throw new BuildError(`${what}: ${path} is not a regular file`);
    return h.range;
  };
  return {
    files: [...held.values()].map((h) => h.file),
    has: (path) => held.has(path),
    range: rangeOf,
    open(path) {
      const r = rangeOf(path);
      if (r.size === 0) return createReadStream('/dev/null');
      return createReadStream(r.file, { start: r.offset, end: r.offset + r.size - 1 });
    },
  };
}

/** The image config's rootfs.diff_ids: the uncompressed layers' digests. */
function diffIdsOf(r: ResolvedImage): string[] | undefined {
  const ids = (r.config as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
  return Array.isArray(ids) && ids.every((d) => typeof d === 'string') ? ids : undefined;
}

/**
 * The unpack stage, first half: every layer of the images gunzipped once into the store's layer
 * cache (two at a time: gunzip runs on libuv's threads); later builds read the files from there.
 */
export async function fillLayerCache(store: Store, images: ResolvedImage[]): Promise<void> {
  const jobs = new Map<string, { layer: Descriptor; diffId?: string }>();
  for (const r of images) {
    for (const [i, layer] of r.layers.entries()) {
      const diffId = diffIdsOf(r)?.[i];
      if (!jobs.has(layer.digest)) jobs.set(layer.digest, { layer, ...(diffId ? { diffId } : {}) });
    }
  }
  const queue = [...jobs.values()];
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      try {
        await unpackedLayer(store, job.layer, job.diffId);
      } catch (err) {
        const owner = images.find((r) => r.layers.some((l) => l.digest === job?.layer.digest));
        throw new BuildError(`${owner?.ref ?? 'image'}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all([worker(), worker()]);
}

/** The unpack stage, second half: each image's merged filesystem, by the reference the manifest writes. */
export async function unpackImages(store: Store, images: ResolvedImage[]): Promise<(ref: string) => UnpackedImage> {
  const unpacked = new Map<string, UnpackedImage>();
  for (const r of images) unpacked.set(r.ref, await unpackImage(store, r.layers, diffIdsOf(r), r.ref));
  return (ref) => {
    const u = unpacked.get(ref);
    if (!u) throw new BuildError(`image ${ref} was not resolved`);
    return u;
  };
}
