import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { REF_NAME_ANNOTATION } from '../src/descriptor.ts';
import { DigestError, sha256 } from '../src/digest.ts';
import { acquire } from '../src/lock.ts';
import { MediaType } from '../src/mediatypes.ts';
import { Store } from '../src/store.ts';
import { defaultStoreDir } from '../src/store-paths.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stele-oci-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[p.slice(root.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

async function image(store: Store, name: string, layerData: Buffer[]) {
  const layers = [];
  for (const l of layerData) layers.push({ mediaType: MediaType.OciLayer, ...(await store.writeBlob(l)) });
  const cfg = await store.writeBlob(Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...cfg },
      layers,
    }),
  );
  const desc = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
  await store.pushManifest(desc, bytes, [name]);
  return desc;
}

describe('Store', () => {
  it('creates an OCI image layout that names entries by the ref.name annotation', async () => {
    const root = tmp();
    const store = await Store.open(root);
    expect(JSON.parse(readFileSync(join(root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const desc = await image(store, 'docker.io/library/alpine:3.20', [Buffer.from('layer')]);
    const idx = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8'));
    expect(idx.schemaVersion).toBe(2);
    expect(idx.manifests).toHaveLength(1);
    expect(idx.manifests[0].digest).toBe(desc.digest);
    expect(idx.manifests[0].annotations[REF_NAME_ANNOTATION]).toBe('docker.io/library/alpine:3.20');
    expect(await store.resolve('docker.io/library/alpine:3.20')).toEqual(desc);
    expect(await store.resolve(desc.digest)).toEqual(desc);
    const blob = readFileSync(join(root, 'blobs', 'sha256', desc.digest.slice(7)));
    expect(sha256(blob)).toBe(desc.digest);
  });

  it('retagging replaces the entry instead of adding a second one', async () => {
    const store = await Store.open(tmp());
    await image(store, 'r/a:1', [Buffer.from('one')]);
    const second = await image(store, 'r/a:1', [Buffer.from('two')]);
    const list = await store.list();
    expect(list).toHaveLength(1);
    expect(list[0]?.descriptor.digest).toBe(second.digest);
  });

  it('refuses a stream whose digest does not match and leaves the store unchanged', async () => {
    const root = tmp();
    const store = await Store.open(root);
    await image(store, 'r/a:1', [Buffer.from('keep')]);
    const before = snapshot(root);
    const good = Buffer.from('x'.repeat(100_000));
    const bad = Buffer.from(good);
    bad[5000] = (bad[5000] as number) ^ 1;
    await expect(store.writeBlob(Readable.from([bad]), { digest: sha256(good), size: good.length })).rejects.toThrow(
      DigestError,
    );
    await expect(store.writeBlob(Readable.from([bad]), { digest: sha256(good), size: good.length })).rejects.toThrow(
      /digest mismatch: expected sha256:/,
    );
    await expect(
      store.writeBlob(Readable.from([good.subarray(1)]), { digest: sha256(good), size: good.length }),
    ).rejects.toThrow(/size mismatch/);
    expect(snapshot(root)).toEqual(before);
  });

  it('a stream that breaks mid-blob leaves nothing half-written', async () => {
    const root = tmp();
    const store = await Store.open(root);
    const before = snapshot(root);
    const data = randomBytes(200_000);
    const broken = new Readable({
      read() {
        this.push(data.subarray(0, 50_000));
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      },
    });
    await expect(store.writeBlob(broken, { digest: sha256(data), size: data.length })).rejects.toThrow(
      /socket hang up/,
    );
    expect(snapshot(root)).toEqual(before);
    // pushBlob retries a broken connection from the start and then succeeds.
    let calls = 0;
    await store.pushBlob({ mediaType: MediaType.OciLayer, digest: sha256(data), size: data.length }, async () => {
      calls++;
      if (calls === 1) {
        return new Readable({
          read() {
            this.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
          },
        });
      }
      return Readable.from([data]);
    });
    expect(calls).toBe(2);
    expect(await store.hasBlob({ digest: sha256(data), size: data.length })).toBe(true);
  });

  it('gc removes only unreachable blobs older than the grace period', async () => {
    const root = tmp();
    const store = await Store.open(root);
    const keep = await image(store, 'r/keep:1', [Buffer.from('kept layer')]);
    const drop = await image(store, 'r/drop:1', [Buffer.from('dropped layer')]);
    expect(await store.untag('r/drop:1')).toBe(1);
    const young = await store.writeBlob(Buffer.from('just written, not yet tagged'));
    const old = new Date(Date.now() - 2 * 3_600_000);
    for (const d of [drop.digest, sha256(Buffer.from('dropped layer')), sha256(Buffer.from('kept layer'))]) {
      utimesSync(store.blobPath(d), old, old);
    }
    const res = await store.gc();
    expect(res.removed.sort()).toEqual([drop.digest, sha256(Buffer.from('dropped layer'))].sort());
    expect(await store.hasBlob({ digest: keep.digest })).toBe(true);
    expect(await store.hasBlob({ digest: sha256(Buffer.from('kept layer')) })).toBe(true);
    expect(await store.hasBlob({ digest: young.digest })).toBe(true);
  });

  it('defaults to $STELE_CACHE, then the XDG cache dir', () => {
    expect(defaultStoreDir({ STELE_CACHE: '/x' })).toBe('/x');
    expect(defaultStoreDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/stele/oci');
    expect(defaultStoreDir({ HOME: '/h' })).toBe('/h/.cache/stele/oci');
  });
});

describe('lock', () => {
  it('is exclusive, and breaks a lock left by a dead process', async () => {
    const dir = tmp();
    const path = join(dir, 'l.lock');
    const release = await acquire(path);
    await expect(acquire(path, { timeoutMs: 200 })).rejects.toThrow(/timed out .*held by pid/);
    await release();
    // A lock file whose owner pid is gone.
    writeFileSync(
      path,
      JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), nonce: 'x', time: 0 }),
    );
    const r2 = await acquire(path, { timeoutMs: 2000 });
    await r2();
    expect(() => statSync(path)).toThrow();
  });
});

describe('Store under 8 concurrent processes', () => {
  it('loses no entry and corrupts no blob', async () => {
    const root = tmp();
    const workers = 8;
    const rounds = 6;
    const worker = join(import.meta.dirname, 'helpers', 'store-worker.ts');
    const runs = Array.from(
      { length: workers },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', worker, root, String(i), String(rounds)], {
            stdio: ['ignore', 'inherit', 'pipe'],
          });
          let err = '';
          p.stderr.on('data', (c: Buffer) => {
            err += c.toString();
          });
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${i} exited ${code}: ${err}`))));
        }),
    );
    await Promise.all(runs);
    const store = await Store.open(root);
    const names = (await store.list()).map((e) => e.name).sort();
    const expected = ['127.0.0.1:5000/shared:latest'];
    for (let w = 0; w < workers; w++) for (let r = 0; r < rounds; r++) expected.push(`127.0.0.1:5000/w${w}:r${r}`);
    expect(names).toEqual(expected.sort());
    // Every blob is intact, and every entry's graph is complete.
    for (const hex of readdirSync(join(root, 'blobs', 'sha256'))) {
      expect(sha256(readFileSync(join(root, 'blobs', 'sha256', hex)))).toBe(`sha256:${hex}`);
    }
    for (const e of await store.list()) {
      for (const d of await store.reachable(e.descriptor)) expect(await store.hasBlob({ digest: d })).toBe(true);
    }
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    expect(readdirSync(root).filter((n) => n.includes('lock'))).toEqual([]);
  });
});
