// Builds small but real images (gzip'd tar layers, a config with diff_ids) straight into a store.
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { type Descriptor, MediaType, type Platform, type Store, sha256 } from '../../src/index.ts';

export async function tarOf(files: Record<string, Buffer>): Promise<Buffer> {
  const p = pack();
  for (const [name, data] of Object.entries(files)) p.entry({ name, size: data.length, mtime: new Date(0) }, data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface MadeImage {
  descriptor: Descriptor;
  layers: Descriptor[];
  config: Descriptor;
  manifest: Buffer;
}

/** An image with `layerSizes` random-content layers, tagged `name` in the store. */
export async function makeImage(
  store: Store,
  name: string,
  opts: { platform?: Platform; layerSizes?: number[]; docker?: boolean; seed?: string } = {},
): Promise<MadeImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of (opts.layerSizes ?? [1000, 2000]).entries()) {
    const tar = await tarOf({ [`file-${i}`]: randomBytes(size), [`seed-${i}`]: Buffer.from(opts.seed ?? name) });
    diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    const gz = gzipSync(tar, { level: 1 });
    const w = await store.writeBlob(gz);
    layers.push({ mediaType: opts.docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip, ...w });
  }
  const cfgBytes = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const config = {
    mediaType: opts.docker ? MediaType.DockerConfig : MediaType.OciConfig,
    ...(await store.writeBlob(cfgBytes)),
  };
  const mediaType = opts.docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config, layers }));
  const descriptor = { mediaType, digest: sha256(manifest), size: manifest.length };
  await store.pushManifest(descriptor, manifest, [name]);
  return { descriptor, layers, config, manifest };
}
