// Unpacked layers (pipeline/layercache.ts) in a real OCI store: a layer is gunzipped once into
// `<store>/unpacked/sha256/<hex>.tar` with a `.json` index whose offsets address each file's
// contents in that tar; later calls reuse it (even with the compressed blob gone); a bad diff_id,
// a corrupt or unreadable blob, or a truncated cache never leaves half-made files or is trusted;
// concurrent callers agree; pruneUnpacked removes what the store no longer backs.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { type Descriptor, Store, tempTag } from '@stele/oci';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BuildError } from '../src/pipeline/errors.ts';
import { type CachedLayer, pruneUnpacked, unpackedDir, unpackedLayer } from '../src/pipeline/layercache.ts';
import { IMAGE_MTIME, type LayerEntry, layerTar } from './build-images.ts';

// Fault injection for one test: a file system whose open() is slow (as on a busy thread pool or a
// network file system), for the temp tar that unpackedLayer writes through fs.createWriteStream.
const slowOpen = vi.hoisted(() => ({ ms: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const createWriteStream: typeof fs.createWriteStream = (path, options) => {
    if (slowOpen.ms === 0) return fs.createWriteStream(path, options);
    const open = (...args: Parameters<typeof fs.open>) => {
      setTimeout(() => (fs.open as (...a: unknown[]) => void)(...args), slowOpen.ms);
    };
    const opts = typeof options === 'object' && options !== null ? options : {};
    return fs.createWriteStream(path, { ...opts, fs: { open, write: fs.write, writev: fs.writev, close: fs.close } });
  };
  return { ...fs, default: { ...fs, createWriteStream }, createWriteStream };
});

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const PLAIN = 'application/vnd.oci.image.layer.v1.tar';
const DOCKER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

let work: string;
let n = 0;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'stele-layercache-'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hexOf = (digest: string) => digest.slice('sha256:'.length);

async function freshStore(): Promise<Store> {
  return Store.open(join(work, `store-${n++}`));
}

async function putBlob(store: Store, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const { digest, size } = await store.writeBlob(bytes);
  return { mediaType, digest, size };
}

const LONG = `usr/lib/${'long-directory-name-'.repeat(6)}/${'f'.repeat(60)}.so`; // > 100 bytes

function layerEntries(tag: string): LayerEntry[] {
  return [
    { path: 'etc' },
    { path: 'etc/hello', data: `hello from ${tag}\n`, mode: 0o640, uid: 1000, gid: 1001 },
    { path: 'etc/empty', data: '' },
    { path: 'bin' },
    { path: 'bin/tool', data: Buffer.alloc(1024, tag), mode: 0o4755 }, // a whole number of blocks
    { path: LONG, data: Buffer.from(`${tag}\n`.repeat(700)), mtime: 1_234_567_890 },
    { path: 'etc/link', type: 'symlink', linkname: '../bin/tool' },
    { path: 'bin/hard', type: 'hardlink', linkname: 'bin/tool' },
    { path: 'dev' },
    { path: 'dev/console', type: 'char', mode: 0o600 },
  ];
}

interface Layer {
  tar: Buffer;
  blob: Buffer;
  desc: Descriptor;
  entries: LayerEntry[];
}

async function gzipLayer(store: Store, tag: string, mediaType = GZIP): Promise<Layer> {
  const entries = layerEntries(tag);
  const tar = await layerTar(entries);
  const blob = gzipSync(tar);
  return { tar, blob, desc: await putBlob(store, blob, mediaType), entries };
}

/** Every name in the unpacked directory that belongs to `digest` (temp files included). */
function filesOf(store: Store, digest: string): string[] {
  const dir = join(unpackedDir(store), 'sha256');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(hexOf(digest)))
    .sort();
}

/** The cached layer checked against the tar it was made from, field by field and byte by byte. */
function checkAgainst(got: CachedLayer, layer: Layer, store: Store): void {
  const base = join(store.root, 'unpacked', 'sha256', hexOf(layer.desc.digest));
  expect(got.digest).toBe(layer.desc.digest);
  expect(got.tar).toBe(`${base}.tar`);
  expect(got.diffId).toBe(sha(layer.tar));
  expect(got.size).toBe(layer.tar.length);
  const onDisk = readFileSync(got.tar);
  expect(onDisk.equals(layer.tar)).toBe(true);
  expect(got.entries.map((e) => e.name)).toEqual(
    layer.entries.map((e) => ((e.type ?? (e.data !== undefined ? 'file' : 'dir')) === 'dir' ? `${e.path}/` : e.path)),
  );
  for (const [i, spec] of layer.entries.entries()) {
    const e = got.entries[i];
    const type = spec.type ?? (spec.data !== undefined ? 'file' : 'dir');
    expect(e?.type, spec.path).toBe(type);
    expect(e?.mode, spec.path).toBe(spec.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644));
    expect([e?.uid, e?.gid], spec.path).toEqual([spec.uid ?? 0, spec.gid ?? 0]);
    expect(e?.mtime, spec.path).toBe(spec.mtime ?? IMAGE_MTIME);
    expect(e?.linkname, spec.path).toBe(spec.linkname);
    if (type === 'char') expect([e?.devmajor, e?.devminor]).toEqual([5, 1]); // layerTar's device
    if (type === 'file') {
      const data = Buffer.from(spec.data ?? '');
      expect(e?.size, spec.path).toBe(data.length);
      const at = e?.offset ?? -1;
      expect(onDisk.subarray(at, at + data.length).equals(data), spec.path).toBe(true);
    } else {
      expect(e?.size, spec.path).toBe(0);
    }
  }
}

describe('unpackedLayer', () => {
  it('unpacks a gzip layer into <store>/unpacked/sha256/<hex>.tar and .json', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'first');
    expect(gunzipSync(layer.blob).equals(layer.tar)).toBe(true);
    const got = await unpackedLayer(store, layer.desc);
    checkAgainst(got, layer, store);
    expect(unpackedDir(store)).toBe(join(store.root, 'unpacked'));
    const hex = hexOf(layer.desc.digest);
    expect(filesOf(store, layer.desc.digest)).toEqual([`${hex}.json`, `${hex}.tar`]);
    // the index is JSON that names the layer and holds the same entries
    const index = JSON.parse(readFileSync(join(unpackedDir(store), 'sha256', `${hex}.json`), 'utf8'));
    expect(index).toMatchObject({ digest: layer.desc.digest, diffId: sha(layer.tar), size: layer.tar.length });
    expect(index.entries).toEqual(got.entries);
  });

  it('accepts the right diffId, and unpacks Docker gzip and plain tar layers too', async () => {
    const store = await freshStore();
    const gz = await gzipLayer(store, 'checked');
    checkAgainst(await unpackedLayer(store, gz.desc, sha(gz.tar)), gz, store);

    const docker = await gzipLayer(store, 'docker', DOCKER_GZIP);
    checkAgainst(await unpackedLayer(store, docker.desc), docker, store);

    const tar = await layerTar(layerEntries('plain'));
    const plain: Layer = { tar, blob: tar, desc: await putBlob(store, tar, PLAIN), entries: layerEntries('plain') };
    const got = await unpackedLayer(store, plain.desc, sha(tar));
    checkAgainst(got, plain, store);
    expect(got.diffId).toBe(plain.desc.digest); // uncompressed: the blob is the tar
  });

  it('reuses the unpacked layer: a second call needs neither the blob nor a new file', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'reuse');
    const first = await unpackedLayer(store, layer.desc);
    const ino = statSync(first.tar).ino;
    unlinkSync(store.blobPath(layer.desc.digest));
    expect(await store.hasBlob(layer.desc)).toBe(false);
    const second = await unpackedLayer(store, layer.desc);
    expect(second).toEqual(first);
    const third = await unpackedLayer(store, layer.desc, sha(layer.tar));
    expect(third).toEqual(first);
    expect(statSync(first.tar).ino).toBe(ino); // not rewritten
    checkAgainst(third, layer, store);
  });

  it('refuses a layer whose contents do not hash to the diffId, naming both, and keeps nothing', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'wrong-diffid');
    const wrong = sha(Buffer.from('something else'));
    const err = await unpackedLayer(store, layer.desc, wrong).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toContain(sha(layer.tar));
    expect((err as Error).message).toContain(wrong);
    expect((err as Error).message).toContain(layer.desc.digest);
    expect(filesOf(store, layer.desc.digest)).toEqual([]);
    // still refused when a good unpacked copy exists: the cache is not trusted over the diffId
    await unpackedLayer(store, layer.desc);
    await expect(unpackedLayer(store, layer.desc, wrong)).rejects.toThrow(wrong);
    const hex = hexOf(layer.desc.digest);
    expect(filesOf(store, layer.desc.digest)).toEqual([`${hex}.json`, `${hex}.tar`]);
  });

  it('rebuilds an unpacked tar that was truncated, or whose index is damaged', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'truncated');
    const first = await unpackedLayer(store, layer.desc);
    truncateSync(first.tar, first.size - 700);
    const again = await unpackedLayer(store, layer.desc);
    checkAgainst(again, layer, store);
    expect(again).toEqual(first);

    writeFileSync(first.tar.replace(/\.tar$/, '.json'), '{"version": 1, "digest": ');
    checkAgainst(await unpackedLayer(store, layer.desc), layer, store);
    const hex = hexOf(layer.desc.digest);
    expect(filesOf(store, layer.desc.digest)).toEqual([`${hex}.json`, `${hex}.tar`]);
  });

  describe('a blob that cannot be read as a layer is refused with a clear message, nothing kept', () => {
    async function refused(bytes: Buffer, why: RegExp, mediaType = GZIP): Promise<void> {
      const store = await freshStore();
      const desc = await putBlob(store, bytes, mediaType);
      for (let i = 0; i < 5; i++) {
        const err = await unpackedLayer(store, desc).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BuildError);
        expect((err as Error).message).toContain(`layer ${desc.digest}`);
        expect((err as Error).message).toMatch(why);
        // nothing for this layer: no unpacked tar, no index, no temp file
        expect(filesOf(store, desc.digest)).toEqual([]);
      }
    }

    it('a gzip stream cut short', async () => {
      const blob = gzipSync(await layerTar(layerEntries('cut')));
      await refused(blob.subarray(0, Math.floor(blob.length / 2)), /unexpected end of file/i);
    });

    it('damaged deflate data', async () => {
      const blob = Buffer.from(gzipSync(await layerTar(layerEntries('flipped'))));
      for (let i = 40; i < blob.length - 20; i += 37) blob[i] = (blob[i] ?? 0) ^ 0x5a;
      await refused(blob, /./);
    });

    it('a wrong CRC in the gzip trailer', async () => {
      const blob = Buffer.from(gzipSync(await layerTar(layerEntries('crc'))));
      blob.writeUInt32LE((blob.readUInt32LE(blob.length - 8) ^ 1) >>> 0, blob.length - 8);
      await refused(blob, /check/i);
    });

    it('not gzip at all', async () => {
      await refused(Buffer.from('this is not a gzip stream, just text'), /header/i);
    });

    it('gzip of something that is not a tar', async () => {
      await refused(gzipSync(Buffer.alloc(4096, 'not a tar header ')), /checksum/);
    });

    it('gzip of a tar that stops inside a file', async () => {
      const tar = await layerTar(layerEntries('short'));
      const at = tar.indexOf(Buffer.from('short\n'.repeat(700)));
      expect(at).toBeGreaterThan(0);
      await refused(gzipSync(tar.subarray(0, at + 1000)), /stops inside an entry/);
    });

    it('a zstd layer, named as such', async () => {
      await refused(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 1)]), /zstd/, ZSTD);
    });

    it('a layer whose blob is not in the store', async () => {
      const store = await freshStore();
      const desc: Descriptor = { mediaType: GZIP, digest: sha(Buffer.from('absent')), size: 6 };
      await expect(unpackedLayer(store, desc)).rejects.toThrow(/not in/);
      expect(filesOf(store, desc.digest)).toEqual([]);
    });
  });

  // The media type is checked before the blob is opened: a refused layer holds no descriptor.
  it('a refused zstd layer leaves no file descriptor open on its blob', async () => {
    const store = await freshStore();
    const desc = await putBlob(store, Buffer.from('zstd bytes'), ZSTD);
    const blobPath = store.blobPath(desc.digest);
    const open = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === blobPath;
        } catch {
          return false;
        }
      }).length;
    for (let i = 0; i < 3; i++) await unpackedLayer(store, desc).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect(open()).toBe(0);
  });

  // On a failure the temp tar is removed only once its write stream has closed: a stream that
  // had not yet created its file when the pipeline failed would otherwise create it afterwards.
  it('a refused layer leaves no temp file, even when opening the temp file is slow', async () => {
    const store = await freshStore();
    const desc = await putBlob(store, Buffer.from('this is not a gzip stream, just text'), GZIP);
    slowOpen.ms = 50;
    try {
      await expect(unpackedLayer(store, desc)).rejects.toThrow(/header/);
    } finally {
      slowOpen.ms = 0;
    }
    await new Promise((r) => setTimeout(r, 200)); // let the delayed open land
    expect(filesOf(store, desc.digest)).toEqual([]);
  });

  it('a slow open() alone does not break unpacking (the fault injection above is sound)', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'slow-open');
    slowOpen.ms = 50;
    try {
      checkAgainst(await unpackedLayer(store, layer.desc), layer, store);
    } finally {
      slowOpen.ms = 0;
    }
    const hex = hexOf(layer.desc.digest);
    expect(filesOf(store, layer.desc.digest)).toEqual([`${hex}.json`, `${hex}.tar`]);
  });

  it('six concurrent calls agree, and leave exactly one .tar and one .json', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'concurrent');
    const results = await Promise.all(Array.from({ length: 6 }, () => unpackedLayer(store, layer.desc)));
    for (const r of results) expect(r).toEqual(results[0]);
    checkAgainst(results[0] as CachedLayer, layer, store);
    const hex = hexOf(layer.desc.digest);
    expect(readdirSync(join(unpackedDir(store), 'sha256')).sort()).toEqual([`${hex}.json`, `${hex}.tar`]);
  });
});

// Nothing in the cache is taken on trust: it is bound to the layer's diff_id by hashing it again
// on first use, a damaged blob is named as such, and what a killed writer left goes next time.
describe('unpackedLayer does not trust the store', () => {
  it('a same-size edit inside the unpacked tar is not served: the layer is unpacked again', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'edited');
    const first = await unpackedLayer(store, layer.desc, sha(layer.tar));
    const hello = first.entries.find((e) => e.name === 'etc/hello');
    expect(hello).toBeDefined();
    const bytes = readFileSync(first.tar);
    bytes.write('HELLO', hello?.offset ?? 0); // same size, other contents
    writeFileSync(first.tar, bytes);
    // With the config's diff_id, and without one (the index's own record is the reference then).
    for (const diffId of [sha(layer.tar), undefined]) {
      const again = await unpackedLayer(store, layer.desc, diffId);
      checkAgainst(again, layer, store);
      writeFileSync(first.tar, bytes);
    }
  });

  it('an index whose offsets were changed is not believed: entries come from the tar itself', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'offsets');
    const first = await unpackedLayer(store, layer.desc);
    const index = join(unpackedDir(store), 'sha256', `${hexOf(layer.desc.digest)}.json`);
    const doc = JSON.parse(readFileSync(index, 'utf8'));
    const tool = doc.entries.find((e: { name: string }) => e.name === 'bin/tool');
    const hello = doc.entries.find((e: { name: string }) => e.name === 'etc/hello');
    tool.offset = hello.offset; // bin/tool would read etc/hello's bytes
    writeFileSync(index, JSON.stringify(doc));
    const fresh = await Store.open(store.root);
    const again = await unpackedLayer(fresh, layer.desc);
    expect(again.entries.find((e) => e.name === 'bin/tool')?.offset).toBe(
      first.entries.find((e) => e.name === 'bin/tool')?.offset,
    );
  });

  it('a blob edited in the store is named as corrupt (not "incorrect data check") and removed', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'tampered');
    const path = store.blobPath(layer.desc.digest);
    const bytes = readFileSync(path);
    for (let i = 40; i < bytes.length - 20; i += 97) bytes[i] = (bytes[i] ?? 0) ^ 0x5a;
    writeFileSync(path, bytes);
    const err = await unpackedLayer(store, layer.desc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^layer ${layer.desc.digest}: blob ${layer.desc.digest} in the store .* is corrupt \\(its contents hash to sha256:`,
      ),
    );
    expect((err as Error).message).not.toMatch(/incorrect data check|invalid/);
    expect(existsSync(path)).toBe(false);
    expect(filesOf(store, layer.desc.digest)).toEqual([]);
  });

  it('temp files of a writer that died are removed at the next unpack', async () => {
    const store = await freshStore();
    const layer = await gzipLayer(store, 'killed');
    const dir = join(unpackedDir(store), 'sha256');
    mkdirSync(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const tag = tempTag().replace(/^\d+-/, `${dead}-`);
    const left = join(dir, `${hexOf(layer.desc.digest)}.tar.${tag}.tmp`);
    writeFileSync(left, Buffer.alloc(100_000));
    await unpackedLayer(store, layer.desc);
    expect(existsSync(left)).toBe(false);
    const hex = hexOf(layer.desc.digest);
    expect(filesOf(store, layer.desc.digest)).toEqual([`${hex}.json`, `${hex}.tar`]);
  });

  it.skipIf(process.getuid?.() !== 0)('a full disk names the file being written (a 1 MiB tmpfs)', async () => {
    const mnt = mkdtempSync(join(work, 'tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const store = await Store.open(join(mnt, 'store'));
      const big = await layerTar([{ path: 'zeros', data: Buffer.alloc(3 * 1024 * 1024) }]);
      const desc = await putBlob(store, gzipSync(big), GZIP);
      const err = await unpackedLayer(store, desc).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BuildError);
      const tmp = join(mnt, 'store', 'unpacked', 'sha256', `${hexOf(desc.digest)}.tar.`);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^layer ${desc.digest}: cannot write ${tmp}[0-9a-f-]+\\.tmp: no space left on the device \\(ENOSPC\\)$`,
        ),
      );
      expect(filesOf(store, desc.digest)).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('pruneUnpacked', () => {
  it('does nothing in a store that never unpacked a layer', async () => {
    const store = await freshStore();
    expect(await pruneUnpacked(store)).toEqual({ removed: [], bytes: 0 });
  });

  it('removes the layers whose blob is gone (and old temp files), keeps the rest; dryRun removes nothing', async () => {
    const store = await freshStore();
    const gone = await gzipLayer(store, 'gone');
    const kept = await gzipLayer(store, 'kept');
    const alsoGone = await gzipLayer(store, 'also-gone');
    for (const l of [gone, kept, alsoGone]) await unpackedLayer(store, l.desc);
    unlinkSync(store.blobPath(gone.desc.digest));
    unlinkSync(store.blobPath(alsoGone.desc.digest));
    const dir = join(unpackedDir(store), 'sha256');
    // temp files of a writer that died: one old enough to be stale, one that may still be in use
    const staleTmp = join(dir, `${hexOf(kept.desc.digest)}.tar.4242-deadbeef0000.tmp`);
    const freshTmp = join(dir, `${hexOf(kept.desc.digest)}.json.4242-deadbeef0001.tmp`);
    writeFileSync(staleTmp, Buffer.alloc(3000));
    writeFileSync(freshTmp, Buffer.alloc(10));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(staleTmp, twoHoursAgo, twoHoursAgo);

    const before = readdirSync(dir).sort();
    const bytesOf = (l: Layer) =>
      ['tar', 'json'].reduce((s, ext) => s + statSync(join(dir, `${hexOf(l.desc.digest)}.${ext}`)).size, 0);
    const expectBytes = bytesOf(gone) + bytesOf(alsoGone) + 3000;
    const wantRemoved = [gone.desc.digest, alsoGone.desc.digest].sort();

    const dry = await pruneUnpacked(store, { dryRun: true });
    expect(dry.removed.sort()).toEqual(wantRemoved);
    expect(dry.bytes).toBe(expectBytes);
    expect(readdirSync(dir).sort()).toEqual(before);

    const real = await pruneUnpacked(store);
    expect(real.removed.sort()).toEqual(wantRemoved);
    expect(real.bytes).toBe(expectBytes);
    const hexK = hexOf(kept.desc.digest);
    expect(readdirSync(dir).sort()).toEqual([`${hexK}.json`, `${hexK}.json.4242-deadbeef0001.tmp`, `${hexK}.tar`]);

    // the kept layer is still served from its unpacked copy; a second prune finds nothing
    checkAgainst(await unpackedLayer(store, kept.desc), kept, store);
    expect(await pruneUnpacked(store)).toEqual({ removed: [], bytes: 0 });
  });
});
