// The store trusts nothing on disk: a blob edited in place (same size) is refused when read,
// named, removed, and copied again by the next pull; writers killed mid-write leave temp files
// that the next run removes; a store that cannot be used (a file, a full disk, a damaged
// index.json, a lock it cannot read) says which file and what to do.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { tempTag } from '../src/atomic.ts';
import { copy } from '../src/copy.ts';
import { DigestError } from '../src/digest.ts';
import { acquire, LockError } from '../src/lock.ts';
import { MissingBlobError, Store, StoreError } from '../src/store.ts';
import { makeImage } from './helpers/images.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stele-store-trust-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Changes one byte of a file in place: same size, same name, different contents. */
function flipByte(path: string, at?: number): void {
  const bytes = readFileSync(path);
  const i = at ?? Math.floor(bytes.length / 2);
  bytes[i] = (bytes[i] as number) ^ 0x01;
  writeFileSync(path, bytes);
}

/** A config blob edited as the probe did: `/bin/true` → `/bin/XXXX`, same length. */
function editConfig(path: string): void {
  const text = readFileSync(path, 'utf8');
  expect(text).toContain('/bin/true');
  writeFileSync(path, text.replace('/bin/true', '/bin/XXXX'));
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('blobs edited in the store', () => {
  it('a layer read as a stream ends in a DigestError naming it, and is removed', async () => {
    const store = await Store.open(tmp());
    const img = await makeImage(store, 'r/a:1', { layerSizes: [300_000] });
    const layer = img.layers[0] as (typeof img.layers)[0];
    flipByte(store.blobPath(layer.digest));
    const err = await drain(await store.fetchBlob(layer)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestError);
    expect((err as Error).message).toMatch(`blob ${layer.digest} in the store ${store.root} is corrupt`);
    expect((err as Error).message).toMatch(/removed it: fetch the image again/);
    expect(existsSync(store.blobPath(layer.digest))).toBe(false);
  });

  it('a config read whole (readBlob, fetchManifest) is refused the same way', async () => {
    const store = await Store.open(tmp());
    const img = await makeImage(store, 'r/a:1');
    editConfig(store.blobPath(img.config.digest));
    await expect(store.readBlob(img.config.digest)).rejects.toThrow(/is corrupt \(its contents hash to sha256:/);
    await expect(store.readBlob(img.config.digest)).rejects.toBeInstanceOf(MissingBlobError);

    flipByte(store.blobPath(img.descriptor.digest), 20);
    await expect(store.fetchManifest(img.descriptor)).rejects.toThrow(DigestError);
  });

  it('hasBlob says no for an edited blob, so a copy into the store fetches it again', async () => {
    const source = await Store.open(tmp());
    const img = await makeImage(source, 'r/a:1');
    const store = await Store.open(tmp());
    const first = await copy(source, 'r/a:1', store, ['r/a:1']);
    expect(first.blobsCopied).toBe(3);
    editConfig(store.blobPath(img.config.digest));
    // A fresh Store, as the next command would open it.
    const again = await Store.open(store.root);
    expect(await again.hasBlob(img.config)).toBe(false);
    const second = await copy(source, 'r/a:1', again, ['r/a:1']);
    expect(second).toMatchObject({ blobsCopied: 1, blobsSkipped: 2 });
    expect((await again.readBlob(img.config.digest)).equals(await source.readBlob(img.config.digest))).toBe(true);
    // Nothing left to fetch: the manifest and every blob are sound.
    const third = await copy(source, 'r/a:1', await Store.open(store.root), ['r/a:1']);
    expect(third).toMatchObject({ blobsCopied: 0, blobsSkipped: 3 });
  });

  it('a copy out of the store (a push) refuses an edited layer, naming it', async () => {
    const store = await Store.open(tmp());
    const img = await makeImage(store, 'r/a:1', { layerSizes: [200_000] });
    const layer = img.layers[0] as (typeof img.layers)[0];
    flipByte(store.blobPath(layer.digest));
    const dst = await Store.open(tmp());
    const err = await copy(store, 'r/a:1', dst, ['r/a:1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestError);
    expect((err as Error).message).toContain(`blob ${layer.digest} in the store ${store.root} is corrupt`);
    expect(await dst.hasBlob(layer)).toBe(false);
  });

  it('writing a blob the store holds damaged replaces it', async () => {
    const store = await Store.open(tmp());
    const data = Buffer.from('layer bytes '.repeat(1000));
    const { digest } = await store.writeBlob(data);
    flipByte(store.blobPath(digest));
    const fresh = await Store.open(store.root);
    await fresh.writeBlob(Readable.from([data]), { digest, size: data.length });
    expect(readFileSync(store.blobPath(digest)).equals(data)).toBe(true);
  });

  it('writing a blob the store already has reads the stream to its end (and checks it)', async () => {
    const store = await Store.open(tmp());
    const data = Buffer.from('shared layer '.repeat(5000));
    const { digest } = await store.writeBlob(data);
    let ended = false;
    const source = Readable.from([data.subarray(0, 30_000), data.subarray(30_000)]).on('end', () => {
      ended = true;
    });
    await store.writeBlob(source, { digest, size: data.length });
    expect(ended).toBe(true);
    const wrong = Buffer.from(data);
    wrong[10] = 0;
    await expect(store.writeBlob(Readable.from([wrong]), { digest, size: data.length })).rejects.toThrow(
      /digest mismatch/,
    );
  });
});

describe('temp files of writers that died', () => {
  it('are removed when the store is next opened; those of live or unknown writers stay', async () => {
    const root = tmp();
    await Store.open(root);
    // A pid that has certainly ended: a child we ran to completion.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const mine = tempTag();
    const deadName = mine.replace(/^\d+-/, `${dead}-`);
    writeFileSync(join(root, '.tmp', deadName), Buffer.alloc(4096));
    writeFileSync(join(root, '.tmp', mine), Buffer.alloc(10)); // this process: still writing
    writeFileSync(join(root, '.tmp', '4242-0123456789ab'), Buffer.alloc(10)); // no host tag: gc's age rule
    const otherHost = deadName.replace(
      /-([a-f0-9]{8})-/,
      (_m, h: string) => `-${h === 'ffffffff' ? '00000000' : 'ffffffff'}-`,
    );
    writeFileSync(join(root, '.tmp', otherHost), Buffer.alloc(10)); // another host: not ours to judge
    await Store.open(root);
    expect(readdirSync(join(root, '.tmp')).sort()).toEqual([mine, '4242-0123456789ab', otherHost].sort());
  });
});

describe('a store that cannot be used says which file and what to do', () => {
  it('a file given as the store', async () => {
    const file = join(tmp(), 'not-a-dir');
    writeFileSync(file, 'x');
    const err = await Store.open(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`cannot use ${file} as the store: it is not a directory`);
    const below = join(file, 'store');
    await expect(Store.open(below)).rejects.toThrow(`cannot create the store at ${below}: part of the path is a file`);
  });

  it('a damaged index.json', async () => {
    const root = tmp();
    await Store.open(root);
    writeFileSync(join(root, 'index.json'), '{"schemaVersion": 2, "manifests": [\n  {"digest": \'x\'}\n]}\n');
    const err = await (await Store.open(root)).list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(
      `the store's list of images ${join(root, 'index.json')} is damaged: manifest is not valid JSON (line 2, column 14`,
    );
    expect((err as Error).message).toMatch(/remove it to start the list afresh/);
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('a full disk (a 1 MiB tmpfs), naming the file being written', async () => {
    const mnt = tmp();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const store = await Store.open(join(mnt, 'store'));
      const err = await store.writeBlob(Readable.from([Buffer.alloc(2 * 1024 * 1024, 1)])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^cannot write ${join(mnt, 'store', '.tmp')}/\\d+-[a-f0-9]{8}-[a-f0-9]+: no space left on the device \\(ENOSPC\\)$`,
        ),
      );
      expect(readdirSync(join(mnt, 'store', '.tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('lock files', () => {
  it('a lock file stele did not write is reported at once, with the file to remove', async () => {
    const dir = tmp();
    const path = join(dir, 'index.json.lock');
    writeFileSync(path, 'garbage, not JSON');
    const err = await acquire(path, { timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockError);
    expect((err as Error).message).toBe(
      `the lock file ${path} is unreadable (not written by stele, or damaged); ` +
        'if no stele command that could hold it is running, remove that file and run again',
    );
    // The store's own lock gives the same message.
    const store = await Store.open(join(dir, 'store'));
    writeFileSync(join(store.root, 'index.json.lock'), '{"pid": "x"}');
    await expect(store.tag('r/a:1', { mediaType: 'x', digest: `sha256:${'a'.repeat(64)}`, size: 1 })).rejects.toThrow(
      /index\.json\.lock is unreadable/,
    );
  });

  it('a timeout names the holder and says when the file may be removed', async () => {
    const dir = tmp();
    const path = join(dir, 'l.lock');
    const release = await acquire(path);
    const err = await acquire(path, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockError);
    expect((err as Error).message).toMatch(
      new RegExp(`^timed out after 0.2 s waiting for the lock ${path}, held by pid ${process.pid} \\(still running\\)`),
    );
    expect((err as Error).message).toMatch(/wait for that process, or stop it/);
    await release();
    // Held from another host: only someone there can tell; the message says what to check.
    writeFileSync(path, JSON.stringify({ pid: 1, host: `not-${hostname()}`, nonce: 'n', time: Date.now() }));
    await expect(acquire(path, { timeoutMs: 200 })).rejects.toThrow(
      `if that process no longer runs on not-${hostname()}, remove ${path} and run again`,
    );
  });
});
