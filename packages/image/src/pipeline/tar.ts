// The initrd's entries from an expanded layout, in plan order, with LinuxKit's
// LINUXKIT.source/location PAX records on every entry, handed to one or more sinks at once (the
// `tar` output and the initrd writer): each entry's contents are read once, from the cached layer
// tars, the build host or memory, and given to every sink.

import type { FileHandle } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import {
  APK_DATABASE,
  type EntryOrigin,
  expandImageTree,
  expandKernel,
  type LayoutEntry,
  type LayoutStep,
  mergeApkDatabases,
} from '../assemble/index.ts';
import { type Body, ContentReader } from './contents.ts';
import { BuildError } from './errors.ts';
import { encodeTarHeader, type ScannedEntry, TAR_END, type TarHeader, TarScanner, tarPadding } from './tarfmt.ts';
import type { UnpackedImage } from './unpack.ts';

/** One entry as the sinks get it. */
export type OutEntry = TarHeader & { type: Exclude<TarHeader['type'], 'other'> };

/** Something entries are written to. `data` chunks add up to `size` for files. */
export interface EntrySink {
  begin(e: OutEntry): void | Promise<void>;
  data(chunk: Buffer): void | Promise<void>;
  end(e: OutEntry): void | Promise<void>;
}

export interface LayoutInputs {
  steps: LayoutStep[];
  mtime: number;
  /** Unpacked images by the reference the manifest writes. */
  image(ref: string): UnpackedImage;
  /** The entries of a `format: oci` volume. */
  ociLayout?(step: Extract<LayoutStep, { kind: 'ociLayout' }>): Promise<LayoutEntry[]>;
}

function pax(origin: EntryOrigin): Record<string, string> {
  return { 'LINUXKIT.source': origin.source, 'LINUXKIT.location': origin.location };
}

async function emit(sinks: EntrySink[], reader: ContentReader, e: OutEntry, body?: Body): Promise<void> {
  for (const s of sinks) await s.begin(e);
  if (body && e.type === 'file') {
    let seen = 0;
    for await (const chunk of reader.chunks(body)) {
      seen += chunk.length;
      if (seen > e.size) break;
      for (const s of sinks) await s.data(chunk);
    }
    if (seen !== e.size) throw new BuildError(`${e.name}: expected ${e.size} bytes of contents, read ${seen}`);
  }
  for (const s of sinks) await s.end(e);
}

async function bodyOf(e: LayoutEntry, inputs: LayoutInputs): Promise<Body | undefined> {
  const src = e.source;
  if (e.type !== 'file' || !src) return undefined;
  if (src.kind === 'bytes') return { kind: 'bytes', data: src.data };
  if (src.kind === 'hostFile') {
    let size: number;
    try {
      size = (await stat(src.path)).size;
    } catch (err) {
      throw new BuildError(`${e.origin.location}: cannot read ${src.path}: ${(err as Error).message}`);
    }
    return { kind: 'range', range: { file: src.path, offset: 0, size } };
  }
  return { kind: 'range', range: inputs.image(src.image).range(src.path) };
}

async function writeEntry(sinks: EntrySink[], reader: ContentReader, e: LayoutEntry, inputs: LayoutInputs) {
  const body = await bodyOf(e, inputs);
  const size = !body ? 0 : body.kind === 'bytes' ? body.data.length : body.range.size;
  const out: OutEntry = {
    name: e.path,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    size,
    linkname: e.linkname ?? '',
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
    pax: pax(e.origin),
  };
  await emit(sinks, reader, out, body);
}

/** The kernel image's tar, unpacked at `/` entry by entry, its headers kept as they are. */
async function writeNestedTar(
  sinks: EntrySink[],
  reader: ContentReader,
  img: UnpackedImage,
  path: string,
  origin: EntryOrigin,
) {
  const outer = img.range(path);
  const entries: ScannedEntry[] = [];
  const scanner = new TarScanner((e) => entries.push(e));
  try {
    for await (const chunk of reader.chunks({ kind: 'range', range: outer })) scanner.push(chunk);
    scanner.end();
  } catch (err) {
    throw new BuildError(`${origin.location}: ${path}: ${(err as Error).message}`);
  }
  for (const e of entries) {
    if (e.type === 'other')
      throw new BuildError(`${origin.location}: ${path}: ${e.name} has a type an initrd cannot hold`);
    const out: OutEntry = { ...e, type: e.type, pax: { ...e.pax, ...pax(origin) } };
    const body: Body | undefined =
      e.type === 'file'
        ? { kind: 'range', range: { file: outer.file, offset: outer.offset + e.offset, size: e.size } }
        : undefined;
    if (e.type === 'file' && e.offset + e.size > outer.size) {
      throw new BuildError(`${origin.location}: ${path}: ${e.name} runs past the end of the tar`);
    }
    await emit(sinks, reader, out, body);
  }
}

/** Writes every step to `sinks`, in order. */
export async function writeLayout(sinks: EntrySink[], inputs: LayoutInputs): Promise<void> {
  const reader = new ContentReader();
  try {
    for (const step of inputs.steps) {
      switch (step.kind) {
        case 'entry':
          await writeEntry(sinks, reader, step.entry, inputs);
          break;
        case 'imageTree': {
          const img = inputs.image(step.image);
          for (const e of expandImageTree(step, img.files, inputs.mtime)) await writeEntry(sinks, reader, e, inputs);
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
            if ('kind' in e) await writeNestedTar(sinks, reader, inputs.image(e.image), e.path, e.origin);
            else await writeEntry(sinks, reader, e, inputs);
          }
          break;
        }
        case 'apkDatabase': {
          const copies: Uint8Array[] = [];
          for (const ref of step.images) {
            const img = inputs.image(ref);
            if (img.has(APK_DATABASE))
              copies.push(await reader.bytes({ kind: 'range', range: img.range(APK_DATABASE) }));
          }
          const merged = mergeApkDatabases(copies);
          if (merged) {
            await writeEntry(
              sinks,
              reader,
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
        case 'ociLayout': {
          if (!inputs.ociLayout) {
            throw new BuildError(`${step.origin.location}: volumes with format: oci are not supported here`);
          }
          for (const e of await inputs.ociLayout(step)) await writeEntry(sinks, reader, e, inputs);
          break;
        }
      }
    }
  } finally {
    await reader.close();
  }
}

const OUT_BUFFER = 1 << 20;

async function writeFully(fh: FileHandle, buf: Buffer): Promise<void> {
  let at = 0;
  while (at < buf.length) at += (await fh.write(buf, at, buf.length - at)).bytesWritten;
}

/** A sink writing a tar file through `fh`, in large writes. */
export class TarFileSink implements EntrySink {
  private buf = Buffer.allocUnsafe(OUT_BUFFER);
  private used = 0;
  bytes = 0;

  constructor(private readonly fh: FileHandle) {}

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(OUT_BUFFER);
    this.used = 0;
    await writeFully(this.fh, full);
  }

  private async put(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (chunk.length >= OUT_BUFFER / 4) {
      await this.flush();
      await writeFully(this.fh, chunk);
      return;
    }
    if (this.used + chunk.length > this.buf.length) await this.flush();
    chunk.copy(this.buf, this.used);
    this.used += chunk.length;
  }

  begin(e: OutEntry): Promise<void> {
    return this.put(encodeTarHeader(e));
  }

  data(chunk: Buffer): Promise<void> {
    return this.put(chunk);
  }

  end(e: OutEntry): Promise<void> {
    return e.type === 'file' && e.size % 512 !== 0 ? this.put(tarPadding(e.size)) : Promise.resolve();
  }

  async finish(): Promise<void> {
    await this.put(TAR_END);
    await this.flush();
  }
}
