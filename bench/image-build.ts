/**
 * `stele build` of `tar` and `kernel+initrd` for a manifest whose images hold ~150 MB in 8
 * layers, beside a shell baseline over the same unpacked content in the same run:
 *   tar:            tar -cf
 *   kernel+initrd:  find | cpio -o -H newc | gzip -6
 * Peak RSS of each build (GNU time). The first build gunzips every layer into the store's layer
 * cache (and makes the images' SBOMs); it is timed on its own, the runs after it reuse the cache.
 * Usage: pnpm exec tsx bench/image-build.ts [MB] [runs]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { putImage, tarOf } from '../packages/image/test/pipeline-images.ts';
import { Store } from '../packages/oci/src/index.ts';

const totalMb = Number(process.argv[2] ?? 150);
const runs = Number(process.argv[3] ?? 3);
const LAYERS = 8;
const bin = fileURLToPath(new URL('../packages/cli/bin/stele.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'stele-bench-image-'));
const store = await Store.open(join(work, 'store'));

/** Half random, half text: compresses roughly like binaries and libraries do. */
function content(bytes: number): Buffer {
  const half = Math.floor(bytes / 2);
  return Buffer.concat([randomBytes(half), Buffer.alloc(bytes - half, 'stele layer text ')]);
}

const unpacked = join(work, 'unpacked');
mkdirSync(unpacked);
const perLayer = Math.floor((totalMb * 1024 * 1024) / LAYERS);
const layers = [];
for (let l = 0; l < LAYERS; l++) {
  const files = [];
  // 32 files a layer, in a directory of its own.
  for (let f = 0; f < 32; f++) files.push({ path: `usr/lib/l${l}/f${f}.so`, data: content(Math.floor(perLayer / 32)) });
  layers.push([{ path: 'usr/', dir: true as const }, { path: 'usr/lib/', dir: true as const }, ...files]);
  // The same content unpacked for the baseline.
  for (const f of files) {
    mkdirSync(join(unpacked, 'usr/lib', `l${l}`), { recursive: true });
    writeFileSync(join(unpacked, f.path), f.data);
  }
}
writeFileSync(join(unpacked, 'kernel'), randomBytes(8 * 1024 * 1024));
await putImage(store, 'docker.io/bench/kernel:1', [
  [
    { path: 'kernel', data: readFileSync(join(unpacked, 'kernel')) },
    { path: 'kernel.tar', data: await tarOf([{ path: 'lib/', dir: true }]) },
  ],
]);
await putImage(store, 'docker.io/bench/base:1', layers);
const manifest = join(work, 'bench.yml');
writeFileSync(manifest, 'kernel:\n  image: bench/kernel:1\n  cmdline: console=ttyS0\ninit:\n  - bench/base:1\n');

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { s: number; rssMb: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [s, kb] = (r.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { s: s ?? 0, rssMb: (kb ?? 0) / 1024 };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const env = { ...process.env, STELE_CACHE: join(work, 'store') };
const results: Record<string, { stele: number[]; base: number[]; rss: number[] }> = {
  tar: { stele: [], base: [], rss: [] },
  'kernel+initrd': { stele: [], base: [], rss: [] },
};
const cold = timed(
  process.execPath,
  [bin, 'build', '--offline', '--format', 'kernel+initrd', '--dir', join(work, 'out-cold'), manifest],
  env,
);
rmSync(join(work, 'out-cold'), { recursive: true, force: true });
const startup = timed(process.execPath, [bin, '--version']);
for (let i = 0; i < runs; i++) {
  for (const format of ['tar', 'kernel+initrd']) {
    const out = join(work, `out-${format}-${i}`);
    const st = timed(process.execPath, [bin, 'build', '--offline', '--format', format, '--dir', out, manifest], env);
    results[format]?.stele.push(st.s);
    results[format]?.rss.push(st.rssMb);
    const bt =
      format === 'tar'
        ? timed('tar', ['-cf', join(work, `base-${i}.tar`), '-C', unpacked, '.'])
        : timed('sh', [
            '-c',
            `cd ${unpacked} && find . | cpio -o -H newc --quiet | gzip -6 > ${join(work, `base-${i}.img`)}`,
          ]);
    results[format]?.base.push(bt.s);
    rmSync(out, { recursive: true, force: true });
  }
}
console.log(`content: ${totalMb} MB in ${LAYERS} layers (+ an 8 MB kernel); ${runs} runs, medians`);
console.log(
  `first build (fills the layer cache): kernel+initrd ${cold.s.toFixed(2)} s, peak RSS ${cold.rssMb.toFixed(0)} MB; ` +
    `CLI start-up alone (stele --version) ${startup.s.toFixed(2)} s`,
);
for (const [format, r] of Object.entries(results)) {
  const s = median(r.stele);
  const b = median(r.base);
  console.log(
    `${format.padEnd(14)} stele ${s.toFixed(2)} s  baseline ${b.toFixed(2)} s  ratio ${(s / b).toFixed(2)}x  peak RSS ${median(r.rss).toFixed(0)} MB`,
  );
}
rmSync(work, { recursive: true, force: true });
