// End to end against the harness's real dockerd (BuildKit through dockerode) and registry.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dockerd, type Registry, startDockerd, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackages, PkgError } from '../src/build.ts';
import { dockerEngine } from '../src/docker-engine.ts';
import type { Engine } from '../src/engine.ts';
import { gitCli } from '../src/git.ts';
import { type ImageManifest, Store } from '../src/oci.ts';
import { loadPackage } from '../src/package.ts';
import { registryRemote } from '../src/registry-remote.ts';
import { gitRepo, writePackages } from './fixtures.ts';

const git = gitCli();
let dockerd: Dockerd;
let registry: Registry;
let repo: ReturnType<typeof gitRepo>;
let storeDir: string;
let store: Store;
let org: string;
const remote = registryRemote();
const lines: string[] = [];
const log = (l: string) => lines.push(l);

/** An engine that fails the test if anything calls it. */
const noEngine = (): Engine => {
  throw new Error('the engine was contacted');
};

function skopeo(args: string[]): unknown {
  return JSON.parse(execFileSync('skopeo', [...args, '--tls-verify=false'], { encoding: 'utf8' }));
}

beforeAll(async () => {
  [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
  org = `${registry.host}/stele`;
  repo = gitRepo();
  writePackages(repo);
  storeDir = mkdtempSync(join(tmpdir(), 'stele-pkg-store-'));
  store = await Store.open(storeDir);
}, 120_000);

afterAll(async () => {
  await remote.close();
  await Promise.allSettled([dockerd?.stop(), registry?.stop()]);
  if (repo) rmSync(repo.root, { recursive: true, force: true });
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
});

const engine = () => dockerEngine(`unix://${dockerd.socketPath}`);
const dir = (name: string) => join(repo.root, 'pkg', name);

describe('pkg build with a real Docker Engine', () => {
  it('builds a package and the package it builds FROM, amd64 and arm64, into the store', async () => {
    const results = await buildPackages([dir('app')], { git, store, engine, org, log });
    expect(results.map((r) => r.ref.slice(0, r.ref.lastIndexOf(':')))).toEqual([`${org}/base`, `${org}/app`]);
    for (const r of results) {
      expect(r.arches.map((a) => [a.arch, a.status])).toEqual([
        ['amd64', 'built'],
        ['arm64', 'built'],
      ]);
    }
    const app = results[1];
    expect(app?.dependsOn).toEqual([results[0]?.fullRef]);

    // The store holds a two-arch index whose arm64 image really is arm64 and has base's layer.
    const index = JSON.parse((await store.fetchManifest(await store.resolve(app?.fullRef ?? ''))).toString());
    expect(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual([
      'amd64',
      'arm64',
    ]);
    const arm = await store.resolve(`${app?.fullRef}-arm64`);
    const manifest = JSON.parse((await store.fetchManifest(arm)).toString()) as ImageManifest;
    const config = JSON.parse((await store.readBlob(manifest.config.digest)).toString());
    expect(config.architecture).toBe('arm64');
    expect(manifest.layers).toHaveLength(2);

    // Labels: config section and source revision.
    const base = await loadPackage(dir('base'), { git, org });
    const baseArm = JSON.parse((await store.fetchManifest(await store.resolve(`${base.fullRef}-arm64`))).toString());
    const baseConfig = JSON.parse((await store.readBlob(baseArm.config.digest)).toString());
    expect(JSON.parse(baseConfig.config.Labels['org.mobyproject.config'])).toEqual({
      capabilities: ['CAP_NET_ADMIN'],
      binds: ['/etc/resolv.conf:/etc/resolv.conf'],
    });
    expect(baseConfig.config.Labels['org.opencontainers.image.revision']).toBe(repo.sh(['rev-parse', 'HEAD']));
  }, 120_000);

  it('re-running on unchanged packages makes no engine call (timing: bench/pkg-rebuild.ts)', async () => {
    const t0 = performance.now();
    const results = await buildPackages([dir('app')], { git, store, engine: noEngine, org, log });
    const ms = performance.now() - t0;
    console.log(`unchanged re-run of base+app: ${ms.toFixed(0)} ms`);
    expect(results.flatMap((r) => r.arches.map((a) => a.status))).toEqual(['cached', 'cached', 'cached', 'cached']);
  });

  it('pushes per-arch tags and an index that skopeo reads, arm64 image saying arm64', async () => {
    const results = await buildPackages([dir('app')], { git, store, engine: noEngine, org, log, push: true, remote });
    const app = results[1];
    expect(app?.pushed).toEqual([`${app?.fullRef}-amd64`, `${app?.fullRef}-arm64`, app?.fullRef]);
    const raw = skopeo(['inspect', '--raw', `docker://${app?.fullRef}`]) as {
      manifests: { platform: { architecture: string } }[];
    };
    expect(raw.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
    const arm = skopeo(['inspect', '--override-arch', 'arm64', `docker://${app?.fullRef}`]) as { Architecture: string };
    expect(arm.Architecture).toBe('arm64');
  }, 60_000);

  it('the registry is the build cache: an empty store on another machine builds nothing', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'stele-pkg-store2-'));
    try {
      const other = await Store.open(otherDir);
      const results = await buildPackages([dir('app')], { git, store: other, engine: noEngine, org, log, remote });
      expect(results.flatMap((r) => r.arches.map((a) => a.status))).toEqual([
        'in-registry',
        'in-registry',
        'in-registry',
        'in-registry',
      ]);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('a Dockerfile with RUN builds the native arch and skips arm64 with a clear line', async () => {
    lines.length = 0;
    const [r] = await buildPackages([dir('tools')], { git, store, engine, org, log });
    expect(r?.arches.map((a) => a.status)).toEqual(['built', 'skipped']);
    expect(r?.arches[1]?.reason).toMatch(/RUNs programs .* --builder linux\/arm64=/);
    expect(lines.join('\n')).toMatch(/arm64: skipped/);
  }, 60_000);

  it('a failing step names the step, shows the tail of its log, and pushes nothing', async () => {
    repo.write('pkg/broken/build.yml', 'image: broken\narches: [amd64]\n');
    repo.write(
      'pkg/broken/Dockerfile',
      'FROM scratch\nCOPY busybox /bin/sh\nRUN ["/bin/sh", "-c", "echo compiling; echo oops-went-wrong >&2; exit 3"]\n',
    );
    repo.copy('/bin/busybox', 'pkg/broken/busybox');
    repo.commit();
    const err = await buildPackages([dir('broken')], { git, store, engine, org, log, push: true, remote }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PkgError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/building .*broken:\S+ for amd64 failed at step \[2\/2\] RUN/);
    expect(msg).toContain('oops-went-wrong');
    const pkg = await loadPackage(dir('broken'), { git, org });
    expect(await remote.resolve(`${pkg.fullRef}-amd64`)).toBeUndefined();
    expect(await remote.resolve(pkg.fullRef)).toBeUndefined();
  }, 60_000);

  it('a Dockerfile syntax error is a clear error', async () => {
    repo.write('pkg/typo/build.yml', 'image: typo\narches: [amd64]\n');
    repo.write('pkg/typo/Dockerfile', 'FROM scratch\nCOPPY x /x\n');
    repo.commit();
    await expect(buildPackages([dir('typo')], { git, store, engine, org, log })).rejects.toThrow(
      /typo:\S+ for amd64 failed[\s\S]*unknown instruction: COPPY/,
    );
  }, 60_000);
});

describe('pkg build: bad input', () => {
  it('a missing engine says how to start one', async () => {
    repo.write('pkg/lonely/build.yml', 'image: lonely\narches: [amd64]\n');
    repo.write('pkg/lonely/Dockerfile', 'FROM scratch\nCOPY build.yml /\n');
    repo.commit();
    await expect(
      buildPackages([dir('lonely')], {
        git,
        store,
        org,
        engine: () => dockerEngine('unix:///nonexistent/docker.sock'),
      }),
    ).rejects.toThrow(/cannot reach a Docker Engine at unix:\/\/\/nonexistent\/docker.sock.*start a Docker Engine/);
  });

  it('an unknown arch is refused', async () => {
    await expect(
      buildPackages([dir('base')], { git, store, org, engine: noEngine, arches: ['arm65'] }),
    ).rejects.toThrow("unknown arch 'arm65' (known: amd64, arm64");
  });

  it('FROM a package that does not exist is a clear error', async () => {
    repo.write('pkg/orphan/build.yml', 'image: orphan\nbuildArgs:\n  - BASE=@lkt:pkg:../nothere\n');
    repo.write('pkg/orphan/Dockerfile', 'ARG BASE\nFROM $' + '{BASE}\n');
    repo.commit();
    await expect(buildPackages([dir('orphan')], { git, store, org, engine: noEngine })).rejects.toThrow(
      /buildArgs BASE=@lkt:pkg:..\/nothere: .*nothere: no such package directory/,
    );
  });
});
