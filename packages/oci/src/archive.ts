import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatImageRef } from '@stele/manifest';
import { extract, pack } from 'tar-stream';
import { type Descriptor, type ImageIndex, REF_NAME_ANNOTATION } from './descriptor.ts';
import { importDockerArchiveImages } from './docker-archive.ts';
import { parseReference } from './ref.ts';

/** The full image name containerd and Docker 25+ put on index.json entries. */
const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

import { isDigest } from './digest.ts';
import { MediaType } from './mediatypes.ts';
import type { Store } from './store.ts';

/**
 * Writes the named store entries as an OCI image layout tar (`oci-layout`, `index.json`,
 * `blobs/…`), the format `skopeo copy oci-archive:` and LinuxKit read. Lands by rename.
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
  for (const d of blobs) {
    if (!(await store.hasBlob({ digest: d })))
      throw new Error(`blob ${d} is missing from the store: pull the image again`);
  }
  const out: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries };
  const tar = pack();
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const writing = pipeline(tar, createWriteStream(tmp));
  try {
    const add = (name: string, data: Buffer) =>
      new Promise<void>((res, rej) =>
        tar.entry({ name, size: data.length, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())),
      );
    await add('oci-layout', Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`));
    await add('index.json', Buffer.from(`${JSON.stringify(out)}\n`));
    for (const d of [...blobs].sort()) {
      const path = store.blobPath(d);
      const { size } = await stat(path);
      const [alg, hex] = d.split(':') as [string, string];
      await new Promise<void>((res, rej) => {
        const entry = tar.entry({ name: `blobs/${alg}/${hex}`, size, mtime: new Date(0) }, (e) => (e ? rej(e) : res()));
        pipeline(createReadStream(path), entry).catch(rej);
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

/** The names of a tar's entries (a quick pass over its headers). */
async function entryNames(file: string): Promise<Set<string>> {
  const names = new Set<string>();
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    names.add(header.name.replace(/^\.\//, ''));
    stream.on('end', () => next());
    stream.resume();
  });
  await pipeline(createReadStream(file), ex);
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

/**
 * Imports an image archive into the store: an OCI image layout tar (what `stele cache export`,
 * skopeo's oci-archive, LinuxKit and Docker 25+ `docker save` write) or a classic `docker save`
 * tar (manifest.json, one directory per layer). Names in the archive become store names.
 */
export async function importArchive(store: Store, file: string): Promise<{ names: string[]; blobs: number }> {
  let names: Set<string>;
  try {
    names = await entryNames(file);
  } catch (err) {
    throw new Error(`cannot import ${file}: ${(err as Error).message}`);
  }
  if (names.has('index.json')) return importOciLayout(store, file);
  if (!names.has('manifest.json')) {
    throw new Error(`${file} is neither an OCI image layout tar (no index.json) nor a docker save archive`);
  }
  let images: Awaited<ReturnType<typeof importDockerArchiveImages>>;
  try {
    images = await importDockerArchiveImages(store, createReadStream(file));
  } catch (err) {
    throw new Error(`cannot import ${file}: ${(err as Error).message}`);
  }
  const tagged: string[] = [];
  const blobs = new Set<string>();
  for (const img of images) {
    for (const d of [img.descriptor, img.manifest.config, ...img.manifest.layers]) blobs.add(d.digest);
    for (const tag of img.repoTags) {
      const name = formatImageRef(parseReference(tag));
      await store.tag(name, img.descriptor);
      tagged.push(name);
    }
  }
  return { names: tagged, blobs: blobs.size };
}

/**
 * Imports an OCI image layout tar: every blob is verified against its path's digest as it
 * streams; index.json entries that name their image are tagged once everything they reach is
 * present.
 */
async function importOciLayout(store: Store, file: string): Promise<{ names: string[]; blobs: number }> {
  const ex = extract();
  let indexBytes: Buffer | undefined;
  let blobs = 0;
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '');
      const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
      const fail = (err: unknown) => {
        stream.resume();
        reject(err);
      };
      if (m && header.type === 'file') {
        const digest = `${m[1]}:${m[2]}`;
        if (!isDigest(digest)) return fail(new Error(`${file}: bad blob name ${name}`));
        store
          .writeBlob(stream as unknown as Readable, { digest, size: header.size })
          .then(() => {
            blobs++;
            next();
          })
          .catch(fail);
      } else if (name === 'index.json') {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          indexBytes = Buffer.concat(chunks);
          next();
        });
        stream.on('error', fail);
      } else {
        stream.on('end', () => next());
        stream.resume();
      }
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  await Promise.all([pipeline(createReadStream(file), ex), done]).catch((err) => {
    throw new Error(`cannot import ${file}: ${(err as Error).message}`);
  });
  if (!indexBytes) throw new Error(`${file} is not an OCI image layout tar (no index.json)`);
  const idx = JSON.parse(indexBytes.toString()) as ImageIndex;
  const names: string[] = [];
  for (const d of idx.manifests ?? []) {
    for (const dg of await store.reachable(d)) {
      if (!(await store.hasBlob({ digest: dg }))) throw new Error(`${file}: blob ${dg} (of ${d.digest}) is missing`);
    }
    const name = layoutName(d);
    if (!name) continue;
    const { annotations: _a, ...plain } = d;
    await store.tag(name, plain);
    names.push(name);
  }
  return { names, blobs };
}
