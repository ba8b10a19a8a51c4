/**
 * End to end through the real Nx CLI on a temporary git repository: inferred projects,
 * YAML dependency edges, `--affected`, caching, and the store check that turns a cache hit
 * for a digest the store has lost into a rebuild.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixture, type Fixture, type FixtureSpec, PLUGIN_DIR } from './fixture.ts';

const spec: FixtureSpec = {
  packages: [
    { name: 'base' },
    { name: 'runtime', from: ['base'] },
    { name: 'sshd', from: ['base'] },
    { name: 'docker', from: ['runtime'] },
    { name: 'swarm', from: ['docker'] },
    { name: 'ecs', org: 'stele', from: ['docker'] },
    { name: 'kernel' },
    { name: 'init' },
    { name: 'getty' },
    { name: 'dhcpcd' },
  ],
  images: [
    { name: 'minimal', uses: ['kernel', 'init', 'getty', 'dhcpcd'] },
    { name: 'swarm-worker', uses: ['kernel', 'init', 'sshd', 'swarm'], files: ['motd'] },
    { name: 'ecs-node', uses: ['kernel', 'init', 'ecs', 'dhcpcd'] },
  ],
  fleets: [
    { image: 'minimal', name: 'dev' },
    { image: 'swarm-worker', name: 'prod' },
    { image: 'ecs-node', name: 'prod' },
  ],
};

/** The fixture's own dependency model, independent of the plugin: project → what it uses. */
function modelEdges(s: FixtureSpec): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const p of s.packages)
    m.set(
      `pkg-${p.name}`,
      (p.from ?? []).map((f) => `pkg-${f}`),
    );
  for (const i of s.images)
    m.set(
      `os-${i.name}`,
      i.uses.map((u) => `pkg-${u}`),
    );
  for (const f of s.fleets) m.set(`fleet-${f.image}-${f.name}`, [`os-${f.image}`]);
  return m;
}

/** Everything that (transitively) uses `changed`, plus itself. */
function dependents(s: FixtureSpec, changed: string): string[] {
  const edges = modelEdges(s);
  const out = new Set([changed]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, uses] of edges) {
      if (!out.has(p) && uses.some((u) => out.has(u))) {
        out.add(p);
        grew = true;
      }
    }
  }
  return [...out].sort();
}

const lines = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

function invocations(f: Fixture): string[] {
  return existsSync(f.log) ? lines(readFileSync(f.log, 'utf8')).sort() : [];
}

function blobOf(f: Fixture, project: string): string {
  const d = JSON.parse(readFileSync(join(f.dir, 'dist/stele', project, 'build/descriptor.json'), 'utf8')) as {
    digest: string;
  };
  return join(f.store, 'blobs', 'sha256', d.digest.slice('sha256:'.length));
}

// Each Nx run starts a daemonless Nx and test doubles: seconds idle, but under load (2 cores busy)
// the build test took 214 s and the fleet targets 68 s. Timeouts leave room above that.
describe('nx with @stele/nx-plugin on a fixture repo', { timeout: 300_000 }, () => {
  let f: Fixture;
  beforeAll(() => {
    f = createFixture(spec, {
      commands: {
        pkgBuild: `node ${join(PLUGIN_DIR, 'test/stele-double.mjs')} pkg-build`,
        osBuild: `node ${join(PLUGIN_DIR, 'test/stele-double.mjs')} os-build`,
        fleetPlan: `node ${join(PLUGIN_DIR, '../cli/bin/stele.js')} fleet plan --offline {file}`,
        fleetRollout: `node ${join(PLUGIN_DIR, '../cli/bin/stele.js')} fleet rollout --offline {file}`,
      },
    });
  });
  afterAll(() => f?.cleanup());

  it('infers one project per build.yml, os.yml and fleet.yml with readable names', () => {
    const r = f.nx(['show', 'projects']);
    expect(r.code, r.stderr).toBe(0);
    expect(lines(r.stdout).sort()).toEqual([...modelEdges(spec).keys()].sort());
  });

  it('draws pkg → pkg, os → pkg and fleet → os edges from the YAML', () => {
    const r = f.nx(['graph', '--file=graph.json']);
    expect(r.code, r.stderr).toBe(0);
    const graph = JSON.parse(readFileSync(join(f.dir, 'graph.json'), 'utf8')) as {
      graph: { dependencies: Record<string, { target: string }[]> };
    };
    const got = Object.fromEntries(
      Object.entries(graph.graph.dependencies).map(([k, v]) => [k, v.map((d) => d.target).sort()]),
    );
    const want = Object.fromEntries([...modelEdges(spec)].map(([k, v]) => [k, [...v].sort()]));
    expect(got).toEqual(want);
  });

  it('builds, rebuilds exactly the affected projects, then hits the cache, and rebuilds what the store lost', () => {
    const all = f.nx(['run-many', '-t', 'build', '--parallel=2']);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    const buildable = [...modelEdges(spec).keys()].filter((p) => !p.startsWith('fleet-'));
    expect(invocations(f)).toEqual(
      buildable.map((p) => `${p.startsWith('pkg-') ? 'pkg-build' : 'os-build'} ${p}`).sort(),
    );

    // change one file in one package
    writeFileSync(join(f.dir, 'pkg/runtime/src/main.sh'), '#!/bin/sh\necho runtime v2\n');
    const expected = dependents(spec, 'pkg-runtime');
    const affected = f.nx(['show', 'projects', '--affected', '--base=HEAD']);
    expect(affected.code, affected.stderr).toBe(0);
    expect(lines(affected.stdout).sort()).toEqual(expected);

    writeFileSync(f.log, '');
    const run = f.nx(['affected', '-t', 'build', '--base=HEAD', '--parallel=2']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const expectedBuilds = expected
      .filter((p) => !p.startsWith('fleet-'))
      .map((p) => `${p.startsWith('pkg-') ? 'pkg-build' : 'os-build'} ${p}`)
      .sort();
    expect(invocations(f)).toEqual(expectedBuilds);

    writeFileSync(f.log, '');
    const again = f.nx(['affected', '-t', 'build', '--base=HEAD', '--parallel=2']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(invocations(f)).toEqual([]);
    expect(again.stdout).toMatch(/from the cache instead of running the command for (\d+) out of \1 tasks/);

    // lose one image from the store: that build must run again, nothing else
    rmSync(blobOf(f, 'pkg-docker'));
    writeFileSync(f.log, '');
    const afterLoss = f.nx(['affected', '-t', 'build', '--base=HEAD', '--parallel=2']);
    expect(afterLoss.code, afterLoss.stdout + afterLoss.stderr).toBe(0);
    expect(invocations(f)).toEqual(['pkg-build pkg-docker']);
    expect(existsSync(blobOf(f, 'pkg-docker'))).toBe(true);

    // a cache hit that restores a descriptor whose digest is gone (a fresh clone with a shared
    // cache): nothing can tell before Nx restores it, so the next run must rebuild it
    rmSync(blobOf(f, 'pkg-getty'));
    rmSync(join(f.dir, 'dist/stele/pkg-getty'), { recursive: true });
    writeFileSync(f.log, '');
    const restored = f.nx(['run', 'pkg-getty:build']);
    expect(restored.code, restored.stdout + restored.stderr).toBe(0);
    expect(invocations(f)).toEqual([]);
    expect(existsSync(blobOf(f, 'pkg-getty'))).toBe(false);
    const next = f.nx(['run', 'pkg-getty:build']);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect(invocations(f)).toEqual(['pkg-build pkg-getty']);
  }, 600_000);

  it('fleet targets run stele fleet plan and stele fleet rollout', () => {
    // The fixture's images exist only as test doubles, so the real commands stop at resolving them.
    for (const target of ['plan', 'rollout']) {
      const r = f.nx(['run', `fleet-minimal-dev:${target}`, '--excludeTaskDependencies']);
      expect(r.code, target).not.toBe(0);
      expect(r.stdout + r.stderr, target).toMatch(/is not in the store .*--offline forbids the registry/);
    }
  });

  it('shows build.yml and os.yml validation errors as FILE:LINE:COL, without a stack trace', () => {
    const build = join(f.dir, 'pkg/sshd/build.yml');
    const os = join(f.dir, 'fleets/minimal/os.yml');
    const oldBuild = readFileSync(build, 'utf8');
    const oldOs = readFileSync(os, 'utf8');
    try {
      writeFileSync(build, 'org: linuxkit\narches: [amd64]\n');
      writeFileSync(
        os,
        'kernel:\n  image: linuxkit/kernel:1\nservices:\n  - name: getty\n    image: [not, a, string]\n',
      );
      const r = f.nx(['show', 'projects']);
      const out = r.stdout + r.stderr;
      expect(r.code).not.toBe(0);
      expect(out).toMatch(/^\s*pkg\/sshd\/build.yml:1:1: image: .*'image'/m);
      expect(out).toMatch(/^\s*fleets\/minimal\/os.yml:5:12: services.0.image: expected a string/m);
      expect(out).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
    } finally {
      writeFileSync(build, oldBuild);
      writeFileSync(os, oldOs);
    }
  });
});
