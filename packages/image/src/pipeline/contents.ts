// Reads entry contents for the writers: literal bytes, or byte ranges of files on disk (cached
// layer tars, host files). Small ranges are served from a read-ahead window, so the many small
// files of a layer cost one read per window rather than one per file; big ones are read in
// chunks. Every chunk is a fresh buffer: a consumer (gzip) may hold on to it.
import { type FileHandle, open } from 'node:fs/promises';
import type { ByteRange } from './unpack.ts';

export type Body = { kind: 'bytes'; data: Uint8Array } | { kind: 'range'; range: ByteRange };

const WINDOW = 1 << 20;
const SMALL = 256 * 1024;
const CHUNK = 1 << 20;

export class ContentReader {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private window: { file: string; start: number; buf: Buffer } | undefined;

  private handle(file: string): Promise<FileHandle> {
    let h = this.handles.get(file);
    if (!h) {
      h = open(file, 'r');
      this.handles.set(file, h);
    }
    return h;
  }

  private async readAt(file: string, position: number, length: number): Promise<Buffer> {
    const fh = await this.handle(file);
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  /** The contents in chunks; throws when the file is shorter than the range says. */
  async *chunks(body: Body): AsyncGenerator<Buffer> {
    if (body.kind === 'bytes') {
      if (body.data.length) yield Buffer.from(body.data.buffer, body.data.byteOffset, body.data.length);
      return;
    }
    const { file, offset, size } = body.range;
    if (size === 0) return;
    if (size <= SMALL) {
      let w = this.window;
      if (!w || w.file !== file || offset < w.start || offset + size > w.start + w.buf.length) {
        w = { file, start: offset, buf: await this.readAt(file, offset, Math.max(WINDOW, size)) };
        this.window = w;
      }
      if (offset + size > w.start + w.buf.length) throw short(file, offset, size);
      yield w.buf.subarray(offset - w.start, offset - w.start + size);
      return;
    }
    for (let at = 0; at < size; at += CHUNK) {
      const len = Math.min(CHUNK, size - at);
      const buf = await this.readAt(file, offset + at, len);
      if (buf.length !== len) throw short(file, offset, size);
      yield buf;
    }
  }

  async bytes(body: Body): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.chunks(body)) parts.push(c);
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    this.window = undefined;
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.allSettled(handles.map(async (h) => (await h).close()));
  }
}

function short(file: string, offset: number, size: number): Error {
  return new Error(
    `${file} is shorter than expected (wanted ${size} bytes at ${offset}): did it change during the build?`,
  );
}
