// One of the processes of the store concurrency test: writes its own blobs and entries, plus
// blobs every worker shares, into one store at the same time as the others.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/digest.ts';
import { MediaType } from '../../src/mediatypes.ts';
import { Store } from '../../src/store.ts';

const [root, id, rounds] = process.argv.slice(2) as [string, string, string];
const store = await Store.open(root);
for (let r = 0; r < Number(rounds); r++) {
  const shared = Buffer.from(`shared layer ${r}\n`.repeat(50_000));
  const own = randomBytes(64 * 1024);
  const layers = [];
  for (const data of [shared, own]) {
    const { digest, size } = await store.writeBlob(
      // Stream in small chunks so writers interleave.
      Readable.from(
        (function* () {
          for (let i = 0; i < data.length; i += 8192) yield data.subarray(i, i + 8192);
        })(),
      ),
      { digest: sha256(data), size: data.length },
    );
    layers.push({ mediaType: MediaType.OciLayer, digest, size });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', worker: id, round: r }));
  const cfg = await store.writeBlob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...cfg },
      layers,
    }),
  );
  const m = await store.writeBlob(manifest);
  await store.pushManifest({ mediaType: MediaType.OciManifest, ...m }, manifest, [
    `127.0.0.1:5000/w${id}:r${r}`,
    '127.0.0.1:5000/shared:latest',
  ]);
}
