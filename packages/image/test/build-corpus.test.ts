// A dozen manifests of LinuxKit's own corpus, built to `tar` from stand-in images made here, and
// checked against an expectation written from LinuxKit's rules (moby/build/build.go, image.go,
// moby/config.go) — not from the assembly core — entry by entry (path, type, mode, owner, link
// target) and config.json field by field. Each rule checked is stated where it is applied.
//
// Where Stele departs from LinuxKit on purpose, the expectation follows Stele and the departure is
// listed in docs/linuxkit-differences.md (marked "DIFF" below).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { type OsManifest, parseImageRef, parseOsManifest } from '@stele/manifest';
import { Store } from '@stele/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../src/index.ts';
import { CORPUS, corpusPresent } from './assemble-fixtures.ts';
import { IMAGE_MTIME, type LayerEntry, readTar, storeImage, type TarEntry } from './build-images.ts';

type ImageEntry = NonNullable<OsManifest['onboot']>[number];
const MANIFESTS = [
  'examples/minimal.yml',
  'examples/docker-for-mac.yml',
  'examples/volumes.yml',
  'examples/sshd.yml',
  'examples/getty.yml',
  'examples/addbinds.yml',
  'examples/hostmount-writeable-overlay.yml',
  'examples/swap.yml',
  'examples/platform-aws.yml',
  'examples/redis-os.yml',
  'test/cases/000_build/001_tarheaders/test.yml',
  'test/cases/000_build/070_volumes/005_image/test.yml',
  'test/cases/040_packages/019_sysctl/test.yml',
];

const EPOCH = Date.UTC(2017, 3, 18, 16, 30) / 1000;
const HOSTS =
  '127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n';
const RESOLV = '\n# no resolv.conf configured\n';

// ---- stand-in images --------------------------------------------------------------------------

/** Images whose stand-in carries an org.mobyproject.config label (exercises label precedence). */
const LABELLED = /(getty|sshd|rngd|sysctl)$/;
const LABEL = {
  capabilities: ['CAP_SYS_ADMIN', 'CAP_CHOWN'],
  binds: ['/var/log:/var/log:ro'],
  readonly: true,
  pid: 'host',
};

function repoOf(ref: string): string {
  const r = parseImageRef(ref);
  if (!r.ok) throw new Error(`bad ref ${ref}`);
  return r.ref.repository;
}
function fullName(ref: string): string {
  const r = parseImageRef(ref);
  if (!r.ok) throw new Error(`bad ref ${ref}`);
  return `${r.ref.registry}/${r.ref.repository}${r.ref.digest ? `@${r.ref.digest}` : `:${r.ref.tag ?? 'latest'}`}`;
}

/** The stand-in's merged filesystem (what the two layers below leave after whiteouts). */
function merged(ref: string): LayerEntry[] {
  const tag = repoOf(ref);
  return [
    { path: 'bin', mode: 0o755 },
    { path: 'bin/tool', data: `tool of ${tag}\n`, mode: 0o755 },
    { path: 'dev', mode: 0o755 },
    { path: 'etc', mode: 0o755 },
    { path: 'etc/hosts', data: 'image hosts\n', mode: 0o600 },
    { path: 'etc/resolv.conf', data: 'nameserver 192.0.2.1\n', mode: 0o644 },
    { path: 'lib', mode: 0o755 },
    { path: 'lib/apk', mode: 0o755 },
    { path: 'lib/apk/db', mode: 0o755 },
    { path: 'lib/apk/db/installed', data: `P:${tag}\n`, mode: 0o644 },
    { path: 'home', mode: 0o755 },
    { path: 'home/user', mode: 0o750, uid: 1000, gid: 1000 },
    { path: 'home/user/.profile', data: 'PS1=x\n', mode: 0o640, uid: 1000, gid: 1000 },
    { path: 'usr', mode: 0o755 },
    { path: 'usr/share', mode: 0o755 },
    { path: 'usr/share/kept', data: 'kept\n' },
    { path: 'bin/tool2', type: 'hardlink', linkname: 'bin/tool' },
    { path: 'bin/sh', type: 'symlink', linkname: 'tool' },
  ];
}

/** Lower layer: the merged list minus the upper layer's own entries, plus things LinuxKit drops or the upper layer deletes. */
function layers(ref: string): LayerEntry[][] {
  const all = merged(ref);
  const upper = new Set(['bin/tool2', 'bin/sh']);
  const lower: LayerEntry[] = [
    ...all.filter((e) => !upper.has(e.path)),
    { path: '.dockerenv', data: '' },
    { path: 'Dockerfile', data: 'FROM scratch\n' },
    { path: 'etc/hostname', data: 'builder\n' },
    { path: 'dev/console', type: 'char', mode: 0o600 },
    { path: 'usr/share/doomed', data: 'deleted by the upper layer\n' },
  ];
  const top: LayerEntry[] = [
    { path: 'bin', mode: 0o755 },
    ...all.filter((e) => upper.has(e.path)),
    { path: 'usr', mode: 0o755 },
    { path: 'usr/share', mode: 0o755 },
    { path: 'usr/share/.wh.doomed', data: '' },
  ];
  return [lower, top];
}

function kernelLayers(): LayerEntry[][] {
  return [
    [
      { path: 'kernel', data: 'KERNEL\n', mode: 0o644 },
      { path: 'System.map', data: 'ignored\n' },
      { path: 'kernel.tar', data: KERNEL_TAR },
    ],
  ];
}
const KERNEL_TAR_ENTRIES: LayerEntry[] = [
  { path: 'lib', mode: 0o755 },
  { path: 'lib/modules', mode: 0o755 },
  { path: 'lib/modules/6.12.59', mode: 0o755 },
  { path: 'lib/modules/6.12.59/modules.dep', data: 'kernel/x.ko:\n', mode: 0o644 },
];
let KERNEL_TAR: Buffer;

function imageConfig(ref: string): Record<string, unknown> {
  const tag = repoOf(ref);
  return {
    Entrypoint: ['/bin/tool'],
    Cmd: ['--from-image'],
    Env: ['PATH=/bin', `IMAGE=${tag}`],
    WorkingDir: '/home',
    ...(LABELLED.test(tag) ? { Labels: { 'org.mobyproject.config': JSON.stringify(LABEL) } } : {}),
  };
}

// ---- the expectation --------------------------------------------------------------------------

interface Want {
  type: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  body?: string;
  mtime?: number;
  rule: string;
}

class Expectation {
  readonly paths = new Map<string, Want>();
  set(path: string, w: Want) {
    this.paths.delete(path); // last writer wins, as when the initrd is unpacked
    this.paths.set(path, w);
  }
  dirs(path: string, rule: string) {
    // LinuxKit's tarPrefix: every leading directory of a bundle path, 0755 root.
    let at = '';
    for (const part of path.split('/')) {
      at = at ? `${at}/${part}` : part;
      this.set(at, { type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: EPOCH, rule });
    }
  }
  /** LinuxKit's ImageTar over the stand-in, under `prefix`. */
  imageTree(ref: string, prefix: string, resolvSymlink: boolean, rule: string) {
    for (const e of merged(ref)) {
      const type = e.type ?? (e.data !== undefined ? 'file' : 'dir');
      // Rule: .dockerenv, Dockerfile, dev/console and etc/hostname are dropped (not in `merged`,
      // so their absence below proves it); whiteouts remove the lower file (usr/share/doomed).
      if (e.path === 'etc/hosts' || e.path === 'etc/resolv.conf') continue; // replaced, below
      this.set(prefix + e.path, {
        type: type === 'dir' ? 'directory' : type === 'hardlink' ? 'link' : (type as Want['type']),
        mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        // Rule: hard links name their target by full path, so the prefix is added to it.
        ...(e.linkname !== undefined ? { linkname: type === 'hardlink' ? prefix + e.linkname : e.linkname } : {}),
        ...(type === 'file' ? { body: e.data?.toString() } : {}),
        // Rule: dev, etc (and proc, sys) found in the image get the fixed mtime.
        mtime: ['dev', 'etc'].includes(e.path) ? EPOCH : IMAGE_MTIME,
        rule: `${rule}: image file ${e.path}`,
      });
    }
    // Rule: the `touch` set exists in every image tree: dev, dev/pts, dev/shm, etc, etc/hosts,
    // etc/mtab → /proc/mounts, etc/resolv.conf, proc, sys — with the fixed mtime.
    const t = (p: string, w: Omit<Want, 'rule' | 'mtime' | 'uid' | 'gid'>) =>
      this.set(prefix + p, { uid: 0, gid: 0, mtime: EPOCH, ...w, rule: `${rule}: touch ${p}` });
    t('dev/pts', { type: 'directory', mode: 0o755 });
    t('dev/shm', { type: 'directory', mode: 0o755 });
    // Rule: etc/hosts gets LinuxKit's fixed contents, 0644.
    t('etc/hosts', { type: 'file', mode: 0o644, body: HOSTS });
    t('etc/mtab', { type: 'symlink', linkname: '/proc/mounts' });
    // Rule: etc/resolv.conf is a symlink into /run for init images, else a fixed file.
    if (resolvSymlink) t('etc/resolv.conf', { type: 'symlink', linkname: '/run/resolvconf/resolv.conf' });
    else t('etc/resolv.conf', { type: 'file', mode: 0o644, body: RESOLV });
    t('proc', { type: 'directory', mode: 0o755 });
    t('sys', { type: 'directory', mode: 0o755 });
  }
}

function expectationOf(m: OsManifest, manifestDir: string): Expectation {
  const x = new Expectation();
  // Rule (kernel): boot/ 0755, boot/cmdline 0644 with the manifest's cmdline, boot/kernel with the
  // image file's mode; kernel.tar unpacked at / as it is; other kernel image files ignored.
  if (m.kernel?.image) {
    x.set('boot', { type: 'directory', mode: 0o755, uid: 0, gid: 0, rule: 'kernel: boot/' });
    x.set('boot/cmdline', {
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      body: m.kernel.cmdline ?? '',
      rule: 'kernel: boot/cmdline',
    });
    x.set('boot/kernel', { type: 'file', mode: 0o644, uid: 0, gid: 0, body: 'KERNEL\n', rule: 'kernel: boot/kernel' });
    for (const e of KERNEL_TAR_ENTRIES) {
      x.set(e.path, {
        type: e.data !== undefined ? 'file' : 'directory',
        mode: e.mode,
        uid: 0,
        gid: 0,
        mtime: IMAGE_MTIME,
        rule: `kernel: kernel.tar ${e.path}`,
      });
    }
  }
  // Rule (init): each init image merged at /, in order.
  for (const ref of m.init ?? []) x.imageTree(ref, '', true, `init ${ref}`);
  // Rule (init): with more than one init image carrying lib/apk/db/installed, the merged database
  // is each copy followed by a blank line.
  if ((m.init ?? []).length > 1) {
    x.set('lib/apk/db/installed', {
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      body: (m.init ?? []).map((r) => `P:${repoOf(r)}\n\n\n`).join(''),
      rule: 'init: merged apk database',
    });
  }
  // Rule (volumes): containers/volumes/NAME/{lower (+ the image),tmp,merged}.
  for (const v of m.volumes ?? []) {
    const base = `containers/volumes/${v.name}`;
    x.dirs(`${base}/lower`, `volume ${v.name}`);
    // (LinuxKit unpacks a volume's image with the init images' resolv.conf symlink.)
    if (v.image) x.imageTree(v.image, `${base}/lower/`, true, `volume ${v.name}`);
    x.dirs(`${base}/tmp`, `volume ${v.name}`);
    x.dirs(`${base}/merged`, `volume ${v.name}`);
  }
  // Rule (bundles): onboot/onshutdown in containers/<section>/NNN-name, services in
  // containers/services/name; each with config.json + runtime.json; a read-only container's
  // image in rootfs/, a writable one's in lower/ with empty tmp/ and rootfs/; an image already
  // unpacked for an earlier bundle is not unpacked again.
  const unpacked = new Set<string>();
  for (const section of ['onboot', 'onshutdown', 'services'] as const) {
    (m[section] ?? []).forEach((e: ImageEntry, i: number) => {
      const dir = `containers/${section}/${section === 'services' ? '' : `${String(i).padStart(3, '0')}-`}${e.name}`;
      const ro = readonlyOf(e);
      const own = `${dir}/${ro ? 'rootfs' : 'lower'}`;
      const rule = `${section}[${i}] ${e.name}`;
      if (!unpacked.has(e.image)) {
        unpacked.add(e.image);
        x.dirs(own, rule);
        x.imageTree(e.image, `${own}/`, false, rule);
      } else {
        x.dirs(dir, rule);
      }
      x.set(`${dir}/config.json`, { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, rule: `${rule} config` });
      if (!ro) {
        x.set(`${dir}/tmp`, { type: 'directory', mode: 0o755, uid: 0, gid: 0, rule: `${rule} tmp/` });
        x.set(`${dir}/rootfs`, { type: 'directory', mode: 0o755, uid: 0, gid: 0, rule: `${rule} rootfs/` });
      } else x.set(`${dir}/rootfs`, { type: 'directory', mode: 0o755, uid: 0, gid: 0, rule: `${rule} rootfs/` });
      x.set(`${dir}/runtime.json`, {
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: EPOCH,
        rule: `${rule} runtime`,
      });
    });
  }
  // Rule (files): mode 0600 (directory 0700) unless given; leading directories get the mode with
  // x added wherever r or w is set, and the file's owner; a source marked optional that does not
  // exist is skipped.
  const added = new Set<string>();
  (m.files ?? []).forEach((f, i) => {
    const path = (f.path ?? '').replace(/^\//, '');
    if (f.source && f.optional) {
      const src = f.source.startsWith('~/') ? join(homedir(), f.source.slice(2)) : join(manifestDir, f.source);
      if (!existsSync(src)) return;
    }
    const mode = f.mode !== undefined ? Number.parseInt(String(f.mode), 8) : f.directory ? 0o700 : 0o600;
    let dirMode = mode;
    if (dirMode & 0o700) dirMode |= 0o100;
    if (dirMode & 0o070) dirMode |= 0o010;
    if (dirMode & 0o007) dirMode |= 0o001;
    const uid = typeof f.uid === 'number' ? f.uid : undefined;
    const gid = typeof f.gid === 'number' ? f.gid : undefined;
    const rule = `files[${i}] ${path}`;
    let at = '';
    for (const part of posix.dirname(path).split('/')) {
      if (part === '.' || part === '') continue;
      at = at ? `${at}/${part}` : part;
      if (added.has(at)) continue;
      added.add(at);
      x.set(at, {
        type: 'directory',
        mode: dirMode,
        uid: uid ?? 0,
        gid: gid ?? 0,
        mtime: EPOCH,
        rule: `${rule} (dir)`,
      });
    }
    added.add(path);
    const want: Want = { type: 'file', mode, uid: uid ?? 0, gid: gid ?? 0, mtime: EPOCH, rule };
    if (f.directory) want.type = 'directory';
    else if (f.symlink) Object.assign(want, { type: 'symlink', linkname: f.symlink });
    else if (f.contents !== undefined) want.body = f.contents;
    x.set(path, want);
  });
  // Rule (sbom): the images' SBOMs merged into sbom.spdx.json at / (LinuxKit's default
  // --sbom-output; written even when no image carries an SBOM). Its header is checked apart.
  x.set('sbom.spdx.json', { type: 'file', rule: 'sbom' });
  return x;
}

function labelOf(image: string): typeof LABEL | Record<string, never> {
  return LABELLED.test(repoOf(image)) ? LABEL : {};
}
function readonlyOf(e: ImageEntry): boolean {
  return e.readonly ?? (labelOf(e.image) as { readonly?: boolean }).readonly ?? false;
}

/** The parts of config.json LinuxKit's ConfigToOCI fixes, from the rules in moby/config.go. */
function expectedConfig(e: ImageEntry) {
  const label = labelOf(e.image) as Partial<typeof LABEL>;
  const img = imageConfig(e.image) as { Entrypoint: string[]; Cmd: string[]; Env: string[]; WorkingDir: string };
  const caps = e.capabilities ?? [...(label.capabilities ?? []), ...(e['capabilities.add'] ?? [])];
  const all = caps.length === 1 && caps[0]?.toLowerCase() === 'all';
  const none = caps.length === 1 && caps[0]?.toLowerCase() === 'none';
  const binds = e.binds ?? [...(label.binds ?? []), ...(e['binds.add'] ?? [])];
  const dests = new Set(['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup']);
  for (const t of e.tmpfs ?? []) dests.add(t.split(':')[0] ?? '');
  for (const b of binds) dests.add(b.split(':')[1] ?? '');
  for (const mt of e.mounts ?? []) dests.add(mt.destination ?? (mt.type === 'cgroup' ? '/sys/fs/cgroup' : ''));
  const ns = (v: string | undefined | null, dflt: string) => {
    const s = v ?? dflt;
    return s !== 'host' && s !== 'root';
  };
  const pid = e.pid ?? label.pid ?? '';
  return {
    // Rule: args = manifest command, else label command, else Entrypoint + Cmd.
    args: e.command ?? [...img.Entrypoint, ...img.Cmd],
    // Rule: env = manifest env, else label env, else the image's Env.
    env: e.env ?? img.Env,
    // Rule: cwd = manifest cwd, else label cwd, else WorkingDir, else "/".
    cwd: e.cwd ?? (img.WorkingDir || '/'),
    // Rule: root is rootfs, read-only as the manifest (else label) says (omitted when false:
    // the runtime-spec Go type has omitempty).
    root: readonlyOf(e) ? { path: 'rootfs', readonly: true } : { path: 'rootfs' },
    // Rule: capabilities = manifest list (replaces) or label + capabilities.add; "all"/"none";
    // bounding is the sorted set.
    bounding: none ? [] : all ? 'ALL' : [...new Set([...caps, ...(e.ambient ?? [])])].sort(),
    // Rule: mounts = defaults + tmpfs + binds + mounts, keyed and sorted by destination.
    mountDestinations: [...dests].sort(),
    // Rule: binds without options are rw,rbind,rshared; with options, those + rbind.
    binds: Object.fromEntries(
      binds.map((b) => {
        const [src, dst, opts] = b.split(':');
        // Rule: a bind whose source is a volume name mounts that volume's merged directory.
        const source = src?.startsWith('/') ? src : `/containers/volumes/${src}/merged`;
        return [dst, { source, options: opts ? [...opts.split(','), 'rbind'] : ['rw', 'rbind', 'rshared'] }];
      }),
    ),
    // Rule: namespaces: net/ipc/uts/user only unless host or root (default root); pid unless host
    // (default new); always a new mount namespace.
    namespaces: [
      ...(ns(e.net, 'root') ? ['network'] : []),
      ...(ns(e.ipc, 'root') ? ['ipc'] : []),
      ...(ns(e.uts, 'root') ? ['uts'] : []),
      ...(pid !== 'host' && pid !== 'root' ? ['pid'] : []),
      ...(ns(e.userns, 'root') ? ['user'] : []),
      'mount',
    ],
    hostname: e.hostname ?? undefined,
  };
}

// ---- the test ---------------------------------------------------------------------------------

let work: string;
let store: Store;
const ALL_CAPS_MIN = 38; // LinuxKit's allCaps list has 41 entries; at least this many expected

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stele-build-corpus-'));
  if (!corpusPresent) return;
  store = await Store.open(join(work, 'store'));
  const { layerTar } = await import('./build-images.ts');
  KERNEL_TAR = await layerTar(KERNEL_TAR_ENTRIES);
  const made = new Set<string>();
  for (const rel of MANIFESTS) {
    const parsed = parseOsManifest(readFileSync(join(CORPUS, rel), 'utf8'), rel);
    if (!parsed.ok) throw new Error(`${rel} does not parse`);
    const m = parsed.value;
    const refs = [
      ...(m.kernel?.image ? [m.kernel.image] : []),
      ...(m.init ?? []),
      ...[...(m.onboot ?? []), ...(m.onshutdown ?? []), ...(m.services ?? [])].map((e) => e.image),
      ...(m.volumes ?? []).flatMap((v) => (v.image ? [v.image] : [])),
    ];
    for (const ref of refs) {
      const name = fullName(ref);
      if (made.has(name)) continue;
      made.add(name);
      if (ref === m.kernel?.image) await storeImage(store, name, kernelLayers(), {});
      else await storeImage(store, name, layers(ref), imageConfig(ref));
    }
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function mergedView(entries: TarEntry[]): Map<string, TarEntry> {
  const view = new Map<string, TarEntry>();
  for (const e of entries) {
    const p = e.name.replace(/\/$/, '');
    view.delete(p);
    view.set(p, e);
  }
  return view;
}

describe.runIf(corpusPresent)(
  'LinuxKit corpus manifests built to tar from stand-in images match LinuxKit rules',
  () => {
    it('sbom.spdx.json is written last, 0644 root, with the fixed mtime (LinuxKit SbomGenerator.Close)', async () => {
      const rel = MANIFESTS[0] as string;
      const dir = join(work, 'sbom');
      mkdirSync(dir, { recursive: true });
      const path = join(dir, basename(rel));
      copyFileSync(join(CORPUS, rel), path);
      const r = await buildImage({ manifest: path, store, formats: ['tar'], dir: join(dir, 'out'), offline: true });
      const entries = await readTar(readFileSync(r.outputs[0]?.files[0] as string));
      const last = entries[entries.length - 1];
      expect(last?.name).toBe('sbom.spdx.json');
      expect([last?.type, last?.mode, last?.uid, last?.gid, last?.mtime]).toEqual(['file', 0o644, 0, 0, EPOCH]);
      expect(JSON.parse(last?.body?.toString() ?? '{}').spdxVersion).toBe('SPDX-2.3');
    });

    it.each(MANIFESTS)('%s', async (rel) => {
      // Each manifest is copied beside the `files[].source` it names (stand-ins made here).
      const dir = join(work, rel.replace(/[/.]/g, '_'));
      mkdirSync(dir, { recursive: true });
      const path = join(dir, basename(rel));
      copyFileSync(join(CORPUS, rel), path);
      const parsed = parseOsManifest(readFileSync(path, 'utf8'), path);
      if (!parsed.ok) throw new Error('parse');
      const m = parsed.value;
      for (const f of m.files ?? []) {
        if (f.source && !f.source.startsWith('~/') && !f.optional)
          writeFileSync(join(dir, f.source), `source ${f.path}\n`);
      }
      const out = join(dir, 'out');
      const r = await buildImage({ manifest: path, store, formats: ['tar'], dir: out, offline: true });
      expect(r.outputs.map((o) => o.format)).toEqual(['tar']);
      const tarFile = join(out, `${basename(rel, '.yml')}.tar`);
      const entries = await readTar(readFileSync(tarFile));
      const view = mergedView(entries);
      const x = expectationOf(m, dir);

      // Rule: exactly the expected paths, no more, no less (after last-writer-wins).
      expect([...view.keys()].sort()).toEqual([...x.paths.keys()].sort());
      for (const [p, w] of x.paths) {
        const got = view.get(p);
        if (!got) continue;
        const what = `${p} (${w.rule})`;
        expect(got.type, what).toBe(w.type);
        if (w.mode !== undefined) expect(got.mode, what).toBe(w.mode);
        if (w.uid !== undefined) expect([got.uid, got.gid], what).toEqual([w.uid, w.gid]);
        if (w.linkname !== undefined) expect(got.linkname, what).toBe(w.linkname);
        if (w.body !== undefined) expect(got.body?.toString(), what).toBe(w.body);
        if (w.mtime !== undefined) expect(got.mtime, what).toBe(w.mtime);
      }

      // Rule: every entry records where it came from in LINUXKIT.source / LINUXKIT.location PAX records.
      for (const e of entries) {
        expect(e.pax['LINUXKIT.source'], e.name).toBeTruthy();
        expect(e.pax['LINUXKIT.location'], e.name).toBeTruthy();
      }
      // config.json of every bundle against ConfigToOCI's rules.
      for (const section of ['onboot', 'onshutdown', 'services'] as const) {
        for (const [i, e] of (m[section] ?? []).entries()) {
          const bundle = `containers/${section}/${section === 'services' ? '' : `${String(i).padStart(3, '0')}-`}${e.name}`;
          const cfg = JSON.parse(view.get(`${bundle}/config.json`)?.body?.toString() ?? 'null');
          const want = expectedConfig(e);
          const what = `${rel} ${bundle}/config.json`;
          expect(cfg.process.args, what).toEqual(want.args);
          expect(cfg.process.env, what).toEqual(want.env);
          expect(cfg.process.cwd, what).toBe(want.cwd);
          expect(cfg.root, what).toEqual(want.root);
          const bounding = cfg.process.capabilities?.bounding ?? [];
          if (want.bounding === 'ALL') expect(bounding.length, what).toBeGreaterThanOrEqual(ALL_CAPS_MIN);
          else expect(bounding, what).toEqual(want.bounding);
          expect(cfg.process.capabilities?.permitted ?? [], what).toEqual(bounding);
          expect(
            cfg.mounts.map((mt: { destination: string }) => mt.destination),
            what,
          ).toEqual(want.mountDestinations);
          for (const [dst, b] of Object.entries(want.binds) as [string, { source: string; options: string[] }][]) {
            const mt = cfg.mounts.find((x: { destination: string }) => x.destination === dst);
            expect({ type: mt?.type, source: mt?.source, options: mt?.options }, `${what} bind ${dst}`).toEqual({
              type: 'bind',
              ...b,
            });
          }
          expect(
            cfg.linux.namespaces.map((n: { type: string }) => n.type),
            what,
          ).toEqual(want.namespaces);
          expect(cfg.hostname, what).toBe(want.hostname);
          // Rule: runtime.json mounts the bundle's rootfs first (bind of rootfs, or the overlay of lower).
          const rt = JSON.parse(view.get(`${bundle}/runtime.json`)?.body?.toString() ?? 'null');
          const first = rt.mounts?.[rt.mounts.length && readonlyOf(e) ? 0 : 2];
          expect(first?.destination, `${what} runtime.json`).toBe(`/${bundle}/rootfs`);
        }
      }
      // Rule: a directory precedes everything below it (the kernel's initramfs unpacker creates no
      // parents), and every file's directory exists by the time it is written.
      const seen = new Set<string>(['']);
      for (const e of entries) {
        const p = e.name.replace(/\/$/, '');
        const parent = posix.dirname(p) === '.' ? '' : posix.dirname(p);
        expect(seen.has(parent), `${p}: parent ${parent} not written before it`).toBe(true);
        if (e.type === 'directory') seen.add(p);
      }
    });
  },
);
