// A deterministic initrd writer: a tar stream in, a gzip'd newc ("SVR4 new ASCII") cpio out,
// streamed entry by entry (only boot/kernel, boot/cmdline and boot/ucode.cpio are held in memory).
//
// Determinism: every entry gets the same mtime (sourceDateEpoch: option, $SOURCE_DATE_EPOCH, or
// LinuxKit's 2017-04-18T16:30Z), inode numbers are assigned 1, 2, 3… in stream order, the
// containing-device fields are 0, and the gzip header carries mtime 0, no name, OS byte 3 (Unix).
// Entry order is the tar's order (the tar producer sorts; parents must precede children because
// the kernel's unpacker does not create missing directories). The gzip bytes depend on Node's
// bundled zlib: the same Node version gives the same bytes.
//
// Like LinuxKit (src/cmd/linuxkit/initrd), boot/kernel, boot/cmdline and boot/ucode.cpio are split
// off and returned, and the rest of boot/ is left out of the initrd (`splitBoot: false` keeps all).
//
// Hard links are real newc hard links: the link entry repeats the target's inode number with size
// 0. The kernel (init/initramfs.c) and GNU cpio only pair entries whose nlink is >= 2, and a
// streaming writer cannot know when it writes a file whether a link to it follows, so every
// regular file is written with nlink 2. (Extraction sets the true link count; the field is only a
// pairing hint.) `hardLinks: 'symlink'` instead writes relative symlinks, as LinuxKit does.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { sourceDateEpoch } from './formats/epoch.ts';
import { ParallelGzip } from './pgzip.ts';
import type { TarHeader } from './pipeline/tarfmt.ts';

export interface WriteInitrdOptions {
  /** Seconds since the epoch for every entry; default $SOURCE_DATE_EPOCH or 2017-04-18T16:30Z. */
  sourceDateEpoch?: number;
  /** gzip level, default 6 (as LinuxKit). Fixed per build: it changes the bytes. */
  level?: number;
  /** Split boot/kernel, boot/cmdline, boot/ucode.cpio off and drop the rest of boot/. Default true. */
  splitBoot?: boolean;
  /** How tar hard links are written; default 'link' (real newc hard links). */
  hardLinks?: 'link' | 'symlink';
}

export interface InitrdResult {
  /** boot/kernel of the tar (splitBoot only). */
  kernel?: Buffer;
  /** boot/cmdline of the tar (splitBoot only). */
  cmdline?: string;
  /** boot/ucode.cpio of the tar (splitBoot only): an uncompressed cpio to put before the initrd. */
  ucode?: Buffer;
  /** Number of cpio entries written (without the trailer). */
  entries: number;
  /** Size of the written initrd file. */
  bytes: number;
}

export class InitrdError extends Error {
  constructor(
    message: string,
    readonly entry?: string,
  ) {
    super(entry === undefined ? message : `${entry}: ${message}`);
    this.name = 'InitrdError';
  }
}

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFDIR = 0o040000;
const S_IFBLK = 0o060000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const MAX32 = 0xffffffff;

/** The fields of one newc header (magic and check are implied). */
export interface NewcHeader {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  filesize: number;
  rdevmajor: number;
  rdevminor: number;
  name: string;
}

/** One newc header, its name (NUL-terminated) and the padding to a 4-byte boundary. */
export function newcHeader(h: NewcHeader): Buffer {
  const name = Buffer.from(`${h.name}\0`, 'utf8');
  const fields = [
    h.ino,
    h.mode,
    h.uid,
    h.gid,
    h.nlink,
    h.mtime,
    h.filesize,
    0,
    0,
    h.rdevmajor,
    h.rdevminor,
    name.length,
    0,
  ];
  for (const [i, v] of fields.entries()) {
    if (!Number.isInteger(v) || v < 0 || v > MAX32) {
      throw new InitrdError(`field ${i} = ${v} does not fit a newc header (0…2^32-1)`, h.name);
    }
  }
  const text = `070701${fields.map((v) => v.toString(16).padStart(8, '0')).join('')}`;
  return Buffer.concat([Buffer.from(text, 'ascii'), name, pad4(110 + name.length)]);
}

export function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4);
}

/** The newc end-of-archive entry. */
export function newcTrailer(mtime = 0): Buffer {
  return newcHeader({
    ino: 0,
    mode: 0,
    uid: 0,
    gid: 0,
    nlink: 1,
    mtime,
    filesize: 0,
    rdevmajor: 0,
    rdevminor: 0,
    name: 'TRAILER!!!',
  });
}

/** "./a/b/" → "a/b"; "." and "" → "" (the root, which is skipped); ".." anywhere is rejected. */
export function normaliseName(raw: string): string {
  let name = raw.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  if (name === '.') name = '';
  if (name.split('/').includes('..')) throw new InitrdError('path contains ".."', raw);
  return name;
}

/** One entry as the initrd writer takes it: a tar header (mtimes are the build's, pax unused). */
export type InitrdEntry = Omit<TarHeader, 'mtime' | 'pax'>;

type Capture = 'kernel' | 'cmdline' | 'ucode';

/**
 * Writes a gzip'd newc initrd at `out` entry by entry (`begin`, `data`…, `end`), atomically: a
 * temp file in the same directory, renamed by `finish`, removed by `abort`.
 */
export class InitrdWriter {
  private readonly mtime: number;
  private readonly splitBoot: boolean;
  private readonly hardLinks: 'link' | 'symlink';
  private readonly inodes = new Map<string, { ino: number; mode: number }>();
  private nextIno = 1;
  private readonly result: InitrdResult = { entries: 0, bytes: 0 };
  private current: { name: string; size: number; seen: number; skip: boolean; capture?: Capture } | undefined;
  private captured: Buffer[] = [];
  private readonly gzip: ParallelGzip;

  private constructor(
    private readonly out: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
    opts: WriteInitrdOptions,
  ) {
    this.mtime = sourceDateEpoch(opts.sourceDateEpoch);
    this.splitBoot = opts.splitBoot ?? true;
    this.hardLinks = opts.hardLinks ?? 'link';
    this.gzip = new ParallelGzip(fh, opts.level ?? 6);
  }

  static async open(out: string, opts: WriteInitrdOptions = {}): Promise<InitrdWriter> {
    const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    return new InitrdWriter(out, tmp, await open(tmp, 'wx'), opts);
  }

  private put(chunk: Buffer): Promise<void> | undefined {
    return this.gzip.write(chunk);
  }

  begin(h: InitrdEntry): Promise<void> | undefined {
    const name = normaliseName(h.name);
    this.current = { name, size: h.type === 'file' ? h.size : 0, seen: 0, skip: true };
    if (name === '') return;
    if (this.splitBoot && (name === 'boot' || name.startsWith('boot/'))) {
      const capture: Capture | undefined =
        name === 'boot/kernel'
          ? 'kernel'
          : name === 'boot/cmdline'
            ? 'cmdline'
            : name === 'boot/ucode.cpio'
              ? 'ucode'
              : undefined;
      if (capture) {
        this.current.capture = capture;
        this.captured = [];
      }
      return;
    }
    this.current.skip = false;
    const perm = h.mode & 0o7777;
    const base = { uid: h.uid, gid: h.gid, mtime: this.mtime, rdevmajor: 0, rdevminor: 0, name };
    const header = (mode: number, nlink: number, filesize: number, ino = this.nextIno++) => {
      this.inodes.set(name, { ino, mode });
      return newcHeader({ ...base, ino, mode, nlink, filesize });
    };
    this.result.entries++;
    switch (h.type) {
      case 'file': {
        if (h.size > MAX32) throw new InitrdError(`file of ${h.size} bytes is too big for newc (4 GiB limit)`, name);
        return this.put(header(S_IFREG | perm, this.hardLinks === 'link' ? 2 : 1, h.size));
      }
      case 'dir':
        return this.put(header(S_IFDIR | perm, 2, 0));
      case 'symlink': {
        const target = Buffer.from(h.linkname, 'utf8');
        return this.put(
          Buffer.concat([header(S_IFLNK | (perm || 0o777), 1, target.length), target, pad4(target.length)]),
        );
      }
      case 'hardlink': {
        const targetName = normaliseName(h.linkname);
        const target = this.inodes.get(targetName);
        if (!target) {
          throw new InitrdError(`hard link to ${JSON.stringify(h.linkname)}, which is not earlier in the tar`, name);
        }
        if (this.hardLinks === 'link') {
          if ((target.mode & 0o170000) !== S_IFREG) {
            throw new InitrdError(`hard link to ${targetName}, which is not a regular file`, name);
          }
          return this.put(header(target.mode, 2, 0, target.ino));
        }
        const rel = Buffer.from(posix.relative(posix.dirname(name), targetName), 'utf8');
        return this.put(Buffer.concat([header(S_IFLNK | 0o777, 1, rel.length), rel, pad4(rel.length)]));
      }
      case 'char':
      case 'block':
        return this.put(
          newcHeader({
            ...base,
            ino: this.nextIno++,
            mode: (h.type === 'char' ? S_IFCHR : S_IFBLK) | perm,
            nlink: 1,
            filesize: 0,
            rdevmajor: h.devmajor,
            rdevminor: h.devminor,
          }),
        );
      case 'fifo':
        return this.put(header(S_IFIFO | perm, 1, 0));
      default:
        throw new InitrdError('this tar entry type cannot be put in an initrd', name);
    }
  }

  data(chunk: Buffer): Promise<void> | undefined {
    const c = this.current;
    if (!c) throw new InitrdError('contents outside an entry');
    c.seen += chunk.length;
    if (c.capture) {
      this.captured.push(chunk);
      return;
    }
    if (c.skip) return;
    return this.put(chunk);
  }

  end(): Promise<void> | undefined {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    if (c.capture) {
      const data = Buffer.concat(this.captured);
      this.captured = [];
      if (c.capture === 'kernel') this.result.kernel = data;
      else if (c.capture === 'cmdline') this.result.cmdline = data.toString('utf8');
      else this.result.ucode = data;
      return;
    }
    if (c.skip) return;
    if (c.seen !== c.size) throw new InitrdError(`tar said ${c.size} bytes, got ${c.seen}`, c.name);
    return this.put(pad4(c.size));
  }

  /** Writes the trailer, closes the file and renames it into place. */
  async finish(): Promise<InitrdResult> {
    try {
      await this.put(newcTrailer());
      await this.gzip.end();
      await this.fh.close();
      this.result.bytes = this.gzip.written;
      await rename(this.tmp, this.out);
      return this.result;
    } catch (err) {
      await this.abort();
      throw new InitrdError(`could not write initrd ${this.out}: ${(err as Error).message}`);
    }
  }

  /** Stops and removes the temp file. */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}

const TAR_STREAM_TYPES: Record<string, InitrdEntry['type']> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'dir',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/**
 * Converts a tar stream to a gzip'd newc initrd at `out`, written atomically (a temp file in the
 * same directory, renamed on success; removed on failure).
 */
export async function writeInitrd(
  tarStream: Readable | AsyncIterable<Buffer>,
  out: string,
  opts: WriteInitrdOptions = {},
): Promise<InitrdResult> {
  const writer = await InitrdWriter.open(out, opts);
  const extract = tarExtract();
  const source = (tarStream as Readable).pipe ? (tarStream as Readable) : null;
  try {
    const feeding = (async () => {
      if (source) {
        source.once('error', (e) => extract.destroy(e));
        source.pipe(extract);
      } else {
        try {
          for await (const c of tarStream)
            if (!extract.write(c)) await new Promise<void>((r) => extract.once('drain', () => r()));
          extract.end(undefined);
        } catch (e) {
          extract.destroy(e as Error);
        }
      }
    })();
    for await (const entry of extract) {
      const h = entry.header;
      const type = TAR_STREAM_TYPES[h.type ?? 'file'];
      if (!type) {
        throw new InitrdError(`tar entry type ${JSON.stringify(h.type)} cannot be put in an initrd`, h.name);
      }
      await writer.begin({
        name: h.name,
        type,
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: type === 'file' ? (h.size ?? 0) : 0,
        linkname: h.linkname ?? '',
        devmajor: h.devmajor ?? 0,
        devminor: h.devminor ?? 0,
      });
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        if (type === 'file') await writer.data(chunk);
      }
      await writer.end();
    }
    await feeding;
    return await writer.finish();
  } catch (err) {
    extract.destroy(undefined);
    await writer.abort();
    if (err instanceof InitrdError) throw err;
    throw new InitrdError(`could not write initrd ${out}: ${(err as Error).message}`);
  }
}
