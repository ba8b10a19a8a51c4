// config.json / runtime.json rules of LinuxKit's ConfigToOCI (moby/config.go), checked on the
// example manifests with stand-in images whose labels are the packages' build.yml `config:`.

import { describe, expect, it } from 'vitest';
import {
  ALL_CAPABILITIES,
  AssembleError,
  type ContainerConfig,
  containerConfig,
  containerIdMap,
  type ImageEntry,
  type OsManifest,
  runtimeJson,
  specJson,
} from '../src/assemble/index.ts';
import { describeCorpus, example, PACKAGE_CONFIG, standInConfig } from './assemble-fixtures.ts';

function find(m: OsManifest, name: string): ImageEntry {
  for (const list of [m.onboot, m.onshutdown, m.services]) {
    const e = list?.find((x) => x.name === name);
    if (e) return e;
  }
  throw new Error(`no ${name}`);
}

function configFor(m: OsManifest, name: string, override?: Partial<ImageEntry>): ContainerConfig {
  const entry = { ...find(m, name), ...override };
  return containerConfig({ entry, imageConfig: standInConfig(entry.image), ids: containerIdMap(m) });
}

const byteSorted = (list: readonly string[]) =>
  [...list].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0));
const destinations = (c: ContainerConfig) => (c.spec.mounts ?? []).map((m) => m.destination);
const mountAt = (c: ContainerConfig, d: string) => c.spec.mounts?.find((m) => m.destination === d);

describeCorpus('process: args, env, cwd (image config < label < manifest)', () => {
  it('args are the image Entrypoint followed by Cmd when neither label nor manifest sets command (getty, minimal.yml)', () => {
    const c = configFor(example('minimal'), 'getty');
    expect(c.spec.process.args).toEqual(['/sbin/tini', '-s', '-v', '--', '/usr/bin/rungetty.sh']);
  });

  it('manifest command replaces the image Entrypoint+Cmd (dhcpcd, minimal.yml)', () => {
    const c = configFor(example('minimal'), 'dhcpcd');
    expect(c.spec.process.args).toEqual(['/sbin/dhcpcd', '--nobackground', '-f', '/dhcpcd.conf', '-1']);
  });

  it('manifest env replaces the image env instead of adding to it (getty INSECURE=true)', () => {
    const c = configFor(example('minimal'), 'getty');
    expect(c.spec.process.env).toEqual(['INSECURE=true']);
  });

  it('env comes from the image config when label and manifest have none (rngd)', () => {
    const c = configFor(example('sshd'), 'rngd');
    expect(c.spec.process.env).toEqual(standInConfig('linuxkit/rngd:x').Env);
  });

  it('cwd is / when the image WorkingDir is empty (docker:dind in docker.yml)', () => {
    expect(configFor(example('docker'), 'docker').spec.process.cwd).toBe('/');
  });

  it('manifest cwd overrides the label cwd, which overrides the image WorkingDir', () => {
    const m = example('minimal');
    const entry = find(m, 'getty');
    const imageConfig = { WorkingDir: '/image', Labels: { 'org.mobyproject.config': '{"cwd":"/label"}' } };
    expect(containerConfig({ entry, imageConfig, ids: new Map() }).spec.process.cwd).toBe('/label');
    expect(containerConfig({ entry: { ...entry, cwd: '/yaml' }, imageConfig, ids: new Map() }).spec.process.cwd).toBe(
      '/yaml',
    );
  });
});

describeCorpus('capabilities', () => {
  it('[all] expands to every known capability: effective in kernel order, bounding/inheritable/permitted sorted (getty)', () => {
    const caps = configFor(example('minimal'), 'getty').spec.process.capabilities;
    expect(caps.effective).toEqual(ALL_CAPABILITIES);
    expect(ALL_CAPABILITIES[0]).toBe('CAP_CHOWN');
    expect(ALL_CAPABILITIES[40]).toBe('CAP_CHECKPOINT_RESTORE');
    expect(ALL_CAPABILITIES).toHaveLength(41);
    expect(caps.bounding).toEqual(byteSorted(ALL_CAPABILITIES));
    expect(caps.permitted).toEqual(caps.bounding);
    expect(caps.inheritable).toEqual(caps.bounding);
    expect(caps.ambient).toBeUndefined();
  });

  it('the label capabilities apply when the manifest sets none (sysctl: CAP_SYS_ADMIN, CAP_NET_ADMIN)', () => {
    const caps = configFor(example('docker'), 'sysctl').spec.process.capabilities;
    expect(caps.effective).toEqual(['CAP_SYS_ADMIN', 'CAP_NET_ADMIN']);
    expect(caps.bounding).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
  });

  it('manifest capabilities replace the label capabilities (as LinuxKit TestOverrides)', () => {
    const caps = configFor(example('sshd'), 'rngd', { capabilities: ['CAP_NET_ADMIN'] }).spec.process.capabilities;
    expect(caps.bounding).toEqual(['CAP_NET_ADMIN']);
    expect(caps.effective).toEqual(['CAP_NET_ADMIN']);
  });

  it('manifest capabilities.add is appended to the label capabilities', () => {
    const caps = configFor(example('docker'), 'sysctl', { 'capabilities.add': ['CAP_NET_RAW'] }).spec.process
      .capabilities;
    expect(caps.effective).toEqual(['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(caps.bounding).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN']);
  });

  it('ambient capabilities join bounding, inheritable and permitted but not effective', () => {
    const caps = configFor(example('docker'), 'sysctl', { ambient: ['CAP_SYS_TIME'] }).spec.process.capabilities;
    expect(caps.ambient).toEqual(['CAP_SYS_TIME']);
    expect(caps.effective).toEqual(['CAP_SYS_ADMIN', 'CAP_NET_ADMIN']);
    expect(caps.bounding).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_SYS_TIME']);
    expect(caps.permitted).toEqual(caps.bounding);
  });

  it('[none] (any case) means no capabilities: an empty capabilities object in config.json', () => {
    const c = configFor(example('docker'), 'sysctl', { capabilities: ['NONE'] });
    expect(c.spec.process.capabilities).toEqual({});
    expect(specJson(c.spec)).toContain('"capabilities": {}');
  });

  it('an unknown capability (names are upper case CAP_…) is an error naming the image and field', () => {
    const run = () => configFor(example('docker'), 'sysctl', { capabilities: ['cap_sys_admin'] });
    expect(run).toThrow(AssembleError);
    expect(run).toThrow(/"sysctl".*capabilities: unknown capability: cap_sys_admin/);
  });
});

describeCorpus('mounts', () => {
  it('every container gets /proc, /dev, /dev/pts, /sys and /sys/fs/cgroup with Docker-like options (redis, no label)', () => {
    const c = configFor(example('redis-os'), 'redis');
    expect(c.spec.mounts).toEqual([
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
      },
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec', 'relatime'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      },
    ]);
  });

  it('readonly (sysctl label) adds ro to the /dev and /sys mounts and sets root.readonly', () => {
    const c = configFor(example('docker'), 'sysctl');
    expect(c.spec.root).toEqual({ path: 'rootfs', readonly: true });
    expect(mountAt(c, '/dev')?.options).toContain('ro');
    expect(mountAt(c, '/sys')?.options).toEqual(['nosuid', 'noexec', 'nodev', 'ro']);
    expect(mountAt(c, '/proc')?.options).not.toContain('ro');
  });

  it('mounts are de-duplicated by destination (a bind onto /dev replaces the default) and sorted by destination', () => {
    const c = configFor(example('minimal'), 'getty');
    const d = destinations(c);
    expect(d).toEqual(byteSorted(d));
    expect(new Set(d).size).toBe(d.length);
    expect(mountAt(c, '/dev')).toEqual({
      destination: '/dev',
      type: 'bind',
      source: '/dev',
      options: ['rw', 'rbind', 'rshared'],
    });
    expect(mountAt(c, '/sys')?.type).toBe('bind');
    // the defaults not shadowed by a bind stay
    expect(mountAt(c, '/proc')?.type).toBe('proc');
    expect(mountAt(c, '/dev/pts')?.type).toBe('devpts');
  });

  it('a bind without options is rw,rbind,rshared; with options, rbind is appended (mount label /var:/var:rshared,rbind)', () => {
    const c = configFor(example('docker'), 'mount');
    expect(mountAt(c, '/var')).toEqual({
      destination: '/var',
      type: 'bind',
      source: '/var',
      options: ['rshared', 'rbind', 'rbind'],
    });
    expect(mountAt(c, '/hostroot')?.options).toEqual(['rw', 'rbind', 'rshared']);
  });

  it('binds.add in the manifest keeps the label binds and adds its own (sshd.yml /root/.ssh)', () => {
    const c = configFor(example('sshd'), 'sshd');
    for (const b of (PACKAGE_CONFIG.sshd?.binds ?? []) as string[]) expect(destinations(c)).toContain(b.split(':')[1]);
    expect(mountAt(c, '/root/.ssh')).toEqual({
      destination: '/root/.ssh',
      type: 'bind',
      source: '/root/.ssh',
      options: ['rw', 'rbind', 'rshared'],
    });
  });

  it('manifest binds replace the label binds (dhcpcd label binds /run/resolvconf:/etc)', () => {
    const c = configFor(example('minimal'), 'dhcpcd', { binds: ['/var/tmp:/var/tmp'] });
    expect(mountAt(c, '/etc')).toBeUndefined();
    expect(mountAt(c, '/var/tmp')?.source).toBe('/var/tmp');
  });

  it('a mount of type cgroup without destination goes to /sys/fs/cgroup, source defaulting to the type (docker.yml)', () => {
    const c = configFor(example('docker'), 'docker');
    expect(mountAt(c, '/sys/fs/cgroup')).toEqual({
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['rw', 'nosuid', 'noexec', 'nodev', 'relatime'],
    });
  });

  it('a mount without type takes it from a special source (mqueue → /dev/mqueue) or tmpfs for /dev; otherwise it is an error', () => {
    const c = configFor(example('redis-os'), 'redis', { mounts: [{ source: 'mqueue' }, { destination: '/dev' }] });
    expect(mountAt(c, '/dev/mqueue')).toEqual({ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue' });
    expect(mountAt(c, '/dev')).toEqual({ destination: '/dev', type: 'tmpfs', source: 'tmpfs' });
    expect(() => configFor(example('redis-os'), 'redis', { mounts: [{ destination: '/x', source: '/y' }] })).toThrow(
      /mounts: mount for destination \/x is missing type/,
    );
  });

  it('tmpfs entries are dest or dest:opt,opt; more than one colon is an error', () => {
    const c = configFor(example('redis-os'), 'redis', { tmpfs: ['/run', '/tmp:size=1m,mode=1777'] });
    expect(mountAt(c, '/run')).toEqual({ destination: '/run', type: 'tmpfs', source: 'tmpfs' });
    expect(mountAt(c, '/tmp')?.options).toEqual(['size=1m', 'mode=1777']);
    expect(() => configFor(example('redis-os'), 'redis', { tmpfs: ['/a:b:c'] })).toThrow(/tmpfs: cannot parse tmpfs/);
  });

  it('a bind without a colon is an error naming the field', () => {
    expect(() => configFor(example('redis-os'), 'redis', { binds: ['/only'] })).toThrow(
      /"redis".*binds: cannot parse bind, missing ':'/,
    );
  });
});

describeCorpus('namespaces', () => {
  const types = (c: ContainerConfig) => c.spec.linux.namespaces;

  it('pid and net host (getty label) leave only the always-new mount namespace', () => {
    expect(types(configFor(example('minimal'), 'getty'))).toEqual([{ type: 'mount' }]);
  });

  it('net/ipc/uts/user default to the host; pid defaults to a new namespace (redis, no label, net: host)', () => {
    expect(types(configFor(example('redis-os'), 'redis'))).toEqual([{ type: 'pid' }, { type: 'mount' }]);
  });

  it('net: new and ipc: new (rngd label) make new namespaces, in order net, ipc, uts, pid, user, mount', () => {
    expect(types(configFor(example('sshd'), 'rngd'))).toEqual([
      { type: 'network' },
      { type: 'ipc' },
      { type: 'pid' },
      { type: 'mount' },
    ]);
  });

  it('a path joins an existing namespace (wireguard.yml getty net: /run/netns/wg1); net: none is a new one', () => {
    expect(types(configFor(example('wireguard'), 'getty'))[0]).toEqual({ type: 'network', path: '/run/netns/wg1' });
    expect(types(configFor(example('redis-os'), 'redis', { net: 'none' }))[0]).toEqual({ type: 'network' });
    expect(types(configFor(example('redis-os'), 'redis', { uts: 'new', userns: 'new' }))).toEqual([
      { type: 'uts' },
      { type: 'pid' },
      { type: 'user' },
      { type: 'mount' },
    ]);
  });
});

describeCorpus('devices, resources and other fields', () => {
  it('devices become linux.devices with the octal mode, plus a device cgroup rule rwm each (getty label)', () => {
    const c = configFor(example('minimal'), 'getty');
    expect(c.spec.linux.devices?.[0]).toEqual({ path: '/dev/console', type: 'c', major: 5, minor: 1, fileMode: 0o666 });
    expect(c.spec.linux.devices).toHaveLength(5);
    expect(c.spec.linux.resources.devices?.[2]).toEqual({ allow: true, type: 'c', major: 4, minor: 64, access: 'rwm' });
    expect(specJson(c.spec)).toContain('"fileMode": 438');
  });

  it('a device with path all allows the whole class in the device cgroup and creates no device (sshd label, type a)', () => {
    const c = configFor(example('sshd'), 'sshd');
    expect(c.spec.linux.devices).toBeUndefined();
    expect(c.spec.linux.resources.devices).toEqual([{ allow: true, type: 'a', access: 'rwm' }]);
  });

  it('a device mode that is not octal is an error naming devices[i].mode', () => {
    const run = () =>
      configFor(example('redis-os'), 'redis', {
        devices: [{ path: '/dev/x', type: 'c', major: 1, minor: 1, mode: '0999' }],
      });
    expect(run).toThrow(/devices\[0\]\.mode: cannot parse device mode as octal/);
  });

  it('manifest resources are written with runtime-spec names; device rules from devices are appended', () => {
    const c = configFor(example('sshd'), 'sshd', {
      resources: { memory: { limit: 1048576 }, pids: { limit: 64 }, blockio: { weight: 10 } },
    });
    expect(c.spec.linux.resources).toEqual({
      devices: [{ allow: true, type: 'a', access: 'rwm' }],
      memory: { limit: 1048576 },
      pids: { limit: 64 },
      blockIO: { weight: 10 },
    });
  });

  it('resources are an empty object when nothing sets them (LinuxKit always writes linux.resources)', () => {
    expect(specJson(configFor(example('redis-os'), 'redis').spec)).toContain('"resources": {}');
  });

  it('oomScoreAdj, rootfsPropagation and readonly come from the label (rngd -800, mount shared)', () => {
    expect(configFor(example('sshd'), 'rngd').spec.process.oomScoreAdj).toBe(-800);
    expect(configFor(example('docker'), 'mount').spec.linux.rootfsPropagation).toBe('shared');
  });

  it('rlimits: type gains RLIMIT_ and upper case, unlimited is 2^64-1; an unknown limit is an error', () => {
    const c = configFor(example('redis-os'), 'redis', { rlimits: ['nofile,1024,unlimited'] });
    expect(c.spec.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 2n ** 64n - 1n, soft: 1024n }]);
    expect(specJson(c.spec)).toContain(`"hard": ${2n ** 64n - 1n}`);
    expect(() => configFor(example('redis-os'), 'redis', { rlimits: ['bogus,1,1'] })).toThrow(
      /rlimits\[0\]: unknown limit: bogus/,
    );
    expect(() => configFor(example('redis-os'), 'redis', { rlimits: ['nofile,1'] })).toThrow(
      /rlimits\[0\]: cannot parse rlimit/,
    );
  });

  it('uid/gid names resolve to the container numbers: 100 upwards over onboot, onshutdown, services', () => {
    const m = example('docker'); // onboot: sysctl sysfs format mount; services: getty rngd dhcpcd ntpd docker
    const c = configFor(m, 'docker', { uid: 'ntpd', gid: 'sysctl', additionalGids: ['root', 7, 'getty'] });
    expect(c.spec.process.user).toEqual({ uid: 107, gid: 100, additionalGids: [0, 7, 104] });
    expect(() => configFor(m, 'docker', { uid: 'nobody' })).toThrow(/uid: cannot find id: nobody/);
  });

  it('maskedPaths and readonlyPaths have no defaults; set ones are copied', () => {
    const c = configFor(example('redis-os'), 'redis');
    expect(c.spec.linux.maskedPaths).toBeUndefined();
    expect(c.spec.linux.readonlyPaths).toBeUndefined();
    const d = configFor(example('redis-os'), 'redis', { maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'] });
    expect(d.spec.linux.maskedPaths).toEqual(['/proc/kcore']);
    expect(d.spec.linux.readonlyPaths).toEqual(['/proc/sys']);
  });

  it('hostname, sysctl, annotations, cgroupsPath, noNewPrivileges and id mappings come from the manifest', () => {
    const c = configFor(example('redis-os'), 'redis', {
      hostname: 'cache',
      sysctl: { 'net.ipv4.ip_forward': '1', 'kernel.pid_max': '4096' },
      annotations: { b: '2', a: '1' },
      cgroupsPath: '/stele/redis',
      noNewPrivileges: true,
      uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
    });
    expect(c.spec.hostname).toBe('cache');
    expect(Object.keys(c.spec.linux.sysctl ?? {})).toEqual(['kernel.pid_max', 'net.ipv4.ip_forward']);
    expect(Object.keys(c.spec.annotations ?? {})).toEqual(['a', 'b']);
    expect(c.spec.linux.cgroupsPath).toBe('/stele/redis');
    expect(c.spec.process.noNewPrivileges).toBe(true);
    expect(c.spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 1000, size: 1 }]);
  });
});

describe('label handling', () => {
  const entry: ImageEntry = { name: 'x', image: 'example/x:1' };
  it('the label may not set name or image', () => {
    const imageConfig = { Labels: { 'org.mobyproject.config': '{"name":"y"}' } };
    expect(() => containerConfig({ entry, imageConfig, ids: new Map() })).toThrow(/label\.name: name cannot be set/);
  });
  it('an unknown field in the label is an error naming it', () => {
    const imageConfig = { Labels: { 'org.mobyproject.config': '{"capabilites":["CAP_CHOWN"]}' } };
    expect(() => containerConfig({ entry, imageConfig, ids: new Map() })).toThrow(/label\.capabilites: unknown field/);
  });
  it('a label that is not JSON is an error', () => {
    const imageConfig = { Labels: { 'org.mobyproject.config': '{oops' } };
    expect(() => containerConfig({ entry, imageConfig, ids: new Map() })).toThrow(
      /org\.mobyproject\.config label: not valid JSON/,
    );
  });
});

describeCorpus('runtime.json', () => {
  it('runtime members come from the manifest; bindNS always lists all seven namespaces (wireguard.yml wg0)', () => {
    const c = configFor(example('wireguard'), 'wg0');
    expect(c.runtime).toEqual({
      cgroups: [],
      mounts: [],
      mkdir: [],
      interfaces: [{ name: 'wg0', add: 'wireguard', createInRoot: true }],
      bindNS: { cgroup: '', ipc: '', mnt: '', net: '/run/netns/wg0', pid: '', user: '', uts: '' },
      namespace: '',
    });
  });

  it('each runtime member is taken from the manifest if set there, else from the label', () => {
    const m = example('redis-os');
    const entry = { ...find(m, 'redis'), runtime: { mkdir: ['/var/lib/redis'] } };
    const imageConfig = {
      Labels: { 'org.mobyproject.config': JSON.stringify({ runtime: { mkdir: ['/label'], cgroups: ['redis'] } }) },
    };
    const c = containerConfig({ entry, imageConfig, ids: new Map() });
    expect(c.runtime.mkdir).toEqual(['/var/lib/redis']);
    expect(c.runtime.cgroups).toEqual(['redis']);
  });
});

describeCorpus('JSON encoding', () => {
  it('config.json is Go MarshalIndent: four-space indent, ociVersion first, empty values omitted, <>& escaped', () => {
    const c = configFor(example('redis-os'), 'redis', { env: ['A=<b&c>'] });
    const text = specJson(c.spec);
    expect(text.startsWith('{\n    "ociVersion": "1.2.1",\n    "process": {\n        "user": {\n')).toBe(true);
    expect(text).toContain('"A=\\u003cb\\u0026c\\u003e"');
    expect(text).not.toContain('"hostname"');
    expect(JSON.parse(text).process.env).toEqual(['A=<b&c>']);
    expect(Object.keys(JSON.parse(text))).toEqual(['ociVersion', 'process', 'root', 'mounts', 'linux']);
  });

  it('runtime.json keeps empty lists and strings (LinuxKit writes every member)', () => {
    const text = runtimeJson(configFor(example('redis-os'), 'redis').runtime);
    expect(Object.keys(JSON.parse(text))).toEqual(['cgroups', 'mounts', 'mkdir', 'interfaces', 'bindNS', 'namespace']);
    expect(text).toContain('"cgroups": []');
  });
});
