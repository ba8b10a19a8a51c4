/**
 * Project-graph benchmark for @stele/nx-plugin on a generated repo (default 200 packages,
 * 50 OS images, 50 fleets). Times `nx show projects`:
 *   cold — no `.nx` workspace data (no project-graph cache, no plugin parse cache);
 *   warm — straight after, caches in place;
 * both without the Nx daemon (the workspace's setting). For scale it also times Nx alone on
 * the same files with the plugin removed from nx.json, and the plugin's createNodes in process.
 * Targets: cold < 3 s, warm < 1 s.
 *
 *   pnpm exec tsx bench/nx-graph.ts [packages] [images] [fleets] [runs]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferProjects } from '../packages/nx-plugin/src/index.ts';
import { createFixture, generatedSpec } from '../packages/nx-plugin/test/fixture.ts';

const [pkgs = 200, images = 50, fleets = 50, runs = 5] = process.argv.slice(2).map(Number);
const total = pkgs + images + fleets;
const fixture = createFixture(generatedSpec(pkgs, images, fleets));

function showProjects(expected: number): number {
  const t = performance.now();
  const r = fixture.nx(['show', 'projects']);
  const ms = performance.now() - t;
  const n = r.stdout.trim() === '' ? 0 : r.stdout.trim().split('\n').length;
  if (r.code !== 0 || n !== expected) throw new Error(`nx show projects: exit ${r.code}, ${n} projects:\n${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const fmt = (xs: number[]) =>
  `median ${(median(xs) / 1000).toFixed(2)} s  (${xs.map((x) => (x / 1000).toFixed(2)).join(', ')})`;

try {
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < runs; i++) {
    rmSync(join(fixture.dir, '.nx'), { recursive: true, force: true });
    cold.push(showProjects(total));
    warm.push(showProjects(total));
  }

  // the plugin's own work, in process: all project files → project configurations
  const files = execFileSync('git', ['ls-files', '*.yml'], { cwd: fixture.dir, encoding: 'utf8' }).trim().split('\n');
  const cacheDir = mkdtempSync(join(tmpdir(), 'stele-bench-cache-'));
  const inProc = async (): Promise<number> => {
    const t = performance.now();
    await inferProjects(files, {}, { workspaceRoot: fixture.dir }, cacheDir);
    return performance.now() - t;
  };
  const inCold = await inProc();
  const inWarm = [await inProc(), await inProc(), await inProc()];
  rmSync(cacheDir, { recursive: true, force: true });

  // Nx alone: same files, no plugin
  const nxJson = join(fixture.dir, 'nx.json');
  const withPlugin = readFileSync(nxJson, 'utf8');
  writeFileSync(nxJson, JSON.stringify({ ...JSON.parse(withPlugin), plugins: [] }));
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    rmSync(join(fixture.dir, '.nx'), { recursive: true, force: true });
    showProjects(0);
    bare.push(showProjects(0));
  }
  writeFileSync(nxJson, withPlugin);

  console.log(`repo: ${pkgs} packages, ${images} images, ${fleets} fleets = ${total} projects; ${runs} runs`);
  console.log(`cold nx show projects        ${fmt(cold)}   target < 3 s`);
  console.log(`warm nx show projects        ${fmt(warm)}   target < 1 s`);
  console.log(`warm, Nx alone (no plugin)   ${fmt(bare)}`);
  console.log(
    `createNodes in process       cold ${inCold.toFixed(0)} ms (incl. loading the schemas), warm ${inWarm.map((x) => x.toFixed(0)).join(', ')} ms`,
  );
} finally {
  fixture.cleanup();
}
