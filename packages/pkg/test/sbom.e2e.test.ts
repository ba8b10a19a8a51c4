// SBOMs end to end: a package built by the real dockerd (BuildKit) whose image carries a dpkg
// status file, pushed to the real registry (distribution, no referrers API); the SBOM artifact
// read with skopeo and with findSbom. Plus the offline Debian base rootfs, when it is cached.
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Descriptor, type ImageManifest, MediaType, RegistryClient, Store, sha256 } from '@stele/oci';
import { type Dockerd, type Registry, startDockerd, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackages } from '../src/build.ts';
import { dockerEngine } from '../src/docker-engine.ts';
import { gitCli } from '../src/git.ts';
import { registryRemote } from '../src/registry-remote.ts';
import { checkSpdx, generateSbom, type SpdxDocument } from '../src/sbom.ts';
import { findSbom, sbomTag } from '../src/sbom-artifact.ts';
import { mergeSboms } from '../src/sbom-merge.ts';
import { gitRepo } from './fixtures.ts';

const STATUS = `Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Description: GNU C Library: Shared libraries

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1
Maintainer: Mark Brown <broonie@debian.org>
Description: compression library - runtime

Package: ca-certificates
Status: install ok installed
Architecture: all
Version: 20230311
Maintainer: Julien Cristau <jcristau@debian.org>
Description: Common CA certificates
`;

const git = gitCli();
let dockerd: Dockerd;
let registry: Registry;
let repo: ReturnType<typeof gitRepo>;
let storeDir: string;
let store: Store;
const remote = registryRemote();
const lines: string[] = [];
let withdeb: SpdxDocument | undefined;

beforeAll(async () => {
  [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
  repo = gitRepo();
  repo.write('pkg/withdeb/build.yml', 'image: withdeb\narches: [amd64]\n');
  repo.write(
    'pkg/withdeb/Dockerfile',
    'FROM scratch\nCOPY status /var/lib/dpkg/status\nCOPY libc6.list /var/lib/dpkg/info/libc6:amd64.list\nCOPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\nCOPY hello /usr/bin/hello\n',
  );
  repo.write('pkg/withdeb/status', STATUS);
  repo.write('pkg/withdeb/libc6.list', '/.\n/lib/x86_64-linux-gnu/libc.so.6\n');
  repo.write('pkg/withdeb/libc.so.6', 'not really libc\n');
  repo.write('pkg/withdeb/hello', '#!/bin/sh\necho hello\n');
  repo.commit();
  storeDir = mkdtempSync(join(tmpdir(), 'stele-sbom-e2e-'));
  store = await Store.open(storeDir);
}, 120_000);

afterAll(async () => {
  await remote.close();
  await Promise.allSettled([dockerd?.stop(), registry?.stop()]);
  if (repo) rmSync(repo.root, { recursive: true, force: true });
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
});

function skopeoRaw(ref: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' }),
  );
}

function expectSpdxShape(doc: SpdxDocument) {
  expect(checkSpdx(doc)).toEqual([]);
  expect(doc).toMatchObject({ spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT' });
  expect(doc.name).toBeTruthy();
  expect(doc.documentNamespace).toMatch(/^https:\/\//);
  expect(doc.creationInfo.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(doc.creationInfo.creators.length).toBeGreaterThan(0);
  for (const p of doc.packages) {
    expect(p.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    expect(p.name).toBeTruthy();
    expect(p.downloadLocation).toBeTruthy();
  }
  expect(doc.relationships.length).toBeGreaterThan(0);
}

describe('SBOM of a package built by dockerd, pushed to the registry', () => {
  it('build stores the SBOM; push sends it as sha256-<hex>.sbom; skopeo and findSbom read it', async () => {
    const org = `${registry.host}/stele`;
    const [r] = await buildPackages([join(repo.root, 'pkg/withdeb')], {
      git,
      store,
      org,
      engine: () => dockerEngine(`unix://${dockerd.socketPath}`),
      remote,
      push: true,
      log: (l) => lines.push(l),
    });
    expect(r?.arches.map((a) => a.status)).toEqual(['built']);
    const image = await store.resolve(`${r?.fullRef}-amd64`);
    const repository = `${org}/withdeb`;
    const tag = sbomTag(image.digest);
    expect(r?.sboms).toEqual([`${repository}:${tag}`]);
    expect(lines.join('\n')).toMatch(/amd64: sbom 3 packages, 1 files/);

    // In the store.
    const local = await findSbom(store, image.digest);
    expect(local).toBeDefined();
    const doc = local?.document as SpdxDocument;
    expectSpdxShape(doc);
    expect(doc.packages.map((p) => p.name)).toEqual([repository, 'ca-certificates', 'libc6', 'zlib1g']);
    expect(doc.packages[0]?.versionInfo).toBe(r?.tag);
    expect(doc.packages[0]?.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: image.digest.slice(7) }]);
    expect(doc.files?.map((f) => f.fileName)).toEqual(['./usr/bin/hello']);
    expect(doc.files?.[0]?.checksums[1]?.checksumValue).toBe(sha256('#!/bin/sh\necho hello\n').slice(7));

    // In the registry, as skopeo sees it.
    const manifest = skopeoRaw(`${repository}:${tag}`) as unknown as ImageManifest;
    expect(manifest).toMatchObject({
      mediaType: MediaType.OciManifest,
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2 },
      layers: [{ mediaType: 'application/spdx+json', digest: local?.manifest.layers[0]?.digest }],
      subject: { digest: image.digest, size: image.size },
    });
    withdeb = doc;

    // Read back from the registry with findSbom: the same bytes as in the store.
    const client = new RegistryClient(registry.host);
    try {
      const fromRegistry = await findSbom(client.repository('stele/withdeb'), image.digest);
      expect(fromRegistry?.descriptor.digest).toBe(local?.descriptor.digest);
      expect(fromRegistry?.bytes.equals(local?.bytes as Buffer)).toBe(true);
      // An image without an SBOM: none found, no error.
      expect(await findSbom(client.repository('stele/withdeb'), sha256('no such image'))).toBeUndefined();
    } finally {
      await client.close();
    }

    // Generating again from the same image gives the same bytes.
    const again = await generateSbom(store, image, { name: repository, version: r?.tag as string });
    expect(again.bytes.equals(local?.bytes as Buffer)).toBe(true);

    // Pushing again sends nothing new and keeps the same SBOM.
    const [r2] = await buildPackages([join(repo.root, 'pkg/withdeb')], {
      git,
      store,
      org,
      engine: () => {
        throw new Error('the engine was contacted');
      },
      remote,
      push: true,
    });
    expect(r2?.sboms).toEqual([`${repository}:${tag}`]);
  }, 180_000);
});

const debianTar = resolve(__dirname, '../../../.stele-tools/debian-base/bookworm-minbase-amd64.tar');

describe.skipIf(!existsSync(debianTar))('SBOM of the offline Debian base (tools/debian-base.sh, cached)', () => {
  it('lists the real dpkg database: ~90 packages with purls and licences, merged with another image', async () => {
    const layer = await store.writeBlob(createReadStream(debianTar));
    const cfg = await store.writeBlob(
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z' })),
    );
    const m: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...cfg },
      layers: [{ mediaType: MediaType.OciLayer, ...layer }],
    };
    const bytes = Buffer.from(JSON.stringify(m));
    const desc: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
    await store.pushManifest(desc, bytes, []);
    const t0 = performance.now();
    const r = await generateSbom(store, desc, { name: 'debian', version: 'bookworm-slim' }, { env: {} });
    console.log(
      `debian base SBOM: ${r.packages} packages, ${r.files} files, ${r.bytes.length} bytes in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    expectSpdxShape(r.document);
    expect(r.packages).toBeGreaterThan(50);
    const byName = new Map(r.document.packages.map((p) => [p.name, p]));
    for (const n of ['libc6', 'dpkg', 'bash', 'coreutils', 'base-files']) expect(byName.has(n)).toBe(true);
    expect(byName.get('libc6')?.externalRefs?.[0]?.referenceLocator).toMatch(
      /^pkg:deb\/debian\/libc6@[^?]+\?arch=amd64&distro=debian-12$/,
    );
    // Many packages have a machine-readable copyright file whose licences all map to SPDX ids
    // (22 of 88 in bookworm minbase; 'public-domain', bare 'GPL' and '… with X exception' do not).
    const licensed = r.document.packages.filter((p) => p.licenseDeclared && p.licenseDeclared !== 'NOASSERTION');
    expect(licensed.length).toBeGreaterThan(15);
    expect(byName.get('zlib1g')?.licenseDeclared).toBe('Zlib');
    expect(byName.get('grep')?.licenseDeclared).toBe('GPL-3.0-or-later');
    // Files dpkg owns are not listed, also behind merged /usr (dpkg says /bin/bash, the file is
    // usr/bin/bash); what is left is configuration written at install time.
    expect(r.document.files?.some((f) => f.fileName === './usr/bin/bash')).toBe(false);
    expect(r.document.files?.map((f) => f.fileName)).toContain('./etc/shadow');
    expect(r.files).toBeLessThan(100);

    const docs = [r.document, ...(withdeb ? [withdeb] : [])];
    const merged = mergeSboms(docs, { name: 'os', namespace: 'https://stele.invalid/spdx/os/test' });
    expect(checkSpdx(merged)).toEqual([]);
    const contained = merged.relationships.filter((x) => x.spdxElementId === merged.packages[0]?.SPDXID);
    expect(contained).toHaveLength(docs.length);
  }, 120_000);
});
