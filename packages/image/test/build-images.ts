// Test images for the build tests, made without Docker: each layer is a tar built here, gzip'd
// and written as a blob of a real OCI store (or pushed to the registry peer by the caller).
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { type Descriptor, MediaType, sha256 } from '@stele/oci';
import { extract, type Header, pack } from 'tar-stream';

/** One tar entry of a layer. `data` makes a regular file; whiteouts are plain files named `.wh.*`. */
export interface LayerEntry {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char';
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  mtime?: number;
}

export const IMAGE_MTIME = 1_600_000_000;

const TYPE: Record<NonNullable<LayerEntry['type']>, Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  char: 'character-device',
};

export async function layerTar(entries: LayerEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((res, rej) => {
    p.on('end', res);
    p.on('error', rej);
  });
  for (const e of entries) {
    const type = e.type ?? (e.data !== undefined ? 'file' : 'dir');
    const body = type === 'file' ? Buffer.from(e.data ?? '') : undefined;
    const header = {
      name: type === 'dir' ? `${e.path}/` : e.path,
      type: TYPE[type],
      mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? IMAGE_MTIME) * 1000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(type === 'char' ? { devmajor: 5, devminor: 1 } : {}),
      ...(body ? { size: body.length } : {}),
    } as Header;
    await new Promise<void>((res, rej) => p.entry(header, body ?? Buffer.alloc(0), (err) => (err ? rej(err) : res())));
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The blobs of an image: gzip'd layers, config and manifest, plus its manifest descriptor. */
export interface ImageBlobs {
  blobs: Buffer[];
  manifest: Buffer;
  descriptor: Descriptor;
}

export async function imageBlobs(
  layers: LayerEntry[][],
  config: Record<string, unknown> = {},
  arch = 'amd64',
): Promise<ImageBlobs> {
  const blobs: Buffer[] = [];
  const layerDescs: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const entries of layers) {
    const tar = await layerTar(entries);
    diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    const gz = gzipSync(tar, { level: 1 });
    blobs.push(gz);
    layerDescs.push({ mediaType: MediaType.OciLayerGzip, digest: sha256(gz), size: gz.length });
  }
  const cfg = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', config, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  blobs.push(cfg);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha256(cfg), size: cfg.length },
      layers: layerDescs,
    }),
  );
  return {
    blobs,
    manifest,
    descriptor: { mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length },
  };
}

/** Anything with the Store's write side (the Store itself). */
export interface BlobSink {
  writeBlob(data: Buffer): Promise<unknown>;
  pushManifest(desc: Descriptor, body: Buffer, tags?: string[]): Promise<unknown>;
}

/** Writes an image into a store under `name` (a full reference such as docker.io/linuxkit/init:1). */
export async function storeImage(
  store: BlobSink,
  name: string,
  layers: LayerEntry[][],
  config: Record<string, unknown> = {},
  arch = 'amd64',
): Promise<Descriptor> {
  const img = await imageBlobs(layers, config, arch);
  for (const b of img.blobs) await store.writeBlob(b);
  await store.pushManifest(img.descriptor, img.manifest, [name]);
  return img.descriptor;
}

/** One entry read back from a tar, with its body for small files. */
export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string;
  size: number;
  pax: Record<string, string>;
  body?: Buffer;
}

/** Every entry of a tar file, in order; bodies kept for entries up to `keepBody` bytes. */
export async function readTar(data: AsyncIterable<Buffer> | Buffer, keepBody = 1 << 20): Promise<TarEntry[]> {
  const ex = extract();
  const out: TarEntry[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      const parts: Buffer[] = [];
      let size = 0;
      for await (const c of entry) {
        size += (c as Buffer).length;
        if (size <= keepBody) parts.push(c as Buffer);
      }
      out.push({
        name: h.name,
        type: h.type ?? 'file',
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        ...(h.linkname ? { linkname: h.linkname } : {}),
        size,
        pax: (h.pax ?? {}) as Record<string, string>,
        ...(size <= keepBody ? { body: Buffer.concat(parts) } : {}),
      });
    }
  })();
  if (Buffer.isBuffer(data)) ex.end(data);
  else {
    for await (const c of data) if (!ex.write(c)) await new Promise<void>((r) => ex.once('drain', () => r()));
    ex.end(Buffer.alloc(0));
  }
  await done;
  return out;
}
