import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { formatImageRef } from '@stele/manifest';
import { type Header, pack } from 'tar-stream';
import { tempTag } from './atomic.ts';
import {
  type Descriptor,
  type ImageIndex,
  MAX_MANIFEST_BYTES,
  type Platform,
  parseManifest,
  REF_NAME_ANNOTATION,
} from './descriptor.ts';
import { DigestError, isDigest } from './digest.ts';
import { importDockerArchiveImages } from './docker-archive.ts';
import { MediaType } from './mediatypes.ts';
import { parseReference } from './ref.ts';
import type { Store } from './store.ts';
import { ArchiveError, eachTarEntry, readSmall } from './tarentries.ts';

/** The full image name containerd and Docker 25+ put on index.json entries. */
const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

/**
 * Writes the named store entries as an OCI image layout tar (`oci-layout`, `index.json`,
 * `blobs/…`), the format `skopeo copy oci-archive:` and LinuxKit read. Every blob is checked
 * against its digest as it is read. Lands by rename.
 */
export async function exportArchive(store: Store, names: string[], file: string): Promise<{ blobs: number }> {
  const entries: Descriptor[] = [];
  const blobs = new Set<string>();
  const index = await store.index();
  for (const name of names) {
    const hit = index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === name);
    if (!hit) throw new Error(`'${name}' is not in the store ${store.root} (see 'stele cache ls')`);
    entries.push(hit);
    await store.reachable(hit, blobs);
  }
  const sizes = new Map<string, number>();
  for (const d of blobs) {
    const st = await stat(store.blobPath(d)).catch(() => undefined);
    if (!st) throw new Error(`blob ${d} is missing from the store: pull the image again`);
    sizes.set(d, st.size);
  }
  const out: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries };
  const tar = pack();
  const tmp = `${file}.${tempTag()}.tmp`;
  const writing = pipeline(tar, createWriteStream(tmp));
  try {
    const add = (name: string, data: Buffer) =>
      new Promise<void>((res, rej) =>
        tar.entry({ name, size: data.length, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())),
      );
    await add('oci-layout', Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`));
    await add('index.json', Buffer.from(`${JSON.stringify(out)}\n`));
    for (const d of [...blobs].sort()) {
      const size = sizes.get(d) ?? 0;
      const contents = await store.fetchBlob({ digest: d, size });
      const [alg, hex] = d.split(':') as [string, string];
      await new Promise<void>((res, rej) => {
        const entry = tar.entry({ name: `blobs/${alg}/${hex}`, size, mtime: new Date(0) }, (e) => (e ? rej(e) : res()));
        pipeline(contents, entry).catch(rej);
      });
    }
    tar.finalize();
    await writing;
    await rename(tmp, file);
  } catch (err) {
    tar.destroy();
    await writing.catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  return { blobs: blobs.size };
}

function entryName(header: Header): string {
  return header.name.replace(/^\.\//, '');
}

/** The names of a tar's entries (a quick pass over its headers). */
async function entryNames(file: string): Promise<Set<string>> {
  const names = new Set<string>();
  await eachTarEntry(createReadStream(file), (header) => {
    names.add(entryName(header));
  });
  return names;
}

/** The store name an index.json entry gives its image, if it names one fully. */
function layoutName(d: Descriptor): string | undefined {
  // Docker 25+ `docker save` puts the full name here and only the tag in ref.name.
  for (const key of [CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION]) {
    const value = d.annotations?.[key];
    if (!value) continue;
    try {
      return formatImageRef(parseReference(value));
    } catch {
      /* a bare tag such as "latest": not a name */
    }
  }
  return undefined;
}

/** Runs `fn`; an error it throws comes back as an ArchiveError that starts `cannot import FILE:`. */
async function importing<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ArchiveError || err instanceof DigestError) {
      throw new ArchiveError(`cannot import ${file}: ${err.message}`);
    }
    throw err;
  }
}

/**
 * Imports an image archive into the store: an OCI image layout tar (what `stele cache export`,
 * skopeo's oci-archive, LinuxKit and Docker 25+ `docker save` write) or a classic `docker save`
 * tar (manifest.json, one directory per layer). Names in the archive become store names.
 * Blobs the store already has are checked against the archive's copy, not written again.
 */
export async function importArchive(store: Store, file: string): Promise<{ names: string[]; blobs: number }> {
  const names = await importing(file, () => entryNames(file));
  if (names.has('index.json')) return importing(file, () => importOciLayout(store, file));
  if (!names.has('manifest.json')) {
    throw new ArchiveError(`${file} is neither an OCI image layout tar (no index.json) nor a docker save archive`);
  }
  return importing(file, async () => {
    const images = await importDockerArchiveImages(store, createReadStream(file));
    const tagged: string[] = [];
    const blobs = new Set<string>();
    for (const img of images) {
      for (const d of [img.descriptor, img.manifest.config, ...img.manifest.layers]) blobs.add(d.digest);
      for (const tag of img.repoTags) {
        let name: string;
        try {
          name = formatImageRef(parseReference(tag));
        } catch (err) {
          throw new ArchiveError(`manifest.json: RepoTags: ${(err as Error).message}`);
        }
        await store.tag(name, img.descriptor);
        tagged.push(name);
      }
    }
    return { names: tagged, blobs: blobs.size };
  });
}

/** An index.json entry as the store keeps it: the descriptor's own fields, no annotations. */
function plainDescriptor(d: Descriptor): Descriptor {
  const p = d.platform as Platform | undefined;
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(p
      ? { platform: { os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) } }
      : {}),
  };
}

/**
 * Imports an OCI image layout tar: every blob is verified against its path's digest as it
 * streams; index.json entries that name their image are tagged once everything they reach is
 * present.
 */
async function importOciLayout(store: Store, file: string): Promise<{ names: string[]; blobs: number }> {
  let indexBytes: Buffer | undefined;
  let blobs = 0;
  await eachTarEntry(createReadStream(file), async (header, contents) => {
    const name = entryName(header);
    const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
    if (m && header.type === 'file') {
      const digest = `${m[1]}:${m[2]}`;
      if (!isDigest(digest)) throw new ArchiveError(`bad blob name ${name}`);
      await store.writeBlob(contents, { digest, size: header.size ?? 0 }).catch((err: unknown) => {
        throw err instanceof DigestError
          ? new ArchiveError(`${name} does not hold what its name says: ${err.message}`)
          : err;
      });
      blobs++;
    } else if (name === 'index.json' && header.type === 'file') {
      indexBytes = await readSmall(contents, header.size ?? 0, MAX_MANIFEST_BYTES, 'index.json');
    }
  });
  if (!indexBytes) throw new ArchiveError('not an OCI image layout tar (no index.json)');
  let idx: ImageIndex;
  try {
    const parsed = parseManifest(indexBytes, MediaType.OciIndex);
    if (parsed.kind !== 'index') throw new Error('not an image index');
    idx = parsed.index;
  } catch (err) {
    throw new ArchiveError(`index.json: ${(err as Error).message}`);
  }
  const names: string[] = [];
  for (const d of idx.manifests) {
    let reached: Set<string>;
    try {
      reached = await store.reachable(d);
    } catch (err) {
      throw new ArchiveError(`${d.digest}: ${(err as Error).message}`);
    }
    for (const dg of reached) {
      if (!(await store.hasBlob({ digest: dg }))) throw new ArchiveError(`blob ${dg} (of ${d.digest}) is missing`);
    }
    const name = layoutName(d);
    if (!name) continue;
    await store.tag(name, plainDescriptor(d));
    names.push(name);
  }
  return { names, blobs };
}
