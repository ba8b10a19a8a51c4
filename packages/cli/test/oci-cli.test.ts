// The oci commands end to end: a real registry on loopback, skopeo reading what they write.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { unpackedLayer } from '@stele/image';
import { exportArchive, exportDockerArchive, MediaType, Store, sha256 } from '@stele/oci';
import { type Registry, startDockerd, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progress } from '../src/commands/oci.ts';
import { main } from '../src/main.ts';
import { fakeIo } from './io.ts';

const run = promisify(execFile);
let reg: Registry;
let dir: string;
beforeAll(async () => {
  reg = await startRegistry();
  dir = mkdtempSync(join(tmpdir(), 'stele-oci-cli-'));
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function stele(args: string[], env: NodeJS.ProcessEnv = {}) {
  const io = fakeIo({ HOME: dir, ...env });
  io.cwd = dir;
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** A tar holding one file (ustar, written here). */
function tarOfOneFile(name: string, text: string): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${text.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('0', 156);
  header.write('ustar\u000000', 257);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(text.length / 512) * 512);
  body.write(text);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

/** A one-layer image written into a store and exported as an OCI archive. */
async function seedArchive(file: string, name: string): Promise<string> {
  const store = await Store.open(join(dir, 'seed'));
  const layer = Buffer.from(`layer of ${name}`);
  const l = await store.writeBlob(layer);
  const cfg = await store.writeBlob(
    Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [l.digest] } }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...cfg },
      layers: [{ mediaType: MediaType.OciLayer, ...l }],
    }),
  );
  const desc = { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length };
  await store.pushManifest(desc, manifest, [name]);
  await exportArchive(store, [name], file);
  return desc.digest;
}

describe('stele cache / push / pull / key / sign / verify', () => {
  it('each has --help with examples', async () => {
    for (const args of [
      ['cache'],
      ['cache', 'ls'],
      ['cache', 'import'],
      ['cache', 'export'],
      ['cache', 'rm'],
      ['cache', 'gc'],
      ['pull'],
      ['push'],
      ['key', 'generate'],
      ['sign'],
      ['verify'],
    ]) {
      const r = await stele([...args, '--help']);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toMatch(/Examples:\n {2}stele /);
    }
  });

  it('imports, pushes, pulls, exports, signs and verifies', async () => {
    const ref = `${reg.host}/cli/app:1`;
    const digest = await seedArchive(join(dir, 'in.tar'), ref);
    const cacheA = ['--cache', join(dir, 'a')];
    expect((await stele(['cache', 'import', 'in.tar', ...cacheA])).out).toMatch(`imported 3 blobs: ${ref}`);

    const pushed = await stele(['push', ref, ...cacheA, '--json']);
    expect(pushed.code, pushed.err).toBe(0);
    expect(JSON.parse(pushed.out)).toMatchObject({ digest, blobsCopied: 2 });
    // Nothing on a pipe (stderr is not a TTY) without --json... but events with it.
    expect(
      pushed.err
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).event),
    ).toContain('blob-done');
    const again = await stele(['push', ref, ...cacheA, '--json']);
    expect(JSON.parse(again.out)).toMatchObject({ blobsCopied: 0 });

    const cacheB = ['--cache', join(dir, 'b')];
    const pulled = await stele(['pull', ref, ...cacheB]);
    expect(pulled.code, pulled.err).toBe(0);
    expect(pulled.out).toBe(`${ref}@${digest} (2 blobs pulled, 0 present)\n`);
    expect(pulled.err).toBe('');
    const ls = JSON.parse((await stele(['cache', 'ls', '--json', ...cacheB])).out);
    expect(ls).toEqual([expect.objectContaining({ name: ref, digest })]);

    expect((await stele(['cache', 'export', ref, '-o', 'out.tar', ...cacheB])).code).toBe(0);
    const info = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${join(dir, 'out.tar')}:${ref}`])).stdout);
    expect(info.Digest).toBe(digest);

    const env = { COSIGN_PASSWORD: 'hunter2' };
    expect((await stele(['key', 'generate'], env)).code).toBe(0);
    expect(statSync(join(dir, 'cosign.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'cosign.key'), 'utf8')).toMatch(/ENCRYPTED SIGSTORE PRIVATE KEY/);
    expect((await stele(['key', 'generate'], env)).err).toMatch(/exists \(use --force/);
    expect((await stele(['key', 'generate', '--output-prefix', 'other'], env)).code).toBe(0);

    expect((await stele(['verify', ref, '--key', 'cosign.pub'])).err).toMatch(/no signature/);
    expect((await stele(['sign', ref, '--key', 'cosign.key'], { COSIGN_PASSWORD: 'nope' })).err).toMatch(
      /wrong passphrase/,
    );
    const signed = await stele(['sign', ref, '--key', 'cosign.key'], env);
    expect(signed.code, signed.err).toBe(0);
    expect(signed.out).toContain(`signed ${digest}`);
    const ok = await stele(['verify', ref, '--key', 'cosign.pub']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toBe(`verified ${digest} (1 valid signature)\n`);
    const bad = await stele(['verify', ref, '--key', 'other.pub']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/signature verification failed:[\s\S]*wrong key or tampered payload/);

    expect((await stele(['cache', 'rm', ref, ...cacheB])).code).toBe(0);
    expect((await stele(['cache', 'rm', ref, ...cacheB])).err).toMatch(/not in the store/);
    expect(JSON.parse((await stele(['cache', 'gc', '--json', ...cacheB])).out).kept).toBe(3);
  }, 120_000);

  it('cache gc also removes the unpacked copies of the layers it deletes', async () => {
    const cacheDir = join(dir, 'gc-store');
    const store = await Store.open(cacheDir);
    const layer = Buffer.from(tarOfOneFile('hello', 'world'));
    const kept = await store.writeBlob(layer);
    const gone = await store.writeBlob(Buffer.from(tarOfOneFile('bye', 'gone soon')));
    const d = { mediaType: MediaType.OciLayer };
    await unpackedLayer(store, { ...d, ...kept });
    await unpackedLayer(store, { ...d, ...gone });
    // Only `kept` is used by a stored image; both blobs are older than gc's grace period.
    const cfg = await store.writeBlob(Buffer.from('{"architecture":"amd64","os":"linux"}'));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, ...cfg },
        layers: [{ ...d, ...kept }],
      }),
    );
    await store.pushManifest(
      { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length },
      manifest,
      ['docker.io/test/gc:1'],
    );
    const old = new Date(Date.now() - 3 * 3_600_000);
    for (const b of [kept, gone, cfg]) utimesSync(store.blobPath(b.digest), old, old);
    const dry = JSON.parse((await stele(['cache', 'gc', '--dry-run', '--json', '--cache', cacheDir])).out);
    expect(dry.unpacked.removed).toEqual([gone.digest]);
    expect(readdirSync(join(cacheDir, 'unpacked', 'sha256'))).toHaveLength(4);
    const res = await stele(['cache', 'gc', '--cache', cacheDir]);
    expect(res.out).toMatch(/^removed 1 blobs .*; 1 unpacked layers/);
    const left = readdirSync(join(cacheDir, 'unpacked', 'sha256')).sort();
    expect(left).toEqual([`${kept.digest.slice(7)}.json`, `${kept.digest.slice(7)}.tar`]);
    const all = await stele(['cache', 'gc', '--unpacked', '--json', '--cache', cacheDir]);
    expect(JSON.parse(all.out).unpacked.removed).toEqual([kept.digest]);
    expect(readdirSync(join(cacheDir, 'unpacked', 'sha256'))).toEqual([]);
    expect(await store.hasBlob(kept)).toBe(true); // the compressed blob stays
  });

  it('cache import also reads what a real `docker save` writes, with every image and its tags', async () => {
    const engine = await startDockerd();
    try {
      // Two images into the engine (docker load of archives we write), then the engine's own save.
      const seed = await Store.open(join(dir, 'dsave-seed'));
      const digests: string[] = [];
      for (const name of ['one', 'two']) {
        const layer = await seed.writeBlob(gzipSync(tarOfOneFile(name, `contents of ${name}`)));
        const diff = sha256(tarOfOneFile(name, `contents of ${name}`));
        const cfg = await seed.writeBlob(
          Buffer.from(
            JSON.stringify({
              architecture: 'amd64',
              os: 'linux',
              config: {},
              rootfs: { type: 'layers', diff_ids: [diff] },
            }),
          ),
        );
        const man = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.OciManifest,
            config: { mediaType: MediaType.OciConfig, ...cfg },
            layers: [{ mediaType: MediaType.OciLayerGzip, ...layer }],
          }),
        );
        const desc = { mediaType: MediaType.OciManifest, digest: sha256(man), size: man.length };
        await seed.pushManifest(desc, man, []);
        const archive = await exportDockerArchive(seed, desc, [`stele-test/${name}:1`]);
        await engine.docker
          .loadImage(archive as unknown as NodeJS.ReadableStream)
          .then((s) => new Promise((r, j) => (s as NodeJS.ReadableStream).on('end', r).on('error', j).resume()));
        digests.push(cfg.digest);
      }
      const saved = join(dir, 'dsave.tar');
      await run('docker', [
        '-H',
        `unix://${engine.socketPath}`,
        'save',
        '-o',
        saved,
        'stele-test/one:1',
        'stele-test/two:1',
      ]);
      const cacheDir = join(dir, 'dsave-store');
      const res = await stele(['cache', 'import', saved, '--json', '--cache', cacheDir]);
      expect(res.code, res.err).toBe(0);
      expect(JSON.parse(res.out).names.sort()).toEqual(['docker.io/stele-test/one:1', 'docker.io/stele-test/two:1']);
      // The config digest is the engine's image id; the layer unpacks to what was loaded.
      const store = await Store.open(cacheDir);
      for (const [i, name] of ['one', 'two'].entries()) {
        const desc = await store.resolve(`docker.io/stele-test/${name}:1`);
        const m = JSON.parse((await store.fetchManifest(desc)).toString());
        expect(m.config.digest).toBe(digests[i]);
        const id = (await engine.docker.getImage(`stele-test/${name}:1`).inspect()).Id;
        expect(id).toBe(digests[i]);
      }
      const bad = join(dir, 'not-an-image.tar');
      await run('tar', ['-cf', bad, '-C', dir, 'dsave.tar']);
      const err = await stele(['cache', 'import', bad, '--cache', cacheDir]);
      expect(err.code).toBe(1);
      expect(err.err).toMatch(/neither an OCI image layout tar \(no index\.json\) nor a docker save archive/);
    } finally {
      await engine.stop();
    }
  }, 120_000);

  it('reports clear errors', async () => {
    // (`UPPER/case` is a valid reference: Docker reads an upper-case first component as a registry.)
    const bad = await stele(['pull', 'org/UPPER']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/must be lowercase \('UPPER'\)/);
    const missing = await stele(['pull', `${reg.host}/cli/none:1`, '--cache', join(dir, 'c')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/cli\/none:1 not found/);
    const noKey = await stele(['sign', `${reg.host}/cli/app:1`]);
    expect(noKey.code).toBe(2);
  }, 60_000);
});

// What probing as a hostile user found (issue 12): every one exits 1 with a message and no
// "internal error" or stack trace.
describe('the store and import under hostile input', () => {
  const internal = /internal error|\n\s+at /;

  it('cache import of an archive whose blobs the store already has (again, and after export)', async () => {
    const ref = 'docker.io/hostile/again:1';
    await seedArchive(join(dir, 'again.tar'), ref);
    const cache = ['--cache', join(dir, 'again-store')];
    for (let i = 0; i < 2; i++) {
      const r = await stele(['cache', 'import', 'again.tar', ...cache]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe(`imported 3 blobs: ${ref}\n`);
    }
    expect((await stele(['cache', 'export', ref, '-o', 'again-out.tar', ...cache])).code).toBe(0);
    expect((await stele(['cache', 'import', 'again-out.tar', ...cache])).code).toBe(0);
  });

  it('a truncated archive, a file that is not a tar, a blob that is not what its name says', async () => {
    await seedArchive(join(dir, 'whole.tar'), 'docker.io/hostile/cut:1');
    writeFileSync(join(dir, 'cut.tar'), readFileSync(join(dir, 'whole.tar')).subarray(0, 5000));
    const cut = await stele(['cache', 'import', 'cut.tar', '--cache', join(dir, 'cut-store')]);
    expect(cut.code).toBe(1);
    expect(cut.err).toBe(
      `stele: cannot import ${join(dir, 'cut.tar')}: the tar is cut short (it ends inside an entry)\n`,
    );

    const whole = readFileSync(join(dir, 'whole.tar'));
    const at = whole.indexOf(Buffer.from('layer of docker.io/hostile/cut:1'));
    whole[at] = 'L'.charCodeAt(0);
    writeFileSync(join(dir, 'tampered.tar'), whole);
    const bad = await stele(['cache', 'import', 'tampered.tar', '--cache', join(dir, 'cut-store')]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(
      /^stele: cannot import .*tampered\.tar: blobs\/sha256\/[0-9a-f]{64} does not hold what its name says: digest mismatch/,
    );
    expect(bad.err).not.toMatch(internal);
  });

  it('--cache pointing at a file, for cache, pull and build alike', async () => {
    writeFileSync(join(dir, 'a-file'), 'x');
    writeFileSync(
      join(dir, 'os.yml'),
      'kernel:\n  image: test/kernel:1\n  cmdline: console=ttyS0\ninit:\n  - test/init:1\n',
    );
    const want = `stele: cannot use ${join(dir, 'a-file')} as the store: it is not a directory\n`;
    for (const args of [
      ['cache', 'ls'],
      ['cache', 'gc'],
      ['cache', 'import', 'in.tar'],
      ['pull', `${reg.host}/cli/app:1`],
      ['build', 'os.yml'],
    ]) {
      const r = await stele([...args, '--cache', 'a-file']);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err, args.join(' ')).toBe(want);
    }
  });

  it('a lock file that is not one of ours: which file, and when it is safe to remove', async () => {
    const cacheDir = join(dir, 'locked-store');
    await Store.open(cacheDir);
    writeFileSync(join(cacheDir, 'index.json.lock'), 'garbage');
    const r = await stele(['cache', 'rm', 'docker.io/x/y:1', '--cache', cacheDir]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `stele: the lock file ${join(cacheDir, 'index.json.lock')} is unreadable (not written by stele, or damaged); ` +
        'if no stele command that could hold it is running, remove that file and run again\n',
    );
  });

  it('pull fetches again a config edited in the store (same size) instead of counting it present', async () => {
    const ref = `${reg.host}/hostile/repull:1`;
    await seedArchive(join(dir, 'repull.tar'), ref);
    const seed = ['--cache', join(dir, 'repull-seed')];
    expect((await stele(['cache', 'import', 'repull.tar', ...seed])).code).toBe(0);
    expect((await stele(['push', ref, ...seed])).code).toBe(0);
    const cache = ['--cache', join(dir, 'repull')];
    expect((await stele(['pull', ref, ...cache])).out).toMatch('(2 blobs pulled, 0 present)');
    const store = await Store.open(join(dir, 'repull'));
    const m = JSON.parse((await store.fetchManifest(await store.resolve(ref))).toString());
    const path = store.blobPath(m.config.digest);
    writeFileSync(path, readFileSync(path, 'utf8').replace('"amd64"', '"AMD64"'));
    const again = await stele(['pull', ref, ...cache]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch('(1 blobs pulled, 1 present)');
    expect(sha256(readFileSync(path))).toBe(m.config.digest);
  });
});

describe('progress', () => {
  const digest = `sha256:${'e'.repeat(64)}`;
  const events = [
    { type: 'blob-start', digest, size: 2_000_000 },
    { type: 'blob-progress', digest, size: 2_000_000, bytes: 1_000_000 },
    { type: 'blob-done', digest, size: 2_000_000, ms: 500 },
  ] as const;
  it('draws per-blob bytes and rate on a TTY', () => {
    const io = fakeIo();
    (io.stderr as { isTTY?: boolean }).isTTY = true;
    const p = progress(io, false, 'pull');
    for (const e of events) p.onEvent(e);
    p.done();
    expect(io.err()).toMatch(/pull eeeeeeeeeeee {2}1\.0 MB \/ 2\.0 MB {2} 50% {2}[\d.]+ [kMG]?B\/s/);
    expect(io.err()).toContain('pulled sha256:eeeeeeeeeeee  2.0 MB in 0.5s');
  });
  it('prints nothing on a pipe and JSON lines with --json', () => {
    const pipe = fakeIo();
    const p = progress(pipe, false, 'push');
    for (const e of events) p.onEvent(e);
    expect(pipe.err()).toBe('');
    const json = fakeIo();
    const j = progress(json, true, 'push');
    for (const e of events) j.onEvent(e);
    expect(
      json
        .err()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).event),
    ).toEqual(['blob-start', 'blob-progress', 'blob-done']);
  });
});
