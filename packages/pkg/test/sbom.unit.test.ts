// SBOM generation, artifact storage and merging on synthetic layers in a real (temp) store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type Descriptor, type ImageManifest, MediaType, Store, sha256 } from '@stele/oci';
import { pack } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkSpdx,
  debianCopyrightLicense,
  debianLicenseToSpdx,
  generateSbom,
  type SpdxDocument,
} from '../src/sbom.ts';
import { findSbom, loadOrGenerateSbom, sbomTag, storeSbom, writeImageSbom } from '../src/sbom-artifact.ts';
import { mergeSboms } from '../src/sbom-merge.ts';

type Entry =
  | { name: string; content: string }
  | { name: string; type: 'directory' }
  | { name: string; type: 'symlink' | 'link'; linkname: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries) {
    if ('content' in e) p.entry({ name: e.name, mode: 0o644 }, e.content);
    else if (e.type === 'directory') p.entry({ name: e.name, type: 'directory', mode: 0o755 });
    else p.entry({ name: e.name, type: e.type, linkname: e.linkname });
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Writes an image of these layers (gzip unless `plain`) into the store. */
async function image(
  store: Store,
  layers: Entry[][],
  opts: { plain?: boolean; created?: string; arch?: string } = {},
): Promise<Descriptor> {
  const descs: Descriptor[] = [];
  for (const l of layers) {
    const tar = await tarOf(l);
    const blob = opts.plain ? tar : gzipSync(tar);
    const w = await store.writeBlob(blob);
    descs.push({ mediaType: opts.plain ? MediaType.OciLayer : MediaType.OciLayerGzip, ...w });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.arch ?? 'amd64',
      os: 'linux',
      ...(opts.created ? { created: opts.created } : {}),
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const c = await store.writeBlob(config);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, ...c },
    layers: descs,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const desc: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
  await store.pushManifest(desc, bytes, []);
  return desc;
}

const STATUS = `Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Maintainer: Santiago Vila <sanvila@debian.org>
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Homepage: https://www.gnu.org/software/libc/libc.html
Description: GNU C Library: Shared libraries

Package: tzdata
Status: install ok installed
Architecture: all
Version: 1:2024a-0+deb12u1
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Description: time zone and daylight-saving time data

Package: oldthing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Description: removed, only its config files remain
`;

const APK = `C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
m:Natanael Copa <ncopa@alpinelinux.org>
o:musl
U:https://musl.libc.org/
T:the musl c library
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1def=
P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
F:bin
R:busybox
`;

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: glibc

Files: *
Copyright: 1991-2023 Free Software Foundation, Inc.
License: LGPL-2.1+

Files: debian/*
License: GPL-2+ or BSD-3-clause
`;

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stele-sbom-'));
  store = await Store.open(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const subject = { name: '127.0.0.1:5000/stele/app', version: 'abc123' };
const names = (d: SpdxDocument) => d.packages.map((p) => `${p.name}@${p.versionInfo}`);
const purls = (d: SpdxDocument) =>
  d.packages.map((p) => p.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator);

describe('generateSbom', () => {
  it('lists installed dpkg packages (not removed ones), with purl, supplier and licence; the image DESCRIBES/CONTAINS them', async () => {
    const img = await image(store, [
      [
        { name: 'var/lib/dpkg/status', content: STATUS },
        { name: 'var/lib/dpkg/info/libc6:amd64.list', content: '/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n' },
        { name: 'var/lib/dpkg/info/base-files.list', content: '/.\n/bin/true\n' },
        // Merged /usr: dpkg lists /lib/… and /bin/true, the files are under usr/.
        { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
        { name: 'bin', type: 'symlink', linkname: '/usr/bin' },
        { name: 'usr/lib/x86_64-linux-gnu/libc.so.6', content: 'ELF' },
        { name: 'usr/bin/true', content: 'ELF' },
        { name: 'usr/share/doc/libc6/copyright', content: COPYRIGHT },
        {
          name: 'etc/os-release',
          content: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
        },
        { name: 'app/hello', content: 'hello\n' },
      ],
    ]);
    const { document: doc, packages, files } = await generateSbom(store, img, subject, { env: {} });
    expect(checkSpdx(doc)).toEqual([]);
    expect(packages).toBe(3);
    expect(names(doc)).toEqual([
      '127.0.0.1:5000/stele/app@abc123',
      'base-files@12.4+deb12u5',
      'libc6@2.36-9+deb12u4',
      'tzdata@1:2024a-0+deb12u1',
    ]);
    expect(purls(doc)).toEqual([
      `pkg:oci/app@${encodeURIComponent(img.digest)}?arch=amd64&repository_url=127.0.0.1:5000/stele/app&tag=abc123`,
      'pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12',
      'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12',
      'pkg:deb/debian/tzdata@1%3A2024a-0%2Bdeb12u1?arch=all&distro=debian-12',
    ]);
    const libc = doc.packages.find((p) => p.name === 'libc6');
    expect(libc?.supplier).toBe('Person: GNU Libc Maintainers (debian-glibc@lists.debian.org)');
    expect(libc?.licenseDeclared).toBe('(GPL-2.0-or-later OR BSD-3-Clause) AND LGPL-2.1-or-later');
    expect(libc?.homepage).toBe('https://www.gnu.org/software/libc/libc.html');
    expect(doc.packages.find((p) => p.name === 'tzdata')?.licenseDeclared).toBe('NOASSERTION');

    const root = doc.packages[0];
    expect(root?.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: img.digest.slice(7) }]);
    expect(root?.primaryPackagePurpose).toBe('CONTAINER');
    expect(doc.relationships).toContainEqual({
      spdxElementId: 'SPDXRef-DOCUMENT',
      relationshipType: 'DESCRIBES',
      relatedSpdxElement: root?.SPDXID,
    });
    for (const p of doc.packages.slice(1)) {
      expect(doc.relationships).toContainEqual({
        spdxElementId: root?.SPDXID,
        relationshipType: 'CONTAINS',
        relatedSpdxElement: p.SPDXID,
      });
    }
    // Files: the ones no package owns; not libc's, not the dpkg database, copyright (owned by no .list here) yes.
    expect(doc.files?.map((f) => f.fileName)).toEqual([
      './app/hello',
      './etc/os-release',
      './usr/share/doc/libc6/copyright',
    ]);
    expect(files).toBe(3);
    const hello = doc.files?.[0];
    expect(hello?.checksums).toEqual([
      { algorithm: 'SHA1', checksumValue: 'f572d396fae9206628714fb2ce00f72e94f2258f' },
      { algorithm: 'SHA256', checksumValue: sha256('hello\n').slice(7) },
    ]);
    expect(doc.comment).toContain('Debian GNU/Linux 12 (bookworm)');
    expect(doc.documentNamespace).toBe(
      `https://stele.invalid/spdx/127.0.0.1:5000/stele/app/sha256-${img.digest.slice(7)}`,
    );
  });

  it('applies whiteouts: a package whose status.d entry a later layer deletes is not listed', async () => {
    const img = await image(store, [
      [
        { name: 'var/lib/dpkg/status.d/', type: 'directory' },
        {
          name: 'var/lib/dpkg/status.d/libssl3',
          content: 'Package: libssl3\nVersion: 3.0.11-1\nArchitecture: amd64\n',
        },
        { name: 'var/lib/dpkg/status.d/libssl3.md5sums', content: 'abc  usr/lib/libssl.so.3\n' },
        { name: 'var/lib/dpkg/status.d/zlib1g', content: 'Package: zlib1g\nVersion: 1:1.2.13\nArchitecture: amd64\n' },
        { name: 'opt/a/one', content: '1' },
        { name: 'opt/a/two', content: '2' },
      ],
      [
        { name: 'var/lib/dpkg/status.d/.wh.zlib1g', content: '' },
        { name: 'opt/a/three', content: '3' },
        { name: 'opt/a/.wh..wh..opq', content: '' },
      ],
      [
        { name: 'lib/apk/db/installed', content: APK },
        { name: 'bin/busybox', content: 'bb' },
        { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
        { name: 'bin/ash', type: 'symlink', linkname: 'busybox' },
      ],
    ]);
    const { document: doc } = await generateSbom(store, img, subject, { env: {} });
    expect(checkSpdx(doc)).toEqual([]);
    expect(names(doc).slice(1)).toEqual(['busybox@1.36.1-r15', 'libssl3@3.0.11-1', 'musl@1.2.4-r2']);
    expect(purls(doc)).toContain('pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64');
    const musl = doc.packages.find((p) => p.name === 'musl');
    expect(musl?.licenseDeclared).toBe('MIT');
    expect(musl?.supplier).toBe('Person: Natanael Copa (ncopa@alpinelinux.org)');
    // The opaque directory hides one and two (lower layer) but keeps three (same layer);
    // busybox is owned by apk, its hard link bin/sh is not.
    expect(doc.files?.map((f) => f.fileName)).toEqual(['./bin/sh', './opt/a/three']);
    expect(doc.files?.[0]?.checksums[1]?.checksumValue).toBe(sha256('bb').slice(7));
  });

  it('is deterministic: same image, same bytes; created from SOURCE_DATE_EPOCH, else the config, else 1970', async () => {
    const img = await image(store, [[{ name: 'var/lib/dpkg/status', content: STATUS }]], {
      created: '2024-05-06T07:08:09.123456789Z',
    });
    const a = await generateSbom(store, img, subject, { env: {} });
    const b = await generateSbom(store, img, subject, { env: {} });
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.document.creationInfo.created).toBe('2024-05-06T07:08:09Z');
    const epoch = await generateSbom(store, img, subject, { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    expect(epoch.document.creationInfo.created).toBe('2023-11-14T22:13:20Z');
    const bare = await image(store, [[{ name: 'x', content: 'x' }]]);
    expect((await generateSbom(store, bare, subject, { env: {} })).document.creationInfo.created).toBe(
      '1970-01-01T00:00:00Z',
    );
    await expect(generateSbom(store, img, subject, { env: { SOURCE_DATE_EPOCH: 'yesterday' } })).rejects.toThrow(
      /SOURCE_DATE_EPOCH='yesterday' is not a number/,
    );
  });

  it('bounds the file list and says how many it left out; reads uncompressed layers', async () => {
    const many = Array.from({ length: 12 }, (_, i) => ({
      name: `data/f${String(i).padStart(2, '0')}`,
      content: `${i}`,
    }));
    const img = await image(store, [many], { plain: true });
    const r = await generateSbom(store, img, subject, { env: {}, maxFiles: 5 });
    expect(r.files).toBe(5);
    expect(r.filesOmitted).toBe(7);
    expect(r.document.files?.map((f) => f.fileName)).toEqual([
      './data/f00',
      './data/f01',
      './data/f02',
      './data/f03',
      './data/f04',
    ]);
    expect(r.document.comment).toMatch(/7 more files no package owns are not listed \(limit 5\)/);
    const none = await generateSbom(store, img, subject, { env: {}, maxFiles: 0 });
    expect(none.document.files).toBeUndefined();
  });

  it('refuses an index, a zstd layer and a broken hard link with clear errors', async () => {
    const img = await image(store, [[{ name: 'a', content: 'a' }]]);
    const idx = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [{ ...img, platform: { os: 'linux', architecture: 'amd64' } }],
      }),
    );
    const idxDesc = { mediaType: MediaType.OciIndex, digest: sha256(idx), size: idx.length };
    await store.pushManifest(idxDesc, idx, []);
    await expect(generateSbom(store, idxDesc, subject)).rejects.toThrow(/is an index: an SBOM describes one image/);

    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    const z = await store.writeBlob(zstd);
    const cfg = await store.writeBlob(Buffer.from('{"architecture":"amd64","os":"linux"}'));
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, ...cfg },
        layers: [{ mediaType: MediaType.OciLayerZstd, ...z }],
      }),
    );
    const md = { mediaType: MediaType.OciManifest, digest: sha256(m), size: m.length };
    await store.pushManifest(md, m, []);
    await expect(generateSbom(store, md, subject)).rejects.toThrow(`layer ${z.digest} is zstd-compressed`);

    const broken = await image(store, [[{ name: 'bin/sh', type: 'link', linkname: 'bin/nothere' }]]);
    await expect(generateSbom(store, broken, subject)).rejects.toThrow(
      /\/bin\/sh in layer sha256:\w+ links to \/bin\/nothere/,
    );
  });
});

describe('licences', () => {
  it('maps Debian short names to SPDX ids and gives up (NOASSERTION) on unknown ones', () => {
    expect(debianLicenseToSpdx('GPL-2+')).toBe('GPL-2.0-or-later');
    expect(debianLicenseToSpdx('LGPL-2.1')).toBe('LGPL-2.1-only');
    expect(debianLicenseToSpdx('GFDL-1.3+')).toBe('GFDL-1.3-or-later');
    expect(debianLicenseToSpdx('Expat')).toBe('MIT');
    expect(debianLicenseToSpdx('public-domain')).toBeUndefined();
    expect(
      debianCopyrightLicense(
        `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: public-domain\n`,
      ),
    ).toEqual({
      expression: 'NOASSERTION',
      comment: 'licences named in the Debian copyright file: public-domain',
    });
    expect(debianCopyrightLicense('This is free software; see /usr/share/common-licenses/GPL.\n')).toEqual({
      expression: 'NOASSERTION',
    });
  });
});

describe('SBOM artifacts in the store', () => {
  it('stores an SPDX artifact with subject and empty config, tagged <repo>:sha256-<hex>.sbom; findSbom reads it back', async () => {
    const img = await image(store, [[{ name: 'var/lib/dpkg/status', content: STATUS }]]);
    expect(await findSbom(store, img.digest)).toBeUndefined();
    const written = await writeImageSbom(store, img, subject, { env: {} });
    expect(written.name).toBe(`${subject.name}:sha256-${img.digest.slice(7)}.sbom`);
    expect(sbomTag(img.digest)).toBe(`sha256-${img.digest.slice(7)}.sbom`);

    const manifest = JSON.parse((await store.fetchManifest(written.descriptor)).toString());
    expect(manifest).toMatchObject({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2 },
      layers: [{ mediaType: 'application/spdx+json', size: written.bytes.length }],
      subject: { mediaType: img.mediaType, digest: img.digest, size: img.size },
    });
    expect((await store.readBlob(manifest.config.digest)).toString()).toBe('{}');

    const found = await findSbom(store, img.digest);
    expect(found?.descriptor.digest).toBe(written.descriptor.digest);
    expect(found?.bytes.equals(written.bytes)).toBe(true);
    expect(names(found?.document as SpdxDocument)).toHaveLength(4);

    // Writing again gives the same artifact (deterministic), and gc keeps its blobs.
    const again = await writeImageSbom(store, img, subject, { env: {} });
    expect(again.descriptor.digest).toBe(written.descriptor.digest);
    await store.gc({ graceMs: 0 });
    expect((await findSbom(store, img.digest))?.bytes.equals(written.bytes)).toBe(true);
  });

  it('loadOrGenerateSbom prefers the stored artifact and generates one for an image without', async () => {
    const img = await image(store, [[{ name: 'var/lib/dpkg/status', content: STATUS }]]);
    const generated = await loadOrGenerateSbom([store], img, subject, { env: {} });
    expect(generated.generated).toBe(true);
    expect(names(generated.document)).toHaveLength(4);
    await writeImageSbom(store, img, { name: 'stored/name', version: 'v' }, { env: {} });
    const stored = await loadOrGenerateSbom([store], img, subject, { env: {} });
    expect(stored.generated).toBe(false);
    expect(stored.document.packages[0]?.name).toBe('stored/name');
  });

  it('findSbom refuses an artifact for another image and an invalid document', async () => {
    const a = await image(store, [[{ name: 'a', content: 'a' }]]);
    const b = await image(store, [[{ name: 'b', content: 'b' }]]);
    const { bytes } = await generateSbom(store, b, subject, { env: {} });
    // An SBOM of b filed under a's tag.
    const wrong = await storeSbom(store, b, bytes);
    await store.tag(sbomTag(a.digest), wrong.descriptor);
    await expect(findSbom(store, a.digest)).rejects.toThrow(`is the SBOM of ${b.digest}, not of ${a.digest}`);

    const c = await image(store, [[{ name: 'c', content: 'c' }]]);
    await storeSbom(store, c, Buffer.from('{"spdxVersion":"SPDX-2.2","relationships":[]}'), 'x/c');
    await expect(findSbom(store, c.digest)).rejects.toThrow(
      /not a valid SPDX 2.3 document:[\s\S]*spdxVersion[\s\S]*dataLicense/,
    );
  });
});

describe('mergeSboms', () => {
  it('one document: the OS image CONTAINS each package image, shared packages once, deterministic', async () => {
    const one = await image(store, [[{ name: 'var/lib/dpkg/status', content: STATUS }]]);
    const two = await image(store, [
      [
        { name: 'var/lib/dpkg/status', content: STATUS.split('\n\n')[1] as string },
        { name: 'lib/apk/db/installed', content: APK },
        { name: 'usr/bin/tool', content: 'tool' },
      ],
    ]);
    const a = (await generateSbom(store, one, { name: 'r/one', version: '1' }, { env: {} })).document;
    const b = (await generateSbom(store, two, { name: 'r/two', version: '2' }, { env: {} })).document;
    const opts = {
      name: 'swarm-worker',
      namespace: 'https://stele.invalid/spdx/os/swarm-worker/1',
      version: '1',
      env: {},
    };
    const merged = mergeSboms([a, b], opts);
    expect(checkSpdx(merged)).toEqual([]);
    expect(merged.spdxVersion).toBe('SPDX-2.3');
    expect(merged.documentNamespace).toBe(opts.namespace);
    const root = merged.packages[0];
    expect(root).toMatchObject({ name: 'swarm-worker', primaryPackagePurpose: 'OPERATING-SYSTEM' });
    expect(names(merged).slice(1)).toEqual([
      'base-files@12.4+deb12u5',
      'busybox@1.36.1-r15',
      'libc6@2.36-9+deb12u4',
      'musl@1.2.4-r2',
      'r/one@1',
      'r/two@2',
      'tzdata@1:2024a-0+deb12u1',
    ]);
    const imageIds = [a, b].map((d) => d.packages[0]?.SPDXID);
    const contains = merged.relationships
      .filter((r) => r.spdxElementId === root?.SPDXID)
      .map((r) => r.relatedSpdxElement);
    expect(contains.sort()).toEqual([...imageIds].sort());
    // libc6 is in both images: one package, CONTAINed by both.
    const libc = merged.packages.filter((p) => p.name === 'libc6');
    expect(libc).toHaveLength(1);
    expect(
      merged.relationships
        .filter((r) => r.relatedSpdxElement === libc[0]?.SPDXID)
        .map((r) => r.spdxElementId)
        .sort(),
    ).toEqual([...imageIds].sort());
    expect(merged.files?.map((f) => f.fileName)).toEqual(['./usr/bin/tool']);
    expect(JSON.stringify(mergeSboms([b, a], opts))).toBe(JSON.stringify(merged));
    expect(merged.creationInfo.created).toBe('1970-01-01T00:00:00Z');
    const osDigest = sha256('the OS image');
    const withDigest = mergeSboms([a], { ...opts, env: { SOURCE_DATE_EPOCH: '0' }, digest: osDigest });
    expect(withDigest.packages[0]?.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: osDigest.slice(7) }]);
    expect(withDigest.packages[0]?.SPDXID).toBe(`SPDXRef-OS-sha256-${osDigest.slice(7, 23)}`);
    // The same image as OS image and package image is still two elements.
    expect(checkSpdx(mergeSboms([a], { ...opts, digest: one.digest }))).toEqual([]);
  });

  it('a package with the same purl under another SPDX id is merged and its relationships rewritten', async () => {
    const img = await image(store, [[{ name: 'var/lib/dpkg/status', content: STATUS }]]);
    const a = (await generateSbom(store, img, { name: 'r/a', version: '1' }, { env: {} })).document;
    const img2 = await image(store, [
      [
        { name: 'var/lib/dpkg/status', content: STATUS },
        { name: 'z', content: 'z' },
      ],
    ]);
    const b = structuredClone((await generateSbom(store, img2, { name: 'r/b', version: '1' }, { env: {} })).document);
    const libc = b.packages.find((p) => p.name === 'libc6') as SpdxDocument['packages'][number];
    const oldId = libc.SPDXID;
    libc.SPDXID = 'SPDXRef-other-tool-libc6';
    for (const r of b.relationships) if (r.relatedSpdxElement === oldId) r.relatedSpdxElement = libc.SPDXID;
    const merged = mergeSboms([a, b], { name: 'os', namespace: 'https://stele.invalid/spdx/os/x' });
    expect(merged.packages.filter((p) => p.name === 'libc6')).toHaveLength(1);
    expect(JSON.stringify(merged)).not.toContain('SPDXRef-other-tool-libc6');
    expect(checkSpdx(merged)).toEqual([]);
  });

  it('refuses an input that is not SPDX 2.3, naming it', () => {
    expect(() =>
      mergeSboms([{ name: 'bad' } as unknown as SpdxDocument], { name: 'os', namespace: 'https://x.invalid/a' }),
    ).toThrow(/SBOM 1 \(bad\) is not valid SPDX 2.3:[\s\S]*spdxVersion/);
  });
});

describe('checkSpdx', () => {
  it('reports each missing required field', () => {
    const problems = checkSpdx({
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: 'n',
      documentNamespace: 'https://x.invalid/n#frag',
      creationInfo: { created: '2024-01-01T00:00:00.000Z', creators: ['stele'] },
      packages: [{ SPDXID: 'SPDXRef-a', name: 'a' }],
      files: [{ SPDXID: 'SPDXRef-f', fileName: './f', checksums: [{ algorithm: 'SHA256', checksumValue: '00' }] }],
      relationships: [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'HAS', relatedSpdxElement: 'SPDXRef-b' }],
    });
    expect(problems).toEqual([
      'documentNamespace: not an absolute URI without "#"',
      'creationInfo.created: not YYYY-MM-DDThh:mm:ssZ',
      'creationInfo.creators[0]: want "Tool: …", "Organization: …" or "Person: …"',
      'packages[0].downloadLocation: missing',
      'files[0].checksums: no SHA1',
      'relationships[0].relationshipType: unknown "HAS"',
      'relationships[0].relatedSpdxElement: no element "SPDXRef-b"',
      'relationships: the document DESCRIBES nothing',
    ]);
  });
});
