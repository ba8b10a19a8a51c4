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
import { pack } from 'tar-stream';
import type { Descriptor, ImageManifest, Platform } from './descriptor.ts';
import { parseJson } from './json.ts';
import { MediaType } from './mediatypes.ts';
import type { Store } from './store.ts';
import { ArchiveError, eachTarEntry, readSmall } from './tarentries.ts';

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
  if (!first) throw new ArchiveError('docker save archive has no image in manifest.json');
  return first;
}

/** Small entries kept in memory while reading, in all: more is not a docker save archive. */
const HELD_MAX = 512 * 1024 * 1024;

/** An entry of manifest.json, checked: names of entries in the archive, and the image's tags. */
function archiveManifest(bytes: Buffer): ArchiveManifest[] {
  let doc: unknown;
  try {
    doc = parseJson(bytes.toString('utf8'));
  } catch (err) {
    throw new ArchiveError(`docker save archive: manifest.json is ${(err as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new ArchiveError('docker save archive: manifest.json is not a list');
  return doc.map((e: unknown, i) => {
    const o = e as Partial<ArchiveManifest> | null;
    const where = `docker save archive: manifest.json[${i}]`;
    if (!o || typeof o !== 'object') throw new ArchiveError(`${where} is not an object`);
    if (typeof o.Config !== 'string') throw new ArchiveError(`${where}.Config is not a file name`);
    if (!Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) {
      throw new ArchiveError(`${where}.Layers is not a list of file names`);
    }
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
      throw new ArchiveError(`${where}.RepoTags is not a list of names`);
    }
    return { Config: o.Config, Layers: o.Layers, RepoTags: tags };
  });
}

/** Every image of a `docker save` archive, stored as importDockerArchive does, with its RepoTags. */
export async function importDockerArchiveImages(
  store: Store,
  archive: Readable,
): Promise<(ImportedImage & { repoTags: string[] })[]> {
  const small = new Map<string, Buffer>();
  const layers = new Map<string, { digest: string; size: number }>();
  let held = 0;
  await eachTarEntry(archive, async (header, entry) => {
    const name = normal(header.name);
    const size = header.size ?? 0;
    if (header.type !== 'file' || size === 0) return;
    if (size <= SMALL) {
      held += size;
      if (held > HELD_MAX) throw new ArchiveError(`docker save archive: more than ${HELD_MAX} bytes of small entries`);
      small.set(name, await readSmall(entry, size, SMALL, name));
      return;
    }
    const out = new PassThrough();
    const [, blob] = await Promise.all([pipeline(entry, createGzip(), out), store.writeBlob(out)]);
    layers.set(name, blob);
  });

  const manifestJson = small.get('manifest.json');
  if (!manifestJson) throw new ArchiveError('not a docker save archive: no manifest.json');
  const images: (ImportedImage & { repoTags: string[] })[] = [];
  for (const entry of archiveManifest(manifestJson)) {
    const configBytes = small.get(normal(entry.Config));
    if (!configBytes) throw new ArchiveError(`docker save archive lacks the config ${entry.Config}`);
    let config: Record<string, unknown>;
    try {
      config = parseJson(configBytes.toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ArchiveError(`docker save archive: the config ${entry.Config} is ${(err as Error).message}`);
    }
    if (!config || typeof config !== 'object' || Array.isArray(config)) {
      throw new ArchiveError(`docker save archive: the config ${entry.Config} is not a JSON object`);
    }
    const configBlob = await store.writeBlob(configBytes);

    const layerDescs: Descriptor[] = [];
    for (const l of entry.Layers) {
      const name = normal(l);
      let blob = layers.get(name);
      if (!blob) {
        const raw = small.get(name);
        if (!raw) throw new ArchiveError(`docker save archive lacks the layer ${l}`);
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
      os: typeof config.os === 'string' && config.os ? config.os : 'linux',
      architecture: typeof config.architecture === 'string' && config.architecture ? config.architecture : 'amd64',
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
