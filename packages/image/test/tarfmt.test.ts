// The byte-level tar reader and writer (pipeline/tarfmt.ts) against independent tar
// implementations: GNU tar writes archives in its four formats (posix/pax, gnu, ustar, v7) from a
// real directory tree and the scanner must report every entry as the filesystem has it, with the
// offset of its contents; the header encoder writes archives that GNU tar lists and extracts and
// that tar-stream reads, fields and pax records included.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract, type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeTarHeader,
  parsePax,
  type ScannedEntry,
  TAR_END,
  TarFormatError,
  type TarHeader,
  TarScanner,
  type TarType,
  tarPadding,
} from '../src/pipeline/tarfmt.ts';
import { prng } from './prng.ts';

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'stele-tarfmt-'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** GNU tar with a fixed locale and time zone, so listings are stable and names print as UTF-8. */
function tar(args: string[]): string {
  return execFileSync('tar', args, {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Every entry of `archive`, pushed in the chunk sizes `sizes` yields (cycled), then end(). */
function scan(archive: Buffer, nextSize: () => number = () => archive.length): ScannedEntry[] {
  const out: ScannedEntry[] = [];
  const s = new TarScanner((e) => out.push(e));
  for (let at = 0; at < archive.length; ) {
    const n = Math.max(1, nextSize());
    s.push(archive.subarray(at, at + n));
    at += n;
  }
  s.end();
  expect(s.position).toBe(archive.length);
  return out;
}

function kindOf(path: string): TarType {
  const st = lstatSync(path);
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  return 'file';
}

// ---- a directory tree, archived by GNU tar ----

const A = 'a'.repeat(60);
const B = 'b'.repeat(60);
const C = 'c'.repeat(80);
const D = 'd'.repeat(90);
const MID_DIR = `${A}/${B}`; // 121 bytes: needs the ustar prefix, a GNU long name or pax
const MID_FILE = `${MID_DIR}/mid.txt`;
const DEEP_DIR = `${A}/${B}/${C}/${D}`;
const DEEP_FILE = `${DEEP_DIR}/deep.txt`; // longer than prefix + name (155 + 100)
const LONG_TARGET = `${A}/${B}/${C}/target-that-does-not-exist`;
const MTIME = 1_234_567_890; // set with a fraction (.75) that pax carries and the scanner drops

interface TreeEntry {
  rel: string;
  /** Hard link to this earlier entry (GNU tar writes the second name of an inode as a link). */
  hardlinkTo?: string;
  formats: Format[];
}

type Format = 'posix' | 'gnu' | 'ustar' | 'v7';
const ALL: Format[] = ['posix', 'gnu', 'ustar', 'v7'];
const NO_V7: Format[] = ['posix', 'gnu', 'ustar'];
const LONG_OK: Format[] = ['posix', 'gnu'];

// In archive order; what a format cannot hold (long names in v7, long links in ustar, fifos in
// v7) is left out of that format's archive.
const TREE: TreeEntry[] = [
  { rel: 'd', formats: ALL },
  { rel: 'empty', formats: ALL },
  { rel: 'blocks.bin', formats: ALL },
  { rel: 'f.txt', formats: ALL },
  { rel: 'suid', formats: ALL },
  { rel: 'hard', hardlinkTo: 'f.txt', formats: ALL },
  { rel: 'short-link', formats: ALL },
  { rel: 'long-link', formats: LONG_OK },
  { rel: 'fifo', formats: NO_V7 },
  { rel: A, formats: NO_V7 },
  { rel: MID_DIR, formats: NO_V7 },
  { rel: MID_FILE, formats: NO_V7 },
  { rel: `${A}/${B}/${C}`, formats: LONG_OK },
  { rel: DEEP_DIR, formats: LONG_OK },
  { rel: DEEP_FILE, formats: LONG_OK },
];

const OWNERS: Record<Format, { uid: number; gid: number }> = {
  // beyond 7 octal digits: gnu writes base-256, posix writes pax uid/gid
  posix: { uid: 3_000_000, gid: 3_000_001 },
  gnu: { uid: 3_000_000, gid: 3_000_001 },
  ustar: { uid: 1234, gid: 4321 },
  v7: { uid: 1234, gid: 4321 },
};

let tree: string;
const archives = new Map<Format, Buffer>();

function makeTree(root: string): void {
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'blocks.bin'), randomBytes(1024)); // an exact multiple of 512
  writeFileSync(join(root, 'f.txt'), Buffer.concat([Buffer.from('hello\n'), randomBytes(700)]));
  writeFileSync(join(root, 'suid'), '#!/bin/sh\necho hi\n');
  linkSync(join(root, 'f.txt'), join(root, 'hard'));
  symlinkSync('f.txt', join(root, 'short-link'));
  symlinkSync(LONG_TARGET, join(root, 'long-link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  mkdirSync(join(root, DEEP_DIR), { recursive: true });
  writeFileSync(join(root, MID_FILE), 'in the middle\n');
  writeFileSync(join(root, DEEP_FILE), randomBytes(5000));
  chmodSync(join(root, 'd'), 0o750);
  chmodSync(join(root, 'empty'), 0o600);
  chmodSync(join(root, 'blocks.bin'), 0o644);
  chmodSync(join(root, 'f.txt'), 0o640);
  chmodSync(join(root, 'suid'), 0o4755);
  chmodSync(join(root, 'fifo'), 0o620);
  chmodSync(join(root, MID_DIR), 0o711);
  for (const e of TREE) {
    const p = join(root, e.rel);
    if (lstatSync(p).isSymbolicLink()) lutimesSync(p, MTIME + 0.75, MTIME + 0.75);
    else utimesSync(p, MTIME + 0.75, MTIME + 0.75);
  }
}

function expectedEntry(format: Format, e: TreeEntry) {
  const path = join(tree, e.rel);
  const st = lstatSync(path);
  const kind = e.hardlinkTo ? 'hardlink' : kindOf(path);
  return {
    name: kind === 'dir' ? `${e.rel}/` : e.rel,
    type: kind,
    mode: st.mode & 0o7777,
    uid: OWNERS[format].uid,
    gid: OWNERS[format].gid,
    mtime: MTIME,
    size: kind === 'file' ? st.size : 0,
    linkname: e.hardlinkTo ?? (kind === 'symlink' ? readlinkSync(path) : ''),
  };
}

describe('TarScanner reads what GNU tar writes', () => {
  beforeAll(() => {
    tree = join(work, 'tree');
    mkdirSync(tree);
    makeTree(tree);
    for (const format of ALL) {
      const out = join(work, `${format}.tar`);
      const { uid, gid } = OWNERS[format];
      const rels = TREE.filter((e) => e.formats.includes(format)).map((e) => e.rel);
      tar([
        `--format=${format}`,
        `--owner=someone:${uid}`,
        `--group=somegroup:${gid}`,
        '--no-recursion',
        '-cf',
        out,
        '-C',
        tree,
        ...rels,
      ]);
      archives.set(format, readFileSync(out));
    }
  });

  function archive(format: Format): Buffer {
    const a = archives.get(format);
    if (!a) throw new Error(`no ${format} archive`);
    return a;
  }

  it.each(ALL)('%s: every entry with its name, type, size, mode, owner, time, link and contents', (format) => {
    const bytes = archive(format);
    const entries = scan(bytes);
    const want = TREE.filter((e) => e.formats.includes(format));
    expect(entries.map((e) => e.name)).toEqual(want.map((e) => expectedEntry(format, e).name));
    for (const [i, e] of want.entries()) {
      const got = entries[i] as ScannedEntry;
      expect(got, e.rel).toMatchObject(expectedEntry(format, e));
      // nothing but the fields above (mtime/atime/ctime/path/uid/...) in GNU tar's pax records
      expect(got.pax, e.rel).toBeUndefined();
      expect(got.offset % 512, e.rel).toBe(0);
      if (got.type === 'file') {
        expect(bytes.subarray(got.offset, got.offset + got.size).equals(readFileSync(join(tree, e.rel))), e.rel).toBe(
          true,
        );
      }
    }
  });

  it('the long names really needed the format extensions (the fixture tests what it claims)', () => {
    expect(Buffer.byteLength(DEEP_FILE)).toBeGreaterThan(256);
    expect(Buffer.byteLength(MID_FILE)).toBeGreaterThan(100);
    expect(Buffer.byteLength(LONG_TARGET)).toBeGreaterThan(100);
    // gnu: base-256 uid in the header itself (top bit set), posix: a pax uid record
    const gnu = archive('gnu');
    expect((gnu[108] ?? 0) & 0x80).toBe(0x80);
    expect(gnu.includes('././@LongLink')).toBe(true);
    expect(archive('posix').includes(' uid=3000000\n')).toBe(true);
    // ustar: the 129-byte name is split into prefix and name
    expect(archive('ustar').includes(Buffer.from(`${MID_DIR}\0`))).toBe(true);
  });

  it.each(['posix', 'gnu'] as const)('%s: the same entries in one chunk, 1-byte chunks and random chunks', (format) => {
    const bytes = archive(format);
    const whole = scan(bytes);
    expect(whole.length).toBe(TREE.filter((e) => e.formats.includes(format)).length);
    expect(scan(bytes, () => 1)).toEqual(whole);
    for (const seed of [1, 2, 3]) {
      const r = prng(seed);
      expect(scan(bytes, () => Math.floor(r() * 1500))).toEqual(whole);
    }
    const r = prng(9);
    expect(scan(bytes, () => 509 + Math.floor(r() * 6))).toEqual(whole); // around the block size
  });

  it('global and per-entry pax records that are not header fields land in `pax`', () => {
    const out = join(work, 'pax-options.tar');
    tar([
      '--format=posix',
      '--pax-option=LINUXKIT.g=global,LINUXKIT.l:=local',
      '--no-recursion',
      '-cf',
      out,
      '-C',
      tree,
      'f.txt',
      'd',
    ]);
    const entries = scan(readFileSync(out));
    expect(entries.map((e) => [e.name, e.pax])).toEqual([
      ['f.txt', { 'LINUXKIT.g': 'global', 'LINUXKIT.l': 'local' }],
      ['d/', { 'LINUXKIT.g': 'global', 'LINUXKIT.l': 'local' }],
    ]);
  });

  describe('the end of the archive', () => {
    /** Where the contents of `rel` start in the posix archive, found by searching for them. */
    function dataStart(bytes: Buffer, rel: string): number {
      const at = bytes.indexOf(readFileSync(join(tree, rel)));
      expect(at).toBeGreaterThan(0);
      expect(at % 512).toBe(0);
      return at;
    }

    it('stops at two zero blocks: what follows (garbage, or another archive) is not read', () => {
      const bytes = archive('posix');
      const whole = scan(bytes);
      const garbage = randomBytes(4096);
      garbage[0] = 0xff; // never a zero block
      expect(scan(Buffer.concat([bytes, garbage]))).toEqual(whole);
      expect(scan(Buffer.concat([bytes, archive('gnu')]))).toEqual(whole);
      // the smallest end marker: two zero blocks straight after the last entry's contents
      const last = whole.at(-1) as ScannedEntry;
      const end = last.offset + Math.ceil(last.size / 512) * 512;
      const tight = Buffer.concat([bytes.subarray(0, end), TAR_END, garbage]);
      expect(scan(tight, () => 100)).toEqual(whole);
    });

    it('one zero block is not the end: entries after it are still read', () => {
      const one = Buffer.concat([
        encodeTarHeader(header({ name: 'x', type: 'file', size: 1 })),
        Buffer.from('x'),
        tarPadding(1),
        Buffer.alloc(512),
        encodeTarHeader(header({ name: 'y', type: 'file', size: 0 })),
        TAR_END,
      ]);
      expect(scan(one).map((e) => e.name)).toEqual(['x', 'y']);
    });

    it('an archive cut inside a file’s contents or inside a header makes end() throw', () => {
      const bytes = archive('posix');
      const at = dataStart(bytes, 'blocks.bin');
      for (const cut of [at + 100, at + 1023, at - 200, at - 1, at - 512 + 1]) {
        const s = new TarScanner(() => {});
        s.push(bytes.subarray(0, cut));
        expect(() => s.end(), `cut at ${cut}`).toThrow(TarFormatError);
      }
      // cut inside the pax extended header of the long file (its record text is in the archive)
      const rec = bytes.indexOf(Buffer.from(`path=${DEEP_FILE}`));
      expect(rec).toBeGreaterThan(0);
      const s = new TarScanner(() => {});
      s.push(bytes.subarray(0, rec + 10));
      expect(() => s.end()).toThrow(TarFormatError);
    });

    it('an archive cut between entries (no end marker) is accepted with the entries so far', () => {
      const bytes = archive('posix');
      const at = dataStart(bytes, 'blocks.bin');
      const got: ScannedEntry[] = [];
      const s = new TarScanner((e) => got.push(e));
      s.push(bytes.subarray(0, at + 1024));
      expect(() => s.end()).not.toThrow();
      expect(got.map((e) => e.name)).toEqual(['d/', 'empty', 'blocks.bin']);
      // (for the next test: GNU tar's posix format puts a one-block pax header first)
      const hdr = at - 512;
      expect(String.fromCharCode(bytes[hdr - 1024 + 156] ?? 0)).toBe('x');
      expect(String.fromCharCode(bytes[hdr + 156] ?? 0)).toBe('0');
    });

    // An archive cut between a pax extended header (or a GNU long name) and the header it
    // belongs to stops inside that entry: end() must not drop the entry silently.
    it('an archive cut right after an extended header makes end() throw', () => {
      const bytes = archive('posix');
      const hdr = dataStart(bytes, 'blocks.bin') - 512; // preceded by its pax header (checked above)
      const s = new TarScanner(() => {});
      s.push(bytes.subarray(0, hdr));
      expect(() => s.end()).toThrow(TarFormatError);
    });

    it('a header with a wrong checksum throws', () => {
      const bytes = Buffer.from(archive('posix'));
      const hdr = dataStart(bytes, 'blocks.bin') - 512;
      expect(bytes.toString('latin1', hdr, hdr + 10)).toBe('blocks.bin');
      const name = Buffer.from(bytes);
      name[hdr + 1] = 'X'.charCodeAt(0);
      expect(() => scan(name)).toThrow(/checksum/);
      const sum = Buffer.from(bytes);
      sum.write('0000001', hdr + 148, 'latin1'); // the checksum field itself
      expect(() => scan(sum)).toThrow(TarFormatError);
    });
  });
});

// ---- writing ----

type Encodable = Parameters<typeof encodeTarHeader>[0];

function header(h: Partial<Encodable> & Pick<Encodable, 'name' | 'type'>): Encodable {
  return {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1_600_000_000,
    size: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
    ...h,
  };
}

const LINUXKIT_PAX = { 'LINUXKIT.source': 'x', 'LINUXKIT.location': 'init[0]' };
const LONG1 = `usr/share/${'x'.repeat(120)}/file.txt`; // > 100 bytes
const LONG2 = `opt/${'p'.repeat(90)}/${'q'.repeat(90)}/${'r'.repeat(90)}/deep.bin`; // > 255 bytes
const NAME100 = `n/${'m'.repeat(98)}`; // exactly fills the name field, no NUL
const UTF8_NAME = `etc/${'é'.repeat(60)}`; // 124 bytes, 64 characters
// pax records whose length prefix sits on either side of a digit boundary: ` k=v\n` is 4 + |v|
const BOUNDARY_PAX = {
  a: 'v'.repeat(4), // 8 + 1 = 9
  b: 'v'.repeat(5), // 9 + 2 = 11 (10 is not possible)
  c: 'v'.repeat(6), // 10 + 2 = 12
  d: 'v'.repeat(93), // 97 + 2 = 99
  e: 'v'.repeat(94), // 98 + 3 = 101 (100 would be 97 + 3)
  f: 'v'.repeat(95), // 99 + 3 = 102
  g: 'é'.repeat(47), // 94 bytes: 98 + 3 = 101
};

interface Spec {
  h: Encodable;
  body?: Buffer;
}

const SPECS: Spec[] = [
  { h: header({ name: 'etc', type: 'dir', mode: 0o755, pax: LINUXKIT_PAX }) },
  { h: header({ name: 'etc/hello', type: 'file', pax: LINUXKIT_PAX }), body: Buffer.from('hello world\n') },
  { h: header({ name: LONG1, type: 'file', mode: 0o600, uid: 1000, gid: 1000 }), body: randomBytes(700) },
  {
    h: header({ name: LONG2, type: 'file', mode: 0o640, uid: 3_000_000, gid: 4_000_000, pax: LINUXKIT_PAX }),
    body: randomBytes(1024),
  },
  { h: header({ name: NAME100, type: 'file', mtime: 1_234_567_890 }), body: randomBytes(513) },
  { h: header({ name: UTF8_NAME, type: 'file', pax: { 'LINUXKIT.source': 'ünïcødé ✓' } }), body: Buffer.from('u') },
  { h: header({ name: 'etc/long-link', type: 'symlink', mode: 0o777, linkname: LONG2 }) },
  { h: header({ name: 'etc/link100', type: 'symlink', mode: 0o777, linkname: NAME100 }) },
  { h: header({ name: 'etc/hard', type: 'hardlink', linkname: LONG1, pax: LINUXKIT_PAX }) },
  { h: header({ name: 'dev/console', type: 'char', mode: 0o600, devmajor: 5, devminor: 1 }) },
  { h: header({ name: 'dev/sda', type: 'block', mode: 0o660, devmajor: 8, devminor: 300 }) },
  { h: header({ name: 'etc/empty', type: 'file', mode: 0o4755 }), body: Buffer.alloc(0) },
  { h: header({ name: 'run/fifo', type: 'fifo', mode: 0o620 }) },
  { h: header({ name: 'var/lib', type: 'dir', mode: 0o700, uid: 5, gid: 6 }) },
  { h: header({ name: 'etc/boundary', type: 'file', pax: BOUNDARY_PAX }), body: Buffer.from('b') },
];

function encodeArchive(specs: Spec[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of specs) {
    const body = s.body ?? Buffer.alloc(0);
    parts.push(encodeTarHeader({ ...s.h, size: body.length }), body, tarPadding(body.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

const outName = (h: Encodable) => (h.type === 'dir' ? `${h.name}/` : h.name);

function permString(mode: number): string {
  const bit = (m: number, c: string) => (mode & m ? c : '-');
  const x = (m: number, special: number, on: string, off: string) =>
    mode & special ? (mode & m ? on : off) : bit(m, 'x');
  return [
    bit(0o400, 'r'),
    bit(0o200, 'w'),
    x(0o100, 0o4000, 's', 'S'),
    bit(0o040, 'r'),
    bit(0o020, 'w'),
    x(0o010, 0o2000, 's', 'S'),
    bit(0o004, 'r'),
    bit(0o002, 'w'),
    x(0o001, 0o1000, 't', 'T'),
  ].join('');
}

const TYPE_CHAR: Record<Exclude<TarType, 'other'>, string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  hardlink: 'h',
  char: 'c',
  block: 'b',
  fifo: 'p',
};

const TAR_STREAM_TYPE: Record<Exclude<TarType, 'other'>, Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
};

describe('encodeTarHeader', () => {
  let archive: Buffer;
  let file: string;

  beforeAll(() => {
    archive = encodeArchive(SPECS);
    file = join(work, 'encoded.tar');
    writeFileSync(file, archive);
  });

  it('writes whole blocks', () => {
    expect(archive.length % 512).toBe(0);
    for (const s of SPECS) expect(encodeTarHeader(s.h).length % 512).toBe(0);
    expect(tarPadding(0).length).toBe(0);
    expect(tarPadding(1).length).toBe(511);
    expect(tarPadding(512).length).toBe(0);
    expect(tarPadding(513).length).toBe(511);
    expect(TAR_END.equals(Buffer.alloc(1024))).toBe(true);
  });

  it('GNU tar lists every entry with its type, mode, owner, size or device, time, name and link', () => {
    const lines = tar(['--numeric-owner', '--full-time', '--quoting-style=literal', '-tvf', file])
      .trimEnd()
      .split('\n');
    expect(lines).toHaveLength(SPECS.length);
    for (const [i, { h, body }] of SPECS.entries()) {
      const m = /^(.)(\S{9}) (\d+)\/(\d+) +(\d+|\d+,\d+) (\S+ \S+) (.*)$/.exec(lines[i] ?? '');
      expect(m, lines[i]).not.toBeNull();
      const [, type, perms, uid, gid, sizeOrDev, time, rest] = m as RegExpExecArray;
      expect(type, h.name).toBe(TYPE_CHAR[h.type]);
      expect(perms, h.name).toBe(permString(h.mode));
      expect([Number(uid), Number(gid)], h.name).toEqual([h.uid, h.gid]);
      if (h.type === 'char' || h.type === 'block') expect(sizeOrDev).toBe(`${h.devmajor},${h.devminor}`);
      else expect(Number(sizeOrDev), h.name).toBe(body?.length ?? 0);
      expect(time, h.name).toBe(new Date(h.mtime * 1000).toISOString().replace('T', ' ').replace('.000Z', ''));
      const name =
        h.type === 'symlink'
          ? `${outName(h)} -> ${h.linkname}`
          : h.type === 'hardlink'
            ? `${outName(h)} link to ${h.linkname}`
            : outName(h);
      expect(rest).toBe(name);
    }
  });

  it('GNU tar extracts the same files, links, modes, owners and times', () => {
    const dir = join(work, 'extracted');
    mkdirSync(dir);
    // devices need CAP_MKNOD; the listing above checks them
    tar(['--exclude=dev/*', '-xf', file, '-C', dir]);
    const root = process.getuid?.() === 0;
    for (const { h, body } of SPECS) {
      if (h.type === 'char' || h.type === 'block') continue;
      const p = join(dir, h.name);
      const st = lstatSync(p);
      expect(kindOf(p) === 'file' && h.type === 'hardlink' ? 'hardlink' : kindOf(p), h.name).toBe(h.type);
      // a hard link shares its target's inode: mode, owner and time are the target's
      const own = h.type !== 'hardlink';
      if (own && h.type !== 'symlink') expect(st.mode & 0o7777, h.name).toBe(h.mode);
      if (own && root) expect([st.uid, st.gid], h.name).toEqual([h.uid, h.gid]);
      // (a directory's time changes again when entries later in the archive land in it)
      if (own && h.type !== 'dir') expect(Math.floor(st.mtimeMs / 1000), h.name).toBe(h.mtime);
      if (h.type === 'file') expect(readFileSync(p).equals(body ?? Buffer.alloc(0)), h.name).toBe(true);
      if (h.type === 'symlink') expect(readlinkSync(p)).toBe(h.linkname);
      if (h.type === 'hardlink') expect(st.ino).toBe(lstatSync(join(dir, h.linkname)).ino);
    }
  });

  it('tar-stream reads the same headers and every pax record', async () => {
    const ex = extract();
    const got: { h: Header; body: Buffer }[] = [];
    const done = (async () => {
      for await (const entry of ex) {
        const parts: Buffer[] = [];
        for await (const c of entry) parts.push(c as Buffer);
        got.push({ h: entry.header, body: Buffer.concat(parts) });
      }
    })();
    ex.end(archive);
    await done;
    expect(got).toHaveLength(SPECS.length);
    for (const [i, { h, body }] of SPECS.entries()) {
      const e = got[i] as { h: Header; body: Buffer };
      expect(e.h.name).toBe(outName(h));
      expect(e.h.type).toBe(TAR_STREAM_TYPE[h.type]);
      expect((e.h.mode ?? 0) & 0o7777).toBe(h.mode);
      const pax = (e.h.pax ?? {}) as Record<string, string>;
      // tar-stream keeps pax uid/gid as records and leaves the (empty) header field at 0
      expect(Number(pax.uid ?? e.h.uid)).toBe(h.uid);
      expect(Number(pax.gid ?? e.h.gid)).toBe(h.gid);
      expect(e.h.mtime?.getTime()).toBe(h.mtime * 1000);
      expect(e.h.linkname ?? '').toBe(h.linkname);
      expect([e.h.devmajor, e.h.devminor]).toEqual([h.devmajor, h.devminor]);
      expect(e.body.equals(body ?? Buffer.alloc(0))).toBe(true);
      if (h.pax) expect(pax).toMatchObject(h.pax);
    }
  });

  it('TarScanner reads back every field, with exactly the custom pax records', () => {
    const entries = scan(archive);
    expect(entries).toHaveLength(SPECS.length);
    for (const [i, { h, body }] of SPECS.entries()) {
      const e = entries[i] as ScannedEntry;
      const { offset, ...fields } = e;
      const want: TarHeader = { ...h, name: outName(h), size: body?.length ?? 0 };
      if (!h.pax) delete want.pax;
      expect(fields, h.name).toEqual(want);
      expect(archive.subarray(offset, offset + e.size).equals(body ?? Buffer.alloc(0))).toBe(true);
    }
    // and again through odd chunk sizes
    const r = prng(7);
    expect(scan(archive, () => 1 + Math.floor(r() * 700))).toEqual(entries);
  });

  it('a directory name given with its trailing slash is not doubled', () => {
    const [e] = scan(Buffer.concat([encodeTarHeader(header({ name: 'x/y/', type: 'dir' })), TAR_END]));
    expect(e?.name).toBe('x/y/');
    expect(e?.type).toBe('dir');
  });
});

// ---- pax records ----

/** A pax record, its length found by trying every digit count (independent of the encoder). */
function rec(key: string, value: string): string {
  const body = Buffer.byteLength(` ${key}=${value}\n`);
  for (let digits = 1; ; digits++) {
    const len = body + digits;
    if (String(len).length === digits) return `${len} ${key}=${value}\n`;
  }
}

describe('parsePax', () => {
  it('reads multi-byte UTF-8 keys and values, with lengths in bytes', () => {
    const records = { path: 'usr/share/ünïcødé/文件.txt', 'LINUXKIT.note': '😀 ok', 'SCHILY.xattr.user.ü': 'ß' };
    const text = Object.entries(records)
      .map(([k, v]) => rec(k, v))
      .join('');
    expect(Buffer.byteLength(text)).toBeGreaterThan(text.length); // the test needs bytes ≠ characters
    expect(parsePax(Buffer.from(text))).toEqual(records);
  });

  it('reads records on either side of a digit boundary of the length prefix', () => {
    const v93 = 'v'.repeat(93);
    const v94 = 'w'.repeat(94);
    // ` k=<93>\n` is 97 bytes: "99 " + 97 and "100 " + 97 both describe it correctly
    const text = `99 a=${v93}\n100 b=${v93}\n101 c=${v94}\n9 d=abcd\n11 e=abcde\n`;
    expect(parsePax(Buffer.from(text))).toEqual({ a: v93, b: v93, c: v94, d: 'abcd', e: 'abcde' });
  });

  it('keeps `=` and newlines inside values (records are delimited by length)', () => {
    const text = rec('k', 'a=b\nc') + rec('z', '');
    expect(parsePax(Buffer.from(text))).toEqual({ k: 'a=b\nc', z: '' });
  });

  it('throws on a length that is not a number, is zero, or runs past the data', () => {
    for (const bad of ['x k=v\n', '0 k=v\n', '-5 k=v\n', '50 k=v\n', `${rec('a', 'b')}99 k=v\n`]) {
      expect(() => parsePax(Buffer.from(bad)), JSON.stringify(bad)).toThrow(TarFormatError);
    }
  });

  // A length prefix one short of the record must not cut the value ("ab"): Go's archive/tar
  // (what LinuxKit reads layers with) and GNU tar both reject a record not ending in "\n".
  it('throws on a length prefix that does not end the record at its newline', () => {
    expect(() => parsePax(Buffer.from('11 path=abc\n'))).toThrow(TarFormatError);
  });
});

describe('old v7 headers (no magic, type flag NUL)', () => {
  function v7(name: string, size: number, mode: number): Buffer {
    const b = Buffer.alloc(512);
    b.write(name, 0, 'latin1');
    b.write(`${mode.toString(8).padStart(7, '0')}\0`, 100, 'latin1');
    b.write('0000012\0', 108, 'latin1');
    b.write('0000034\0', 116, 'latin1');
    b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    b.write('11145401322\0', 136, 'latin1');
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const v of b) sum += v;
    b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    return b;
  }
  const archive = () =>
    Buffer.concat([v7('olddir/', 0, 0o755), v7('olddir/file', 3, 0o600), Buffer.from('abc'), tarPadding(3), TAR_END]);

  it('a name with a trailing slash is a directory, as GNU tar reads it', () => {
    const file = join(work, 'v7-handmade.tar');
    writeFileSync(file, archive());
    const listing = tar(['--numeric-owner', '-tvf', file]).trimEnd().split('\n');
    expect(listing[0]).toMatch(/^drwxr-xr-x 10\/28 .* olddir\/$/);
    expect(listing[1]).toMatch(/^-rw------- 10\/28 +3 .* olddir\/file$/);
    const entries = scan(archive());
    expect(entries.map(({ name, type, mode, uid, gid, size }) => ({ name, type, mode, uid, gid, size }))).toEqual([
      { name: 'olddir/', type: 'dir', mode: 0o755, uid: 10, gid: 28, size: 0 },
      { name: 'olddir/file', type: 'file', mode: 0o600, uid: 10, gid: 28, size: 3 },
    ]);
    expect(entries[1]?.mtime).toBe(0o11145401322);
  });
});

// Real v7 tar wrote its numbers right-aligned with leading spaces (printf "%6o "); GNU tar lists
// such headers, and so must the scanner.
describe('space-padded numeric fields (historic v7/ustar writers)', () => {
  function spacePadded(): Buffer {
    const b = Buffer.alloc(512);
    b.write('old.txt', 0, 'latin1');
    b.write('   644 \0', 100, 'latin1');
    b.write('     0 \0', 108, 'latin1');
    b.write('     0 \0', 116, 'latin1');
    b.write('          3 ', 124, 'latin1');
    b.write('11145401322 ', 136, 'latin1');
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const v of b) sum += v;
    b.write(`${sum.toString(8).padStart(6, ' ')}\0 `, 148, 'latin1');
    return Buffer.concat([b, Buffer.from('abc'), tarPadding(3), TAR_END]);
  }

  it('GNU tar reads the hand-made header (the fixture is a valid archive)', () => {
    const file = join(work, 'spaces.tar');
    writeFileSync(file, spacePadded());
    expect(tar(['--numeric-owner', '-tvf', file])).toMatch(/^-rw-r--r-- 0\/0 +3 .* old\.txt$/m);
  });

  it('TarScanner reads it too', () => {
    const [e] = scan(spacePadded());
    expect(e).toMatchObject({ name: 'old.txt', mode: 0o644, size: 3 });
  });
});
