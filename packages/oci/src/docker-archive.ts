/**
 * `docker save` archives ⇄ the local OCI store. Import turns what an engine built into an OCI
 * image manifest (gzip layers, the engine's config as is, so the config digest is the engine's
 * image id); export turns a stored image back into an archive `docker load` accepts, so a
 * package can build FROM another that is only in the store.
 */
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import type { Descriptor, ImageManifest, Platform } from './descriptor.ts';
import { MediaType } from './mediatypes.ts';
import type { Store } from './store.ts';

/** Entries up to this size are kept in memory (configs, manifest.json); larger ones are layers. */
const SMALL = 1024 * 1024;

interface ArchiveManifest {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export interface ImportedImage {
  descriptor: Descriptor;
  manifest: ImageManifest;
  config: Record<string, unknown>;
}

function normal(name: string): string {
  return name.replace(/^\.\//, '');
}

/**
 * Reads a `docker save` archive (legacy layout or OCI layout inside, as newer engines write) and
 * stores its (first) image: layers gzipped into blobs, config as is, an OCI image manifest whose
 * descriptor carries the platform from the config. Nothing is tagged.
 */
export async function importDockerArchive(store: Store, archive: Readable): Promise<ImportedImage> {
  const [first] = await importDockerArchiveImages(store, archive);
  if (!first) throw new Error('docker save archive has no image in manifest.json');
  return first;
}

/** Every image of a `docker save` archive, stored as importDockerArchive does, with its RepoTags. */
export async function importDockerArchiveImages(
  store: Store,
  archive: Readable,
): Promise<(ImportedImage & { repoTags: string[] })[]> {
  const small = new Map<string, Buffer>();
  const layers = new Map<string, { digest: string; size: number }>();
  const ex = extract();
  archive.on('error', (err) => ex.destroy(err));
  archive.pipe(ex);
  for await (const entry of ex) {
    const header = entry.header;
    const name = normal(header.name);
    if (header.type !== 'file' || (header.size ?? 0) === 0) {
      entry.resume();
      continue;
    }
    if ((header.size ?? 0) <= SMALL) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      small.set(name, Buffer.concat(chunks));
      continue;
    }
    const out = new PassThrough();
    const [, blob] = await Promise.all([pipeline(entry, createGzip(), out), store.writeBlob(out)]);
    layers.set(name, blob);
  }

  const manifestJson = small.get('manifest.json');
  if (!manifestJson) throw new Error('not a docker save archive: no manifest.json');
  const entries = JSON.parse(manifestJson.toString('utf8')) as ArchiveManifest[];
  if (!Array.isArray(entries)) throw new Error('docker save archive: manifest.json is not a list');
  const images: (ImportedImage & { repoTags: string[] })[] = [];
  for (const entry of entries) {
    const configBytes = small.get(normal(entry.Config));
    if (!configBytes) throw new Error(`docker save archive lacks the config ${entry.Config}`);
    const config = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
    const configBlob = await store.writeBlob(configBytes);

    const layerDescs: Descriptor[] = [];
    for (const l of entry.Layers) {
      const name = normal(l);
      let blob = layers.get(name);
      if (!blob) {
        const raw = small.get(name);
        if (!raw) throw new Error(`docker save archive lacks the layer ${l}`);
        blob = await store.writeBlob(gzipSync(raw));
      }
      layerDescs.push({ mediaType: MediaType.OciLayerGzip, digest: blob.digest, size: blob.size });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configBlob.digest, size: configBlob.size },
      layers: layerDescs,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const written = await store.writeBlob(bytes);
    const platform: Platform = {
      os: String(config.os ?? 'linux'),
      architecture: String(config.architecture ?? 'amd64'),
      ...(typeof config.variant === 'string' && config.variant ? { variant: config.variant } : {}),
    };
    images.push({
      descriptor: { mediaType: MediaType.OciManifest, digest: written.digest, size: written.size, platform },
      manifest,
      config,
      repoTags: entry.RepoTags ?? [],
    });
  }
  return images;
}

/** A `docker save`-style archive of a stored image manifest, named `repoTags` when loaded. */
export async function exportDockerArchive(
  store: Store,
  manifestDesc: Descriptor,
  repoTags: string[],
): Promise<Readable> {
  const manifest = JSON.parse((await store.fetchManifest(manifestDesc)).toString('utf8')) as ImageManifest;
  if (!Array.isArray(manifest.layers)) throw new Error(`${manifestDesc.digest} is not an image manifest`);
  const tar = pack();
  (async () => {
    const configName = `${manifest.config.digest.split(':')[1]}.json`;
    tar.entry({ name: configName }, await store.readBlob(manifest.config.digest));
    const layerNames: string[] = [];
    for (const l of manifest.layers) {
      const name = `${l.digest.split(':')[1]}/layer.tar`;
      layerNames.push(name);
      // docker load decompresses gzip layers itself.
      const sink = tar.entry({ name, size: l.size });
      await pipeline(await store.fetchBlob(l), sink);
    }
    const m: ArchiveManifest[] = [{ Config: configName, RepoTags: repoTags, Layers: layerNames }];
    tar.entry({ name: 'manifest.json' }, JSON.stringify(m));
    tar.finalize();
  })().catch((err: unknown) => tar.destroy(err as Error));
  return tar as unknown as Readable;
}
