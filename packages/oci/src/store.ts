import { createHash, randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as pipe, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempTag, writerGone } from './atomic.ts';
import {
  children,
  type Descriptor,
  type ImageIndex,
  manifestMediaType,
  parseManifest,
  REF_NAME_ANNOTATION,
} from './descriptor.ts';
import { type Digest, DigestError, DigestVerifier, digestOf, isDigest, parseDigest, verifyBytes } from './digest.ts';
import { type LockOptions, withLock } from './lock.ts';
import { isIndexType, isManifestType, MediaType } from './mediatypes.ts';
import { blobPath } from './store-paths.ts';
import type { OnBytes, Sink, Source } from './target.ts';

export interface StoreEntry {
  name: string;
  descriptor: Descriptor;
}

export interface GcResult {
  removed: Digest[];
  bytes: number;
  kept: number;
}

/** The store's directory or one of its files cannot be used; the message names the path. */
export class StoreError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

const FS_FAULTS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'part of the path is a file, not a directory',
  EEXIST: 'a file is in the way',
  EIO: 'an input/output error',
};

/**
 * A file-system failure while doing something to `path` (`doing`: "write", "create the store
 * at"…) as a StoreError that names the path: the errors a full disk or wrong permissions give.
 * Anything else is returned as it is.
 */
export function fsFault(err: unknown, doing: string, path: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = code ? FS_FAULTS[code] : undefined;
  return why ? new StoreError(`cannot ${doing} ${path}: ${why} (${code})`, path) : err;
}

/** A blob the store does not hold (or holds with another size than asked for). */
export class MissingBlobError extends Error {
  constructor(
    readonly digest: Digest,
    root: string,
    size?: string,
  ) {
    super(`blob ${digest}${size ? ` (${size})` : ''} is not in the store ${root}`);
    this.name = 'MissingBlobError';
  }
}

/**
 * What identifies one version of a file: any rewrite, even in place and of the same size,
 * changes it (the change time cannot be set back). For memos of files already hashed.
 */
export function fileVersion(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

const EMPTY_INDEX: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };

/** Network-ish failures worth another attempt at reading a blob; digest errors are not. */
function retryable(err: unknown): boolean {
  if (err instanceof DigestError) return false;
  const e = err as { code?: string; retryable?: boolean };
  if (e.retryable !== undefined) return e.retryable;
  return /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED|UND_ERR_|ERR_STREAM_PREMATURE_CLOSE)/.test(e.code ?? '');
}

/**
 * A local OCI image layout directory (the format LinuxKit's cache uses): `oci-layout`,
 * `index.json` naming entries by the `org.opencontainers.image.ref.name` annotation, and
 * `blobs/<alg>/<hex>`. Blobs are verified while they stream and land by rename from a temp
 * file; index.json is rewritten under a lock, also by rename, so readers never see half a file
 * and concurrent writers never lose each other's entries.
 *
 * Nothing on disk is trusted: every blob read is hashed as it is read, and one whose contents do
 * not match its digest is refused and removed (so the next pull fetches it again). `hasBlob`
 * hashes a blob the first time it is asked about in this process, so a copy into the store
 * replaces a damaged blob instead of skipping it.
 */
export class Store implements Source, Sink {
  /** Blobs found sound in this process, with the version of the file that was hashed. */
  private readonly sound = new Map<Digest, string>();

  private constructor(
    readonly root: string,
    private readonly lockOptions: LockOptions = {},
  ) {}

  static async open(root: string, lockOptions: LockOptions = {}): Promise<Store> {
    const st = await stat(root).catch(() => undefined);
    if (st && !st.isDirectory()) throw new StoreError(`cannot use ${root} as the store: it is not a directory`, root);
    try {
      await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
      await mkdir(join(root, '.tmp'), { recursive: true });
      await createIfMissing(join(root, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
      await createIfMissing(join(root, 'index.json'), `${JSON.stringify(EMPTY_INDEX)}\n`);
    } catch (err) {
      throw fsFault(err, 'create the store at', root);
    }
    const store = new Store(root, lockOptions);
    await store.removeAbandonedTemps();
    return store;
  }

  /** Temp files of writers that died (killed mid-write) go at once; unknown owners wait for gc. */
  private async removeAbandonedTemps(): Promise<void> {
    for (const name of await readdir(join(this.root, '.tmp')).catch(() => [] as string[])) {
      if (writerGone(name)) await unlink(join(this.root, '.tmp', name)).catch(() => {});
    }
  }

  describe(): string {
    return `store ${this.root}`;
  }

  blobPath(digest: Digest): string {
    parseDigest(digest);
    return blobPath(this.root, digest);
  }

  private tempPath(): string {
    return join(this.root, '.tmp', tempTag());
  }

  /** The blob's file when it is there with the right size (its contents unchecked). */
  private async present(desc: { digest: Digest; size?: number }): Promise<Stats | undefined> {
    const st = await stat(this.blobPath(desc.digest)).catch(() => undefined);
    return st && (desc.size === undefined || st.size === desc.size) ? st : undefined;
  }

  /** Is the blob there, with the right size and contents? (Hashed once per process and file version.) */
  async hasBlob(desc: { digest: Digest; size?: number }): Promise<boolean> {
    const st = await this.present(desc);
    if (!st) return false;
    if (this.sound.get(desc.digest) === fileVersion(st)) return true;
    try {
      await this.checkBlob(desc);
      return true;
    } catch (err) {
      if (err instanceof DigestError || err instanceof MissingBlobError) return false;
      throw err;
    }
  }

  hasManifest(desc: Descriptor): Promise<boolean> {
    return this.hasBlob(desc);
  }

  /**
   * Hashes the blob's file; throws a DigestError naming it (and removes it) when its contents do
   * not match its digest, or an error saying it is not in the store.
   */
  async checkBlob(desc: { digest: Digest; size?: number }): Promise<void> {
    const stream = await this.fetchBlob(desc);
    stream.resume();
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
  }

  /** The blob's bytes, checked against its digest. */
  async readBlob(digest: Digest): Promise<Buffer> {
    const path = this.blobPath(digest);
    let bytes: Buffer;
    let st: Stats;
    try {
      const fh = await open(path, 'r');
      try {
        st = await fh.stat();
        bytes = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingBlobError(digest, this.root);
      throw err;
    }
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    if (actual !== digest) throw await this.corrupt(digest, actual, st);
    this.sound.set(digest, fileVersion(st));
    return bytes;
  }

  /** The blob as a stream, hashed as it is read: a blob that does not match its digest ends in a DigestError. */
  async fetchBlob(desc: { digest: Digest; size?: number }): Promise<Readable> {
    const { algorithm } = parseDigest(desc.digest);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.blobPath(desc.digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingBlobError(desc.digest, this.root);
      throw err;
    }
    const st = await fh.stat().catch(async (err: unknown) => {
      await fh.close();
      throw err;
    });
    if (desc.size !== undefined && st.size !== desc.size) {
      await fh.close();
      throw new MissingBlobError(desc.digest, this.root, `${desc.size} bytes`);
    }
    const hash = createHash(algorithm);
    const check = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush: (cb) => {
        const actual = `${algorithm}:${hash.digest('hex')}`;
        if (actual === desc.digest) {
          this.sound.set(desc.digest, fileVersion(st));
          cb();
        } else this.corrupt(desc.digest, actual, st).then(cb, cb);
      },
    });
    // Errors reach the consumer through `check`; the pipeline closes the file either way.
    return pipe(fh.createReadStream({ highWaterMark: 1 << 20 }), check, () => {});
  }

  /**
   * The error for a blob whose contents hash to `actual`: the file is removed first (if it is
   * still the one that was read), so a later pull or import writes a good copy.
   */
  private async corrupt(digest: Digest, actual: Digest, read: Stats): Promise<DigestError> {
    this.sound.delete(digest);
    const path = this.blobPath(digest);
    const now = await stat(path).catch(() => undefined);
    if (now && now.ino === read.ino && now.dev === read.dev) await unlink(path).catch(() => {});
    return new DigestError(
      `blob ${digest} in the store ${this.root} is corrupt (its contents hash to ${actual}); ` +
        'removed it: fetch the image again (stele pull, stele build --pull, or stele cache import)',
      digest,
      actual,
    );
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const bytes = await this.readBlob(desc.digest);
    verifyBytes(bytes, desc.digest, desc.size);
    return bytes;
  }

  /**
   * Writes a blob from a stream: hashed on the way, fsynced, renamed into place only if it
   * matches `expected` (digest and size, when given). Without `expected.digest` the computed
   * digest names it. A sound existing blob is kept (its mtime refreshed, which protects it from
   * gc) and the stream is still read to its end and checked, so whoever feeds it (an archive
   * being extracted) sees it consumed; a damaged one is replaced.
   */
  async writeBlob(
    source: Readable | Buffer,
    expected: { digest?: Digest; size?: number } = {},
    onBytes?: OnBytes,
  ): Promise<{ digest: Digest; size: number }> {
    // An error before the pipeline below is attached would otherwise be uncaught; the pipeline
    // still sees it (stream.errored).
    if (!Buffer.isBuffer(source)) source.on('error', () => {});
    if (expected.digest && (await this.hasBlob({ digest: expected.digest, size: expected.size }))) {
      if (Buffer.isBuffer(source)) verifyBytes(source, expected.digest, expected.size);
      else await pipeline(source, new DigestVerifier(expected.digest, expected.size), discard());
      await this.touch(expected.digest);
      const size = expected.size ?? (await stat(this.blobPath(expected.digest))).size;
      return { digest: expected.digest, size };
    }
    if (Buffer.isBuffer(source)) {
      if (expected.digest) verifyBytes(source, expected.digest, expected.size);
    }
    const tmp = this.tempPath();
    const verifier = new DigestVerifier(expected.digest, expected.size);
    const fh = await open(tmp, 'wx', 0o644).catch((err: unknown) => {
      throw fsFault(err, 'write', tmp);
    });
    try {
      const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
      const counter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      // Chunks queued while a write is in flight go down in one writev; the handle stays open for
      // fsync. A short write is finished by more writes: the one that cannot (a full disk) fails.
      const rest = async (bufs: Buffer[], written: number) => {
        let data = Buffer.concat(bufs).subarray(written);
        while (data.length) data = data.subarray((await fh.write(data)).bytesWritten);
      };
      const failed = (cb: (err: Error) => void) => (err: unknown) => cb(fsFault(err, 'write', tmp) as Error);
      const out = new Writable({
        highWaterMark: 1 << 20,
        write(chunk: Buffer, _e, cb) {
          fh.write(chunk)
            .then((r) => (r.bytesWritten < chunk.length ? rest([chunk], r.bytesWritten) : undefined))
            .then(() => cb(), failed(cb));
        },
        writev(chunks, cb) {
          const bufs = chunks.map((c) => c.chunk as Buffer);
          const want = bufs.reduce((n, b) => n + b.length, 0);
          fh.writev(bufs)
            .then((r) => (r.bytesWritten < want ? rest(bufs, r.bytesWritten) : undefined))
            .then(() => cb(), failed(cb));
        },
      });
      await pipeline(input, verifier, counter, out);
      await fh.sync().catch((err: unknown) => {
        throw fsFault(err, 'write', tmp);
      });
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    const digest = verifier.digest as Digest;
    const path = this.blobPath(digest);
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw fsFault(err, 'write', path);
    }
    const st = await stat(path).catch(() => undefined);
    if (st) this.sound.set(digest, fileVersion(st));
    return { digest, size: verifier.bytes };
  }

  async pushBlob(desc: Descriptor, openBlob: () => Promise<Readable>, onBytes?: OnBytes): Promise<void> {
    // Opening the source may start a download: not for a blob the store already has.
    if (await this.hasBlob(desc)) {
      await this.touch(desc.digest);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      let sent = 0;
      try {
        await this.writeBlob(await openBlob(), desc, (n) => {
          sent += n;
          onBytes?.(n);
        });
        return;
      } catch (err) {
        if (sent) onBytes?.(-sent);
        if (attempt >= 4 || !retryable(err)) throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  private async touch(digest: Digest): Promise<void> {
    const now = new Date();
    const path = this.blobPath(digest);
    const before = await stat(path).catch(() => undefined);
    await utimes(path, now, now).catch(() => {});
    // A blob found sound stays so: only its times changed.
    const after = await stat(path).catch(() => undefined);
    if (before && after && this.sound.get(digest) === fileVersion(before)) this.sound.set(digest, fileVersion(after));
  }

  async pushManifest(desc: Descriptor, bytes: Buffer, tags: string[]): Promise<void> {
    await this.writeBlob(bytes, desc);
    if (tags.length) await this.tag(tags, desc);
  }

  /** index.json as it is now (a consistent snapshot, no lock needed to read). */
  async index(): Promise<ImageIndex> {
    const path = join(this.root, 'index.json');
    const text = await readFile(path, 'utf8');
    try {
      const parsed = parseManifest(text, MediaType.OciIndex);
      if (parsed.kind !== 'index') throw new Error('not an image index');
      return parsed.index;
    } catch (err) {
      throw new StoreError(
        `the store's list of images ${path} is damaged: ${(err as Error).message}; ` +
          'repair it, or remove it to start the list afresh (blobs stay until gc)',
        path,
      );
    }
  }

  /** Read-modify-write of index.json under the store lock; lands by rename. */
  async updateIndex(fn: (idx: ImageIndex) => ImageIndex | undefined): Promise<ImageIndex> {
    return withLock(
      join(this.root, 'index.json.lock'),
      async () => {
        const idx = await this.index();
        const next = fn(idx) ?? idx;
        const tmp = this.tempPath();
        try {
          await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
          await rename(tmp, join(this.root, 'index.json'));
        } catch (err) {
          await unlink(tmp).catch(() => {});
          throw fsFault(err, 'write', tmp);
        }
        return next;
      },
      this.lockOptions,
    );
  }

  /** Points each name at `desc` (replacing what it pointed at). */
  async tag(names: string | string[], desc: Descriptor): Promise<void> {
    const list = Array.isArray(names) ? names : [names];
    await this.updateIndex((idx) => {
      const kept = idx.manifests.filter((d) => !list.includes(d.annotations?.[REF_NAME_ANNOTATION] ?? '\0'));
      const added = list.map((name) => ({
        mediaType: desc.mediaType,
        digest: desc.digest,
        size: desc.size,
        ...(desc.platform ? { platform: desc.platform } : {}),
        annotations: { ...(desc.annotations ?? {}), [REF_NAME_ANNOTATION]: name },
      }));
      return { ...idx, manifests: [...kept, ...added] };
    });
  }

  /** Removes the named entries; returns how many there were. Blobs stay until gc. */
  async untag(name: string): Promise<number> {
    let n = 0;
    await this.updateIndex((idx) => {
      const kept = idx.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== name);
      n = idx.manifests.length - kept.length;
      return { ...idx, manifests: kept };
    });
    return n;
  }

  async list(): Promise<StoreEntry[]> {
    const idx = await this.index();
    return idx.manifests.map((d) => ({ name: d.annotations?.[REF_NAME_ANNOTATION] ?? '', descriptor: d }));
  }

  /** A reference name from index.json, or a digest of a manifest in the store. */
  async resolve(ref: string): Promise<Descriptor> {
    const idx = await this.index();
    const hit = idx.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === ref);
    if (hit) {
      const { annotations: _a, ...desc } = hit;
      return desc;
    }
    const at = ref.lastIndexOf('@');
    const digest = at >= 0 ? ref.slice(at + 1) : ref;
    if (isDigest(digest)) {
      const byDigest = idx.manifests.find((d) => d.digest === digest);
      if (byDigest) {
        const { annotations: _a, ...desc } = byDigest;
        return desc;
      }
      if (await this.hasBlob({ digest })) {
        const bytes = await this.readBlob(digest);
        return { mediaType: manifestMediaType(bytes), digest, size: bytes.length };
      }
    }
    throw new Error(`'${ref}' is not in the store ${this.root} (see 'stele cache ls')`);
  }

  /** Every blob reachable from `desc` (itself included), tolerating blobs that are absent. */
  async reachable(desc: Descriptor, into: Set<Digest> = new Set()): Promise<Set<Digest>> {
    if (into.has(desc.digest)) return into;
    into.add(desc.digest);
    if (!isIndexType(desc.mediaType) && !isManifestType(desc.mediaType)) return into;
    let bytes: Buffer;
    try {
      bytes = await this.readBlob(desc.digest);
    } catch {
      return into;
    }
    for (const child of children(parseManifest(bytes, desc.mediaType))) await this.reachable(child, into);
    return into;
  }

  /**
   * Deletes blobs no index.json entry reaches. Blobs younger than `graceMs` (default 1 h) are
   * kept: another process may have written them and not yet tagged its manifest.
   */
  async gc(opts: { graceMs?: number; dryRun?: boolean } = {}): Promise<GcResult> {
    const graceMs = opts.graceMs ?? 3_600_000;
    return withLock(
      join(this.root, 'index.json.lock'),
      async () => {
        const live = new Set<Digest>();
        for (const d of (await this.index()).manifests) await this.reachable(d, live);
        const result: GcResult = { removed: [], bytes: 0, kept: 0 };
        const now = Date.now();
        for (const alg of await readdir(join(this.root, 'blobs'))) {
          for (const hex of await readdir(join(this.root, 'blobs', alg))) {
            const digest = `${alg}:${hex}`;
            if (live.has(digest)) {
              result.kept++;
              continue;
            }
            const path = join(this.root, 'blobs', alg, hex);
            const st = await stat(path).catch(() => undefined);
            if (!st) continue;
            if (now - st.mtimeMs < graceMs) {
              result.kept++;
              continue;
            }
            if (!opts.dryRun) await unlink(path).catch(() => {});
            result.removed.push(digest);
            result.bytes += st.size;
          }
        }
        // Temp files of writers that died, or of unknown writers (another host) long ago.
        for (const name of await readdir(join(this.root, '.tmp')).catch(() => [] as string[])) {
          const path = join(this.root, '.tmp', name);
          const st = await stat(path).catch(() => undefined);
          const old = st && now - st.mtimeMs > Math.max(graceMs, 3_600_000);
          if ((old || writerGone(name)) && !opts.dryRun) await unlink(path).catch(() => {});
        }
        return result;
      },
      this.lockOptions,
    );
  }
}

/** A sink that drops what it is given. */
function discard(): Writable {
  return new Writable({
    write(_chunk, _e, cb) {
      cb();
    },
  });
}

async function createIfMissing(path: string, content: string): Promise<void> {
  try {
    await stat(path);
    return;
  } catch {
    /* create it */
  }
  const tmp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, content);
  try {
    // link fails if another process created it first; theirs is as good as ours.
    await link(tmp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
