// An image's layers → its merged filesystem: the entry list the assembly core expands, in
// archive order, with OCI whiteouts applied (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties
// the directory of what earlier layers put there). Regular file contents are spooled to a temp
// directory as they stream past, so nothing big is held in memory and any file can be read back
// in any order while the initrd is written.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Descriptor, Source } from '@stele/oci';
import { extract, type Header } from 'tar-stream';
import type { ImageFile } from '../assemble/index.ts';
import { BuildError } from './errors.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface UnpackedImage {
  /** The merged filesystem, in archive order. */
  files: ImageFile[];
  /** A regular file's contents (hard links resolve to their target). */
  open(path: string): Readable;
  /** Size in bytes of a regular file's contents. */
  size(path: string): Promise<number>;
  has(path: string): boolean;
}

interface Held {
  file: ImageFile;
  /** Index of the layer that put it there: whiteouts only hide lower layers. */
  layer: number;
  /** Spool file of a regular file's contents. */
  spool?: string;
}

function normal(name: string): string {
  let p = posix.normalize(`/${name}`).slice(1);
  if (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function typeOf(h: Header): ImageFile['type'] | undefined {
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    case 'character-device':
      return 'char';
    case 'block-device':
      return 'block';
    case 'fifo':
      return 'fifo';
    default:
      return undefined; // pax headers are folded in by tar-stream; anything else is skipped
  }
}

/** Gzip or plain tar, by the first bytes (layers may be either). */
async function layerStream(src: Source, layer: Descriptor): Promise<Readable> {
  const blob = await src.fetchBlob(layer);
  if (/zstd/.test(layer.mediaType)) {
    blob.destroy();
    throw new BuildError(`layer ${layer.digest} is zstd-compressed, which Node 20 cannot read`);
  }
  const gz =
    layer.mediaType.endsWith('gzip') || layer.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  return gz ? blob.pipe(createGunzip()) : blob;
}

/**
 * Unpacks `layers` (bottom first) from `src`, spooling file contents under `spoolDir` (which the
 * caller removes). `what` names the image in errors.
 */
export async function unpackLayers(
  src: Source,
  layers: Descriptor[],
  spoolDir: string,
  what: string,
): Promise<UnpackedImage> {
  await mkdir(spoolDir, { recursive: true });
  const held = new Map<string, Held>();
  let n = 0;
  const drop = (path: string, below = Number.POSITIVE_INFINITY) => {
    if ((held.get(path)?.layer ?? below) < below) held.delete(path);
    const prefix = `${path}/`;
    for (const [k, v] of held) if (k.startsWith(prefix) && v.layer < below) held.delete(k);
  };
  for (const [li, layer] of layers.entries()) {
    const ex = extract();
    const done = new Promise<void>((resolve, reject) => {
      ex.on('entry', (h, stream, next) => {
        const fail = (err: unknown) => {
          stream.resume();
          reject(err);
        };
        const path = normal(h.name);
        const base = posix.basename(path);
        const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
        const skip = () => {
          stream.on('end', next);
          stream.resume();
        };
        if (path === '') return skip();
        if (base === OPAQUE) {
          // Everything earlier layers put below `dir` goes; the directory itself stays.
          const prefix = dir === '' ? '' : `${dir}/`;
          for (const [k, v] of held) if (k.startsWith(prefix) && k !== dir && v.layer < li) held.delete(k);
          return skip();
        }
        if (base.startsWith(WHITEOUT)) {
          drop(dir === '' ? base.slice(WHITEOUT.length) : `${dir}/${base.slice(WHITEOUT.length)}`, li);
          return skip();
        }
        const type = typeOf(h);
        if (!type) return skip();
        const file: ImageFile = {
          path,
          type,
          mode: (h.mode ?? 0o644) & 0o7777,
          uid: h.uid ?? 0,
          gid: h.gid ?? 0,
          mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
          ...(h.linkname ? { linkname: type === 'hardlink' ? normal(h.linkname) : h.linkname } : {}),
          ...(type === 'char' || type === 'block' ? { devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 } : {}),
        };
        // A later entry for the same path replaces the earlier one (and moves to the end);
        // a directory over a directory keeps what is below it and its place, so it still comes
        // before its children (Docker layers repeat every parent directory; the kernel's
        // initramfs unpacker creates no missing parents).
        const before = held.get(path);
        if (before && !(before.file.type === 'dir' && type === 'dir')) drop(path);
        if (type !== 'file') {
          held.set(path, { file, layer: li });
          return skip();
        }
        const spool = join(spoolDir, `${li}-${n++}`);
        pipeline(stream, createWriteStream(spool))
          .then(() => {
            held.set(path, { file, layer: li, spool });
            next();
          })
          .catch(fail);
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
    });
    try {
      await Promise.all([pipeline(await layerStream(src, layer), ex), done]);
    } catch (err) {
      if (err instanceof BuildError) throw err;
      throw new BuildError(`${what}: layer ${layer.digest}: ${(err as Error).message}`);
    }
  }
  const files = [...held.values()].map((h) => h.file);
  const spoolOf = (path: string, seen = 0): string => {
    const h = held.get(path);
    if (!h) throw new BuildError(`${what}: no file ${path} in the image`);
    if (h.file.type === 'hardlink' && h.file.linkname && seen < 16) return spoolOf(h.file.linkname, seen + 1);
    if (h.file.type !== 'file') throw new BuildError(`${what}: ${path} is not a regular file`);
    return h.spool ?? '';
  };
  return {
    files,
    has: (path) => held.has(path),
    async size(path) {
      const spool = spoolOf(path);
      return spool ? (await stat(spool)).size : 0;
    },
    open(path) {
      const spool = spoolOf(path);
      return spool ? createReadStream(spool) : (createReadStream('/dev/null') as Readable);
    },
  };
}

export async function removeSpool(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
