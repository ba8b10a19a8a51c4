/**
 * Push then pull of a ~200 MB, 4-layer image against the local Debian registry, side by side
 * with `skopeo copy` of the same image in the same run, plus the request count of re-pushing the
 * unchanged image. Stele runs in process through @stele/oci (what `stele push/pull` call).
 *
 *   pnpm exec tsx bench/oci-push-pull.ts [totalMB] [runs]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copy, MediaType, RegistryClient, Store, sha256 } from '../packages/oci/src/index.ts';
import { startRegistry } from '../test/peers/src/index.ts';

const [totalMB = 200, runs = 3] = process.argv.slice(2).map(Number);
const work = mkdtempSync(join(tmpdir(), 'stele-bench-oci-'));
try {
  const src = await Store.open(join(work, 'src'));
  const layers = [];
  for (let i = 0; i < 4; i++) {
    const data = randomBytes(Math.round((totalMB * 1e6) / 4));
    layers.push({ mediaType: MediaType.OciLayer, ...(await src.writeBlob(data)) });
  }
  const cfg = await src.writeBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...cfg },
      layers,
    }),
  );
  const desc = { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length };
  await src.pushManifest(desc, manifest, ['bench']);
  const bytes = layers.reduce((n, l) => n + l.size, 0);

  const time = async (fn: () => Promise<unknown> | unknown) => {
    const t = performance.now();
    await fn();
    return (performance.now() - t) / 1000;
  };
  let repush: unknown;
  const rows: { run: number; stelePush: number; stelePull: number; skopeoPush: number; skopeoPull: number }[] = [];
  let lastHost = '';
  for (let r = 0; r < runs; r++) {
    // A fresh registry per tool and run: nothing either tool pushed before can be mounted or skipped.
    const reg = await startRegistry();
    const reg2 = await startRegistry();
    lastHost = reg.host;
    const client = new RegistryClient(reg.host, { credentials: null });
    const stelePush = await time(() => copy(src, 'bench', client.repository(`bench/stele${r}`), ['1']));
    const dst = join(work, `stele-pull-${r}`);
    const stelePull = await time(async () =>
      copy(client.repository(`bench/stele${r}`), '1', await Store.open(dst), ['bench']),
    );
    await client.close();
    const skopeoPush = await time(() =>
      execFileSync('skopeo', [
        '--insecure-policy',
        'copy',
        '-q',
        '--dest-tls-verify=false',
        `oci:${src.root}:bench`,
        `docker://${reg2.host}/bench/skopeo${r}:1`,
      ]),
    );
    const skopeoPull = await time(() =>
      execFileSync('skopeo', [
        '--insecure-policy',
        'copy',
        '-q',
        '--src-tls-verify=false',
        `docker://${reg2.host}/bench/skopeo${r}:1`,
        `oci:${join(work, `skopeo-pull-${r}`)}:bench`,
      ]),
    );
    rows.push({ run: r + 1, stelePush, stelePull, skopeoPush, skopeoPull });
    rmSync(dst, { recursive: true, force: true });
    rmSync(join(work, `skopeo-pull-${r}`), { recursive: true, force: true });
    if (r === runs - 1) {
      const again = new RegistryClient(reg.host, { credentials: null });
      const re = await copy(src, 'bench', again.repository(`bench/stele${r}`), ['1']);
      await again.close();
      repush = {
        requests: again.stats.requests,
        byMethod: again.stats.byMethod,
        blobsSent: re.blobsCopied,
        bytesUp: again.stats.bytesUp,
      };
    }
    await reg.stop();
    await reg2.stop();
  }

  const med = (k: keyof (typeof rows)[number]) =>
    rows.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(rows.length / 2)] as number;
  console.log(`image: 4 layers, ${(bytes / 1e6).toFixed(0)} MB; registries like ${lastHost}; ${runs} runs (median)`);
  console.table(
    rows.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, k === 'run' ? v : `${v.toFixed(2)} s`]))),
  );
  const summary = {
    mb: Math.round(bytes / 1e6),
    stelePush: med('stelePush'),
    skopeoPush: med('skopeoPush'),
    pushRatio: med('stelePush') / med('skopeoPush'),
    stelePull: med('stelePull'),
    skopeoPull: med('skopeoPull'),
    pullRatio: med('stelePull') / med('skopeoPull'),
    repushUnchanged: repush,
  };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  rmSync(work, { recursive: true, force: true });
}
