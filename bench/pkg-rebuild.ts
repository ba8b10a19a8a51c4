/**
 * Re-running `stele pkg build` on an unchanged package: no engine call, how long the whole
 * process takes. Builds a FROM scratch package once against a real dockerd (test peer), then
 * runs the CLI N times as a separate process with DOCKER_HOST pointing at a socket that does
 * not exist, so any engine call would fail.
 *   pnpm exec tsx bench/pkg-rebuild.ts [runs]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerd } from '../test/peers/src/index.ts';

const runs = Number(process.argv[2] ?? 5);
const bin = fileURLToPath(new URL('../packages/cli/bin/stele.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'stele-bench-pkg-'));
const store = mkdtempSync(join(tmpdir(), 'stele-bench-store-'));
const git = (...args: string[]) =>
  execFileSync('git', args, {
    cwd: root,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'b',
      GIT_AUTHOR_EMAIL: 'b@b',
      GIT_COMMITTER_NAME: 'b',
      GIT_COMMITTER_EMAIL: 'b@b',
    },
  });
const put = (p: string, text: string) => {
  mkdirSync(dirname(join(root, p)), { recursive: true });
  writeFileSync(join(root, p), text);
};

const dockerd = await startDockerd();
try {
  git('init', '-q', '-b', 'main');
  put('pkg/hello/build.yml', 'image: hello\narches: [amd64]\n');
  put('pkg/hello/Dockerfile', 'FROM scratch\nCOPY msg /msg\n');
  put('pkg/hello/msg', 'hello\n');
  git('add', '-A');
  git('commit', '-qm', 'c');
  const stele = (dockerHost: string) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bin, 'pkg', 'build', '--no-registry', '--json', 'pkg/hello'], {
      cwd: root,
      env: { ...process.env, DOCKER_HOST: dockerHost, STELE_CACHE: store },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`stele pkg build failed: ${r.stderr}`);
    return { ms: performance.now() - t0, status: JSON.parse(r.stdout)[0].arches[0].status as string };
  };
  const first = stele(`unix://${dockerd.socketPath}`);
  console.log(`first build (engine): ${first.ms.toFixed(0)} ms, ${first.status}`);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = stele('unix:///nonexistent/docker.sock');
    if (r.status !== 'cached') throw new Error(`run ${i}: expected cached, got ${r.status}`);
    times.push(r.ms);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  console.log(`unchanged package, whole process, no engine: median ${median.toFixed(0)} ms over ${runs} runs`);
  console.log(`  min ${times[0]?.toFixed(0)} ms, max ${times.at(-1)?.toFixed(0)} ms`);
} finally {
  await dockerd.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(store, { recursive: true, force: true });
}
