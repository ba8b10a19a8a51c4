/**
 * The final filesystem of an image, as far as an SBOM needs it, read by streaming its layers in
 * order (nothing is unpacked to disk). Every regular file gets its size and SHA-256/SHA-1;
 * the few files package databases live in are kept in memory. OCI whiteouts apply between
 * layers: `.wh.NAME` deletes NAME (and what was under it) from the layers below, `.wh..wh..opq`
 * empties its directory of what the layers below put there; a non-directory replacing a
 * directory drops the directory's contents.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { type Descriptor, MediaType, type Source } from '@stele/oci';
import { extract } from 'tar-stream';

export interface RootfsFile {
  /** Path without a leading `/` or `./`. */
  path: string;
  type: 'file' | 'symlink' | 'directory' | 'other';
  size: number;
  sha256?: string;
  sha1?: string;
  mode?: number;
  /** Symlink target. */
  linkname?: string;
}

export interface Rootfs {
  /** Every path in the final filesystem. */
  files: Map<string, RootfsFile>;
  /** Contents of the files `keep` selected (as they are in the final filesystem). */
  contents: Map<string, Buffer>;
}

export interface RootfsOptions {
  /** Which files' contents to keep in memory (paths without leading `/`). */
  keep: (path: string) => boolean;
  /** A kept file larger than this is an error (default 64 MiB). */
  maxKeep?: number;
  /** Hash regular files (default true). */
  hash?: boolean;
}

/** Where a layer failed to read: names the layer so the message is actionable. */
export class RootfsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RootfsError';
  }
}

export function normalPath(name: string): string {
  let p = name.replace(/^(\.\/|\/)+/, '');
  while (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '.') return '';
  return p;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

function gzipMagic(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function zstdMagic(b: Buffer): boolean {
  return b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;
}

/** The tar stream of a layer blob: gunzipped when the media type (or the bytes) say gzip. */
async function layerTar(src: Source, layer: Descriptor): Promise<Readable> {
  const raw = await src.fetchBlob(layer);
  // Peek at the first chunk: a media type can lie (docker's "tar" that is gzipped).
  const it = raw[Symbol.asyncIterator]();
  const first = await it.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : (first.value as Buffer);
  const rest = Readable.from(
    (async function* () {
      if (head.length) yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value as Buffer;
      }
    })(),
  );
  if (zstdMagic(head) || layer.mediaType === MediaType.OciLayerZstd) {
    rest.destroy();
    throw new RootfsError(`layer ${layer.digest} is zstd-compressed, which this SBOM reader does not support`);
  }
  if (gzipMagic(head)) {
    const gunzip = createGunzip();
    rest.on('error', (e) => gunzip.destroy(e));
    return rest.pipe(gunzip);
  }
  return rest;
}

interface LayerChanges {
  added: Map<string, RootfsFile>;
  contents: Map<string, Buffer>;
  whiteouts: string[];
  opaque: string[];
}

function under(dir: string, path: string): boolean {
  return dir === '' ? path !== '' : path.startsWith(`${dir}/`);
}

function removeTree(rootfs: Rootfs, dir: string, self: boolean): void {
  for (const p of [...rootfs.files.keys()]) {
    if ((self && p === dir) || under(dir, p)) {
      rootfs.files.delete(p);
      rootfs.contents.delete(p);
    }
  }
}

async function readLayer(
  src: Source,
  layer: Descriptor,
  lower: Rootfs,
  opts: Required<RootfsOptions>,
): Promise<LayerChanges> {
  const changes: LayerChanges = { added: new Map(), contents: new Map(), whiteouts: [], opaque: [] };
  const tar = await layerTar(src, layer);
  const ex = extract();
  tar.on('error', (e) => ex.destroy(e));
  tar.pipe(ex);
  for await (const entry of ex) {
    const h = entry.header;
    const path = normalPath(h.name);
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    const base = path.slice(slash + 1);
    if (base === OPAQUE) {
      changes.opaque.push(dir);
      entry.resume();
      continue;
    }
    if (base.startsWith(WHITEOUT)) {
      const target = `${dir ? `${dir}/` : ''}${base.slice(WHITEOUT.length)}`;
      changes.whiteouts.push(target);
      entry.resume();
      continue;
    }
    if (path === '') {
      entry.resume();
      continue;
    }
    if (h.type === 'file' || h.type === 'contiguous-file') {
      const s256 = opts.hash ? createHash('sha256') : undefined;
      const s1 = opts.hash ? createHash('sha1') : undefined;
      const keep = opts.keep(path);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of entry) {
        const b = c as Buffer;
        size += b.length;
        s256?.update(b);
        s1?.update(b);
        if (keep) {
          if (size > opts.maxKeep) {
            throw new RootfsError(`/${path} in layer ${layer.digest} is larger than ${opts.maxKeep} bytes`);
          }
          chunks.push(b);
        }
      }
      changes.added.set(path, {
        path,
        type: 'file',
        size,
        ...(s256 && s1 ? { sha256: s256.digest('hex'), sha1: s1.digest('hex') } : {}),
        ...(h.mode !== undefined ? { mode: h.mode } : {}),
      });
      if (keep) changes.contents.set(path, Buffer.concat(chunks));
      else changes.contents.delete(path);
      continue;
    }
    entry.resume();
    if (h.type === 'link') {
      // A hard link: the same content as its target, in this layer or below.
      const target = normalPath(h.linkname ?? '');
      const info = changes.added.get(target) ?? lower.files.get(target);
      if (!info) throw new RootfsError(`/${path} in layer ${layer.digest} links to /${target}, which does not exist`);
      changes.added.set(path, { ...info, path });
      const content = changes.contents.get(target) ?? lower.contents.get(target);
      if (content && opts.keep(path)) changes.contents.set(path, content);
      continue;
    }
    const type = h.type === 'symlink' ? 'symlink' : h.type === 'directory' ? 'directory' : 'other';
    changes.added.set(path, {
      path,
      type,
      size: 0,
      ...(h.mode !== undefined ? { mode: h.mode } : {}),
      ...(type === 'symlink' && h.linkname ? { linkname: h.linkname } : {}),
    });
    changes.contents.delete(path);
  }
  return changes;
}

/** Reads the layers of an image manifest, bottom to top, into its final filesystem. */
export async function readRootfs(src: Source, layers: Descriptor[], options: RootfsOptions): Promise<Rootfs> {
  const opts: Required<RootfsOptions> = { maxKeep: 64 * 1024 * 1024, hash: true, ...options };
  const rootfs: Rootfs = { files: new Map(), contents: new Map() };
  for (const layer of layers) {
    let changes: LayerChanges;
    try {
      changes = await readLayer(src, layer, rootfs, opts);
    } catch (err) {
      if (err instanceof RootfsError) throw err;
      throw new RootfsError(`reading layer ${layer.digest}: ${(err as Error).message}`);
    }
    // Whiteouts and opaque markers hide what the layers below have, never this layer's own entries.
    for (const dir of changes.opaque) removeTree(rootfs, dir, false);
    for (const p of changes.whiteouts) removeTree(rootfs, p, true);
    for (const [p, info] of changes.added) {
      if (info.type !== 'directory' && rootfs.files.get(p)?.type === 'directory') removeTree(rootfs, p, false);
      rootfs.files.set(p, info);
      const c = changes.contents.get(p);
      if (c) rootfs.contents.set(p, c);
      else rootfs.contents.delete(p);
    }
  }
  return rootfs;
}
