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
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGzip, type Gzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { sourceDateEpoch } from './formats/epoch.ts';

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

/** A writable that awaits backpressure. */
async function put(w: Gzip, chunk: Buffer): Promise<void> {
  if (chunk.length === 0) return;
  if (!w.write(chunk)) await new Promise<void>((resolve) => w.once('drain', resolve));
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

/**
 * Converts a tar stream to a gzip'd newc initrd at `out`, written atomically (a temp file in the
 * same directory, renamed on success; removed on failure).
 */
export async function writeInitrd(
  tarStream: Readable | AsyncIterable<Buffer>,
  out: string,
  opts: WriteInitrdOptions = {},
): Promise<InitrdResult> {
  const mtime = sourceDateEpoch(opts.sourceDateEpoch);
  const splitBoot = opts.splitBoot ?? true;
  const hardLinks = opts.hardLinks ?? 'link';
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

  const gzip = createGzip({ level: opts.level ?? 6 });
  const file: WriteStream = createWriteStream(tmp, { flags: 'wx' });
  let first = true;
  let bytes = 0;
  const fileDone = new Promise<void>((resolve, reject) => {
    file.once('error', reject);
    gzip.once('error', reject);
    file.once('finish', resolve);
  });
  gzip.on('data', (chunk: Buffer) => {
    // Byte 9 of the gzip header is the OS; pin it to Unix so every platform writes the same bytes.
    if (first && chunk.length > 9) {
      chunk[9] = 3;
      first = false;
    }
    bytes += chunk.length;
    if (!file.write(chunk)) {
      gzip.pause();
      file.once('drain', () => gzip.resume());
    }
  });
  gzip.once('end', () => file.end());

  const result: InitrdResult = { entries: 0, bytes: 0 };
  const inodes = new Map<string, { ino: number; mode: number }>();
  let nextIno = 1;
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
      const name = normaliseName(h.name);
      if (name === '') {
        entry.resume();
        continue;
      }
      if (splitBoot && (name === 'boot' || name.startsWith('boot/'))) {
        if (name === 'boot/kernel') result.kernel = await readAll(entry as AsyncIterable<Buffer>);
        else if (name === 'boot/cmdline')
          result.cmdline = (await readAll(entry as AsyncIterable<Buffer>)).toString('utf8');
        else if (name === 'boot/ucode.cpio') result.ucode = await readAll(entry as AsyncIterable<Buffer>);
        else entry.resume();
        continue;
      }
      const perm = (h.mode ?? 0) & 0o7777;
      const base = {
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime,
        rdevmajor: 0,
        rdevminor: 0,
        name,
      };
      const header = (mode: number, nlink: number, filesize: number, ino = nextIno++) => {
        inodes.set(name, { ino, mode });
        return newcHeader({ ...base, ino, mode, nlink, filesize });
      };
      switch (h.type) {
        case 'file':
        case 'contiguous-file': {
          const size = h.size ?? 0;
          if (size > MAX32) throw new InitrdError(`file of ${size} bytes is too big for newc (4 GiB limit)`, name);
          await put(gzip, header(S_IFREG | perm, hardLinks === 'link' ? 2 : 1, size));
          let seen = 0;
          for await (const chunk of entry as AsyncIterable<Buffer>) {
            seen += chunk.length;
            await put(gzip, chunk);
          }
          if (seen !== size) throw new InitrdError(`tar said ${size} bytes, got ${seen}`, name);
          await put(gzip, pad4(size));
          break;
        }
        case 'directory':
          await put(gzip, header(S_IFDIR | perm, 2, 0));
          entry.resume();
          break;
        case 'symlink': {
          const target = Buffer.from(h.linkname ?? '', 'utf8');
          await put(gzip, header(S_IFLNK | (perm || 0o777), 1, target.length));
          await put(gzip, Buffer.concat([target, pad4(target.length)]));
          entry.resume();
          break;
        }
        case 'link': {
          const targetName = normaliseName(h.linkname ?? '');
          const target = inodes.get(targetName);
          if (!target)
            throw new InitrdError(`hard link to ${JSON.stringify(h.linkname)}, which is not earlier in the tar`, name);
          if (hardLinks === 'link') {
            if ((target.mode & 0o170000) !== S_IFREG) {
              throw new InitrdError(`hard link to ${targetName}, which is not a regular file`, name);
            }
            await put(gzip, header(target.mode, 2, 0, target.ino));
          } else {
            const rel = posix.relative(posix.dirname(name), targetName);
            const bytesOfRel = Buffer.from(rel, 'utf8');
            await put(gzip, header(S_IFLNK | 0o777, 1, bytesOfRel.length));
            await put(gzip, Buffer.concat([bytesOfRel, pad4(bytesOfRel.length)]));
          }
          entry.resume();
          break;
        }
        case 'character-device':
        case 'block-device':
          await put(
            gzip,
            newcHeader({
              ...base,
              ino: nextIno++,
              mode: (h.type === 'character-device' ? S_IFCHR : S_IFBLK) | perm,
              nlink: 1,
              filesize: 0,
              rdevmajor: h.devmajor ?? 0,
              rdevminor: h.devminor ?? 0,
            }),
          );
          entry.resume();
          break;
        case 'fifo':
          await put(gzip, header(S_IFIFO | perm, 1, 0));
          entry.resume();
          break;
        default:
          throw new InitrdError(`tar entry type ${JSON.stringify(h.type)} cannot be put in an initrd`, name);
      }
      result.entries++;
    }
    await feeding;
    await put(gzip, newcTrailer());
    gzip.end();
    await fileDone;
    result.bytes = bytes;
    await rename(tmp, out);
    return result;
  } catch (err) {
    extract.destroy(undefined);
    gzip.destroy();
    file.destroy();
    await finished(file).catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (err instanceof InitrdError) throw err;
    throw new InitrdError(`could not write initrd ${out}: ${(err as Error).message}`);
  }
}
