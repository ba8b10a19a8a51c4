// `stele build` end to end: manifests → images the test made in a real OCI store → outputs.
// The tar and initrd contents are checked entry by entry; bad inputs fail cleanly.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '@stele/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, buildImage, lockPathOf } from '../src/index.ts';
import { putImage } from './pipeline-images.ts';

let work: string;
let store: Store;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-pipeline-'));
  store = await Store.open(join(work, 'store'));
  // A kernel image as LinuxKit packages them: /kernel and /kernel.tar (modules).
  const { tarOf } = await import('./pipeline-images.ts');
  const modules = await tarOf([
    { path: 'lib/modules/6.1.0/', dir: true },
    { path: 'lib/modules/6.1.0/modules.dep', data: 'x.ko:\n' },
  ]);
  await putImage(store, 'docker.io/test/kernel:1', [
    [
      { path: 'kernel', data: 'KERNEL-BYTES' },
      { path: 'kernel.tar', data: modules },
    ],
  ]);
  // An init image over two layers: the second deletes a file and empties a directory (whiteouts).
  await putImage(store, 'docker.io/test/init:1', [
    [
      { path: 'init', data: '#!/bin/sh\necho init\n', mode: 0o755 },
      { path: 'etc/', dir: true },
      { path: 'etc/motd', data: 'old motd\n' },
      { path: 'etc/gone', data: 'deleted later\n' },
      { path: 'opt/', dir: true },
      { path: 'opt/a', data: 'a' },
    ],
    [
      { path: 'etc/.wh.gone', data: '' },
      { path: 'opt/.wh..wh..opq', data: '' },
      { path: 'opt/b', data: 'b' },
      { path: 'bin/', dir: true },
      { path: 'bin/busybox', data: 'BUSYBOX', mode: 0o755 },
      { path: 'bin/sh', hardlink: 'bin/busybox' },
      { path: 'etc/motd', data: 'new motd\n' },
    ],
  ]);
  await putImage(store, 'docker.io/test/hello:1', [[{ path: 'hello', data: 'hi', mode: 0o755 }]], {
    Cmd: ['/hello'],
    Env: ['PATH=/bin'],
    Labels: { 'org.mobyproject.config': JSON.stringify({ capabilities: ['CAP_NET_ADMIN'] }) },
  });
  await putImage(store, 'docker.io/test/web:1', [[{ path: 'web', data: 'serve', mode: 0o755 }]], { Cmd: ['/web'] });
  await putImage(store, 'docker.io/test/arm:1', [[{ path: 'x', data: 'x' }]], {}, 'arm64');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function manifest(name: string, text: string): string {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
}

const BASE = `kernel:
  image: test/kernel:1
  cmdline: "console=ttyS0"
init:
  - test/init:1
onboot:
  - name: hello
    image: test/hello:1
services:
  - name: web
    image: test/web:1
    readonly: true
files:
  - path: etc/stele
    contents: "built by stele"
    mode: "0600"
`;

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tvf', file, '--numeric-owner'], { encoding: 'utf8' }).trim().split('\n');
}

describe('stele build: tar output', () => {
  it('lays the image out like LinuxKit: kernel to boot/, init at /, bundles, files', async () => {
    const out = join(work, 'out-tar');
    const m = manifest('base.yml', BASE);
    const r = await buildImage({ manifest: m, store, formats: ['tar'], dir: out, offline: true });
    expect(r.outputs).toEqual([{ format: 'tar', files: [join(out, 'base.tar')] }]);
    const names = execFileSync('tar', ['-tf', join(out, 'base.tar')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    // Rule: the kernel lands in boot/ with its command line; kernel.tar is unpacked at /.
    expect(names).toEqual(expect.arrayContaining(['boot/', 'boot/kernel', 'boot/cmdline', 'lib/modules/6.1.0/']));
    // Rule: init images are merged at /, with OCI whiteouts applied (etc/gone deleted, opt/ made opaque).
    expect(names).toEqual(expect.arrayContaining(['init', 'etc/motd', 'opt/b', 'bin/busybox', 'bin/sh']));
    expect(names).not.toContain('etc/gone');
    expect(names).not.toContain('opt/a');
    // Rule: onboot containers are numbered (000-name), services are not; each has config.json + runtime.json.
    for (const dir of ['containers/onboot/000-hello', 'containers/services/web']) {
      expect(names).toEqual(expect.arrayContaining([`${dir}/config.json`, `${dir}/runtime.json`]));
    }
    // Rule: a writable container gets lower/ (the image) + tmp/; a readonly one its image in rootfs/.
    expect(names).toContain('containers/onboot/000-hello/lower/hello');
    expect(names).toContain('containers/services/web/rootfs/web');
    // Rule: files entries with their mode.
    const listing = tarList(join(out, 'base.tar'));
    expect(listing.find((l) => l.endsWith(' etc/stele'))).toMatch(/^-rw------- 0\/0/);
    // Rule: the latest layer's content wins.
    const motd = execFileSync('tar', ['-xOf', join(out, 'base.tar'), 'etc/motd'], { encoding: 'utf8' });
    expect(motd).toBe('new motd\n');
    // Stele: /sbom.spdx.json merges every image's SBOM; the OS image CONTAINS each package image.
    const sbom = JSON.parse(
      execFileSync('tar', ['-xOf', join(out, 'base.tar'), 'sbom.spdx.json'], { encoding: 'utf8' }),
    );
    expect(sbom.spdxVersion).toBe('SPDX-2.3');
    const names2 = sbom.packages.map((p: { name: string }) => p.name);
    for (const repo of ['test/kernel', 'test/init', 'test/hello', 'test/web']) {
      expect(names2).toContain(`docker.io/${repo}`);
    }
    // Rule: hard links stay hard links to their target.
    expect(listing.find((l) => l.includes(' bin/sh '))).toMatch(/^h.* bin\/sh link to bin\/busybox$/);
  });

  it('generates config.json from image config + label + manifest (LinuxKit precedence)', async () => {
    const out = join(work, 'out-cfg');
    await buildImage({ manifest: manifest('cfg.yml', BASE), store, formats: ['tar'], dir: out, offline: true });
    const cfg = JSON.parse(
      execFileSync('tar', ['-xOf', join(out, 'cfg.tar'), 'containers/onboot/000-hello/config.json'], {
        encoding: 'utf8',
      }),
    );
    expect(cfg.process.args).toEqual(['/hello']); // from the image's Cmd
    expect(cfg.process.env).toContain('PATH=/bin'); // from the image's Env
    expect(cfg.process.capabilities.bounding).toEqual(['CAP_NET_ADMIN']); // from the label
  });

  it('is reproducible: the same bytes in two directories', async () => {
    const m = manifest('repro.yml', BASE);
    const a = await buildImage({ manifest: m, store, formats: ['tar'], dir: join(work, 'ra'), offline: true });
    const b = await buildImage({ manifest: m, store, formats: ['tar'], dir: join(work, 'rb'), offline: true });
    const [fa, fb] = [a.outputs[0]?.files[0] ?? '', b.outputs[0]?.files[0] ?? ''];
    expect(readFileSync(fa).equals(readFileSync(fb))).toBe(true);
  });

  it('writes a lock file; --frozen accepts it, and refuses a stale one', async () => {
    const m = manifest('locked.yml', BASE);
    await buildImage({ manifest: m, store, formats: ['tar'], dir: join(work, 'l1'), offline: true });
    const lock = JSON.parse(readFileSync(lockPathOf(m), 'utf8'));
    expect(lock.images['test/hello:1'].digest).toMatch(/^sha256:/);
    await buildImage({ manifest: m, store, formats: ['tar'], dir: join(work, 'l2'), offline: true, frozen: true });
    // The tag moves to a new image: the lock is now stale.
    await putImage(store, 'docker.io/test/hello:1', [[{ path: 'hello', data: 'changed' }]], { Cmd: ['/hello'] });
    await expect(
      buildImage({ manifest: m, store, formats: ['tar'], dir: join(work, 'l3'), offline: true, frozen: true }),
    ).rejects.toThrow(/is stale: test\/hello:1 now resolves to sha256:/);
    await expect(
      buildImage({
        manifest: manifest('nolock.yml', BASE),
        store,
        formats: ['tar'],
        dir: join(work, 'l4'),
        offline: true,
        frozen: true,
      }),
    ).rejects.toThrow(/no lock file/);
  });

  it('--dry-run resolves and plans without writing anything', async () => {
    const out = join(work, 'dry');
    const r = await buildImage({ manifest: manifest('dry.yml', BASE), store, dir: out, offline: true, dryRun: true });
    expect(r.plan.containers.map((c) => `${c.section}/${c.name}`)).toEqual(['onboot/hello', 'services/web']);
    expect(r.plan.images.map((i) => i.ref)).toEqual(['test/kernel:1', 'test/init:1', 'test/hello:1', 'test/web:1']);
    expect(() => readdirSync(out)).toThrow();
  });
});

describe('stele build: bad input fails cleanly, leaving nothing', () => {
  const fails = async (text: string, pattern: RegExp, extra: Record<string, unknown> = {}) => {
    const out = join(work, `bad-${Math.random().toString(36).slice(2)}`);
    const err = await buildImage({
      manifest: manifest('bad.yml', text),
      store,
      formats: ['tar', 'kernel+initrd'],
      dir: out,
      offline: true,
      ...extra,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toMatch(pattern);
    let left: string[] = [];
    try {
      left = readdirSync(out);
    } catch {
      /* never created */
    }
    expect(left).toEqual([]);
  };

  it('an image missing from the store (and no registry)', () =>
    fails(BASE.replace('test/hello:1', 'test/nothere:1'), /test\/nothere:1 is not in the store/));
  it('an unknown arch', () => fails(BASE, /unknown arch 'sparc'/, { arch: 'sparc' }));
  it('an image for another arch', () =>
    fails(`${BASE}  - path: x\n    contents: x\n`.replace('test/hello:1', 'test/arm:1'), /is for linux\/arm64/));
  it('a pinned digest that is not the one the store has', () =>
    fails(BASE.replace('test/hello:1', `test/hello:1@sha256:${'0'.repeat(64)}`), /not in the store|digest/));
  it('a files.source that does not exist', () =>
    fails(`${BASE}  - path: etc/x\n    source: ./no-such-file\n`, /source \.\/no-such-file does not exist/));
  it('a trust section without a key', () =>
    fails(`${BASE}trust:\n  org:\n    - test\n`, /must be signed: give the public key with --verify-key/));
  it('schema errors, with file:line:col', () => fails('services:\n  - name: x\n', /bad\.yml:2:5: .*image/));
});

describe('stele build: the layer cache', () => {
  it('unpacks each layer once into the store; a damaged entry is made again, with the same output', async () => {
    const cacheStore = await Store.open(join(work, 'cache-store'));
    await putImage(cacheStore, 'docker.io/test/kernel:1', [
      [
        { path: 'kernel', data: 'K' },
        { path: 'kernel.tar', data: await (await import('./pipeline-images.ts')).tarOf([{ path: 'lib/', dir: true }]) },
      ],
    ]);
    await putImage(cacheStore, 'docker.io/test/init:1', [
      [{ path: 'init', data: 'first layer init', mode: 0o755 }],
      [
        { path: 'etc/', dir: true },
        { path: 'etc/issue', data: 'second layer' },
      ],
    ]);
    const m = manifest('cached.yml', 'kernel:\n  image: test/kernel:1\n  cmdline: c\ninit:\n  - test/init:1\n');
    const build = async (dir: string) => {
      const r = await buildImage({
        manifest: m,
        store: cacheStore,
        formats: ['tar'],
        dir: join(work, dir),
        offline: true,
      });
      return readFileSync(r.outputs[0]?.files[0] ?? '');
    };
    const first = await build('c1');
    const unpacked = join(cacheStore.root, 'unpacked', 'sha256');
    const tars = readdirSync(unpacked).filter((f) => f.endsWith('.tar'));
    expect(tars).toHaveLength(3); // kernel's layer + init's two
    expect(readdirSync(unpacked).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // Damage one entry (as a crash or a full disk might): the size no longer matches its index.
    const victim = join(unpacked, tars[0] ?? '');
    writeFileSync(victim, readFileSync(victim).subarray(0, 700));
    const second = await build('c2');
    expect(second.equals(first)).toBe(true);
    expect(readFileSync(victim).length).toBeGreaterThan(700);
  });

  it('refuses a layer whose contents do not match the diff_id in the image config', async () => {
    const { imageBlobs } = await import('./build-images.ts');
    const { sha256, MediaType } = await import('@stele/oci');
    const bad = await Store.open(join(work, 'diffid-store'));
    const img = await imageBlobs([[{ path: 'init', type: 'file', data: 'x' }]]);
    const layer = img.blobs[0] as Buffer;
    await bad.writeBlob(layer);
    const cfg = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [`sha256:${'1'.repeat(64)}`] },
      }),
    );
    await bad.writeBlob(cfg);
    const man = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: sha256(cfg), size: cfg.length },
        layers: [{ mediaType: MediaType.OciLayerGzip, digest: sha256(layer), size: layer.length }],
      }),
    );
    await bad.pushManifest({ mediaType: MediaType.OciManifest, digest: sha256(man), size: man.length }, man, [
      'docker.io/test/liar:1',
    ]);
    const out = join(work, 'liar-out');
    const err = await buildImage({
      manifest: manifest('liar.yml', 'init:\n  - test/liar:1\n'),
      store: bad,
      formats: ['tar'],
      dir: out,
      offline: true,
      sbom: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toMatch(
      /test\/liar:1: layer sha256:[0-9a-f]+: its contents hash to sha256:[0-9a-f]+, but the image config says sha256:1{64}/,
    );
    expect(readdirSync(join(bad.root, 'unpacked', 'sha256'))).toEqual([]);
  });
});

describe('stele build: volumes with format: oci', () => {
  it('puts the image in the volume as an OCI image layout whose blobs match their digests', async () => {
    const text = `${BASE}volumes:\n  - name: images\n    image: test/web:1\n    format: oci\n`;
    const m = manifest('ocivol.yml', text);
    const out = join(work, 'ocivol');
    await buildImage({ manifest: m, store, formats: ['tar'], dir: out, offline: true });
    const x = join(work, 'ocivol-x');
    execFileSync('mkdir', ['-p', x]);
    execFileSync('tar', ['-xf', join(out, 'ocivol.tar'), '-C', x, 'containers/volumes/images']);
    const lower = join(x, 'containers/volumes/images/lower');
    const index = JSON.parse(readFileSync(join(lower, 'index.json'), 'utf8'));
    const top = index.manifests[0];
    expect(top.annotations['org.opencontainers.image.ref.name']).toBe('docker.io/test/web:1');
    expect(top.digest).toBe((await store.resolve('docker.io/test/web:1')).digest);
    const { sha256 } = await import('@stele/oci');
    const blobs = readdirSync(join(lower, 'blobs', 'sha256'));
    expect(blobs.length).toBe(3); // config, one layer, manifest
    for (const b of blobs) expect(sha256(readFileSync(join(lower, 'blobs', 'sha256', b)))).toBe(`sha256:${b}`);
    // The volume's mount points, and the lock pins the volume's image too.
    const names = execFileSync('tar', ['-tf', join(out, 'ocivol.tar')], { encoding: 'utf8' }).split('\n');
    expect(names).toEqual(
      expect.arrayContaining(['containers/volumes/images/tmp/', 'containers/volumes/images/merged/']),
    );
    expect(JSON.parse(readFileSync(lockPathOf(m), 'utf8')).images['test/web:1'].digest).toBe(top.digest);
  });

  it('an unknown platform for the volume is an error naming the volume', async () => {
    const text = `${BASE}volumes:\n  - name: images\n    image: test/web:1\n    format: oci\n    platforms: [linux/s390x]\n`;
    const err = await buildImage({
      manifest: manifest('ocivol-bad.yml', text),
      store,
      formats: ['tar'],
      dir: join(work, 'ocivol-bad'),
      offline: true,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toMatch(/test\/web:1.*linux\/amd64.*not linux\/s390x/);
  });
});
