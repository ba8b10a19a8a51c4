// `buildImage` with every image in the registry peer only (Debian's docker-registry), signed with
// cosign-compatible signatures where the manifest's `trust` asks for them, then booted in qemu.
// The init image has two layers, as Docker makes them: the upper one repeats its parent
// directories, deletes a file (`.wh.`), empties a directory (`.wh..wh..opq`) and adds a hard link;
// /init reports what it finds, so the boot proves layer merging end to end.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildIndex, type Descriptor, RegistryClient, Repository, Store, sha256, signImage } from '@stele/oci';
import { bootQemu, debianKernel, type Registry, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, buildImage } from '../src/index.ts';
import { imageBlobs, type LayerEntry, layerTar } from './build-images.ts';

const marker = `STELE-REG-${randomBytes(5).toString('hex')}`;
let work: string;
let registry: Registry;
let client: RegistryClient;
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
let pubFile: string;
let otherPubFile: string;
const digests: Record<string, Descriptor> = {};

const INIT = [
  '#!/bin/busybox sh',
  'B=/bin/busybox',
  '$B mount -t devtmpfs dev /dev',
  'exec >/dev/console 2>&1',
  'S=""',
  '[ -x /bin/tool ] && S="$S tool" || S="$S notool"', // lower layer, below a repeated bin/
  '[ -x /bin/extra ] && S="$S extra" || S="$S noextra"', // upper layer
  '[ -e /doomed ] && S="$S doomed" || S="$S nodoomed"', // .wh.doomed
  '[ -e /opt/old ] && S="$S old" || S="$S noold"', // opt/.wh..wh..opq
  '[ -e /opt/new ] && S="$S new" || S="$S nonew"',
  '[ /bin/sh2 -ef /bin/busybox ] && S="$S hardlink" || S="$S nohardlink"',
  '[ -f /containers/onboot/000-hello/config.json ] && S="$S bundle" || S="$S nobundle"',
  `M1='${marker.slice(0, 8)}'`,
  `M2='${marker.slice(8)}'`,
  '$B printf "%s%s%s\\n" "$M1" "$M2" "$S"',
  '$B poweroff -f',
  '',
].join('\n');

async function push(name: string, layers: LayerEntry[][], config: Record<string, unknown> = {}): Promise<Descriptor> {
  const img = await imageBlobs(layers, config);
  const repo = new Repository(client, name);
  for (const b of img.blobs) {
    const desc = { mediaType: 'application/octet-stream', digest: sha256(b), size: b.length };
    await repo.pushBlob(desc, async () => Readable.from([b]));
  }
  await repo.pushManifest(img.descriptor, img.manifest, ['1']);
  digests[name] = img.descriptor;
  return img.descriptor;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-build-registry-'));
  registry = await startRegistry();
  client = new RegistryClient(registry.host);
  pubFile = join(work, 'cosign.pub');
  otherPubFile = join(work, 'other.pub');
  writeFileSync(pubFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(otherPubFile, other.publicKey.export({ type: 'spki', format: 'pem' }));

  await push('boot/kernel', [
    [
      { path: 'kernel', data: readFileSync(debianKernel()) },
      { path: 'kernel.tar', data: await layerTar([{ path: 'lib' }]) },
    ],
  ]);
  const busybox = readFileSync('/bin/busybox');
  const init = await push('boot/init', [
    [
      { path: 'bin' },
      { path: 'bin/busybox', data: busybox, mode: 0o755 },
      { path: 'bin/tool', data: '#!/bin/busybox sh\necho tool\n', mode: 0o755 },
      { path: 'init', data: INIT, mode: 0o755 },
      { path: 'doomed', data: 'to be deleted\n' },
      { path: 'opt' },
      { path: 'opt/old', data: 'hidden by the opaque directory\n' },
    ],
    [
      { path: 'bin' },
      { path: 'bin/extra', data: '#!/bin/busybox sh\necho extra\n', mode: 0o755 },
      { path: 'bin/sh2', type: 'hardlink', linkname: 'bin/busybox' },
      { path: '.wh.doomed', data: '' },
      { path: 'opt' },
      { path: 'opt/.wh..wh..opq', data: '' },
      { path: 'opt/new', data: 'new\n' },
    ],
  ]);
  const hello = await push('boot/hello', [[{ path: 'hello', data: 'hi', mode: 0o755 }]], { Cmd: ['/hello'] });
  // A multi-arch image: an index over an amd64 and an arm64 manifest, tagged 1.
  const amd = await push('boot/multi', [[{ path: 'arch', data: 'amd64\n' }]], { Cmd: ['/arch'] });
  const arm = await imageBlobs([[{ path: 'arch', data: 'arm64\n' }]], { Cmd: ['/arch'] }, 'arm64');
  const multi = new Repository(client, 'boot/multi');
  for (const b of arm.blobs) {
    await multi.pushBlob({ mediaType: 'application/octet-stream', digest: sha256(b), size: b.length }, async () =>
      Readable.from([b]),
    );
  }
  await multi.pushManifest(arm.descriptor, arm.manifest, []);
  const index = buildIndex([
    { descriptor: amd, platform: { os: 'linux', architecture: 'amd64' } },
    { descriptor: arm.descriptor, platform: { os: 'linux', architecture: 'arm64' } },
  ]);
  await multi.pushManifest(index.descriptor, index.bytes, ['1']);
  digests['boot/multi-index'] = index.descriptor;
  digests['boot/multi-arm64'] = arm.descriptor;
  await push('boot/unsigned', [[{ path: 'x', data: 'x' }]], { Cmd: ['/x'] });
  for (const [name, desc] of [
    ['boot/kernel', digests['boot/kernel'] as Descriptor],
    ['boot/init', init],
    ['boot/hello', hello],
  ] as const) {
    await signImage(new Repository(client, name), desc, keys.privateKey, `${registry.host}/${name}`);
  }
}, 120_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

function manifest(name: string, extra = ''): string {
  const h = registry.host;
  const p = join(work, `${name}.yml`);
  writeFileSync(
    p,
    [
      'kernel:',
      `  image: ${h}/boot/kernel:1`,
      '  cmdline: "console=ttyS0 panic=-1 quiet"',
      'init:',
      `  - ${h}/boot/init:1`,
      'onboot:',
      '  - name: hello',
      `    image: ${h}/boot/hello:1`,
      extra,
    ].join('\n'),
  );
  return p;
}

/** Runs a build expected to fail; returns the error after checking nothing was left behind. */
async function fails(opts: Parameters<typeof buildImage>[0]): Promise<BuildError> {
  const dir = opts.dir ?? '';
  const err = await buildImage(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BuildError);
  expect(existsSync(dir) ? readdirSync(dir) : [], 'no output left behind').toEqual([]);
  return err as BuildError;
}

describe('stele build from the registry peer', () => {
  it('fetches every image from the registry, checks their signatures, and the initrd boots', async () => {
    const store = await Store.open(join(work, 'store-boot'));
    const m = manifest('boot', `trust:\n  image:\n    - ${registry.host}/boot/init\n`);
    const out = join(work, 'out-boot');
    const events: string[] = [];
    const r = await buildImage({
      manifest: m,
      store,
      formats: ['kernel+initrd'],
      name: 'os',
      dir: out,
      verifyKey: pubFile,
      onEvent: (e) => {
        if (e.type === 'resolve') events.push(`${e.ref} ${e.from}`);
      },
    });
    // Every image came from the registry (the store was empty) and is pinned to the pushed digest.
    expect(events.every((e) => e.endsWith(' registry'))).toBe(true);
    expect(events).toHaveLength(3);
    const pinned = Object.fromEntries(r.plan.images.map((i) => [i.ref.replace(/:1$/, ''), i.digest]));
    expect(pinned[`${registry.host}/boot/init`]).toBe(digests['boot/init']?.digest);
    const files = r.outputs.find((o) => o.format === 'kernel+initrd')?.files ?? [];
    const [kernel, initrd, cmdline] = files;
    const boot = await bootQemu({
      kernel: kernel ?? '',
      initrd: initrd ?? '',
      append: readFileSync(cmdline ?? '', 'utf8'),
      marker,
      timeoutMs: 120_000,
    });
    const line = boot.log.split('\n').find((l) => l.includes(marker)) ?? '';
    const report = line.slice(line.indexOf(marker)).trim();
    // OCI layer rules: the lower layer's /bin/tool survives the upper layer's repeated bin/;
    // .wh.doomed deletes /doomed; the opaque opt/ hides /opt/old; hard links work.
    expect(report).toBe(`${marker} tool extra nodoomed noold new hardlink bundle`);
  }, 300_000);

  it('a second build uses the store (no registry) and gives the same bytes', async () => {
    const store = await Store.open(join(work, 'store-boot'));
    const m = manifest('boot');
    const events: string[] = [];
    const a = await buildImage({
      manifest: m,
      store,
      formats: ['kernel+initrd'],
      name: 'os',
      dir: join(work, 'again'),
      onEvent: (e) => {
        if (e.type === 'resolve') events.push(e.from);
      },
    });
    expect(events).toEqual(['store', 'store', 'store']);
    for (const f of a.outputs[0]?.files ?? []) {
      const name = f.split('/').pop() ?? '';
      expect(readFileSync(f).equals(readFileSync(join(work, 'out-boot', name))), name).toBe(true);
    }
  });

  it('--arch picks the platform manifest out of an index, and the lock file pins it', async () => {
    const store = await Store.open(join(work, 'store-arch'));
    const p = join(work, 'multi.yml');
    writeFileSync(p, `onboot:\n  - name: arch\n    image: ${registry.host}/boot/multi:1\n`);
    for (const arch of ['arm64', 'amd64']) {
      const r = await buildImage({ manifest: p, store, arch, formats: ['tar'], dir: join(work, `out-${arch}`) });
      const img = r.plan.images[0];
      expect(img?.digest, 'the reference pins the index').toBe(digests['boot/multi-index']?.digest);
      const want = arch === 'arm64' ? digests['boot/multi-arm64'] : digests['boot/multi'];
      expect(img?.manifest, `the ${arch} manifest`).toBe(want?.digest);
      const lock = JSON.parse(readFileSync(r.lockFile, 'utf8'));
      expect(lock.platform).toBe(`linux/${arch}`);
      expect(JSON.stringify(lock)).toContain(want?.digest ?? 'missing');
      // --frozen against the lock of the other arch is stale.
      const other = arch === 'arm64' ? 'amd64' : 'arm64';
      const err = await fails({ manifest: p, store, arch: other, frozen: true, dir: join(work, `out-frozen-${arch}`) });
      expect(err.message).toMatch(/frozen|stale|lock/i);
    }
    const err = await fails({ manifest: p, store, arch: 'mips', dir: join(work, 'out-mips') });
    expect(err.message).toMatch(/mips/);
  });

  it('an image missing from store and registry: names the image, exit with nothing written', async () => {
    const store = await Store.open(join(work, 'store-missing'));
    const m = manifest('missing', `services:\n  - name: ghost\n    image: ${registry.host}/nope/ghost:1\n`);
    const err = await fails({ manifest: m, store, dir: join(work, 'out-missing') });
    expect(err.message).toContain(`${registry.host}/nope/ghost:1`);
    expect(existsSync(join(work, 'missing.lock.json')), 'no lock file').toBe(false);
  });

  it('a pinned digest the registry does not have fails naming the image', async () => {
    const store = await Store.open(join(work, 'store-digest'));
    const wrong = `sha256:${'0'.repeat(64)}`;
    const m = manifest('digest', `services:\n  - name: pinned\n    image: ${registry.host}/boot/hello@${wrong}\n`);
    const err = await fails({ manifest: m, store, dir: join(work, 'out-digest') });
    expect(err.message).toContain(`boot/hello@${wrong}`);
  });

  it('trust: an unsigned image the manifest trusts stops the build, naming the image and why', async () => {
    const store = await Store.open(join(work, 'store-unsigned'));
    const m = manifest(
      'unsigned',
      `services:\n  - name: u\n    image: ${registry.host}/boot/unsigned:1\ntrust:\n  image:\n    - ${registry.host}/boot/unsigned\n`,
    );
    const err = await fails({ manifest: m, store, dir: join(work, 'out-unsigned'), verifyKey: pubFile });
    expect(err.message).toContain(`${registry.host}/boot/unsigned`);
    expect(err.message).toMatch(/signature|signed/i);
  });

  it('trust: a signature by another key stops the build', async () => {
    const store = await Store.open(join(work, 'store-otherkey'));
    const m = manifest('otherkey', `trust:\n  org:\n    - boot\n`);
    const err = await fails({ manifest: m, store, dir: join(work, 'out-otherkey'), verifyKey: otherPubFile });
    expect(err.message).toContain(`${registry.host}/boot/`);
    expect(err.message).toMatch(/signature|verif/i);
  });

  it('--verify-key alone makes every image need a signature', async () => {
    const store = await Store.open(join(work, 'store-allkey'));
    const m = manifest('allkey', `services:\n  - name: u\n    image: ${registry.host}/boot/unsigned:1\n`);
    const err = await fails({ manifest: m, store, dir: join(work, 'out-allkey'), verifyKey: pubFile });
    expect(err.message).toContain(`${registry.host}/boot/unsigned`);
  });
});
