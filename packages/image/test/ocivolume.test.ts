// `format: oci` volumes: resolving the image for all or some platforms (store first, then the
// registry peer), and the OCI image layout entries written below the volume's lower directory.
// The entries are materialized into a directory and read back as a layout: every blob re-hashed
// against its name, every selected manifest's config and layers present, index.json as LinuxKit
// writes it; skopeo (when installed) reads the layout as an independent check.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  MediaType,
  RegistryClient,
  Repository,
  Store,
  sha256,
} from '@stele/oci';
import { type Registry, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryOrigin, LayoutEntry } from '../src/assemble/index.ts';
import { BuildError } from '../src/pipeline/errors.ts';
import { OCI_LAYOUT_FILE, ociLayoutEntries } from '../src/pipeline/ocivolume.ts';
import { Registries, type ResolvedOciVolume, resolveOciVolume } from '../src/pipeline/resolve.ts';
import { type ImageBlobs, imageBlobs, type LayerEntry } from './build-images.ts';
import { putImage } from './pipeline-images.ts';

const PREFIX = 'containers/volumes/images/lower/';
const ORIGIN: EntryOrigin = { source: 'docker.io/test/multi:1', location: 'volume[0]' };
const MTIME = 1_492_533_000;
const STEP = { prefix: PREFIX, origin: ORIGIN };

let work: string;
let store: Store;
const registries = new Registries();

/** One platform's image of a test index. */
interface PlatformImage {
  os: string;
  architecture: string;
  variant?: string;
  img: ImageBlobs;
}

/** A layer every platform of the test indexes shares (the same bytes, so the same digest). */
const SHARED: LayerEntry[] = [{ path: 'share' }, { path: 'share/data.txt', data: 'the same on every platform\n' }];

async function platformImages(tag: string, platforms: string[]): Promise<PlatformImage[]> {
  const out: PlatformImage[] = [];
  for (const p of platforms) {
    const [os = '', architecture = '', variant] = p.split('/');
    const img = await imageBlobs([SHARED, [{ path: 'arch', data: `${tag} ${p}\n` }]], { Cmd: ['/arch'] }, architecture);
    out.push({ os, architecture, ...(variant ? { variant } : {}), img });
  }
  return out;
}

/** Index bytes over `images`, in their order, of the given media type. */
function indexOf(images: PlatformImage[], mediaType: string = MediaType.OciIndex): { bytes: Buffer; desc: Descriptor } {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => ({
      ...i.img.descriptor,
      platform: { architecture: i.architecture, os: i.os, ...(i.variant ? { variant: i.variant } : {}) },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { bytes, desc: { mediaType, digest: sha256(bytes), size: bytes.length } };
}

/** Writes a multi-platform image into `s` as `name`; `skip` platforms get no blobs at all. */
async function storeIndex(
  s: Store,
  name: string,
  platforms: string[],
  opts: { mediaType?: string; skip?: string[] } = {},
): Promise<{ index: Descriptor; indexBytes: Buffer; images: PlatformImage[] }> {
  const images = await platformImages(name, platforms);
  for (const [i, p] of images.entries()) {
    if (opts.skip?.includes(platforms[i] ?? '')) continue;
    for (const b of p.img.blobs) await s.writeBlob(b);
    await s.pushManifest(p.img.descriptor, p.img.manifest, []);
  }
  const { bytes, desc } = indexOf(images, opts.mediaType);
  await s.pushManifest(desc, bytes, [name]);
  return { index: desc, indexBytes: bytes, images };
}

function manifestOf(img: ImageBlobs): ImageManifest {
  return JSON.parse(img.manifest.toString()) as ImageManifest;
}

/** The blob names LinuxKit's order gives for `images` over `index`: config, layers, manifest each, then the index. */
function expectedBlobNames(images: ImageBlobs[], index: Descriptor): string[] {
  const digests: string[] = [];
  for (const img of images) {
    const m = manifestOf(img);
    digests.push(m.config.digest, ...m.layers.map((l) => l.digest), img.descriptor.digest);
  }
  digests.push(index.digest);
  return [...new Set(digests)].map((d) => `blobs/sha256/${d.slice('sha256:'.length)}`);
}

/** The entries as files below `dir` (the prefix stripped), the way the volume's lower dir would hold them. */
function materialize(entries: LayoutEntry[], dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const e of entries) {
    expect(e.path.startsWith(PREFIX), e.path).toBe(true);
    const path = join(dir, e.path.slice(PREFIX.length));
    if (e.type === 'dir') {
      mkdirSync(path);
    } else if (e.source?.kind === 'bytes') {
      writeFileSync(path, e.source.data, { flag: 'wx' });
    } else if (e.source?.kind === 'hostFile') {
      expect(existsSync(path), `${e.path} written twice`).toBe(false);
      copyFileSync(e.source.path, path);
    } else {
      throw new Error(`unexpected entry ${JSON.stringify(e)}`);
    }
  }
  return dir;
}

/**
 * Reads `dir` back as an OCI image layout: every blob's bytes hash to its name; index.json names
 * the top descriptor; every image manifest present has its config and layers. Returns the top
 * descriptor and the digests of the image manifests the layout holds.
 */
function readLayout(dir: string): { top: Descriptor; manifests: string[]; blobs: Set<string> } {
  expect(readFileSync(join(dir, 'oci-layout'), 'utf8')).toBe(OCI_LAYOUT_FILE);
  expect(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
  const blobs = new Set<string>();
  for (const hex of readdirSync(join(dir, 'blobs', 'sha256'))) {
    const bytes = readFileSync(join(dir, 'blobs', 'sha256', hex));
    expect(sha256(bytes), `blobs/sha256/${hex}`).toBe(`sha256:${hex}`);
    blobs.add(`sha256:${hex}`);
  }
  const blob = (d: Descriptor) => {
    const bytes = readFileSync(join(dir, 'blobs', 'sha256', d.digest.slice('sha256:'.length)));
    expect(bytes.length, d.digest).toBe(d.size);
    return bytes;
  };
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  expect(index.schemaVersion).toBe(2);
  expect(index.manifests).toHaveLength(1);
  const top = index.manifests[0] as Descriptor;
  const topDoc = JSON.parse(blob(top).toString()) as ImageIndex & ImageManifest;
  const children = topDoc.manifests ? topDoc.manifests.filter((d) => blobs.has(d.digest)) : [top];
  for (const m of children) {
    const doc = JSON.parse(blob(m).toString()) as ImageManifest;
    for (const b of [doc.config, ...doc.layers]) blob(b);
  }
  return { top, manifests: children.map((m) => m.digest), blobs };
}

/** LinuxKit's index.json for a top descriptor (json.MarshalIndent with three spaces). */
function linuxkitIndexJson(top: Descriptor, name: string, platform?: string): string {
  return [
    '{',
    '   "schemaVersion": 2,',
    '   "mediaType": "application/vnd.oci.image.index.v1+json",',
    '   "manifests": [',
    '      {',
    `         "mediaType": "${top.mediaType}",`,
    `         "size": ${top.size},`,
    `         "digest": "${top.digest}",`,
    '         "annotations": {',
    `            "org.opencontainers.image.ref.name": "${name}"`,
    `         }${platform ? ',' : ''}`,
    ...(platform ? [`         "platform": ${platform}`] : []),
    '      }',
    '   ]',
    '}',
  ].join('\n');
}

/** The text of an entry with literal contents. */
function textOf(e: LayoutEntry | undefined): string {
  if (e?.source?.kind !== 'bytes') throw new Error(`${e?.path} has no literal contents`);
  return Buffer.from(e.source.data).toString();
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

let multi: Awaited<ReturnType<typeof storeIndex>>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-ocivolume-'));
  store = await Store.open(join(work, 'store'));
  multi = await storeIndex(store, 'docker.io/test/multi:1', [
    'linux/amd64',
    'linux/arm64',
    'linux/arm/v6',
    'linux/arm/v7',
  ]);
});
afterAll(async () => {
  await registries.close();
  rmSync(work, { recursive: true, force: true });
});

const offline = () => ({ store, offline: true });

describe('resolveOciVolume from the store', () => {
  it('selects every image manifest of the index when no platforms are given, without the build platform', async () => {
    const events: string[] = [];
    const vol = await resolveOciVolume(
      'test/multi:1',
      [],
      { ...offline(), onEvent: (e) => events.push(`${e.ref} ${e.from} ${e.digest}`) },
      registries,
    );
    expect(vol.ref).toBe('test/multi:1');
    expect(vol.name).toBe('docker.io/test/multi:1');
    expect(vol.top.digest).toBe(multi.index.digest);
    expect(vol.manifests.map((m) => m.digest)).toEqual(multi.images.map((i) => i.img.descriptor.digest));
    expect(events).toEqual([`test/multi:1 store ${multi.index.digest}`]);
  });

  it('a platform matches on os and architecture, the variant only when one is asked for', async () => {
    const by = async (platforms: string[]) =>
      (await resolveOciVolume('test/multi:1', platforms, offline(), registries)).manifests.map((m) =>
        [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/'),
      );
    expect(await by(['linux/arm64'])).toEqual(['linux/arm64']);
    expect(await by(['linux/arm'])).toEqual(['linux/arm/v6', 'linux/arm/v7']);
    expect(await by(['linux/arm/v7'])).toEqual(['linux/arm/v7']);
    // Index order, not the order asked for.
    expect(await by(['linux/arm/v7', 'linux/amd64'])).toEqual(['linux/amd64', 'linux/arm/v7']);
  });

  it('a platform the index does not have names the image and lists what it has', async () => {
    const err = await rejection(
      resolveOciVolume('test/multi:1', ['linux/amd64', 'linux/s390x'], offline(), registries),
    );
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toBe(
      'image test/multi:1 has no linux/s390x (it has: linux/amd64, linux/arm64, linux/arm/v6, linux/arm/v7)',
    );
    const variant = await rejection(resolveOciVolume('test/multi:1', ['linux/arm/v8'], offline(), registries));
    expect(variant.message).toContain('has no linux/arm/v8');
  });

  it('a malformed platform names volumes[i].platforms', async () => {
    for (const bad of ['linux', 'linux/', '/amd64', 'linux/arm/v7/x', 'Linux/AMD64', 'linux/amd64:10.0']) {
      const err = await rejection(resolveOciVolume('test/multi:1', [bad], offline(), registries, 'volumes[2]'));
      expect(err).toBeInstanceOf(BuildError);
      expect(err.message).toBe(
        `volumes[2].platforms: malformed platform '${bad}' (want os/arch[/variant], e.g. linux/amd64)`,
      );
    }
    const unnamed = await rejection(resolveOciVolume('test/multi:1', ['linux'], offline(), registries));
    expect(unnamed.message).toContain('image test/multi:1');
  });

  it('offline and not in the store: names the image and the store', async () => {
    const err = await rejection(resolveOciVolume('test/absent:1', [], offline(), registries));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toBe(
      `image test/absent:1 (all platforms) is not complete in the store ${store.root} (and --offline forbids the registry)`,
    );
  });

  it('an index whose blobs the store only partly holds is used only for the platforms it has', async () => {
    const s = await Store.open(join(work, 'partial-store'));
    const partial = await storeIndex(s, 'docker.io/test/partial:1', ['linux/amd64', 'linux/arm64'], {
      skip: ['linux/arm64'],
    });
    const amd = await resolveOciVolume('test/partial:1', ['linux/amd64'], { store: s, offline: true }, registries);
    expect(amd.manifests.map((m) => m.digest)).toEqual([partial.images[0]?.img.descriptor.digest]);
    for (const platforms of [[], ['linux/arm64']]) {
      const err = await rejection(
        resolveOciVolume('test/partial:1', platforms, { store: s, offline: true }, registries),
      );
      expect(err.message).toMatch(/^image test\/partial:1 \(.*\) is not complete in the store .*--offline/);
    }
    // A layer missing (not just a manifest) counts too.
    const amdLayer = manifestOf(partial.images[0]?.img as ImageBlobs).layers[1] as Descriptor;
    await unlink(s.blobPath(amdLayer.digest));
    const err = await rejection(
      resolveOciVolume('test/partial:1', ['linux/amd64'], { store: s, offline: true }, registries),
    );
    expect(err.message).toContain('is not complete in the store');
  });

  it('a pinned digest resolves that content; one the store does not have is an error naming the image', async () => {
    const pinned = await resolveOciVolume(`test/multi:1@${multi.index.digest}`, ['linux/amd64'], offline(), registries);
    expect(pinned.top.digest).toBe(multi.index.digest);
    expect(pinned.name).toBe(`docker.io/test/multi:1@${multi.index.digest}`);
    const wrong = sha256('not the index');
    const err = await rejection(resolveOciVolume(`test/multi:1@${wrong}`, [], offline(), registries));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toContain(`image test/multi:1@${wrong}`);
  });
});

describe('ociLayoutEntries', () => {
  it('writes oci-layout, blobs/, blobs/sha256/, each image (config, layers, manifest), the index, index.json', async () => {
    const vol = await resolveOciVolume('test/multi:1', [], offline(), registries);
    const entries = await ociLayoutEntries(store, vol, STEP, MTIME);
    const names = entries.map((e) => e.path.slice(PREFIX.length));
    expect(names).toEqual([
      'oci-layout',
      'blobs',
      'blobs/sha256',
      ...expectedBlobNames(
        multi.images.map((i) => i.img),
        multi.index,
      ),
      'index.json',
    ]);
    expect(new Set(names).size).toBe(names.length);
    // The shared layer: once, right after the first image's config.
    const shared = manifestOf(multi.images[0]?.img as ImageBlobs).layers[0] as Descriptor;
    for (const i of multi.images) expect(manifestOf(i.img).layers[0]?.digest).toBe(shared.digest);
    expect(names.filter((n) => n.endsWith(shared.digest.slice(7)))).toHaveLength(1);
    expect(names[4]).toBe(`blobs/sha256/${shared.digest.slice(7)}`);

    for (const e of entries) {
      expect(e.path.startsWith(PREFIX)).toBe(true);
      expect([e.uid, e.gid, e.mtime, e.origin]).toEqual([0, 0, MTIME, ORIGIN]);
      expect(e.mode).toBe(e.type === 'dir' ? 0o755 : 0o644);
    }
    expect(entries.slice(1, 3).map((e) => e.type)).toEqual(['dir', 'dir']);
    expect(entries[0]?.source).toEqual({ kind: 'bytes', data: Buffer.from(OCI_LAYOUT_FILE) });
    for (const e of entries.slice(3, -1)) {
      expect(e.source).toEqual({ kind: 'hostFile', path: store.blobPath(`sha256:${e.path.split('/').pop()}`) });
    }
    expect(textOf(entries.at(-1))).toBe(linuxkitIndexJson(multi.index, 'docker.io/test/multi:1'));

    const layout = readLayout(materialize(entries, join(work, 'layout-all')));
    expect(layout.top).toEqual({
      mediaType: MediaType.OciIndex,
      size: multi.index.size,
      digest: multi.index.digest,
      annotations: { 'org.opencontainers.image.ref.name': 'docker.io/test/multi:1' },
    });
    expect(layout.manifests).toEqual(multi.images.map((i) => i.img.descriptor.digest));
  });

  it('with platforms: only those images, but the original index blob', async () => {
    const vol = await resolveOciVolume('test/multi:1', ['linux/arm64'], offline(), registries);
    const entries = await ociLayoutEntries(store, vol, STEP, MTIME);
    const arm = multi.images[1]?.img as ImageBlobs;
    expect(entries.map((e) => e.path.slice(PREFIX.length))).toEqual([
      'oci-layout',
      'blobs',
      'blobs/sha256',
      ...expectedBlobNames([arm], multi.index),
      'index.json',
    ]);
    const dir = materialize(entries, join(work, 'layout-arm64'));
    const layout = readLayout(dir);
    expect(layout.top.digest).toBe(multi.index.digest);
    expect(readFileSync(join(dir, 'blobs', 'sha256', multi.index.digest.slice(7)))).toEqual(multi.indexBytes);
    expect(layout.manifests).toEqual([arm.descriptor.digest]);
    const amdConfig = manifestOf(multi.images[0]?.img as ImageBlobs).config.digest;
    expect(layout.blobs.has(amdConfig)).toBe(false);
  });

  it('keeps the real media type of a Docker manifest list', async () => {
    const docker = await storeIndex(store, 'docker.io/test/dockerlist:1', ['linux/amd64', 'linux/arm64'], {
      mediaType: MediaType.DockerManifestList,
    });
    const vol = await resolveOciVolume('test/dockerlist:1', ['linux/amd64'], offline(), registries);
    expect(vol.top.mediaType).toBe(MediaType.DockerManifestList);
    const entries = await ociLayoutEntries(store, vol, STEP, MTIME);
    const layout = readLayout(materialize(entries, join(work, 'layout-docker')));
    expect(layout.top.mediaType).toBe(MediaType.DockerManifestList);
    expect(layout.top.digest).toBe(docker.index.digest);
  });

  it('a single manifest (not an index): its blobs, and index.json pointing at it with its platform', async () => {
    const desc = await putImage(store, 'docker.io/test/single:1', [[{ path: 'hello', data: 'hi' }]], {}, 'arm64');
    const vol = await resolveOciVolume('test/single:1', [], offline(), registries);
    expect(vol.top.digest).toBe(desc.digest);
    expect(vol.manifests).toEqual([{ ...desc, platform: { architecture: 'arm64', os: 'linux' } }]);
    const entries = await ociLayoutEntries(store, vol, STEP, MTIME);
    const m = JSON.parse((await store.fetchManifest(desc)).toString()) as ImageManifest;
    expect(entries.map((e) => e.path.slice(PREFIX.length))).toEqual([
      'oci-layout',
      'blobs',
      'blobs/sha256',
      ...[m.config, ...m.layers, desc].map((d) => `blobs/sha256/${d.digest.slice(7)}`),
      'index.json',
    ]);
    expect(textOf(entries.at(-1))).toBe(
      linuxkitIndexJson(
        desc,
        'docker.io/test/single:1',
        '{\n            "architecture": "arm64",\n            "os": "linux"\n         }',
      ),
    );
    const layout = readLayout(materialize(entries, join(work, 'layout-single')));
    expect(layout.manifests).toEqual([desc.digest]);
    expect((await resolveOciVolume('test/single:1', ['linux/arm64'], offline(), registries)).top).toEqual(desc);
    const err = await rejection(resolveOciVolume('test/single:1', ['linux/amd64'], offline(), registries));
    expect(err.message).toBe('image test/single:1 is a single image for linux/arm64, not linux/amd64');
  });

  it('a blob gone from the store after resolving: names the image and the digest', async () => {
    const s = await Store.open(join(work, 'fragile-store'));
    const fragile = await storeIndex(s, 'docker.io/test/fragile:1', ['linux/amd64']);
    const vol = await resolveOciVolume('test/fragile:1', [], { store: s, offline: true }, registries);
    const layer = manifestOf(fragile.images[0]?.img as ImageBlobs).layers[1] as Descriptor;
    await unlink(s.blobPath(layer.digest));
    const err = await rejection(ociLayoutEntries(s, vol, STEP, MTIME));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toBe(
      `image test/fragile:1: layer ${layer.digest} (${layer.size} bytes) is missing from the store ${s.root}`,
    );
    // A blob of the wrong size is as good as missing.
    writeFileSync(s.blobPath(layer.digest), 'short');
    expect((await rejection(ociLayoutEntries(s, vol, STEP, MTIME))).message).toContain(layer.digest);
  });

  const skopeo = (() => {
    try {
      execFileSync('skopeo', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!skopeo)('skopeo reads the layout and copies every platform out of it (digests verified)', async () => {
    const vol = await resolveOciVolume('test/multi:1', [], offline(), registries);
    const dir = materialize(await ociLayoutEntries(store, vol, STEP, MTIME), join(work, 'layout-skopeo'));
    const raw = execFileSync('skopeo', ['inspect', '--raw', `oci:${dir}:docker.io/test/multi:1`]);
    expect(raw).toEqual(multi.indexBytes);
    const out = join(work, 'skopeo-out');
    execFileSync('skopeo', ['copy', '--quiet', '--all', `oci:${dir}:docker.io/test/multi:1`, `oci:${out}:copy`]);
    const copied = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as ImageIndex;
    expect(copied.manifests[0]?.digest).toBe(multi.index.digest);
  });
});

describe('resolveOciVolume from the registry peer', () => {
  let registry: Registry;
  let index: Descriptor;
  let images: PlatformImage[];

  beforeAll(async () => {
    registry = await startRegistry();
    const repo = new Repository(new RegistryClient(registry.host), 'vol/multi');
    images = await platformImages('registry', ['linux/amd64', 'linux/arm64']);
    for (const p of images) {
      for (const b of p.img.blobs) {
        await repo.pushBlob({ mediaType: 'application/octet-stream', digest: sha256(b), size: b.length }, async () =>
          Readable.from([b]),
        );
      }
      await repo.pushManifest(p.img.descriptor, p.img.manifest, []);
    }
    const idx = indexOf(images);
    await repo.pushManifest(idx.desc, idx.bytes, ['1']);
    index = idx.desc;
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it('pulls only the selected platforms, then the rest when all are wanted, then uses the store', async () => {
    const s = await Store.open(join(work, 'registry-store'));
    const ref = `${registry.host}/vol/multi:1`;
    const events: string[] = [];
    const opts = { store: s, onEvent: (e: { from: string; digest: string }) => events.push(`${e.from} ${e.digest}`) };
    const [amd, arm] = images.map((i) => i.img) as [ImageBlobs, ImageBlobs];

    const vol = await resolveOciVolume(ref, ['linux/arm64'], opts, registries);
    expect(vol.top).toEqual(index);
    expect(vol.manifests.map((m) => m.digest)).toEqual([arm.descriptor.digest]);
    expect(await s.hasManifest(arm.descriptor)).toBe(true);
    expect(await s.hasManifest(amd.descriptor)).toBe(false);
    expect((await s.resolve(ref)).digest).toBe(index.digest);
    const layout = readLayout(materialize(await ociLayoutEntries(s, vol, STEP, MTIME), join(work, 'reg-arm64')));
    expect(layout.manifests).toEqual([arm.descriptor.digest]);

    // All platforms: the store lacks amd64, so offline fails and online pulls it.
    const err = await rejection(resolveOciVolume(ref, [], { ...opts, offline: true }, registries));
    expect(err.message).toContain(`image ${ref} (all platforms) is not complete in the store`);
    const all: ResolvedOciVolume = await resolveOciVolume(ref, [], opts, registries);
    expect(all.manifests.map((m) => m.digest)).toEqual([amd.descriptor.digest, arm.descriptor.digest]);
    const again = await resolveOciVolume(ref, [], { ...opts, offline: true }, registries);
    expect(again).toEqual(all);
    expect(events).toEqual([`registry ${index.digest}`, `registry ${index.digest}`, `store ${index.digest}`]);
    const full = readLayout(materialize(await ociLayoutEntries(s, all, STEP, MTIME), join(work, 'reg-all')));
    expect(full.manifests).toEqual([amd.descriptor.digest, arm.descriptor.digest]);
  });

  it('a platform the registry index lacks is reported before anything is copied', async () => {
    const s = await Store.open(join(work, 'registry-store-2'));
    const ref = `${registry.host}/vol/multi:1`;
    const err = await rejection(resolveOciVolume(ref, ['linux/riscv64'], { store: s }, registries));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toBe(`image ${ref} has no linux/riscv64 (it has: linux/amd64, linux/arm64)`);
    expect(readdirSync(join(s.root, 'blobs', 'sha256'))).toEqual([]);
  });

  it('a pinned digest: the right one pulls by digest, another one fails naming the image', async () => {
    const s = await Store.open(join(work, 'registry-store-3'));
    const ref = `${registry.host}/vol/multi:1@${index.digest}`;
    const vol = await resolveOciVolume(ref, ['linux/amd64'], { store: s }, registries);
    expect(vol.top.digest).toBe(index.digest);
    const wrong = `${registry.host}/vol/multi:1@${sha256('another index')}`;
    const err = await rejection(resolveOciVolume(wrong, [], { store: s }, registries));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toMatch(
      new RegExp(`^image ${wrong.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(all platforms\\) is neither in the store`),
    );
    expect(err.message).toContain(`nor available from ${registry.host}`);
  });

  it('pull: asks the registry even when the store has it', async () => {
    const s = await Store.open(join(work, 'registry-store'));
    const events: string[] = [];
    await resolveOciVolume(
      `${registry.host}/vol/multi:1`,
      [],
      { store: s, pull: true, onEvent: (e) => events.push(e.from) },
      registries,
    );
    expect(events).toEqual(['registry']);
  });
});
