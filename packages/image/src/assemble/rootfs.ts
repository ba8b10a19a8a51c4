// Pure expanders for the plan's image placeholders. They take an image's merged filesystem as a
// list of entries in archive order (what unpacking the layers and applying whiteouts yields) and
// return concrete layout entries, following LinuxKit's ImageTar and kernel filter rules.

import type { EntryOrigin, EntryType, ImageFile, LayoutEntry, LayoutStep } from './entries.ts';

/** One entry of an image's merged filesystem (same shape as a layout entry, without source). */
export type { ImageFile } from './entries.ts';

type ImageTreeStep = Extract<LayoutStep, { kind: 'imageTree' }>;
type KernelStep = Extract<LayoutStep, { kind: 'kernel' }>;

// LinuxKit matches these against tar names, where a directory's name ends in '/': so `dev/pts` and
// `dev/shm` only drop non-directories, and the `…/` names below only match directories.
const DROPPED = new Set(['.dockerenv', 'Dockerfile', 'dev/console', 'dev/pts', 'dev/shm', 'etc/hostname']);

const HOSTS = `127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`;
const RESOLV_CONF = `
# no resolv.conf configured
`;
const REPLACED: Record<string, string> = { 'etc/hosts': HOSTS, 'etc/resolv.conf': RESOLV_CONF };

interface Ensured {
  type: EntryType;
  mode: number;
  linkname?: string;
}
/** Paths that must exist in every image tree, in the (sorted) order they are added when missing. */
const ENSURED: [string, Ensured][] = [
  ['dev/', { type: 'dir', mode: 0o755 }],
  ['dev/pts/', { type: 'dir', mode: 0o755 }],
  ['dev/shm/', { type: 'dir', mode: 0o755 }],
  ['etc/', { type: 'dir', mode: 0o755 }],
  ['etc/hosts', { type: 'file', mode: 0o644 }],
  ['etc/mtab', { type: 'symlink', mode: 0o755, linkname: '/proc/mounts' }],
  ['etc/resolv.conf', { type: 'file', mode: 0o644 }],
  ['proc/', { type: 'dir', mode: 0o755 }],
  ['sys/', { type: 'dir', mode: 0o755 }],
];
const ENSURED_NAMES = new Set(ENSURED.map(([name]) => name));

const tarName = (f: { path: string; type: EntryType }) => (f.type === 'dir' ? `${f.path}/` : f.path);
const bytes = (s: string) => new TextEncoder().encode(s);

/**
 * The entries an `imageTree` step stands for: every file of the image below the prefix (hardlink
 * targets too), except .dockerenv, Dockerfile, dev/console, dev/pts, dev/shm and etc/hostname;
 * etc/hosts and etc/resolv.conf get fixed contents (or resolv.conf becomes a symlink to
 * `resolvSymlink`, for init images); dev, dev/pts, dev/shm, etc, etc/mtab, proc and sys found in the
 * image get the fixed mtime, and those not found — and hosts and resolv.conf in any case — are
 * added at the end.
 */
export function expandImageTree(step: ImageTreeStep, files: Iterable<ImageFile>, mtime: number): LayoutEntry[] {
  const { prefix, origin, image } = step;
  const out: LayoutEntry[] = [];
  const found = new Set<string>();
  const resolvAsLink = (name: string) => name === 'etc/resolv.conf' && !!step.resolvSymlink;

  for (const f of files) {
    const name = tarName(f);
    if (DROPPED.has(name)) continue;
    const base = { ...f, path: prefix + f.path, origin };
    const replaced = REPLACED[name];
    if (replaced !== undefined) {
      if (resolvAsLink(name)) {
        out.push({ ...base, type: 'symlink', linkname: step.resolvSymlink, mtime });
      } else {
        out.push({
          ...base,
          type: 'file',
          linkname: undefined,
          mtime,
          source: { kind: 'bytes', data: bytes(replaced) },
        });
      }
      continue;
    }
    const entry: LayoutEntry = { ...base };
    if (ENSURED_NAMES.has(name)) {
      entry.mtime = mtime;
      found.add(name);
    }
    if (f.type === 'hardlink' && f.linkname !== undefined) entry.linkname = prefix + f.linkname;
    if (f.type === 'file') entry.source = { kind: 'layer', image, path: f.path };
    out.push(entry);
  }

  for (const [name, e] of ENSURED) {
    if (found.has(name)) continue;
    const path = prefix + name.replace(/\/$/, '');
    const entry: LayoutEntry = { path, type: e.type, mode: e.mode, uid: 0, gid: 0, mtime, origin };
    if (e.linkname) entry.linkname = e.linkname;
    if (resolvAsLink(name)) {
      entry.type = 'symlink';
      entry.linkname = step.resolvSymlink;
    } else if (REPLACED[name] !== undefined) {
      entry.source = { kind: 'bytes', data: bytes(REPLACED[name]) };
    }
    out.push(entry);
  }
  return out;
}

/** What a kernel step stands for, and the tar inside the image still to be unpacked at `/`. */
export interface KernelExpansion {
  entries: (LayoutEntry | { kind: 'unpackTar'; image: string; path: string; origin: EntryOrigin })[];
}

/**
 * The kernel image's files, in image order: at the kernel file, a `boot` directory (unless the
 * microcode already made it), `boot/cmdline` and `boot/kernel`; at the kernel tar, its contents
 * unpacked as they are; at the microcode file, `boot` (unless made) and `boot/ucode.cpio`.
 * Everything else in the kernel image is ignored. The kernel, and the tar unless `tar: none`,
 * must be present.
 */
export function expandKernel(step: KernelStep, files: Iterable<ImageFile>, mtime: number): KernelExpansion {
  const { origin, image } = step;
  const entries: KernelExpansion['entries'] = [];
  let sawKernel = false;
  let sawTar = false;
  let sawUcode = false;
  const boot = (): LayoutEntry => ({ path: 'boot', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, origin });
  for (const f of files) {
    if (f.path === step.kernelPath) {
      if (sawKernel) throw new Error(`kernel image ${image}: found more than one possible kernel image`);
      sawKernel = true;
      if (!sawUcode) entries.push(boot());
      entries.push({
        path: 'boot/cmdline',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime,
        source: { kind: 'bytes', data: bytes(step.cmdline) },
        origin,
      });
      entries.push({
        path: 'boot/kernel',
        type: 'file',
        mode: f.mode,
        uid: 0,
        gid: 0,
        mtime,
        source: { kind: 'layer', image, path: f.path },
        origin,
      });
    } else if (step.tarPath !== undefined && f.path === step.tarPath) {
      sawTar = true;
      entries.push({ kind: 'unpackTar', image, path: f.path, origin });
    } else if (step.ucodePath !== undefined && f.path === step.ucodePath) {
      sawUcode = true;
      if (!sawKernel) entries.push(boot());
      entries.push({
        path: 'boot/ucode.cpio',
        type: 'file',
        mode: f.mode,
        uid: 0,
        gid: 0,
        mtime,
        source: { kind: 'layer', image, path: f.path },
        origin,
      });
    }
  }
  if (!sawKernel) throw new Error(`kernel image ${image}: did not find kernel file ${JSON.stringify(step.kernelPath)}`);
  if (step.tarPath !== undefined && !sawTar) {
    throw new Error(
      `kernel image ${image}: did not find kernel tar ${JSON.stringify(step.tarPath)} (use tar: none if it has none)`,
    );
  }
  return { entries };
}

export const APK_DATABASE = 'lib/apk/db/installed';

/**
 * The apk database LinuxKit writes after the init images when more than one of them had one:
 * each copy followed by two newlines. Returns undefined for fewer than two (nothing is written).
 */
export function mergeApkDatabases(copies: Uint8Array[]): Uint8Array | undefined {
  if (copies.length < 2) return undefined;
  const total = copies.reduce((n, c) => n + c.length + 2, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of copies) {
    out.set(c, at);
    at += c.length;
    out[at++] = 0x0a;
    out[at++] = 0x0a;
  }
  return out;
}
