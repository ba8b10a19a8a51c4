// Unpacked layers, kept beside the store: each compressed layer is gunzipped once into
// `<store>/unpacked/sha256/<hex>.tar` with an index `<hex>.json` of its entries and where their
// contents start. Later builds read files straight out of the plain tar by range: no gunzip, no
// copying into temp files. An entry is written to temp names and renamed into place (tar first,
// index last) and checked against the image config's diff_id as it is made. The cache is not
// trusted afterwards either: the first use in a process hashes the tar again (and reads its
// headers again) and uses it only if it still hashes to the diff_id — an edit of the tar, even
// one that keeps its size, makes the layer be unpacked afresh from its verified blob.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import {
  type Descriptor,
  DigestError,
  fileVersion,
  fsFault,
  MissingBlobError,
  type Store,
  tempTag,
  writerGone,
} from '@stele/oci';
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

/** Unpacked tars checked in this process: the file version that was hashed, and what it held. */
const checked = new Map<string, { version: string; layer: CachedLayer }>();

/**
 * Hashes `tar` and reads its headers again: the layer it holds if it hashes to `diffId` and
 * has `size` bytes, else undefined.
 */
async function verifiedTar(
  tar: string,
  digest: string,
  diffId: string,
  size: number,
): Promise<CachedLayer | undefined> {
  const fh = await open(tar, 'r');
  try {
    const version = fileVersion(await fh.stat());
    const memo = checked.get(tar);
    if (memo?.version === version && memo.layer.diffId === diffId) return memo.layer;
    const entries: CachedEntry[] = [];
    const scanner = new TarScanner((e) => entries.push(compact(e)));
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false })) {
      hash.update(chunk as Buffer);
      scanner.push(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    scanner.end();
    if (bytes !== size || `sha256:${hash.digest('hex')}` !== diffId) return undefined;
    const layer = { digest, diffId, tar, size, entries };
    checked.set(tar, { version, layer });
    return layer;
  } catch {
    return undefined; // unreadable or not a tar any more: made again
  } finally {
    await fh.close();
  }
}

async function readCached(store: Store, digest: string, diffId?: string): Promise<CachedLayer | undefined> {
  const p = paths(store, digest);
  try {
    const idx = JSON.parse(await readFile(p.index, 'utf8')) as IndexFile;
    if (idx.version !== VERSION || idx.digest !== digest || typeof idx.diffId !== 'string') return undefined;
    if (diffId && idx.diffId !== diffId) return undefined;
    if (!Number.isSafeInteger(idx.size) || (await stat(p.tar)).size !== idx.size) return undefined;
    return await verifiedTar(p.tar, digest, idx.diffId, idx.size);
  } catch {
    return undefined;
  }
}

/** Stores whose unpacked directory was swept of dead writers' temp files in this process. */
const swept = new Set<string>();

/** Removes, once per process, the temp files of writers that died (killed mid-unpack). */
async function sweepOnce(store: Store): Promise<void> {
  if (swept.has(store.root)) return;
  swept.add(store.root);
  const root = unpackedDir(store);
  for (const alg of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(join(root, alg)).catch(() => [] as string[])) {
      if (name.endsWith('.tmp') && writerGone(name)) await rm(join(root, alg, name), { force: true });
    }
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
  await sweepOnce(store);
  const cached = await readCached(store, layer.digest, diffId);
  if (cached) return cached;

  const p = paths(store, layer.digest);
  const dir = join(unpackedDir(store), layer.digest.split(':')[0] ?? 'sha256');
  await mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw new BuildError(`layer ${layer.digest}: ${(fsFault(err, 'create', dir) as Error).message}`);
  });
  const tag = tempTag();
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
    await writeFile(tmpIndex, JSON.stringify(index)).catch((err: unknown) => {
      throw fsFault(err, 'write', tmpIndex);
    });
    await rename(tmpTar, p.tar);
    await rename(tmpIndex, p.index);
    const made = { digest: layer.digest, diffId: got, tar: p.tar, size, entries };
    const st = await stat(p.tar).catch(() => undefined);
    if (st) checked.set(p.tar, { version: fileVersion(st), layer: made });
    return made;
  } catch (caught) {
    let err = caught;
    // The temp file may be created after a failure: remove it once the stream has closed.
    if (out && !out.closed) {
      const closing = once(out, 'close');
      out.destroy();
      await closing.catch(() => undefined);
    }
    await rm(tmpTar, { force: true });
    await rm(tmpIndex, { force: true });
    if (err instanceof BuildError) throw err;
    // A blob that is not what its digest says makes gunzip or the tar reader fail first: name
    // the real cause. (Checked only after a failure: a sound layer costs no second pass.)
    if (!(err instanceof DigestError || err instanceof MissingBlobError || err instanceof TarFormatError)) {
      err = await store.checkBlob(layer).then(
        () => fsFault(err, 'write', tmpTar),
        (e: unknown) => (e instanceof DigestError ? e : err),
      );
    }
    throw new BuildError(`layer ${layer.digest}: ${(err as Error).message}`);
  }
}

/** Is the blob's file there? (Its contents are checked when it is read, not here.) */
async function blobThere(store: Store, digest: string): Promise<boolean> {
  try {
    await stat(store.blobPath(digest));
    return true;
  } catch {
    return false;
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
      const stale = m?.[3] !== undefined && (Date.now() - st.mtimeMs > 3_600_000 || writerGone(name));
      const digest = `${alg}:${m?.[1]}`;
      const orphan = m && !m[3] && (opts.all || opts.gone?.has(digest) || !(await blobThere(store, digest)));
      if (!stale && !orphan) continue;
      if (!opts.dryRun) await rm(path, { force: true });
      if (m?.[2] === 'tar' && !m[3]) result.removed.push(`${alg}:${m[1]}`);
      result.bytes += st.size;
    }
  }
  return result;
}
