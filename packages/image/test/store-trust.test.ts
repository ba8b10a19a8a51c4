// `buildImage` over a store that was edited behind Stele's back (the registry peer holds the
// real images, signed): an image config changed in place, same size, is refused and named —
// also when its signature is checked — and fetched again, by --pull or by the next build; a
// same-size edit inside an unpacked layer never reaches the output.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type Descriptor, RegistryClient, Repository, Store, sha256, signImage } from '@stele/oci';
import { type Registry, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, buildImage, unpackedLayer } from '../src/index.ts';
import { imageBlobs, type LayerEntry, readTar } from './build-images.ts';

let work: string;
let registry: Registry;
let client: RegistryClient;
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
let pubFile: string;
const images: Record<string, { descriptor: Descriptor; config: Descriptor; layers: Descriptor[] }> = {};

async function push(name: string, layers: LayerEntry[][], config: Record<string, unknown> = {}): Promise<void> {
  const img = await imageBlobs(layers, config);
  const repo = new Repository(client, name);
  for (const b of img.blobs) {
    await repo.pushBlob({ mediaType: 'application/octet-stream', digest: sha256(b), size: b.length }, async () =>
      Readable.from([b]),
    );
  }
  await repo.pushManifest(img.descriptor, img.manifest, ['1']);
  await signImage(repo, img.descriptor, keys.privateKey, `${registry.host}/${name}`);
  const m = JSON.parse(img.manifest.toString());
  images[name] = { descriptor: img.descriptor, config: m.config, layers: m.layers };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-store-trust-'));
  registry = await startRegistry();
  client = new RegistryClient(registry.host);
  pubFile = join(work, 'cosign.pub');
  writeFileSync(pubFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  await push('trust/kernel', [[{ path: 'kernel', data: 'KERNEL' }]]);
  await push('trust/init', [[{ path: 'init', data: '#!/bin/sh\n', mode: 0o755 }, { path: 'etc' }]]);
  await push('trust/hello', [[{ path: 'hello', data: 'the real hello\n', mode: 0o755 }]], { Cmd: ['/hello'] });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

function manifest(): string {
  const h = registry.host;
  const p = join(work, 'os.yml');
  writeFileSync(
    p,
    [
      'kernel:',
      `  image: ${h}/trust/kernel:1`,
      '  cmdline: "console=ttyS0"',
      '  tar: none',
      'init:',
      `  - ${h}/trust/init:1`,
      'onboot:',
      '  - name: hello',
      `    image: ${h}/trust/hello:1`,
      'trust:',
      '  image:',
      `    - ${h}/trust/hello`,
      '',
    ].join('\n'),
  );
  return p;
}

/** Builds the tar output; returns the args of the hello container and the bytes of /hello's file. */
async function build(store: Store, opts: { pull?: boolean } = {}): Promise<{ args: string[]; hello: string }> {
  const dir = mkdtempSync(join(work, 'out-'));
  await buildImage({ manifest: manifest(), store, formats: ['tar'], name: 'os', dir, verifyKey: pubFile, ...opts });
  const entries = await readTar(readFileSync(join(dir, 'os.tar')));
  const body = (name: string) => entries.find((e) => e.name === name)?.body?.toString() ?? '';
  const config = JSON.parse(body('containers/onboot/000-hello/config.json'));
  return { args: config.process.args, hello: body('containers/onboot/000-hello/lower/hello') };
}

/** `/hello` → `/HELLO` in the stored config: same size, other contents. */
function editConfig(store: Store): string {
  const path = store.blobPath(images['trust/hello']?.config.digest ?? '');
  const text = readFileSync(path, 'utf8');
  expect(text).toContain('"/hello"');
  writeFileSync(path, text.replace('"/hello"', '"/HELLO"'));
  return path;
}

describe('a build over an edited store', () => {
  it('refuses an edited config although the signature checks out, naming it and saying what to do', async () => {
    const store = await Store.open(join(work, 'store-config'));
    expect((await build(store)).args).toEqual(['/hello']);
    const path = editConfig(store);
    const edited = sha256(readFileSync(path));
    const err = await build(await Store.open(store.root)).catch((e: unknown) => e);
    const digest = images['trust/hello']?.config.digest;
    expect((err as Error).message).toBe(
      `blob ${digest} in the store ${store.root} is corrupt (its contents hash to ${edited}); ` +
        'removed it: fetch the image again (stele pull, stele build --pull, or stele cache import)',
    );
    expect(existsSync(path)).toBe(false);
    expect((await build(await Store.open(store.root), { pull: true })).args).toEqual(['/hello']);
  }, 60_000);

  it('--pull replaces an edited config instead of counting it as present', async () => {
    const store = await Store.open(join(work, 'store-pull'));
    await build(store);
    editConfig(store);
    expect((await build(await Store.open(store.root), { pull: true })).args).toEqual(['/hello']);
    expect(sha256(readFileSync(store.blobPath(images['trust/hello']?.config.digest ?? '')))).toBe(
      images['trust/hello']?.config.digest,
    );
  }, 60_000);

  it('a same-size edit inside an unpacked layer never reaches the output', async () => {
    const store = await Store.open(join(work, 'store-unpacked'));
    expect((await build(store)).hello).toBe('the real hello\n');
    const layer = images['trust/hello']?.layers[0] as Descriptor;
    const cached = await unpackedLayer(store, layer);
    const file = cached.entries.find((e) => e.name === 'hello');
    const bytes = readFileSync(cached.tar);
    bytes.write('the fake hello\n', file?.offset ?? 0);
    writeFileSync(cached.tar, bytes);
    expect((await build(await Store.open(store.root))).hello).toBe('the real hello\n');
  }, 60_000);
});

describe('messages', () => {
  it('name the store once ("not in the store /path", not "the store store")', async () => {
    const store = await Store.open(join(work, 'store-empty'));
    const err = await buildImage({
      manifest: manifest(),
      store,
      formats: ['tar'],
      dir: join(work, 'never'),
      offline: true,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toMatch(`is not in the store ${store.root} (and --offline forbids the registry)`);
    expect((err as Error).message).not.toMatch(/store store/);
  });
});
