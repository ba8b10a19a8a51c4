// The build core against an in-memory engine (no dockerd): ordering, caching, skipping, labels.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildPackages, PkgError, planBuild } from '../src/build.ts';
import { decodeTrace, TraceRenderer } from '../src/buildkit-trace.ts';
import { contextEntries } from '../src/context.ts';
import type { BuildRequest, Engine } from '../src/engine.ts';
import { gitCli } from '../src/git.ts';
import { Store } from '../src/oci.ts';
import { gitRepo, writePackages } from './fixtures.ts';

const git = gitCli();

/** Records calls; "builds" an image whose config says the requested platform. */
function memoryEngine(native = 'amd64') {
  const images = new Map<string, Buffer>();
  const ids = new Map<string, string>();
  const calls: string[] = [];
  const builds: BuildRequest[] = [];
  const archive = async (arch: string, labels: Record<string, string>): Promise<Buffer> => {
    const p = pack();
    const layer = Buffer.alloc(1024);
    const config = JSON.stringify({ architecture: arch, os: 'linux', config: { Labels: labels }, rootfs: {} });
    ids.set(`${arch}${JSON.stringify(labels)}`, `sha256:${createHash('sha256').update(config).digest('hex')}`);
    p.entry({ name: 'cfg.json' }, config);
    p.entry({ name: 'l1/layer.tar' }, layer);
    p.entry(
      { name: 'manifest.json' },
      JSON.stringify([{ Config: 'cfg.json', RepoTags: [], Layers: ['l1/layer.tar'] }]),
    );
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const engine: Engine = {
    describe: () => 'memory',
    async ping() {},
    async nativeArch() {
      calls.push('nativeArch');
      return native;
    },
    async build(req) {
      calls.push(`build ${req.tag}`);
      builds.push(req);
      req.context.resume();
      const arch = req.platform.split('/')[1] as string;
      images.set(req.tag, await archive(arch, req.labels));
      ids.set(req.tag, ids.get(`${arch}${JSON.stringify(req.labels)}`) as string);
      return { imageId: ids.get(req.tag) as string };
    },
    async imageId(ref) {
      calls.push(`imageId ${ref}`);
      return ids.get(ref);
    },
    async tag(source, target) {
      calls.push(`tag ${target}`);
      images.set(target, images.get(source) as Buffer);
      ids.set(target, ids.get(source) as string);
    },
    async save(ref) {
      calls.push(`save ${ref}`);
      return Readable.from([images.get(ref) as Buffer]);
    },
    async load(a) {
      calls.push('load');
      a.resume();
    },
  };
  return { engine, calls, builds };
}

let repo: ReturnType<typeof gitRepo>;
let storeDir: string;
let store: Store;
beforeEach(async () => {
  repo = gitRepo();
  writePackages(repo);
  storeDir = mkdtempSync(join(tmpdir(), 'stele-pkg-unit-'));
  store = await Store.open(storeDir);
});
afterEach(() => {
  rmSync(repo.root, { recursive: true, force: true });
  rmSync(storeDir, { recursive: true, force: true });
});
const dir = (n: string) => join(repo.root, 'pkg', n);

describe('build order', () => {
  it('a package FROM another repo package (via @lkt:pkg:) builds after it', async () => {
    const order = await planBuild([dir('app')], { git });
    expect(order.map((n) => n.pkg.name)).toEqual(['linuxkit/base', 'linuxkit/app']);
  });

  it('a literal FROM org/image:<fresh tag> is a dependency too; a cycle is refused', async () => {
    const base = (await planBuild([dir('base')], { git }))[0]?.pkg;
    repo.write('pkg/lit/build.yml', 'image: lit\n');
    repo.write('pkg/lit/Dockerfile', `FROM ${base?.ref} AS b\nFROM scratch\nCOPY --from=b /hello /hello\n`);
    repo.commit();
    expect((await planBuild([dir('lit')], { git })).map((n) => n.pkg.name)).toEqual(['linuxkit/base', 'linuxkit/lit']);

    repo.write('pkg/c1/build.yml', 'image: c1\nbuildArgs: [X=@lkt:pkg:../c2]\n');
    repo.write('pkg/c1/Dockerfile', 'ARG X\nFROM $X\n');
    repo.write('pkg/c2/build.yml', 'image: c2\nbuildArgs: [X=@lkt:pkg:../c1]\n');
    repo.write('pkg/c2/Dockerfile', 'ARG X\nFROM $X\n');
    repo.commit();
    await expect(planBuild([dir('c1')], { git })).rejects.toThrow(/cycle/);
  });
});

describe('buildPackages with an in-memory engine', () => {
  it('builds deps first, loads labels and args, then a second run touches no engine', async () => {
    const m = memoryEngine();
    const r = await buildPackages([dir('app')], { git, store, engine: () => m.engine });
    expect(m.builds.map((b) => b.tag.replace(/:.*-/, ':-'))).toEqual([
      'docker.io/linuxkit/base:-amd64',
      'docker.io/linuxkit/base:-arm64',
      'docker.io/linuxkit/app:-amd64',
      'docker.io/linuxkit/app:-arm64',
    ]);
    const app = m.builds[2] as BuildRequest;
    expect(app.buildArgs.BASE).toBe(r[0]?.ref);
    expect(app.buildArgs.PKG_IMAGE).toBe('linuxkit/app');
    expect(app.network).toBe('none');
    expect(JSON.parse(m.builds[0]?.labels['org.mobyproject.config'] ?? '{}')).toMatchObject({
      capabilities: ['CAP_NET_ADMIN'],
    });
    // The engine's fresh base is tagged under base's name before app builds.
    expect(m.calls).toContain(`tag ${r[0]?.fullRef}`);

    const again = memoryEngine();
    await buildPackages([dir('app')], { git, store, engine: () => again.engine });
    expect(again.calls).toEqual([]);
  });

  it('a dependency only in the store is loaded into the engine', async () => {
    await buildPackages([dir('base')], { git, store, engine: () => memoryEngine().engine });
    const fresh = memoryEngine();
    await buildPackages([dir('app')], { git, store, engine: () => fresh.engine, arches: ['amd64'] });
    expect(fresh.calls).toContain('load');
  });

  it('RUN on a foreign arch is skipped without a builder, built with one', async () => {
    const m = memoryEngine();
    const r = await buildPackages([dir('tools')], { git, store, engine: () => m.engine });
    expect(r[0]?.arches.map((a) => a.status)).toEqual(['built', 'skipped']);
    const arm = memoryEngine('arm64');
    const r2 = await buildPackages([dir('tools')], {
      git,
      store,
      engine: () => m.engine,
      builders: { arm64: () => arm.engine },
    });
    expect(r2[0]?.arches.map((a) => a.status)).toEqual(['cached', 'built']);
    expect(arm.builds).toHaveLength(1);
  });

  it('--force rebuilds; push of a dirty package is refused before building', async () => {
    const m = memoryEngine();
    await buildPackages([dir('base')], { git, store, engine: () => m.engine });
    await buildPackages([dir('base')], { git, store, engine: () => m.engine, force: true });
    expect(m.builds).toHaveLength(4);
    repo.write('pkg/base/hello', 'changed\n');
    await expect(buildPackages([dir('base')], { git, store, engine: () => m.engine, push: true })).rejects.toThrow(
      PkgError,
    );
    expect(m.builds).toHaveLength(4);
  });
});

describe('helpers', () => {
  it('the build context honours .dockerignore but always sends the Dockerfile', async () => {
    repo.write('pkg/base/.dockerignore', 'secret.txt\nDockerfile\n');
    const names = (await contextEntries([{ src: dir('base'), dst: '/' }], ['Dockerfile'])).map((e) => e.name);
    expect(names).toContain('Dockerfile');
    expect(names).toContain('hello');
    expect(names).not.toContain('secret.txt');
  });

  it('decodes BuildKit trace protobuf: vertex names, errors and logs', () => {
    const str = (no: number, s: string | Buffer) => {
      const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
      return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
    };
    const vertex = Buffer.concat([str(1, 'sha256:aa'), str(3, '[2/2] RUN make'), str(7, 'exit code: 3')]);
    const logMsg = Buffer.concat([str(1, 'sha256:aa'), str(4, 'cc: error\n')]);
    const aux = Buffer.concat([str(1, vertex), str(3, logMsg)]).toString('base64');
    const r = new TraceRenderer();
    const lines = r.feed(decodeTrace(aux));
    expect(lines).toContain('[2/2] RUN make ERROR: exit code: 3');
    expect(r.failed?.name).toBe('[2/2] RUN make');
    expect(r.tail()).toEqual(['cc: error']);
  });
});
