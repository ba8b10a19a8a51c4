/**
 * What the store's re-checking costs: reading a blob through `Store.fetchBlob` (hashed while
 * read) against a plain read of the same file, and the layer cache's first use of an unpacked
 * tar in a process (hashed and its headers scanned again) against a plain read of the tar. The
 * files are read once before timing, so all runs read from the page cache: the difference is the
 * hashing. Medians of the runs, in MB/s (1 MB = 10^6 bytes).
 * Usage: pnpm exec tsx bench/store-verify.ts [MB] [runs]
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackedLayer } from '../packages/image/src/pipeline/layercache.ts';
import { layerTar } from '../packages/image/test/build-images.ts';
import { Store } from '../packages/oci/src/index.ts';

const totalMb = Number(process.argv[2] ?? 300);
const runs = Number(process.argv[3] ?? 5);
const work = mkdtempSync(join(tmpdir(), 'stele-bench-verify-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    /* read */
  }
}

async function rate(bytes: number, fn: () => Promise<void>): Promise<number> {
  await fn(); // warm the page cache
  const mbps: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    mbps.push(bytes / 1e6 / s);
  }
  return median(mbps);
}

try {
  const store = await Store.open(join(work, 'store'));
  const data = randomBytes(totalMb * 1_000_000);
  const blob = await store.writeBlob(data);
  const plain = await rate(blob.size, () =>
    drain(createReadStream(store.blobPath(blob.digest), { highWaterMark: 1 << 20 })),
  );
  const checked = await rate(blob.size, async () => drain(await (await Store.open(store.root)).fetchBlob(blob)));
  const hashOnly = await rate(blob.size, async () => {
    createHash('sha256').update(data).digest();
  });

  // One uncompressed layer of 64 files: the unpacked tar's first use in a process.
  const files = Array.from({ length: 64 }, (_, i) => ({
    path: `f${i}`,
    data: data.subarray(0, Math.floor(data.length / 64)),
  }));
  const tar = await layerTar(files);
  const layerBlob = await store.writeBlob(tar);
  const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layerBlob };
  const cached = await unpackedLayer(store, desc, layerBlob.digest);
  const tarPlain = await rate(cached.size, () => drain(createReadStream(cached.tar, { highWaterMark: 1 << 20 })));
  // A fresh module instance per run would be needed to forget the memo: touch the file instead,
  // which changes its change time, so the next use hashes it again.
  const { utimes } = await import('node:fs/promises');
  const tarChecked = await rate(cached.size, async () => {
    const now = new Date();
    await utimes(cached.tar, now, now);
    await unpackedLayer(store, desc, layerBlob.digest);
  });

  console.log(`blob of ${totalMb} MB, ${runs} runs, medians, from the page cache`);
  console.log(`sha256 alone (in memory)          ${hashOnly.toFixed(0)} MB/s`);
  console.log(`blob, plain read                  ${plain.toFixed(0)} MB/s`);
  console.log(`blob, Store.fetchBlob (hashed)    ${checked.toFixed(0)} MB/s`);
  console.log(`unpacked tar, plain read          ${tarPlain.toFixed(0)} MB/s`);
  console.log(`unpacked tar, first use (checked) ${tarChecked.toFixed(0)} MB/s`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
