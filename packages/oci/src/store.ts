import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  children,
  type Descriptor,
  type ImageIndex,
  manifestMediaType,
  parseManifest,
  REF_NAME_ANNOTATION,
} from './descriptor.ts';
import { type Digest, DigestError, DigestVerifier, isDigest, parseDigest, verifyBytes } from './digest.ts';
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
 */
export class Store implements Source, Sink {
  private constructor(
    readonly root: string,
    private readonly lockOptions: LockOptions = {},
  ) {}

  static async open(root: string, lockOptions: LockOptions = {}): Promise<Store> {
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(root, '.tmp'), { recursive: true });
    await createIfMissing(join(root, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
    await createIfMissing(join(root, 'index.json'), `${JSON.stringify(EMPTY_INDEX)}\n`);
    return new Store(root, lockOptions);
  }

  describe(): string {
    return `store ${this.root}`;
  }

  blobPath(digest: Digest): string {
    parseDigest(digest);
    return blobPath(this.root, digest);
  }

  private tempPath(): string {
    return join(this.root, '.tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  async hasBlob(desc: { digest: Digest; size?: number }): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(desc.digest));
      return desc.size === undefined || st.size === desc.size;
    } catch {
      return false;
    }
  }

  hasManifest(desc: Descriptor): Promise<boolean> {
    return this.hasBlob(desc);
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`blob ${digest} is not in ${this.root}`);
      throw err;
    }
  }

  async fetchBlob(desc: Descriptor): Promise<Readable> {
    if (!(await this.hasBlob(desc))) throw new Error(`blob ${desc.digest} is not in ${this.root}`);
    return createReadStream(this.blobPath(desc.digest));
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const bytes = await this.readBlob(desc.digest);
    verifyBytes(bytes, desc.digest, desc.size);
    return bytes;
  }

  /**
   * Writes a blob from a stream: hashed on the way, fsynced, renamed into place only if it
   * matches `expected` (digest and size, when given). Without `expected.digest` the computed
   * digest names it. An existing blob is kept (its mtime refreshed, which protects it from gc).
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
      if (!Buffer.isBuffer(source)) source.destroy();
      await this.touch(expected.digest);
      const size = expected.size ?? (await stat(this.blobPath(expected.digest))).size;
      return { digest: expected.digest, size };
    }
    if (Buffer.isBuffer(source)) {
      if (expected.digest) verifyBytes(source, expected.digest, expected.size);
    }
    const tmp = this.tempPath();
    const verifier = new DigestVerifier(expected.digest, expected.size);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
      const counter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      // Chunks queued while a write is in flight go down in one writev; the handle stays open for fsync.
      const full = (n: number, want: number) => {
        if (n !== want) throw new Error(`short write to ${tmp}: ${n} of ${want} bytes`);
      };
      const out = new Writable({
        highWaterMark: 1 << 20,
        write(chunk: Buffer, _e, cb) {
          fh.write(chunk)
            .then((r) => full(r.bytesWritten, chunk.length))
            .then(() => cb(), cb);
        },
        writev(chunks, cb) {
          const bufs = chunks.map((c) => c.chunk as Buffer);
          const want = bufs.reduce((n, b) => n + b.length, 0);
          fh.writev(bufs)
            .then((r) => full(r.bytesWritten, want))
            .then(() => cb(), cb);
        },
      });
      await pipeline(input, verifier, counter, out);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    const digest = verifier.digest as Digest;
    try {
      await rename(tmp, this.blobPath(digest));
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return { digest, size: verifier.bytes };
  }

  async pushBlob(desc: Descriptor, openBlob: () => Promise<Readable>, onBytes?: OnBytes): Promise<void> {
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
    await utimes(this.blobPath(digest), now, now).catch(() => {});
  }

  async pushManifest(desc: Descriptor, bytes: Buffer, tags: string[]): Promise<void> {
    await this.writeBlob(bytes, desc);
    if (tags.length) await this.tag(tags, desc);
  }

  /** index.json as it is now (a consistent snapshot, no lock needed to read). */
  async index(): Promise<ImageIndex> {
    const text = await readFile(join(this.root, 'index.json'), 'utf8');
    const idx = JSON.parse(text) as ImageIndex;
    if (!Array.isArray(idx.manifests)) throw new Error(`${this.root}/index.json has no manifests array`);
    return idx;
  }

  /** Read-modify-write of index.json under the store lock; lands by rename. */
  async updateIndex(fn: (idx: ImageIndex) => ImageIndex | undefined): Promise<ImageIndex> {
    return withLock(
      join(this.root, 'index.json.lock'),
      async () => {
        const idx = await this.index();
        const next = fn(idx) ?? idx;
        const tmp = this.tempPath();
        await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
        await rename(tmp, join(this.root, 'index.json'));
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
        // Temp files of writers that died long ago.
        for (const name of await readdir(join(this.root, '.tmp')).catch(() => [] as string[])) {
          const path = join(this.root, '.tmp', name);
          const st = await stat(path).catch(() => undefined);
          if (st && now - st.mtimeMs > Math.max(graceMs, 3_600_000) && !opts.dryRun) await unlink(path).catch(() => {});
        }
        return result;
      },
      this.lockOptions,
    );
  }
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
