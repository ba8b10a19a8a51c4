// The initrd's tar stream from an expanded layout: entries in plan order, contents streamed from
// the spooled image files or the build host, LinuxKit's LINUXKIT.source/location PAX records on
// every entry. The stream is written once and may feed both the `tar` output and the initrd.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type Header, type pack } from 'tar-stream';
import {
  APK_DATABASE,
  type EntryOrigin,
  expandImageTree,
  expandKernel,
  type LayoutEntry,
  type LayoutStep,
  mergeApkDatabases,
} from '../assemble/index.ts';
import { BuildError } from './errors.ts';
import type { UnpackedImage } from './unpack.ts';

const TYPES: Record<LayoutEntry['type'], Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
};

function pax(origin: EntryOrigin): Record<string, string> {
  return { 'LINUXKIT.source': origin.source, 'LINUXKIT.location': origin.location };
}

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export interface TarInputs {
  steps: LayoutStep[];
  mtime: number;
  /** Unpacked images by the reference the manifest writes. */
  image(ref: string): UnpackedImage;
}

type Pack = ReturnType<typeof pack>;

function entryAsync(tar: Pack, header: Header, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}

async function writeStream(tar: Pack, header: Header, body: Readable): Promise<void> {
  const sink = tar.entry(header);
  await pipeline(body, sink);
}

async function writeEntry(tar: Pack, e: LayoutEntry, inputs: TarInputs): Promise<void> {
  const header = {
    name: e.type === 'dir' ? `${e.path}/` : e.path,
    type: TYPES[e.type],
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: new Date(e.mtime * 1000),
    pax: pax(e.origin),
    ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
  } as Header;
  if (e.type !== 'file') return entryAsync(tar, header);
  const src = e.source;
  if (!src) return entryAsync(tar, { ...header, size: 0 });
  if (src.kind === 'bytes') return entryAsync(tar, header, Buffer.from(src.data));
  if (src.kind === 'hostFile') {
    let size: number;
    try {
      size = (await stat(src.path)).size;
    } catch (err) {
      throw new BuildError(`${e.origin.location}: cannot read ${src.path}: ${(err as Error).message}`);
    }
    return writeStream(tar, { ...header, size }, createReadStream(src.path));
  }
  const img = inputs.image(src.image);
  return writeStream(tar, { ...header, size: await img.size(src.path) }, img.open(src.path));
}

/** The kernel image's tar, unpacked at `/` entry by entry, as it is. */
async function writeUnpackedTar(tar: Pack, img: UnpackedImage, path: string, origin: EntryOrigin): Promise<void> {
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const header = { ...h, pax: { ...(h.pax ?? {}), ...pax(origin) } } as Header;
      if (h.type === 'file' || h.type === 'contiguous-file') {
        pipeline(stream, tar.entry({ ...header, type: 'file' }))
          .then(() => next())
          .catch(reject);
      } else {
        stream.resume();
        stream.on('end', () => {
          tar.entry(header, (err) => (err ? reject(err) : next()));
        });
      }
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  await Promise.all([pipeline(img.open(path), ex), done]);
}

/** Writes every step to `tar`, then finalizes it. Rejects (and destroys `tar`) on the first error. */
export async function writeLayoutTar(tar: Pack, inputs: TarInputs): Promise<void> {
  try {
    for (const step of inputs.steps) {
      switch (step.kind) {
        case 'entry':
          await writeEntry(tar, step.entry, inputs);
          break;
        case 'imageTree': {
          const img = inputs.image(step.image);
          for (const e of expandImageTree(step, img.files, inputs.mtime)) await writeEntry(tar, e, inputs);
          break;
        }
        case 'kernel': {
          const img = inputs.image(step.image);
          let expansion: ReturnType<typeof expandKernel>;
          try {
            expansion = expandKernel(step, img.files, inputs.mtime);
          } catch (err) {
            throw new BuildError((err as Error).message);
          }
          for (const e of expansion.entries) {
            if ('kind' in e) await writeUnpackedTar(tar, inputs.image(e.image), e.path, e.origin);
            else await writeEntry(tar, e, inputs);
          }
          break;
        }
        case 'apkDatabase': {
          const copies: Uint8Array[] = [];
          for (const ref of step.images) {
            const img = inputs.image(ref);
            if (img.has(APK_DATABASE)) copies.push(await readAll(img.open(APK_DATABASE)));
          }
          const merged = mergeApkDatabases(copies);
          if (merged) {
            await writeEntry(
              tar,
              {
                path: APK_DATABASE,
                type: 'file',
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: step.mtime,
                source: { kind: 'bytes', data: merged },
                origin: step.origin,
              },
              inputs,
            );
          }
          break;
        }
        case 'ociLayout':
          throw new BuildError(
            `${step.origin.location}: volumes with format: oci are not supported yet (use format: filesystem)`,
          );
      }
    }
    tar.finalize();
  } catch (err) {
    tar.destroy(err as Error);
    throw err;
  }
}
