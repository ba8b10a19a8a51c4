/**
 * Temporary Stele repositories for the plugin's tests and the graph benchmark: packages with
 * Dockerfiles FROM each other, OS manifests using them, fleets running the manifests, an
 * nx.json registering the plugin from this checkout, and a git history for `--affected`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PLUGIN_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const NX_DIR = realpathSync(join(PLUGIN_DIR, 'node_modules', 'nx'));
export const NX_BIN = join(NX_DIR, 'bin', 'nx.js');
export const TEST_DOUBLE = join(PLUGIN_DIR, 'test', 'stele-double.mjs');

export interface PackageSpec {
  name: string;
  org?: string;
  /** Names of repo packages the Dockerfile builds FROM (plus an external base). */
  from?: string[];
}
export interface ImageSpec {
  name: string;
  /** Repo packages the manifest references. */
  uses: string[];
  /** Extra files under the image directory referenced by `files[].source`. */
  files?: string[];
}
export interface FleetSpec {
  image: string;
  name: string;
}
export interface FixtureSpec {
  packages: PackageSpec[];
  images: ImageSpec[];
  fleets: FleetSpec[];
}

const ref = (p: PackageSpec, tag = 'dev') => `${p.org ?? 'linuxkit'}/${p.name}:${tag}`;

export function write(dir: string, rel: string, text: string): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface Fixture {
  dir: string;
  store: string;
  log: string;
  nx(args: string[], env?: Record<string, string>): { code: number; stdout: string; stderr: string };
  cleanup(): void;
}

/** Writes the repo, commits it, and returns helpers to run Nx in it. */
export function createFixture(spec: FixtureSpec, pluginOptions: Record<string, unknown> = {}, useGit = true): Fixture {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'stele-nx-')));
  const store = join(dir, '.store');
  const log = join(dir, '.invocations.log');
  const byName = new Map(spec.packages.map((p) => [p.name, p]));
  for (const p of spec.packages) {
    write(dir, `pkg/${p.name}/build.yml`, `image: ${p.name}\n${p.org ? `org: ${p.org}\n` : ''}arches:\n  - amd64\n`);
    const froms = (p.from ?? []).map((f) => {
      const base = byName.get(f);
      if (!base) throw new Error(`fixture: unknown package ${f}`);
      return `FROM ${ref(base, 'abc123')} AS ${f}\n`;
    });
    write(
      dir,
      `pkg/${p.name}/Dockerfile`,
      `${froms.join('')}FROM alpine:3.20\n${(p.from ?? []).map((f) => `COPY --from=${f} / /\n`).join('')}COPY src /src\n`,
    );
    write(dir, `pkg/${p.name}/src/main.sh`, `#!/bin/sh\necho ${p.name}\n`);
  }
  for (const img of spec.images) {
    const uses = img.uses.map((u) => {
      const p = byName.get(u);
      if (!p) throw new Error(`fixture: unknown package ${u}`);
      return p;
    });
    const [kernel, ...rest] = uses;
    const lines = [
      ...(kernel ? ['kernel:', `  image: ${ref(kernel)}`, '  cmdline: "console=ttyS0"'] : []),
      'init:',
      '  - linuxkit/runc:v1.0.0',
      ...(rest.length ? ['services:', ...rest.flatMap((p) => [`  - name: ${p.name}`, `    image: ${ref(p)}`])] : []),
    ];
    if (img.files?.length) {
      lines.push('files:');
      for (const f of img.files) {
        lines.push(`  - path: etc/${f}`, `    source: ${f}`);
        write(dir, `fleets/${img.name}/${f}`, `${f}\n`);
      }
    }
    write(dir, `fleets/${img.name}/os.yml`, `${lines.join('\n')}\n`);
  }
  for (const f of spec.fleets) {
    write(
      dir,
      `fleets/${f.image}/${f.name}/fleet.yml`,
      `name: ${f.name}\nimage: ../os.yml\nhosts: 2\nprovider:\n  type: qemu\n`,
    );
  }
  const plugin = {
    plugin: join(PLUGIN_DIR, 'plugin.cjs'),
    options: {
      storeDir: '.store',
      commands: {
        pkgBuild: `node ${TEST_DOUBLE} pkg-build`,
        pkgPush: `node ${TEST_DOUBLE} pkg-push`,
        osBuild: `node ${TEST_DOUBLE} os-build`,
      },
      ...pluginOptions,
    },
  };
  write(
    dir,
    'nx.json',
    `${JSON.stringify({ plugins: [plugin], defaultBase: 'main', useDaemonProcess: false }, null, 2)}\n`,
  );
  write(dir, 'package.json', `${JSON.stringify({ name: 'fixture', private: true }, null, 2)}\n`);
  write(dir, '.gitignore', 'node_modules\n.nx\ndist\n.store\n.invocations.log\n.nx-out\n.nx-err\n');
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(NX_DIR, join(dir, 'node_modules', 'nx'));
  if (useGit) {
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'fixture');
  }
  return {
    dir,
    store,
    log,
    nx(args, env = {}) {
      // Output goes to files, not pipes: Nx can exit before a pipe drains and lose the tail
      // of `nx show projects` (seen with 300 projects); file writes are synchronous.
      const out = join(dir, '.nx-out');
      const err = join(dir, '.nx-err');
      const fds = [openSync(out, 'w'), openSync(err, 'w')] as const;
      const r = spawnSync(process.execPath, [NX_BIN, ...args], {
        cwd: dir,
        stdio: ['ignore', fds[0], fds[1]],
        env: {
          ...process.env,
          NX_DAEMON: 'false',
          NX_NO_CLOUD: 'true',
          NX_TUI: 'false',
          NX_SKIP_NX_CACHE: '',
          CI: 'true',
          STELE_TEST_LOG: log,
          ...env,
        },
      });
      for (const fd of fds) closeSync(fd);
      return { code: r.status ?? 1, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A generated spec for benchmarks: layered FROM chains, images using a few packages each. */
export function generatedSpec(nPackages: number, nImages: number, nFleets: number): FixtureSpec {
  const packages: PackageSpec[] = [];
  for (let i = 0; i < nPackages; i++) {
    const from = i >= 10 ? [`p${i % 10}`] : [];
    packages.push({ name: `p${i}`, from });
  }
  const images: ImageSpec[] = [];
  for (let i = 0; i < nImages; i++) {
    images.push({ name: `img${i}`, uses: [0, 1, 2, 3].map((k) => `p${(i * 4 + k) % nPackages}`) });
  }
  const fleets: FleetSpec[] = [];
  for (let i = 0; i < nFleets; i++) fleets.push({ image: `img${i % nImages}`, name: `f${i}` });
  return { packages, images, fleets };
}
