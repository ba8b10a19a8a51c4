// `stele pkg …` end to end: the harness's real dockerd and registry, the CLI run in-process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gitCli, loadPackage, registryRemote, Store } from '@stele/pkg';
import { type Dockerd, gitRepo, type Registry, startDockerd, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import { fakeIo } from './io.ts';

let dockerd: Dockerd;
let registry: Registry;
let repo: ReturnType<typeof gitRepo>;
let root: string;
let storeDir: string;
let org: string;

beforeAll(async () => {
  [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
  org = `${registry.host}/cli`;
  repo = gitRepo('stele-cli-pkg-');
  root = repo.root;
  storeDir = mkdtempSync(join(tmpdir(), 'stele-cli-store-'));
  repo.write('pkg/hello/build.yml', 'image: hello\narches: [amd64, arm64]\n');
  repo.write('pkg/hello/Dockerfile', 'FROM scratch\nCOPY msg /msg\n');
  repo.write('pkg/hello/msg', 'hello\n');
  repo.commit();
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([dockerd?.stop(), registry?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
});

const env = () => ({ DOCKER_HOST: `unix://${dockerd.socketPath}`, STELE_CACHE: storeDir, HOME: tmpdir() });
async function stele(...argv: string[]) {
  const io = { ...fakeIo(env()), cwd: root };
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('stele pkg', () => {
  it('show-tag prints org/image:tag like LinuxKit (the git tree hash)', async () => {
    const tree = repo.sh(['rev-parse', 'HEAD:pkg/hello']);
    expect(await stele('pkg', 'show-tag', 'pkg/hello')).toMatchObject({ code: 0, out: `linuxkit/hello:${tree}\n` });
    expect((await stele('pkg', 'show-tag', '--canonical', 'pkg/hello')).out).toBe(`docker.io/linuxkit/hello:${tree}\n`);
  });

  it('build --json builds both arches; the second run is cached and engine-free', async () => {
    const first = await stele('pkg', 'build', '--org', org, '--json', 'pkg/hello');
    expect(first.code, first.err).toBe(0);
    const [r] = JSON.parse(first.out);
    expect(r.arches.map((a: { status: string }) => a.status)).toEqual(['built', 'built']);

    // No engine call: the engine socket is gone for this run (timing lives in bench/pkg-rebuild.ts).
    const again = await stele(
      'pkg',
      'build',
      '--org',
      org,
      '--no-registry',
      '--json',
      '--descriptor',
      'out/hello.json',
      'pkg/hello',
    );
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out)[0].arches.map((a: { status: string }) => a.status)).toEqual(['cached', 'cached']);
    // --descriptor names the stored index, for the Nx plugin's cache check.
    const d = JSON.parse(readFileSync(join(root, 'out/hello.json'), 'utf8'));
    const stored = await (await Store.open(storeDir)).resolve(r.fullRef);
    expect(d).toEqual({ digest: stored.digest, mediaType: stored.mediaType, size: stored.size, refs: [r.fullRef] });
  }, 60_000);

  it('sbom prints the SPDX 2.3 document made at build time, from the store', async () => {
    const tree = repo.sh(['rev-parse', 'HEAD:pkg/hello']);
    const ref = `${org}/hello:${tree}`;
    const json = await stele('pkg', 'sbom', '--no-registry', '--platform', 'linux/arm64', ref);
    expect(json.code, json.err).toBe(0);
    const doc = JSON.parse(json.out);
    expect(doc).toMatchObject({ spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT' });
    // The image itself is the described package; the one plain file it holds is listed with its hash.
    const described = doc.relationships.find((r: { relationshipType: string }) => r.relationshipType === 'DESCRIBES');
    expect(doc.packages.map((p: { SPDXID: string }) => p.SPDXID)).toContain(described.relatedSpdxElement);
    expect(JSON.stringify(doc.files ?? [])).toContain('msg');
    const missing = await stele('pkg', 'sbom', '--no-registry', `${org}/nothere:1`);
    expect(missing.code).toBe(1);
  });

  it('an unchanged package makes no engine call at all', async () => {
    const io = { ...fakeIo({ ...env(), DOCKER_HOST: 'unix:///nonexistent/docker.sock' }), cwd: root };
    const code = await main(['pkg', 'build', '--org', org, '--no-registry', '--json', 'pkg/hello'], io);
    expect(code, io.err()).toBe(0);
    expect(JSON.parse(io.out())[0].arches.map((a: { status: string }) => a.status)).toEqual(['cached', 'cached']);
  });

  it('push sends <tag>-<arch> and the <tag> index; manifest rebuilds it from the registry', async () => {
    const pushed = await stele('pkg', 'push', '--org', org, '--platforms', 'linux/amd64', 'pkg/hello');
    expect(pushed.code, pushed.err).toBe(0);
    const pkg = await loadPackage(join(root, 'pkg/hello'), { git: gitCli(), org });
    const inspect = () =>
      JSON.parse(
        execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${pkg.fullRef}`], {
          encoding: 'utf8',
        }),
      );
    expect(inspect().manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual([
      'amd64',
    ]);

    // Another machine pushes only the arm64 image; `manifest` joins both into the index.
    const remote = registryRemote();
    try {
      const store = await Store.open(storeDir);
      await remote.push(store, await store.resolve(`${pkg.fullRef}-arm64`), `${pkg.fullRef}-arm64`);
    } finally {
      await remote.close();
    }
    const m = await stele('pkg', 'manifest', '--org', org, '--json', 'pkg/hello');
    expect(m.code, m.err).toBe(0);
    expect(JSON.parse(m.out).arches).toEqual(['amd64', 'arm64']);
    expect(inspect().manifests.map((x: { platform: { architecture: string } }) => x.platform.architecture)).toEqual([
      'amd64',
      'arm64',
    ]);
  }, 60_000);

  it('push with --sign-key signs the index and each image; stele verify accepts them', async () => {
    const keyEnv = { ...env(), COSIGN_PASSWORD: 'test-pass' };
    const run = async (...argv: string[]) => {
      const io = { ...fakeIo(keyEnv), cwd: root };
      return { code: await main(argv, io), out: io.out(), err: io.err() };
    };
    const gen = await run('key', 'generate', '--output-prefix', join(storeDir, 'release'));
    expect(gen.code, gen.err).toBe(0);
    const pushed = await run(
      'pkg',
      'push',
      '--org',
      org,
      '--json',
      '--sign-key',
      join(storeDir, 'release.key'),
      'pkg/hello',
    );
    expect(pushed.code, pushed.err).toBe(0);
    const [r] = JSON.parse(pushed.out);
    expect(r.signed).toEqual([r.fullRef]);
    const verified = await run('verify', r.fullRef, '--key', join(storeDir, 'release.pub'));
    expect(verified.code, verified.err + verified.out).toBe(0);
  }, 60_000);

  it('errors: unknown arch, no engine, not a package, bad --builder', async () => {
    const arch = await stele('pkg', 'build', '--force', '--no-registry', '--platforms', 'linux/arm65', 'pkg/hello');
    expect(arch).toMatchObject({ code: 1 });
    expect(arch.err).toContain("unknown arch 'linux/arm65'");

    const io = { ...fakeIo({ ...env(), DOCKER_HOST: 'unix:///nonexistent/docker.sock' }), cwd: root };
    expect(await main(['pkg', 'build', '--force', '--no-registry', 'pkg/hello'], io)).toBe(1);
    expect(io.err()).toMatch(
      /cannot reach a Docker Engine at unix:\/\/\/nonexistent\/docker.sock.*start a Docker Engine/,
    );

    const none = await stele('pkg', 'build', 'pkg/nothing');
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/pkg\/nothing: no such package directory/);

    const builder = await stele('pkg', 'build', '--builder', 'arm64', 'pkg/hello');
    expect(builder.code).toBe(2);
  });

  it('--help of each subcommand has examples', async () => {
    for (const sub of ['build', 'push', 'show-tag', 'manifest']) {
      const h = await stele('pkg', sub, '--help');
      expect(h.code).toBe(0);
      expect(h.out).toMatch(new RegExp(`Usage: stele pkg ${sub}[\\s\\S]*Examples:\\n {2}stele pkg ${sub}`));
    }
  });
});
