// Rules of LinuxKit's ImageTar (moby/build/image.go), its kernel filter and apk database merge
// (moby/build/build.go, moby/apk_tarwriter.go), on small stand-in image filesystems.

import { describe, expect, it } from 'vitest';
import {
  expandImageTree,
  expandKernel,
  type ImageFile,
  type LayoutEntry,
  mergeApkDatabases,
} from '../src/assemble/index.ts';

const MTIME = 1492533000;
const OLD = 1000;
const origin = { source: 'docker.io/linuxkit/getty:abc', location: 'services[0]' };
const f = (path: string, type: ImageFile['type'] = 'file', extra: Partial<ImageFile> = {}): ImageFile => ({
  path,
  type,
  mode: type === 'dir' ? 0o755 : 0o644,
  uid: 0,
  gid: 0,
  mtime: OLD,
  ...extra,
});
const tree = (files: ImageFile[], prefix = 'containers/services/getty/lower/', resolvSymlink?: string) =>
  expandImageTree({ kind: 'imageTree', image: 'linuxkit/getty:abc', prefix, origin, resolvSymlink }, files, MTIME);
const text = (e: LayoutEntry | undefined) =>
  e?.source?.kind === 'bytes' ? new TextDecoder().decode(e.source.data) : undefined;
const HOSTS =
  '127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n';

describe('image tree', () => {
  it('every path is put below the prefix and a regular file reads from the image layer', () => {
    const out = tree([f('bin', 'dir'), f('bin/sh', 'file', { mode: 0o755 })], 'p/');
    expect(out.slice(0, 2)).toEqual([
      { ...f('bin', 'dir'), path: 'p/bin', origin },
      {
        ...f('bin/sh', 'file', { mode: 0o755 }),
        path: 'p/bin/sh',
        origin,
        source: { kind: 'layer', image: 'linuxkit/getty:abc', path: 'bin/sh' },
      },
    ]);
  });

  it('drops .dockerenv, Dockerfile, dev/console and etc/hostname', () => {
    const out = tree(
      [f('.dockerenv'), f('Dockerfile'), f('dev', 'dir'), f('dev/console', 'char'), f('etc', 'dir'), f('etc/hostname')],
      '',
    );
    const ps = out.map((e) => e.path);
    for (const gone of ['.dockerenv', 'Dockerfile', 'dev/console', 'etc/hostname']) expect(ps).not.toContain(gone);
  });

  it('dev/pts and dev/shm are dropped only when not directories (LinuxKit compares tar names, where directories end in /)', () => {
    const asDirs = tree(
      [f('dev', 'dir'), f('dev/pts', 'dir', { mode: 0o700 }), f('dev/shm', 'dir', { mode: 0o1777 })],
      '',
    );
    expect(asDirs.filter((e) => e.path === 'dev/shm')).toEqual([
      { ...f('dev/shm', 'dir', { mode: 0o1777 }), mtime: MTIME, origin },
    ]);
    const asFiles = tree([f('dev', 'dir'), f('dev/shm', 'symlink', { linkname: '/run/shm' })], '');
    expect(asFiles.filter((e) => e.path === 'dev/shm')).toEqual([
      { path: 'dev/shm', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: MTIME, origin },
    ]);
  });

  it("etc/hosts gets LinuxKit's fixed contents and fixed mtime, keeping the image's mode, and is written again at the end", () => {
    const out = tree([f('etc', 'dir'), f('etc/hosts', 'file', { mode: 0o600, uid: 5 })], '');
    const hosts = out.filter((e) => e.path === 'etc/hosts');
    expect(hosts).toHaveLength(2);
    expect(hosts[0]).toMatchObject({ mode: 0o600, uid: 5, mtime: MTIME });
    expect(text(hosts[0])).toBe(HOSTS);
    expect(hosts[1]).toMatchObject({ mode: 0o644, uid: 0, mtime: MTIME });
    expect(text(hosts[1])).toBe(HOSTS);
  });

  it('etc/resolv.conf says none is configured, except in init images where it links to /run/resolvconf/resolv.conf', () => {
    const plain = tree([f('etc/resolv.conf')], '');
    expect(text(plain.find((e) => e.path === 'etc/resolv.conf'))).toBe('\n# no resolv.conf configured\n');
    const init = tree([f('etc/resolv.conf')], '', '/run/resolvconf/resolv.conf');
    for (const e of init.filter((x) => x.path === 'etc/resolv.conf')) {
      expect(e).toMatchObject({ type: 'symlink', linkname: '/run/resolvconf/resolv.conf', mtime: MTIME });
    }
  });

  it('missing mount points and files are added at the end in sorted order: dev, dev/pts, dev/shm, etc, etc/hosts, etc/mtab → /proc/mounts, etc/resolv.conf, proc, sys', () => {
    const out = tree([f('bin', 'dir')], 'x/');
    expect(out.slice(1).map((e) => [e.path, e.type, e.mode, e.linkname])).toEqual([
      ['x/dev', 'dir', 0o755, undefined],
      ['x/dev/pts', 'dir', 0o755, undefined],
      ['x/dev/shm', 'dir', 0o755, undefined],
      ['x/etc', 'dir', 0o755, undefined],
      ['x/etc/hosts', 'file', 0o644, undefined],
      ['x/etc/mtab', 'symlink', 0o755, '/proc/mounts'],
      ['x/etc/resolv.conf', 'file', 0o644, undefined],
      ['x/proc', 'dir', 0o755, undefined],
      ['x/sys', 'dir', 0o755, undefined],
    ]);
    expect(out.slice(1).every((e) => e.mtime === MTIME && e.uid === 0 && e.gid === 0)).toBe(true);
  });

  it('mount points present in the image keep their mode and owner but get the fixed mtime, and are not added again', () => {
    const out = tree([f('proc', 'dir', { mode: 0o555 }), f('bin', 'dir')], '');
    const procs = out.filter((e) => e.path === 'proc');
    expect(procs).toEqual([{ ...f('proc', 'dir', { mode: 0o555 }), mtime: MTIME, origin }]);
    expect(out.find((e) => e.path === 'bin')?.mtime).toBe(OLD);
  });

  it('hardlink targets are moved below the prefix too', () => {
    const out = tree([f('bin/a'), f('bin/b', 'hardlink', { linkname: 'bin/a' })], 'p/');
    expect(out.find((e) => e.path === 'p/bin/b')?.linkname).toBe('p/bin/a');
  });
});

describe('kernel image', () => {
  const step = (over = {}) => ({
    kind: 'kernel' as const,
    image: 'linuxkit/kernel:6.12.59',
    cmdline: 'console=ttyS0',
    kernelPath: 'kernel',
    tarPath: 'kernel.tar',
    origin: { source: 'docker.io/linuxkit/kernel:6.12.59', location: 'kernel' },
    ...over,
  });

  it("at the kernel: boot/, boot/cmdline with the cmdline, boot/kernel with the image file's mode; the tar is unpacked as is; other files are ignored", () => {
    const out = expandKernel(
      step(),
      [f('System.map'), f('kernel', 'file', { mode: 0o600 }), f('kernel.tar'), f('kernel-dev.tar')],
      MTIME,
    );
    expect(out.entries.map((e) => ('kind' in e ? `unpack:${e.path}` : `${e.path}:${e.mode.toString(8)}`))).toEqual([
      'boot:755',
      'boot/cmdline:644',
      'boot/kernel:600',
      'unpack:kernel.tar',
    ]);
    expect(text(out.entries[1] as LayoutEntry)).toBe('console=ttyS0');
  });

  it('ucode before the kernel makes boot/ once and is copied to boot/ucode.cpio', () => {
    const out = expandKernel(
      step({ ucodePath: 'intel-ucode.cpio' }),
      [f('intel-ucode.cpio'), f('kernel'), f('kernel.tar')],
      MTIME,
    );
    const names = out.entries.map((e) => ('kind' in e ? e.path : e.path));
    expect(names).toEqual(['boot', 'boot/ucode.cpio', 'boot/cmdline', 'boot/kernel', 'kernel.tar']);
  });

  it('a missing kernel, or a missing kernel tar unless tar: none, is an error', () => {
    expect(() => expandKernel(step(), [f('kernel.tar')], MTIME)).toThrow(/did not find kernel file "kernel"/);
    expect(() => expandKernel(step(), [f('kernel')], MTIME)).toThrow(/did not find kernel tar "kernel.tar"/);
    expect(expandKernel(step({ tarPath: undefined }), [f('kernel')], MTIME).entries).toHaveLength(3);
  });
});

describe('apk database of init images', () => {
  it('is each copy followed by two newlines, and only written for two or more copies', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(new TextDecoder().decode(mergeApkDatabases([enc('P:a'), enc('P:b')]))).toBe('P:a\n\nP:b\n\n');
    expect(mergeApkDatabases([enc('P:a')])).toBeUndefined();
  });
});
