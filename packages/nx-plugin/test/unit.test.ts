import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatError } from '@stele/manifest';
import { missingBuildContent } from '@stele/oci/build-descriptor';
import { blobPath } from '@stele/oci/store-paths';
import { afterEach, describe, expect, it } from 'vitest';
import { expandCommand } from '../src/executor.ts';
import { steleEdges } from '../src/graph.ts';
import { checkCacheHits, missingStoreEnv } from '../src/hooks.ts';
import { createDependencies, inferProjects } from '../src/index.ts';
import { normalizeOptions, resolveStoreDir } from '../src/options.ts';
import { dockerfileRepositories, readFleet, readOs, readPackage, repositoryOf } from '../src/read.ts';
import { projectName } from '../src/scan.ts';
import { storeEnvVar } from '../src/targets.ts';

const tmps: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stele-nxu-'));
  tmps.push(d);
  return d;
}
function put(root: string, rel: string, text: string): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), text);
}
afterEach(() => {
  for (const d of tmps.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('repositoryOf', () => {
  it.each([
    ['linuxkit/sshd:08e5d4a', 'linuxkit/sshd'],
    [`docker.io/linuxkit/sshd:v1@sha256:${'a'.repeat(64)}`, 'linuxkit/sshd'],
    ['localhost:5000/stele/ecs', 'stele/ecs'],
    ['alpine:3.20', 'library/alpine'],
    ['docker.io/library/alpine', 'library/alpine'],
    ['registry.example.com:443/a/b/c:tag', 'a/b/c'],
  ])('%s → %s', (ref, repo) => expect(repositoryOf(ref)).toBe(repo));
  it('ignores references that do not parse', () => expect(repositoryOf('Not A Ref')).toBeUndefined());
});

describe('dockerfileRepositories', () => {
  it('dedupes repositories and drops registries and tags', () => {
    expect(dockerfileRepositories('FROM linuxkit/a:1 AS x\nFROM docker.io/linuxkit/a:2\nFROM alpine\n')).toEqual([
      'linuxkit/a',
      'library/alpine',
    ]);
  });
});

describe('readers', () => {
  it('reads a build.yml: org, image, dockerfile and extra-sources', () => {
    const p = readPackage(
      'pkg/sshd/build.yml',
      'image: sshd\norg: stele\ndockerfile: Dockerfile.alt\nextra-sources:\n  - ../common:/common\n',
    );
    expect(p.errors).toEqual([]);
    expect(p).toMatchObject({ org: 'stele', image: 'sshd', dockerfile: 'pkg/sshd/Dockerfile.alt' });
    expect(p.extraSources).toEqual(['pkg/common']);
  });

  it('reports build.yml problems with positions', () => {
    const p = readPackage('pkg/x/build.yml', 'image: x\nextra-sources:\n  - ../../../outside:/x\n');
    expect(p.errors.map(formatError)).toEqual([
      'pkg/x/build.yml:3:5: extra-sources.0: the source must be inside the workspace',
    ]);
    const typed = readPackage('pkg/x/build.yml', 'image: x\nnetwork: 7\n');
    expect(typed.errors.map((e) => `${e.line}:${e.col} ${e.path}`)).toEqual(['2:10 network']);
    const bad = readPackage('pkg/y/build.yml', 'image: [unclosed\n');
    expect(bad.errors).toHaveLength(1);
    expect(bad.errors[0]?.file).toBe('pkg/y/build.yml');
  });

  it('collects every image reference of a LinuxKit manifest and its files.source', () => {
    const os = readOs(
      'fleets/a/os.yml',
      [
        'kernel:',
        '  image: linuxkit/kernel:6.12',
        'init:',
        '  - linuxkit/init:1',
        'onboot:',
        '  - name: sysctl',
        '    image: docker.io/linuxkit/sysctl:2',
        'onshutdown:',
        '  - name: bye',
        '    image: stele/bye',
        'services:',
        '  - name: sshd',
        '    image: linuxkit/sshd:3',
        'volumes:',
        '  - name: v',
        '    image: linuxkit/vol:1',
        'files:',
        '  - path: etc/motd',
        '    source: motd',
        '  - path: root/.ssh/authorized_keys',
        '    source: ~/.ssh/id.pub',
        '  - path: etc/x',
        '    contents: hi',
      ].join('\n'),
    );
    expect(os.errors).toEqual([]);
    expect(os.images).toEqual([
      'linuxkit/init',
      'linuxkit/kernel',
      'linuxkit/sshd',
      'linuxkit/sysctl',
      'linuxkit/vol',
      'stele/bye',
    ]);
    expect(os.sources.map((s) => s.path)).toEqual(['fleets/a/motd']);
  });

  it('reads a fleet image path relative to fleet.yml', () => {
    const fleet = 'name: prod\nimage: ../os.yml\nhosts: 1\nprovider:\n  type: qemu\n';
    expect(readFleet('fleets/a/prod/fleet.yml', fleet)).toMatchObject({ errors: [], manifest: 'fleets/a/os.yml' });
    const bad = readFleet('fleets/a/prod/fleet.yml', 'name: prod\nhosts: 1\nprovider:\n  type: qemu\n');
    expect(bad.manifest).toBeUndefined();
    expect(bad.errors.map((e) => e.path)).toContain('image');
  });
});

describe('names and edges', () => {
  it('derives readable, stable names', () => {
    expect(projectName('package', 'pkg/sshd/build.yml', 'pkg/sshd')).toBe('pkg-sshd');
    expect(projectName('package', 'pkg/net/dhcp/build.yml', 'pkg/net/dhcp')).toBe('pkg-net-dhcp');
    expect(projectName('os', 'fleets/swarm-worker/os.yml', 'fleets/swarm-worker')).toBe('os-swarm-worker');
    expect(projectName('os', 'images/edge.yml', 'images/edge.yml')).toBe('os-images-edge');
    expect(projectName('fleet', 'fleets/swarm/prod/fleet.yml', 'fleets/swarm/prod')).toBe('fleet-swarm-prod');
  });

  it('links packages by org/image and fleets by manifest; ignores external images and other orgs', () => {
    const edges = steleEdges({
      'pkg-base': { kind: 'package', file: 'pkg/base/build.yml', repository: 'linuxkit/base', froms: ['alpine'] },
      'pkg-sshd': {
        kind: 'package',
        file: 'pkg/sshd/build.yml',
        repository: 'linuxkit/sshd',
        froms: ['linuxkit/base'],
        dockerfile: 'pkg/sshd/Dockerfile',
      },
      'pkg-ecs': { kind: 'package', file: 'pkg/ecs/build.yml', repository: 'stele/ecs', froms: [] },
      'os-a': { kind: 'os', file: 'fleets/a/os.yml', images: ['linuxkit/sshd', 'linuxkit/ecs', 'stele/ecs'] },
      'fleet-a-prod': { kind: 'fleet', file: 'fleets/a/prod/fleet.yml', manifest: 'fleets/a/os.yml' },
    });
    expect(edges).toEqual([
      { source: 'pkg-sshd', target: 'pkg-base', sourceFile: 'pkg/sshd/Dockerfile' },
      { source: 'os-a', target: 'pkg-sshd', sourceFile: 'fleets/a/os.yml' },
      { source: 'os-a', target: 'pkg-ecs', sourceFile: 'fleets/a/os.yml' },
      { source: 'fleet-a-prod', target: 'os-a', sourceFile: 'fleets/a/prod/fleet.yml' },
    ]);
  });
});

describe('LinuxKit @pkg: templates', () => {
  it('an OS image depends on the packages it names with @pkg:PATH, relative to the manifest', () => {
    const os = readOs(
      'fleets/w/os.yml',
      [
        'kernel:',
        '  image: "@pkg:../../pkg/kernel"',
        'init:',
        '  - "@pkg:../../pkg/init"',
        '  - "@pkg:../../../outside"',
        'services:',
        '  - name: sshd',
        '    image: "@pkg:../../pkg/sshd"',
        '  - name: other',
        '    image: linuxkit/getty:1',
      ].join('\n'),
    );
    expect(os.errors).toEqual([]);
    expect(os.packages).toEqual(['pkg/init', 'pkg/kernel', 'pkg/sshd']);
    expect(os.images).toEqual(['linuxkit/getty']);
    const edges = steleEdges({
      'pkg-init': { kind: 'package', file: 'pkg/init/build.yml', repository: 'stele/init' },
      'pkg-sshd': { kind: 'package', file: 'pkg/sshd/build.yml', repository: 'stele/sshd' },
      'pkg-unused': { kind: 'package', file: 'pkg/unused/build.yml', repository: 'stele/unused' },
      'os-w': { kind: 'os', file: 'fleets/w/os.yml', images: os.images, packages: os.packages },
    });
    expect(edges).toEqual([
      { source: 'os-w', target: 'pkg-init', sourceFile: 'fleets/w/os.yml' },
      { source: 'os-w', target: 'pkg-sshd', sourceFile: 'fleets/w/os.yml' },
    ]);
  });
});

describe('inferProjects', () => {
  it('infers exact inputs: package files minus nested packages, extra sources, manifest and its sources', async () => {
    const root = tmp();
    put(root, 'pkg/base/build.yml', 'image: base\nextra-sources:\n  - ../../shared:/shared\n');
    put(root, 'pkg/base/Dockerfile', 'FROM alpine\n');
    put(root, 'pkg/base/sub/build.yml', 'image: sub\n');
    put(root, 'pkg/base/sub/Dockerfile', 'FROM linuxkit/base:1\n');
    put(root, 'shared/a.txt', 'a');
    put(root, 'images/edge.yml', 'init:\n  - linuxkit/base:1\nfiles:\n  - path: etc/motd\n    source: ../motd\n');
    put(root, 'images/core.yml', 'init:\n  - linuxkit/sub:1\n');
    put(root, 'motd', 'hello');
    const files = ['pkg/base/build.yml', 'pkg/base/sub/build.yml', 'images/edge.yml', 'images/core.yml', 'README.yml'];
    const result = await inferProjects(files, { manifests: ['images/*.yml'] }, { workspaceRoot: root });
    const byRoot = Object.fromEntries(result.flatMap(([, r]) => Object.entries(r.projects ?? {})));
    expect(Object.keys(byRoot).sort()).toEqual(['images/core.yml', 'images/edge.yml', 'pkg/base', 'pkg/base/sub']);
    expect(byRoot['pkg/base']?.targets?.build?.inputs).toEqual([
      '{projectRoot}/**/*',
      '!{projectRoot}/sub/**/*',
      '{workspaceRoot}/shared/**/*',
      { dependentTasksOutputFiles: '**/descriptor.json', transitive: true },
      { env: 'STELE_NX_STORE_PKG_BASE' },
    ]);
    expect(byRoot['images/edge.yml']?.name).toBe('os-images-edge');
    expect(byRoot['images/edge.yml']?.targets?.build?.inputs?.slice(0, 2)).toEqual([
      '{workspaceRoot}/images/edge.yml',
      '{workspaceRoot}/motd',
    ]);
  });

  it('throws one readable error listing every problem', async () => {
    const root = tmp();
    put(root, 'pkg/a/build.yml', 'org: x\n');
    put(root, 'pkg/a/Dockerfile', 'FROM alpine\n');
    put(root, 'fleets/f/prod/fleet.yml', 'name: prod\nimage: ../os.yml\nhosts: 1\nprovider:\n  type: qemu\n');
    await expect(
      inferProjects(['pkg/a/build.yml', 'fleets/f/prod/fleet.yml'], {}, { workspaceRoot: root }),
    ).rejects.toThrow(
      /pkg\/a\/build.yml:1:1: .*image[\s\S]*fleets\/f\/prod\/fleet.yml:2:8: image: no OS manifest at fleets\/f\/os.yml/,
    );
  });

  it('reuses parsed results from the hash-keyed cache and misses when content changes', async () => {
    const root = tmp();
    const cacheDir = tmp();
    put(root, 'pkg/a/build.yml', 'image: a\n');
    put(root, 'pkg/a/Dockerfile', 'FROM alpine\n');
    const repo = async () => {
      const [[, r] = ['', {}]] = await inferProjects(['pkg/a/build.yml'], {}, { workspaceRoot: root }, cacheDir);
      const meta = r.projects?.['pkg/a']?.metadata as { stele: { repository: string } };
      return meta.stele.repository;
    };
    expect(await repo()).toBe('linuxkit/a');
    // tamper with the cached parse: an unchanged file must be served from the cache
    const [file = ''] = readdirSync(cacheDir);
    const cachePath = join(cacheDir, file);
    writeFileSync(cachePath, readFileSync(cachePath, 'utf8').replace('"image":"a"', '"image":"from-cache"'));
    expect(await repo()).toBe('linuxkit/from-cache');
    // a content change is a different key
    put(root, 'pkg/a/build.yml', 'image: a\norg: stele\n');
    expect(await repo()).toBe('stele/a');
    expect(Object.keys(JSON.parse(readFileSync(cachePath, 'utf8')))).toHaveLength(2); // build.yml + the Dockerfile's images
  });
});

describe('Dockerfile edges', () => {
  /** The dependency edges Nx gets for a workspace: inferProjects, then createDependencies. */
  async function edgesOf(root: string, files: string[]): Promise<string[]> {
    const result = await inferProjects(files, {}, { workspaceRoot: root });
    const projects = Object.fromEntries(result.flatMap(([, r]) => Object.entries(r.projects ?? {})));
    const deps = await createDependencies({}, { projects } as unknown as Parameters<typeof createDependencies>[1]);
    return deps.map((d) => `${d.source} -> ${d.target}`).sort();
  }

  /** Writes `pkg/NAME` (build.yml and Dockerfile); returns its build.yml. */
  function pkg(root: string, name: string, buildYml: string, dockerfile: string): string {
    put(root, `pkg/${name}/build.yml`, buildYml);
    put(root, `pkg/${name}/Dockerfile`, dockerfile);
    return `pkg/${name}/build.yml`;
  }

  it('a package that COPY --from (or RUN --mount from) the image of a repo package depends on it', async () => {
    const root = tmp();
    const files = [
      pkg(root, 'kernel', 'image: kernel\norg: stele\n', 'FROM alpine\n'),
      pkg(root, 'base', 'image: base\n', 'FROM alpine\n'),
      pkg(
        root,
        'modules',
        'image: modules\norg: stele\n',
        'FROM linuxkit/base:1\nCOPY --from=stele/kernel:abc123 /lib/modules /lib/modules\n',
      ),
      pkg(
        root,
        'boot',
        'image: boot\norg: stele\n',
        'FROM scratch\nCOPY --chown=0:0 --from=127.0.0.1:5000/stele/kernel:abc123 /boot /boot\nCOPY --from=linuxkit/base:1 / /\n',
      ),
      pkg(
        root,
        'tools',
        'image: tools\norg: stele\n',
        'FROM alpine\nRUN --mount=type=bind,from=stele/kernel:abc123,target=/k ls /k\n',
      ),
    ];
    expect(await edgesOf(root, files)).toEqual([
      'pkg-boot -> pkg-base',
      'pkg-boot -> pkg-kernel',
      'pkg-modules -> pkg-base',
      'pkg-modules -> pkg-kernel',
      'pkg-tools -> pkg-kernel',
    ]);
  });

  it('COPY --from an earlier stage, by name or by index, is no edge', async () => {
    const root = tmp();
    const files = [
      // Packages whose repositories a stage name or index would resolve to, were it read as an image.
      pkg(root, 'kernel', 'image: kernel\norg: library\n', 'FROM alpine\n'),
      pkg(root, 'zero', 'image: "0"\norg: library\n', 'FROM alpine\n'),
      pkg(
        root,
        'app',
        'image: app\n',
        'FROM alpine AS kernel\nRUN make\nFROM scratch\nCOPY --from=kernel /a /a\nCOPY --from=0 /b /b\n',
      ),
    ];
    expect(await edgesOf(root, files)).toEqual([]);
  });
});

describe('the store check', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;
  it('flags a descriptor whose digest left the store, via the project env var', () => {
    const root = tmp();
    const opts = normalizeOptions({ storeDir: 'store' });
    put(root, 'dist/stele/pkg-a/build/descriptor.json', JSON.stringify({ digest, mediaType: 'm', size: 1, refs: [] }));
    const store = resolveStoreDir('store', root);
    expect(missingBuildContent({ digest, mediaType: 'm', size: 1, refs: [] }, root, store)).toMatch(/not in the store/);
    expect(missingStoreEnv(root, opts)).toEqual({ [storeEnvVar('pkg-a')]: `missing:${digest}` });
    put(root, blobPath(store, digest).slice(root.length + 1), 'x');
    expect(missingStoreEnv(root, opts)).toEqual({});
  });

  it('reports cache-hit builds whose restored descriptor names missing content', () => {
    const root = tmp();
    const opts = normalizeOptions({ storeDir: 'store' });
    const d = JSON.stringify({ digest, mediaType: 'm', size: 1, refs: [] });
    put(root, 'dist/stele/pkg-a/build/descriptor.json', d);
    put(root, 'dist/stele/pkg-b/build/descriptor.json', d);
    const result = (project: string, status: string) => ({ status, task: { target: { project, target: 'build' } } });
    const results = { 'pkg-a:build': result('pkg-a', 'local-cache'), 'pkg-b:build': result('pkg-b', 'success') };
    expect(checkCacheHits(root, opts, results)).toEqual([
      `pkg-a:build came from the Nx cache but ${digest} is not in the store ${join(root, 'store')}; the next run rebuilds it`,
    ]);
    put(root, blobPath(resolveStoreDir('store', root), digest).slice(root.length + 1), 'x');
    expect(checkCacheHits(root, opts, results)).toEqual([]);
  });

  it('expands command placeholders with shell quoting', () => {
    expect(expandCommand('stele build {file} --format {formats} {unknown}', { file: 'a b.yml', formats: 'iso' })).toBe(
      "stele build 'a b.yml' --format iso {unknown}",
    );
  });
});
