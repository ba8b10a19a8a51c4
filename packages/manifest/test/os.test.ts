import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatError, parseOsManifest } from '../src/index.ts';

/** Errors of a manifest made from `data`, as `path: message`. */
function errorsOf(data: unknown): string[] {
  const r = parseOsManifest(stringify(data), 'm.yml');
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

const svc = (extra: Record<string, unknown>) => ({ services: [{ name: 's', image: 'alpine:3.19', ...extra }] });

describe('OS manifest: image entries', () => {
  it('accepts every LinuxKit per-image key with the right types', () => {
    const full = {
      name: 'full',
      image: 'linuxkit/foo:abc',
      capabilities: ['CAP_SYS_ADMIN'],
      'capabilities.add': ['CAP_NET_ADMIN'],
      ambient: ['CAP_NET_RAW'],
      mounts: [
        { type: 'cgroup', options: ['rw'] },
        { destination: '/dev' },
        { type: 'bind', source: '/a', destination: '/b' },
      ],
      binds: ['/a:/b', '/c:/d:ro,rshared'],
      'binds.add': ['/e:/f'],
      devices: [
        { path: '/dev/console', type: 'c', major: 5, minor: 1, mode: '0666' },
        { path: 'all', type: 'b' },
      ],
      tmpfs: ['/tmp', '/run:size=10m'],
      command: ['/bin/sh'],
      env: ['A=1'],
      cwd: '/',
      net: 'host',
      pid: 'host',
      ipc: 'host',
      uts: 'host',
      userns: 'new',
      readonly: true,
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
      uid: 'daemon',
      gid: 0,
      additionalGids: [1, 'wheel'],
      noNewPrivileges: true,
      hostname: 'h',
      oomScoreAdj: -500,
      rootfsPropagation: 'shared',
      cgroupsPath: '/x',
      resources: {
        memory: { limit: 1000 },
        cpu: { shares: 2, cpus: '0-1' },
        pids: { limit: 10 },
        devices: [{ allow: false, access: 'rwm' }],
      },
      sysctl: { 'net.ipv4.ip_forward': '1' },
      rlimits: ['nofile,1024,unlimited', 'RLIMIT_CORE,0,0'],
      uidMappings: [{ hostID: 0, containerID: 0, size: 1 }],
      gidMappings: [{ hostID: 0, containerID: 0, size: 1 }],
      annotations: { a: 'b' },
      runtime: {
        cgroups: ['x'],
        mounts: [{ type: 'bind', source: '/a', destination: '/b' }],
        mkdir: ['/var/x'],
        interfaces: [{ name: 'eth0', add: 'veth', peer: 'veth1', createInRoot: true }],
        bindNS: { net: '/run/netns/x' },
        namespace: 'ns',
      },
    };
    expect(errorsOf({ onboot: [full], onshutdown: [full], services: [full] })).toEqual([]);
  });

  it('checks capability names; all/none only alone', () => {
    expect(errorsOf(svc({ capabilities: ['CAP_SYS_ADMIN', 'sys_admin', 'CAP_FLY'] }))).toEqual([
      "services.0.capabilities.1: unknown capability 'sys_admin' (write it as 'CAP_SYS_ADMIN')",
      "services.0.capabilities.2: unknown capability 'CAP_FLY'",
    ]);
    expect(errorsOf(svc({ capabilities: ['ALL'] }))).toEqual([]);
    expect(errorsOf(svc({ ambient: ['all', 'CAP_KILL'] }))).toEqual([
      "services.0.ambient.0: 'all' must be the only entry of a capability list",
    ]);
  });

  it('checks rlimits, binds, tmpfs, mounts and devices', () => {
    expect(
      errorsOf(
        svc({
          rlimits: ['nofile,10', 'bogus,1,2', 'nofile,x,2', 'nofile,5,4'],
          binds: ['/only', '/a:/b:c:d', '/a:rel'],
          tmpfs: ['/a:b:c', 'rel'],
          mounts: [{ source: '/x', destination: '/y' }, { type: 'overlay' }],
          devices: [
            { path: '/dev/x', type: 'c', major: 1, minor: 1, mode: '0999' },
            { path: '/dev/y', type: 'c' },
          ],
        }),
      ),
    ).toEqual([
      "services.0.rlimits.0: rlimit 'nofile,10' must be NAME,SOFT,HARD (e.g. nofile,1024,4096)",
      "services.0.rlimits.1: unknown rlimit 'bogus'",
      "services.0.rlimits.2: soft limit 'x' is not a number or 'unlimited'",
      "services.0.rlimits.3: rlimit 'nofile,5,4': soft limit is above the hard limit",
      "services.0.binds.0: bind '/only' is missing ':' (write SOURCE:DESTINATION[:OPTIONS])",
      "services.0.binds.1: bind '/a:/b:c:d' has too many ':' (write SOURCE:DESTINATION[:OPTIONS])",
      "services.0.binds.2: bind '/a:rel': destination 'rel' must be an absolute path",
      "services.0.tmpfs.0: tmpfs '/a:b:c' has too many ':' (write DESTINATION[:OPTIONS])",
      "services.0.tmpfs.1: tmpfs destination 'rel' must be an absolute path",
      "services.0.mounts.0: mount for /y is missing 'type'",
      "services.0.mounts.1: mount of type overlay is missing 'destination'",
      'services.0.devices.0.mode: mode \'0999\' is not a valid octal mode (e.g. "0644")',
      'services.0.devices.1: device is missing \'mode\' (e.g. "0666")',
    ]);
  });

  it('unknown keys suggest the nearest known key', () => {
    expect(errorsOf(svc({ capabilites: ['CAP_KILL'], readOnly: true }))).toEqual([
      "services.0.capabilites: unknown key 'capabilites' (did you mean 'capabilities'?)",
      "services.0.readOnly: unknown key 'readOnly' (did you mean 'readonly'?)",
    ]);
  });

  it('checks names and image references', () => {
    expect(
      errorsOf({
        onboot: [{ name: '', image: 'alpine' }],
        services: [{ name: 'a/b', image: 'alpine:bad tag' }],
        init: ['linuxkit/init@sha256:abc'],
        kernel: { image: 'linuxkit/Kernel' },
      }),
    ).toEqual([
      'onboot.0.name: name must not be empty',
      "services.0.name: name 'a/b' must be letters and digits, separated by single '.', '_' or '-'",
      "services.0.image: image reference 'alpine:bad tag' contains whitespace",
      "init.0: invalid digest 'sha256:abc': sha256 needs 64 hex digits, got 3",
      "kernel.image: repository name in 'linuxkit/Kernel' must be lowercase ('Kernel')",
    ]);
  });

  it('accepts LinuxKit @pkg: templates wherever an image goes; refuses other templates', () => {
    expect(
      errorsOf({
        kernel: { image: '@pkg:../../pkg/kernel' },
        init: ['@pkg:../pkg/init'],
        services: [{ name: 'sshd', image: '@pkg:/abs/pkg/sshd' }],
      }),
    ).toEqual([]);
    expect(errorsOf({ init: ['@pkg:', '@file:x'], onboot: [{ name: 'a', image: '@pkg:  ' }] })).toEqual([
      'init.0: @pkg: needs the path of a package directory, e.g. @pkg:../pkg/init',
      "init.1: unknown image template '@file': only @pkg:PATH (a package directory) is supported",
      'onboot.0.image: @pkg: needs the path of a package directory, e.g. @pkg:../pkg/init',
    ]);
  });

  it('kernel.image may be empty (no kernel), as in LinuxKit', () => {
    expect(errorsOf({ kernel: { image: '' } })).toEqual([]);
  });
});

describe('OS manifest: files, volumes, trust', () => {
  it('each file entry has exactly one kind of content', () => {
    expect(
      errorsOf({
        files: [
          { path: 'a', contents: 'x' },
          { path: 'b', directory: true },
          { path: 'c', symlink: '/a' },
          { path: 'd', source: '/etc/hosts', optional: true },
          { path: 'e', metadata: 'yaml' },
          { path: 'f' },
          { path: 'g', contents: 'x', source: '/y' },
          { path: 'h', directory: true, contents: 'x' },
          { path: 'i', metadata: 'toml' },
          { contents: 'x' },
          { path: 'j', contents: 'x', mode: '0800', optional: true },
        ],
      }),
    ).toEqual([
      'files.5: file has no content: set one of contents, source, metadata, symlink or directory: true',
      "files.6.source: 'contents' and 'source' conflict: a file entry takes exactly one of them",
      "files.7.contents: 'directory' and 'contents' conflict: a file entry takes exactly one of them",
      'files.8.metadata: metadata must be "json" or "yaml"; got "toml"',
      "files.9: file entry is missing 'path'",
      'files.10.mode: mode \'0800\' is not a valid octal mode (e.g. "0644")',
      "files.10.optional: 'optional' applies only to files with a 'source'",
    ]);
  });

  it('a conflicting key is reported at the key', () => {
    const r = parseOsManifest('files:\n  - path: a\n    contents: x\n    source: /y\n', 'm.yml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map(formatError)).toEqual([expect.stringMatching(/^m\.yml:4:5: files\.0\.source: /)]);
  });

  it('volumes: names, uniqueness, format and platforms', () => {
    expect(
      errorsOf({
        volumes: [
          { name: 'data', image: 'alpine:3.19', format: 'oci', platforms: ['linux/amd64', 'linux/arm64/v8'] },
          { name: 'data' },
          { name: '' },
          { name: 'x', platforms: ['amd64'] },
          { image: 'alpine' },
        ],
      }),
    ).toEqual([
      "volumes.1.name: duplicate volume name 'data' (also volumes.0)",
      'volumes.2.name: volume name must not be empty',
      "volumes.3.platforms.0: platform 'amd64' must be OS/ARCH[/VARIANT], e.g. linux/amd64",
      "volumes.4.name: missing required key 'name'",
    ]);
  });

  it('trust lists image names and orgs', () => {
    expect(errorsOf({ trust: { image: ['linuxkit/kernel', 'alpine'], org: ['linuxkit'] } })).toEqual([]);
    expect(errorsOf({ trust: { org: ['Bad Org'], image: ['X/Y'], user: ['me'] } })).toEqual([
      "trust.org.0: invalid org name 'Bad Org': use lowercase letters and digits",
      "trust.image.0: repository name in 'X/Y' must be lowercase ('Y')",
      "trust.user: unknown key 'user'",
    ]);
  });

  it('onboot names may repeat; service names may not', () => {
    const a = { name: 'a', image: 'alpine' };
    expect(errorsOf({ onboot: [a, a], onshutdown: [a, a] })).toEqual([]);
    expect(errorsOf({ services: [a, a, a] })).toEqual([
      "services.1.name: duplicate service name 'a' (also services.0)",
      "services.2.name: duplicate service name 'a' (also services.0)",
    ]);
  });

  it('reports errors from every section together', () => {
    const errs = errorsOf({
      kernel: { cmdline: 1 },
      init: 'linuxkit/init',
      services: [{ name: 'a', image: 'alpine', uid: [] }],
      files: [{ path: 'x' }],
    });
    expect(errs.map((e) => e.split(':')[0])).toEqual(['kernel.cmdline', 'init', 'services.0.uid', 'files.0']);
  });

  it('returns the typed value on success', () => {
    const r = parseOsManifest(
      'init: [linuxkit/init:abc]\nservices:\n  - name: a\n    image: alpine\n    uid: 100\n',
      'm.yml',
    );
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.init).toEqual(['linuxkit/init:abc']);
      expect(r.value.services?.[0]).toEqual({ name: 'a', image: 'alpine', uid: 100 });
    }
  });
});
