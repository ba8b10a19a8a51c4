// Initrd layout rules of LinuxKit's moby/build (Build, outputImage, ImageBundle, filesystem),
// checked on the example manifests.

import { expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  type LayoutEntry,
  type LayoutPlan,
  type LayoutStep,
  leadingDirMode,
  type OsManifest,
  planLayout,
} from '../src/assemble/index.ts';
import { describeCorpus, example, loadManifest, standInConfig } from './assemble-fixtures.ts';

/** 2017-04-18T16:30:00Z, LinuxKit's defaultModTime. */
const LINUXKIT_MTIME = Date.UTC(2017, 3, 18, 16, 30, 0) / 1000;

const plan = (m: OsManifest, extra: Partial<Parameters<typeof planLayout>[0]> = {}): LayoutPlan =>
  planLayout({ manifest: m, imageConfig: standInConfig, ...extra });

const entries = (p: LayoutPlan): LayoutEntry[] => p.steps.flatMap((s) => (s.kind === 'entry' ? [s.entry] : []));
const paths = (p: LayoutPlan) => entries(p).map((e) => e.path);
const entry = (p: LayoutPlan, path: string) =>
  entries(p)
    .filter((e) => e.path === path)
    .at(-1);
const trees = (p: LayoutPlan) =>
  p.steps.flatMap((s) =>
    s.kind === 'imageTree' ? [{ image: s.image, prefix: s.prefix, resolv: s.resolvSymlink }] : [],
  );
const text = (e: LayoutEntry | undefined) =>
  e?.source?.kind === 'bytes' ? new TextDecoder().decode(e.source.data) : undefined;

describeCorpus('bundle directories', () => {
  it('onboot bundles are containers/onboot/NNN-name, NNN the zero-padded list index; services are containers/services/name (docker.yml)', () => {
    const p = plan(example('docker'));
    expect(p.containers.map((c) => c.dir)).toEqual([
      'containers/onboot/000-sysctl',
      'containers/onboot/001-sysfs',
      'containers/onboot/002-format',
      'containers/onboot/003-mount',
      'containers/services/getty',
      'containers/services/rngd',
      'containers/services/dhcpcd',
      'containers/services/ntpd',
      'containers/services/docker',
    ]);
  });

  it('onshutdown bundles are numbered within their own list (volumes.yml: 000-shutdown)', () => {
    const p = plan(example('volumes'));
    expect(p.containers.filter((c) => c.section === 'onshutdown').map((c) => c.dir)).toEqual([
      'containers/onshutdown/000-shutdown',
    ]);
  });

  it('a writable container unpacks its image in lower/ and gets empty tmp/ and rootfs/ after config.json (getty)', () => {
    const p = plan(example('minimal'));
    const dir = 'containers/services/getty';
    const own = paths(p).filter((x) => x.startsWith(`${dir}`));
    expect(own).toEqual([
      dir,
      `${dir}/lower`,
      `${dir}/config.json`,
      `${dir}/tmp`,
      `${dir}/rootfs`,
      `${dir}/runtime.json`,
    ]);
    expect(trees(p)).toContainEqual({
      image: 'linuxkit/getty:a86d74c8f89be8956330c3b115b0b1f2e09ef6e0',
      prefix: `${dir}/lower/`,
      resolv: undefined,
    });
    expect(entry(p, `${dir}/tmp`)).toMatchObject({ type: 'dir', mode: 0o755, uid: 0, gid: 0 });
    expect(entry(p, `${dir}/config.json`)).toMatchObject({ type: 'file', mode: 0o644 });
  });

  it('a readonly container (sysctl label) unpacks its image straight into rootfs/ with no lower/ or tmp/', () => {
    const p = plan(example('docker'));
    const dir = 'containers/onboot/000-sysctl';
    expect(paths(p).filter((x) => x.startsWith(dir))).toEqual([
      dir,
      `${dir}/rootfs`,
      `${dir}/config.json`,
      `${dir}/runtime.json`,
    ]);
    expect(trees(p).find((t) => t.prefix.startsWith(dir))?.prefix).toBe(`${dir}/rootfs/`);
  });

  it('the directories leading to a bundle are written before it: containers, containers/<section>, the bundle', () => {
    const p = plan(example('minimal'));
    const ps = paths(p);
    const at = ps.indexOf('containers/onboot/000-dhcpcd');
    expect(ps.slice(at - 2, at + 2)).toEqual([
      'containers',
      'containers/onboot',
      'containers/onboot/000-dhcpcd',
      'containers/onboot/000-dhcpcd/lower',
    ]);
  });

  it('runtime.json of a writable bundle starts with tmpfs on tmp/, its private remount and the overlay on rootfs/', () => {
    const p = plan(example('minimal'));
    const c = p.containers.find((x) => x.name === 'getty');
    const d = '/containers/services/getty';
    expect(c?.runtime.mounts.slice(0, 3)).toEqual([
      { destination: `${d}/tmp`, type: 'tmpfs', source: 'tmpfs' },
      { destination: `${d}/tmp`, options: ['remount', 'private'] },
      {
        destination: `${d}/rootfs`,
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${d}/lower`, `upperdir=${d}/tmp/upper`, `workdir=${d}/tmp/work`],
      },
    ]);
    expect(text(entry(p, 'containers/services/getty/runtime.json'))).toBe(c?.runtimeJson);
  });

  it('runtime.json of a readonly bundle starts with a bind of rootfs/ onto itself', () => {
    const c = plan(example('docker')).containers.find((x) => x.name === 'sysctl');
    expect(c?.runtime.mounts[0]).toEqual({
      destination: '/containers/onboot/000-sysctl/rootfs',
      source: '/containers/onboot/000-sysctl/rootfs',
      options: ['bind'],
    });
  });

  it("an image used twice is unpacked once; the later bundle binds the first one's filesystem (rngd in sshd.yml)", () => {
    const p = plan(example('sshd'));
    const rngdTrees = trees(p).filter((t) => t.image.startsWith('linuxkit/rngd:'));
    expect(rngdTrees).toEqual([
      { image: expect.any(String), prefix: 'containers/onboot/001-rngd1/rootfs/', resolv: undefined },
    ]);
    const later = p.containers.find((c) => c.dir === 'containers/services/rngd');
    expect(later?.shared).toBe(true);
    expect(later?.runtime.mounts[0]).toEqual({
      destination: '/containers/services/rngd/rootfs',
      source: '/containers/onboot/001-rngd1/rootfs',
      options: ['bind'],
    });
    // readonly and shared: an empty rootfs/ mount point is made
    expect(entry(p, 'containers/services/rngd/rootfs')).toMatchObject({ type: 'dir', mode: 0o755 });
  });

  it('config.json in the plan is the container config as text', () => {
    const p = plan(example('redis-os'));
    const c = p.containers.find((x) => x.name === 'redis');
    expect(JSON.parse(text(entry(p, 'containers/services/redis/config.json')) ?? '')).toEqual(
      JSON.parse(c?.configJson ?? ''),
    );
  });

  it('duplicate service names are an error', () => {
    const m = example('minimal');
    m.services?.push({ name: 'getty', image: 'linuxkit/getty:abc' });
    expect(() => plan(m)).toThrow(/services\[1\]: name: duplicate service name: getty/);
  });

  it('named ids: container names number from 100 across onboot, onshutdown, services (volumes.yml)', () => {
    const p = plan(example('volumes'));
    expect([...p.ids]).toEqual([
      ['sysctl', 100],
      ['dhcpcd', 101],
      ['shutdown', 102],
      ['getty', 103],
      ['rngd', 104],
      ['nginx', 105],
    ]);
  });
});

describeCorpus('order of the initrd', () => {
  it('kernel, then init images (then apk database), volumes, onboot, onshutdown, services, files (volumes.yml)', () => {
    const p = plan(example('volumes'));
    const phase = (s: LayoutStep): string => {
      if (s.kind === 'kernel') return 'kernel';
      if (s.kind === 'apkDatabase') return 'apk';
      const loc = s.kind === 'entry' ? s.entry.origin.location : s.origin.location;
      return loc.replace(/\[\d+\]$/, '');
    };
    const order = p.steps.map(phase).filter((x, i, a) => i === 0 || a[i - 1] !== x);
    expect(order).toEqual(['kernel', 'init', 'apk', 'volume', 'onboot', 'onshutdown', 'services', 'files']);
  });

  it('init images are merged at / with resolv.conf a symlink to /run/resolvconf/resolv.conf', () => {
    const m = example('minimal');
    const p = plan(m);
    expect(trees(p).slice(0, 3)).toEqual(
      (m.init ?? []).map((image) => ({ image, prefix: '', resolv: '/run/resolvconf/resolv.conf' })),
    );
  });

  it('the kernel step takes `kernel` and `kernel.tar` by default and boot/cmdline from kernel.cmdline', () => {
    const p = plan(example('minimal'));
    expect(p.steps[0]).toMatchObject({
      kind: 'kernel',
      image: 'linuxkit/kernel:6.12.59',
      kernelPath: 'kernel',
      tarPath: 'kernel.tar',
      cmdline: 'console=tty0 console=ttyS0 console=ttyAMA0',
      origin: { source: 'docker.io/linuxkit/kernel:6.12.59', location: 'kernel' },
    });
    expect((p.steps[0] as { ucodePath?: string }).ucodePath).toBeUndefined();
  });

  it('kernel binary/tar/ucode override the names; tar: none means no kernel tar', () => {
    const m = example('minimal');
    m.kernel = { ...m.kernel, binary: 'bzImage', tar: 'none', ucode: 'intel-ucode.cpio' };
    expect(plan(m).steps[0]).toMatchObject({
      kernelPath: 'bzImage',
      tarPath: undefined,
      ucodePath: 'intel-ucode.cpio',
    });
  });
});

describeCorpus('mtime', () => {
  it('everything assembly creates has the fixed mtime 2017-04-18T16:30:00Z', () => {
    const p = plan(example('docker'));
    expect(new Set(entries(p).map((e) => e.mtime))).toEqual(new Set([LINUXKIT_MTIME]));
  });

  it('a given mtime (SOURCE_DATE_EPOCH) replaces it everywhere', () => {
    const p = plan(example('docker'), { mtime: 1700000000 });
    expect(new Set(entries(p).map((e) => e.mtime))).toEqual(new Set([1700000000]));
  });
});

describeCorpus('files', () => {
  const files = (p: LayoutPlan) => entries(p).filter((e) => e.origin.source === 'linuxkit.files');

  it('a file defaults to mode 0600 and a directory to 0700; leading directories get the mode with x bits added (docker.yml)', () => {
    const got = files(plan(example('docker'))).map((e) => [e.path, e.type, e.mode]);
    expect(got).toEqual([
      ['var', 'dir', leadingDirMode(0o700)],
      ['var/lib', 'dir', 0o700],
      ['var/lib/docker', 'dir', 0o700],
      ['etc', 'dir', 0o700],
      ['etc/docker', 'dir', 0o700],
      ['etc/docker/daemon.json', 'file', 0o600],
    ]);
    expect(leadingDirMode(0o644)).toBe(0o755);
    expect(leadingDirMode(0o600)).toBe(0o700);
    expect(leadingDirMode(0o640)).toBe(0o750);
    expect(text(files(plan(example('docker'))).at(-1))).toBe('{"debug": true}');
  });

  it('leading directories are written once per files section (wireguard.yml: etc, etc/wireguard once)', () => {
    const got = files(plan(example('wireguard'))).map((e) => e.path);
    expect(got).toEqual(['etc', 'etc/wireguard', 'etc/wireguard/wg0.conf', 'etc/wireguard/wg1.conf']);
  });

  it('an optional source that does not exist is skipped with its directories (sshd.yml)', () => {
    const missing = plan(example('sshd'), { sourceExists: () => false });
    expect(files(missing)).toEqual([]);
    const present = plan(example('sshd'), {
      sourceExists: () => true,
      resolveSource: (s) => s.replace('~', '/home/u'),
    });
    expect(files(present).map((e) => [e.path, e.mode])).toEqual([
      ['root', 0o700],
      ['root/.ssh', 0o700],
      ['root/.ssh/authorized_keys', 0o600],
    ]);
    expect(files(present).at(-1)?.source).toEqual({ kind: 'hostFile', path: '/home/u/.ssh/id_rsa.pub' });
  });

  it('metadata: yaml writes the manifest with expanded image references (volumes.yml)', () => {
    const m = example('volumes');
    const e = files(plan(m)).find((x) => x.path === 'etc/linuxkit-config');
    const doc = parse(text(e) ?? '') as OsManifest;
    expect(doc.kernel?.image).toBe('docker.io/linuxkit/kernel:6.12.59');
    expect(doc.onshutdown?.[0]?.image).toBe('docker.io/library/busybox:latest');
    expect(doc.services?.map((s) => s.name)).toEqual(m.services?.map((s) => s.name));
    expect(e?.mode).toBe(0o600);
  });

  it('metadata: json is Go-indented JSON of the manifest in LinuxKit field order', () => {
    const m = example('getty');
    m.files = [{ path: 'etc/linuxkit.json', metadata: 'json' }];
    const e = files(plan(m)).find((x) => x.path === 'etc/linuxkit.json');
    const doc = JSON.parse(text(e) ?? '');
    expect(Object.keys(doc)).toEqual(['kernel', 'init', 'onboot', 'onshutdown', 'services', 'files', 'volumes']);
    expect(doc.onshutdown).toBeNull();
    expect(text(e)?.split('\n')[1]).toBe('    "kernel": {');
  });

  it('uid and gid of a file may name a container (its number from 100)', () => {
    const m = example('getty');
    m.files = [{ path: 'etc/x', contents: 'x', uid: 'rngd', gid: 'sysctl', mode: '0640' }];
    const e = files(plan(m)).at(-1);
    expect([e?.uid, e?.gid, e?.mode]).toEqual([103, 100, 0o640]);
  });

  it('contents together with source, or no contents at all, is an error naming files[i]', () => {
    const m = example('getty');
    m.files = [{ path: 'a', contents: 'x', source: '/etc/hosts' }];
    expect(() => plan(m)).toThrow(/files\[0\]: source: specified contents and source for file: a/);
    m.files = [{ path: 'a' }];
    expect(() => plan(m)).toThrow(/files\[0\]: contents: contents of file \(a\) not specified/);
    m.files = [{ path: 'a', contents: 'x', mode: '0800' }];
    expect(() => plan(m)).toThrow(/files\[0\]: mode: cannot parse file mode as octal value/);
  });

  it('a symlink is written with its target; a leading slash is dropped from the path', () => {
    const m = example('getty');
    m.files = [{ path: '/etc/localtime', symlink: '/usr/share/zoneinfo/UTC' }];
    expect(files(plan(m)).at(-1)).toMatchObject({
      path: 'etc/localtime',
      type: 'symlink',
      linkname: '/usr/share/zoneinfo/UTC',
    });
  });
});

describeCorpus('volumes', () => {
  it('each volume gets lower/ (its image, if any), tmp/ and merged/ under containers/volumes/<name> (volumes.yml)', () => {
    const p = plan(example('volumes'));
    const vol = entries(p)
      .filter((e) => e.origin.location.startsWith('volume'))
      .map((e) => e.path);
    expect(vol).toContain('containers/volumes/blank/lower');
    expect(vol).toContain('containers/volumes/blank/tmp');
    expect(vol).toContain('containers/volumes/blank/merged');
    expect(trees(p)).toContainEqual({
      image: 'alpine:3.21',
      prefix: 'containers/volumes/alpine/lower/',
      resolv: '/run/resolvconf/resolv.conf',
    });
    expect(trees(p).some((t) => t.prefix.startsWith('containers/volumes/blank'))).toBe(false);
  });

  it("a bind whose source is a volume name mounts the volume's merged directory (nginx in volumes.yml)", () => {
    const c = plan(example('volumes')).containers.find((x) => x.name === 'nginx');
    const bind = (d: string) => c?.config.spec.mounts?.find((m) => m.destination === d);
    expect(bind('/blank')?.source).toBe('/containers/volumes/blank/merged');
    expect(bind('/alpine')?.source).toBe('/containers/volumes/alpine/merged');
    expect(bind('/etc/resolv.conf')?.source).toBe('/etc/resolv.conf');
  });

  it('binding a read-only volume without ro, or an undeclared volume, is an error', () => {
    const m = example('volumes');
    const vol = m.volumes?.find((v) => v.name === 'alpine');
    if (vol) vol.readonly = true;
    expect(() => plan(m)).toThrow(/binds\[2\]: volume 'alpine' is read-only/);
    const n = example('volumes');
    n.volumes = [];
    expect(() => plan(n)).toThrow(/binds\[1\]: bind source 'blank' is neither an absolute path nor a volume declared/);
  });
});

describeCorpus('corpus', () => {
  it.each([
    'examples/addbinds.yml',
    'examples/cadvisor.yml',
    'examples/hostmount-writeable-overlay.yml',
    'examples/docker-for-mac.yml',
    'examples/logging.yml',
    'examples/node_exporter.yml',
    'examples/wireguard.yml',
    'examples/swap.yml',
  ])('%s plans without errors and every bundle has config.json and runtime.json', (file) => {
    const p = plan(loadManifest(file), { sourceExists: () => false });
    for (const c of p.containers) {
      expect(paths(p)).toContain(`${c.dir}/config.json`);
      expect(paths(p)).toContain(`${c.dir}/runtime.json`);
    }
  });
});
