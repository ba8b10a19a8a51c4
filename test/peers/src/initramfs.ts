// Boot fixtures for the qemu peer: the machine's Debian kernel, a busybox initramfs written by a
// small newc (SVR4 "new ASCII") cpio writer, and a BIOS-bootable isolinux ISO of the two.
// Everything is deterministic: fixed mtime, uid/gid 0, inode numbers in write order, sorted
// entries, gzip without a timestamp — the same inputs give the same bytes.
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runCommand } from './process.ts';

const BUSYBOX = '/bin/busybox';

/** The newest `/boot/vmlinuz-*` of this machine (Debian's linux-image-amd64). */
export function debianKernel(bootDir = '/boot'): string {
  let names: string[] = [];
  try {
    names = readdirSync(bootDir).filter((n) => n.startsWith('vmlinuz-'));
  } catch {
    /* reported below */
  }
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const newest = names.at(-1);
  if (!newest) {
    throw new Error(`no kernel found at ${bootDir}/vmlinuz-*: apt-get install linux-image-amd64`);
  }
  const path = join(bootDir, newest);
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new Error(`kernel ${path} is not readable (${(err as Error).message})`);
  }
  return path;
}

/** One entry of a newc archive. Paths are relative to the archive root ("bin/sh", not "/bin/sh"). */
export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
/** LinuxKit's fixed timestamp, 2017-04-18T16:30:00Z. */
const FIXED_MTIME = 1492533000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4);
}

/** Serialises entries (in the order given) as an uncompressed newc archive with its trailer. */
export function writeNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const put = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0], nlink = 1) => {
    const nameBuf = Buffer.from(`${name}\0`, 'utf8');
    const header =
      '070701' +
      [ino++, mode, 0, 0, nlink, FIXED_MTIME, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0]
        .map(hex8)
        .join('');
    parts.push(Buffer.from(header, 'ascii'), nameBuf, pad4(110 + nameBuf.length), data, pad4(data.length));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name || name.split('/').includes('..')) throw new Error(`cpio: bad path ${JSON.stringify(e.path)}`);
    switch (e.type) {
      case 'dir':
        put(name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), [0, 0], 2);
        break;
      case 'file':
        put(name, S_IFREG | (e.mode ?? 0o644), e.data);
        break;
      case 'symlink':
        put(name, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'));
        break;
      case 'char':
        put(name, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]);
        break;
    }
  }
  ino = 0;
  put('TRAILER!!!', 0, Buffer.alloc(0), [0, 0], 1);
  return Buffer.concat(parts);
}

export interface KernelModules {
  /** The .ko files, at their /lib/modules/<version>/… paths, for `extraFiles`. */
  files: ExtraFile[];
  /** Shell lines that insmod them, dependencies first. */
  load: string;
}

/**
 * The modules `names` (e.g. ["virtio_net", "virtio_pci"]) of the kernel `kernel` with all their
 * dependencies (from modules.dep), ready for a busybox initramfs: Debian builds virtio and most
 * NIC drivers as modules, so a guest needs them for `hostForwards` to reach anything.
 */
export function debianKernelModules(names: readonly string[], kernel: string = debianKernel()): KernelModules {
  const version = kernel.replace(/^.*\/vmlinuz-/, '');
  const root = `/lib/modules/${version}`;
  let depText: string;
  try {
    depText = readFileSync(join(root, 'modules.dep'), 'utf8');
  } catch {
    throw new Error(`${root}/modules.dep not found: are the modules of ${kernel} installed (linux-image-${version})?`);
  }
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of depText.split('\n')) {
    const [mod, rest] = line.split(':');
    if (!mod || rest === undefined) continue;
    deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
    byName.set(
      posix
        .basename(mod)
        .replace(/\.ko(\.[a-z]+)?$/, '')
        .replace(/-/g, '_'),
      mod,
    );
  }
  const order: string[] = [];
  const visit = (mod: string, path: string[]) => {
    if (order.includes(mod)) return;
    if (path.includes(mod)) throw new Error(`module dependency cycle: ${[...path, mod].join(' -> ')}`);
    for (const d of deps.get(mod) ?? []) visit(d, [...path, mod]);
    order.push(mod);
  };
  for (const n of names) {
    const mod = byName.get(n.replace(/-/g, '_'));
    if (!mod) throw new Error(`kernel module ${n} not found in ${root}/modules.dep (built in, or not built?)`);
    visit(mod, []);
  }
  const compressed = order.filter((m) => !m.endsWith('.ko'));
  if (compressed.length > 0) throw new Error(`compressed modules are not supported: ${compressed.join(', ')}`);
  return {
    files: order.map((m) => ({ path: `${root}/${m}`, source: join(root, m), mode: 0o644 })),
    load: order.map((m) => `insmod ${root}/${m}`).join('\n'),
  };
}

/** A file to add to the initramfs: literal content, or a copy of a host file. */
export interface ExtraFile {
  /** Path inside the initramfs, e.g. "/etc/motd". Parent directories are created. */
  path: string;
  content?: string | Buffer;
  /** Host file to copy (when `content` is absent). */
  source?: string;
  /** Permission bits; default 0o644, or 0o755 for a copied host file that is executable. */
  mode?: number;
}

export interface BusyboxInitramfsOptions {
  /** Directory the initrd is written to (e.g. a tempDir of the test). */
  dir: string;
  /** Shell script for /init. A `#!/bin/sh` line is added when it has no shebang. */
  init: string;
  extraFiles?: ExtraFile[];
  /** File name inside `dir`; default "initrd.img". */
  name?: string;
}

/**
 * Writes a gzip'd newc initramfs with Debian's static busybox at /bin/busybox, a symlink per
 * applet in /bin (so /bin/sh, /bin/poweroff … work without `--install`), /dev/console and
 * /dev/null nodes (the kernel opens /dev/console for /init's stdio before anything is mounted),
 * the usual mount points, and `init` as /init. Returns the initrd's path.
 */
export async function makeBusyboxInitramfs(opts: BusyboxInitramfsOptions): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} not found: apt-get install busybox-static`);
  const applets = (await runCommand(BUSYBOX, ['--list'])).stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'busybox' && !s.includes('/'));
  if (!applets.includes('sh')) throw new Error(`${BUSYBOX} has no sh applet — is it busybox-static?`);

  const files = new Map<string, CpioEntry>();
  const dirs = new Set<string>();
  const addDir = (p: string) => {
    for (let d = p; d && d !== '.' && d !== '/'; d = posix.dirname(d)) dirs.add(d);
  };
  const add = (e: CpioEntry) => {
    const p = e.path.replace(/^\/+/, '');
    addDir(posix.dirname(p));
    files.set(p, { ...e, path: p });
  };

  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'tmp', 'run', 'etc', 'root', 'mnt']) {
    addDir(d);
  }
  add({ type: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 });
  for (const a of applets) add({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  add({ type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  add({ type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
  const script = opts.init.startsWith('#!') ? opts.init : `#!/bin/sh\n${opts.init}`;
  add({ type: 'file', path: 'init', data: Buffer.from(script, 'utf8'), mode: 0o755 });

  for (const f of opts.extraFiles ?? []) {
    let data: Buffer;
    let mode = f.mode;
    if (f.content !== undefined) {
      data = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content, 'utf8');
    } else if (f.source !== undefined) {
      data = readFileSync(f.source);
      if (mode === undefined) mode = statSync(f.source).mode & 0o111 ? 0o755 : 0o644;
    } else {
      throw new Error(`extra file ${f.path}: give content or source`);
    }
    add({ type: 'file', path: f.path, data, mode: mode ?? 0o644 });
  }

  const entries: CpioEntry[] = [
    ...[...dirs].filter((d) => !files.has(d)).map((d): CpioEntry => ({ type: 'dir', path: d })),
    ...files.values(),
  ];
  // Sorted by path, parents therefore before children; deterministic regardless of insert order.
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  mkdirSync(opts.dir, { recursive: true });
  const out = join(opts.dir, opts.name ?? 'initrd.img');
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, gzipSync(writeNewc(entries), { level: 6 }));
  renameSync(tmp, out);
  return out;
}

export interface IsolinuxIsoOptions {
  dir: string;
  kernel: string;
  initrd: string;
  append?: string;
  /** File name inside `dir`; default "boot.iso". */
  name?: string;
}

const ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin';
const ISOHDPFX = '/usr/lib/ISOLINUX/isohdpfx.bin';
const LDLINUX = '/usr/lib/syslinux/modules/bios/ldlinux.c32';

/**
 * A BIOS-bootable (El Torito, isohybrid) ISO that boots `kernel` + `initrd` through isolinux,
 * made with xorriso (PEERS.md recipe). Fixture for boot checks; the real image pipeline has its
 * own formatter. Returns the ISO's path.
 */
export async function makeIsolinuxIso(opts: IsolinuxIsoOptions): Promise<string> {
  for (const [f, pkg] of [
    [ISOLINUX_BIN, 'isolinux'],
    [ISOHDPFX, 'isolinux'],
    [LDLINUX, 'syslinux-common'],
  ] as const) {
    if (!existsSync(f)) throw new Error(`${f} not found: apt-get install ${pkg}`);
  }
  const tree = join(opts.dir, 'iso-tree');
  mkdirSync(join(tree, 'isolinux'), { recursive: true });
  mkdirSync(join(tree, 'boot'), { recursive: true });
  copyFileSync(ISOLINUX_BIN, join(tree, 'isolinux', 'isolinux.bin'));
  copyFileSync(LDLINUX, join(tree, 'isolinux', 'ldlinux.c32'));
  copyFileSync(opts.kernel, join(tree, 'boot', 'kernel'));
  copyFileSync(opts.initrd, join(tree, 'boot', 'initrd.img'));
  writeFileSync(
    join(tree, 'isolinux', 'isolinux.cfg'),
    [
      'DEFAULT linux',
      'PROMPT 0',
      'TIMEOUT 0',
      'LABEL linux',
      '  KERNEL /boot/kernel',
      `  APPEND initrd=/boot/initrd.img ${opts.append ?? 'console=ttyS0 panic=-1'}`,
      '',
    ].join('\n'),
  );
  const out = join(opts.dir, opts.name ?? 'boot.iso');
  await runCommand(
    'xorriso',
    [
      '-as',
      'mkisofs',
      '-quiet',
      '-o',
      out,
      '-V',
      'STELE_TEST',
      '-isohybrid-mbr',
      ISOHDPFX,
      '-c',
      'isolinux/boot.cat',
      '-b',
      'isolinux/isolinux.bin',
      '-no-emul-boot',
      '-boot-load-size',
      '4',
      '-boot-info-table',
      '-r',
      '-J',
      tree,
    ],
    { timeoutMs: 120_000 },
  );
  return out;
}

/** Lists an initrd's member names with the system cpio (a cross-check of the newc writer). */
export function listInitramfs(initrd: string): string[] {
  const raw = execFileSync('sh', ['-c', 'gzip -dc "$1" | cpio -it --quiet', 'sh', initrd], { encoding: 'utf8' });
  return raw.split('\n').filter(Boolean);
}
