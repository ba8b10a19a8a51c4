// The initrd as a plan: an ordered list of steps, each either one concrete entry or a
// placeholder the writer expands from an image (see rootfs.ts for the pure expanders).

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export type EntrySource =
  /** Literal contents. */
  | { kind: 'bytes'; data: Uint8Array }
  /** The contents of `path` in the merged filesystem of `image` (a reference as in the manifest). */
  | { kind: 'layer'; image: string; path: string }
  /** A file on the build host (a `files` entry's `source`, as the caller resolved it). */
  | { kind: 'hostFile'; path: string };

/** LinuxKit's PAX records on every entry: LINUXKIT.source and LINUXKIT.location. */
export interface EntryOrigin {
  /** The image reference, or `linuxkit.files`, `linuxkit.volumes`. */
  source: string;
  /** Where in the manifest it comes from: `kernel`, `init[0]`, `onboot[2]`, `files[1]` … */
  location: string;
}

/** One filesystem entry: what an image's merged filesystem holds, and what the initrd gets. */
export interface ImageFile {
  /** Relative path, no leading './' or '/', no trailing slash. */
  path: string;
  type: EntryType;
  /** Permission bits (including setuid/setgid/sticky), without the file type. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target, or for a hardlink the path (in this archive) it links to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

export interface LayoutEntry extends ImageFile {
  /** Contents of a `file`; absent means empty. */
  source?: EntrySource;
  origin: EntryOrigin;
}

export type LayoutStep =
  | { kind: 'entry'; entry: LayoutEntry }
  /**
   * The merged root filesystem of `image`, each path put below `prefix` ('' or ending in '/'),
   * with LinuxKit's fix-ups (see expandImageTree): some files dropped, /etc/hosts and
   * /etc/resolv.conf replaced, missing mount points created.
   */
  | { kind: 'imageTree'; image: string; prefix: string; origin: EntryOrigin; resolvSymlink?: string }
  /** From a kernel image: boot/kernel, boot/cmdline, boot/ucode.cpio and the kernel tar (see expandKernel). */
  | {
      kind: 'kernel';
      image: string;
      cmdline: string;
      /** Name of the kernel file in the image (`binary`, default `kernel`). */
      kernelPath: string;
      /** Name of the tar of modules etc. to unpack at `/` (default `kernel.tar`; absent with `tar: none`). */
      tarPath?: string;
      /** Name of the microcode cpio to copy to boot/ucode.cpio, if any. */
      ucodePath?: string;
      origin: EntryOrigin;
    }
  /**
   * When more than one init image has lib/apk/db/installed: write that file again, as the
   * concatenation of each image's copy followed by two newlines (mergeApkDatabases).
   */
  | { kind: 'apkDatabase'; images: string[]; mtime: number; origin: EntryOrigin }
  /** A `format: oci` volume: the image (all or the listed platforms) as an OCI layout below prefix. */
  | { kind: 'ociLayout'; image: string; prefix: string; platforms: string[]; origin: EntryOrigin };

export interface EntryDefaults {
  mtime: number;
  origin: EntryOrigin;
}

export function dirEntry(path: string, d: EntryDefaults, mode = 0o755, uid = 0, gid = 0): LayoutStep {
  return { kind: 'entry', entry: { path, type: 'dir', mode, uid, gid, mtime: d.mtime, origin: d.origin } };
}

export function fileEntry(
  path: string,
  data: Uint8Array,
  d: EntryDefaults,
  mode = 0o644,
  uid = 0,
  gid = 0,
): LayoutStep {
  return {
    kind: 'entry',
    entry: { path, type: 'file', mode, uid, gid, mtime: d.mtime, source: { kind: 'bytes', data }, origin: d.origin },
  };
}

/** The directories leading to and including `prefix` (LinuxKit writes them before each bundle). */
export function prefixDirs(prefix: string, d: EntryDefaults): LayoutStep[] {
  const parts = prefix.split('/').filter((p) => p !== '');
  return parts.map((_, i) => dirEntry(parts.slice(0, i + 1).join('/'), d));
}
