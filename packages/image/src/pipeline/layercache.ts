// Unpacked layers, kept beside the store: each compressed layer is gunzipped once into
// `<store>/unpacked/sha256/<hex>.tar` with an index `<hex>.json` of its entries and where their
// contents start. Later builds read files straight out of the plain tar by range: no gunzip, no
// parsing, no copying into temp files. An entry is written to temp names and renamed into place
// (tar first, index last), checked against the image config's diff_id as it is made, and only
// used when the tar's size matches its index — a build never reads a half-written entry.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Descriptor, Store } from '@stele/oci';
import { BuildError } from './errors.ts';
import { type ScannedEntry, TarFormatError, TarScanner } from './tarfmt.ts';

const VERSION = 1;

/**
 * A scanned entry as the index keeps it: no pax records, link and device fields only where
 * they mean something, `size` 0 for anything but a regular file.
 */
export type CachedEntry = Omit<ScannedEntry, 'pax' | 'linkname' | 'devmajor' | 'devminor'> &
  Partial<Pick<ScannedEntry, 'linkname' | 'devmajor' | 'devminor'>>;

export interface CachedLayer {
  /** The compressed layer's digest. */
  digest: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Path of the uncompressed tar. */
  tar: string;
  size: number;
  entries: CachedEntry[];
}

interface IndexFile {
  version: number;
  digest: string;
  diffId: string;
  size: number;
  entries: CachedEntry[];
}

export function unpackedDir(store: Store): string {
  return join(store.root, 'unpacked');
}

function paths(store: Store, digest: string): { tar: string; index: string } {
  const [alg, hex] = digest.split(':');
  if (!alg || !hex || !/^[a-z0-9]+$/.test(alg) || !/^[a-f0-9]+$/.test(hex)) {
    throw new BuildError(`bad layer digest ${digest}`);
  }
  const base = join(unpackedDir(store), alg, hex);
  return { tar: `${base}.tar`, index: `${base}.json` };
}

async function readCached(store: Store, digest: string): Promise<CachedLayer | undefined> {
  const p = paths(store, digest);
  try {
    const idx = JSON.parse(await readFile(p.index, 'utf8')) as IndexFile;
    if (idx.version !== VERSION || idx.digest !== digest || !Array.isArray(idx.entries)) return undefined;
    if ((await stat(p.tar)).size !== idx.size) return undefined;
    return { digest, diffId: idx.diffId, tar: p.tar, size: idx.size, entries: idx.entries };
  } catch {
    return undefined;
  }
}

function compact(e: ScannedEntry): CachedEntry {
  const c: CachedEntry = {
    name: e.name,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    offset: e.offset,
    size: e.type === 'file' ? e.size : 0,
  };
  if (e.linkname) c.linkname = e.linkname;
  if (e.type === 'char' || e.type === 'block') {
    c.devmajor = e.devmajor;
    c.devminor = e.devminor;
  }
  return c;
}

function compression(layer: Descriptor): 'gzip' | 'none' {
  if (/zstd/.test(layer.mediaType)) {
    throw new BuildError(`layer ${layer.digest} is zstd-compressed, which Node 20 cannot read`);
  }
  return layer.mediaType.endsWith('gzip') || layer.mediaType.endsWith('.tar.gzip') ? 'gzip' : 'none';
}

/**
 * The unpacked form of `layer` (a blob of `store`), made now when the store has none. `diffId`
 * (from the image config) is checked when given: a layer whose contents do not hash to it is
 * refused and nothing is kept.
 */
export async function unpackedLayer(store: Store, layer: Descriptor, diffId?: string): Promise<CachedLayer> {
  const cached = await readCached(store, layer.digest);
  if (cached && (!diffId || cached.diffId === diffId)) return cached;

  const p = paths(store, layer.digest);
  await mkdir(join(unpackedDir(store), layer.digest.split(':')[0] ?? 'sha256'), { recursive: true });
  const tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const tmpTar = `${p.tar}.${tag}.tmp`;
  const tmpIndex = `${p.index}.${tag}.tmp`;
  const entries: CachedEntry[] = [];
  const scanner = new TarScanner((e) => entries.push(compact(e)));
  const hash = createHash('sha256');
  let size = 0;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        hash.update(chunk);
        scanner.push(chunk);
        size += chunk.length;
        cb(null, chunk);
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb) {
      try {
        scanner.end();
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  let out: WriteStream | undefined;
  try {
    const gzip = compression(layer) === 'gzip';
    const blob = await store.fetchBlob(layer);
    out = createWriteStream(tmpTar);
    const stages = gzip ? [blob, createGunzip({ chunkSize: 256 * 1024 }), tee, out] : [blob, tee, out];
    await (pipeline as (...s: unknown[]) => Promise<void>)(...stages);
    const got = `sha256:${hash.digest('hex')}`;
    if (diffId && diffId !== got) {
      throw new BuildError(`layer ${layer.digest}: its contents hash to ${got}, but the image config says ${diffId}`);
    }
    const index: IndexFile = { version: VERSION, digest: layer.digest, diffId: got, size, entries };
    await writeFile(tmpIndex, JSON.stringify(index));
    await rename(tmpTar, p.tar);
    await rename(tmpIndex, p.index);
    return { digest: layer.digest, diffId: got, tar: p.tar, size, entries };
  } catch (err) {
    // The temp file may be created after a failure: remove it once the stream has closed.
    if (out && !out.closed) {
      const closing = once(out, 'close');
      out.destroy();
      await closing.catch(() => undefined);
    }
    await rm(tmpTar, { force: true });
    await rm(tmpIndex, { force: true });
    if (err instanceof BuildError) throw err;
    const why = err instanceof TarFormatError ? err.message : (err as Error).message;
    throw new BuildError(`layer ${layer.digest}: ${why}`);
  }
}

/**
 * Removes unpacked layers whose compressed blob the store no longer holds — or is about to lose:
 * `gone` (a dry run of the store's gc); with `all`, every one — and temp files of writers that
 * died. Returns what went.
 */
export async function pruneUnpacked(
  store: Store,
  opts: { dryRun?: boolean; gone?: ReadonlySet<string>; all?: boolean } = {},
): Promise<{
  removed: string[];
  bytes: number;
}> {
  const result = { removed: [] as string[], bytes: 0 };
  const root = unpackedDir(store);
  const algs = await readdir(root).catch(() => [] as string[]);
  for (const alg of algs) {
    for (const name of await readdir(join(root, alg)).catch(() => [] as string[])) {
      const path = join(root, alg, name);
      const m = /^([a-f0-9]+)\.(tar|json)(\..*\.tmp)?$/.exec(name);
      const st = await stat(path).catch(() => undefined);
      if (!st) continue;
      const stale = m?.[3] !== undefined && Date.now() - st.mtimeMs > 3_600_000;
      const digest = `${alg}:${m?.[1]}`;
      const orphan = m && !m[3] && (opts.all || opts.gone?.has(digest) || !(await store.hasBlob({ digest })));
      if (!stale && !orphan) continue;
      if (!opts.dryRun) await rm(path, { force: true });
      if (m?.[2] === 'tar' && !m[3]) result.removed.push(`${alg}:${m[1]}`);
      result.bytes += st.size;
    }
  }
  return result;
}
