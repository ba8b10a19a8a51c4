// Stand-in images for the assembly tests. Labels are the `config:` sections of LinuxKit's
// pkg/<name>/build.yml (at linuxkit 3bf33c3a) as `linuxkit pkg build` stores them: JSON in the
// `org.mobyproject.config` label. Cmd/Entrypoint/WorkingDir follow each package's Dockerfile.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { parse } from 'yaml';
import type { OciImageConfig, OsManifest } from '../src/assemble/index.ts';

/** LinuxKit's manifests, read in place beside the repository (or $STELE_CORPUS); a user's clone has none. */
export const CORPUS =
  process.env.STELE_CORPUS ?? fileURLToPath(new URL('../../../../shared/corpus/linuxkit', import.meta.url));
export const corpusPresent = existsSync(join(CORPUS, 'examples'));

/** `describe` for tests built on corpus manifests: where the corpus is absent, skipped and saying so. */
export function describeCorpus(name: string, body: () => void): void {
  if (corpusPresent) describe(name, body);
  else describe.skip(`${name} (skipped: no LinuxKit corpus at ${CORPUS})`, body);
}

export function loadManifest(relative: string): OsManifest {
  return parse(readFileSync(join(CORPUS, relative), 'utf8')) as OsManifest;
}

export const example = (name: string) => loadManifest(`examples/${name}.yml`);

const PATH_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

const HOST_BINDS = [
  '/etc/resolv.conf:/etc/resolv.conf',
  '/run:/run',
  '/tmp:/tmp',
  '/etc:/hostroot/etc',
  '/usr/bin/ctr:/usr/bin/ctr',
  '/usr/bin/runc:/usr/bin/runc',
  '/containers:/containers',
  '/var/log:/var/log',
  '/var/lib/containerd:/var/lib/containerd',
  '/dev:/dev',
  '/sys:/sys',
];

/** build.yml `config:` per LinuxKit package. */
export const PACKAGE_CONFIG: Record<string, Record<string, unknown>> = {
  sysctl: { pid: 'host', readonly: true, capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] },
  rngd: { capabilities: ['CAP_SYS_ADMIN'], oomScoreAdj: -800, readonly: true, net: 'new', ipc: 'new' },
  dhcpcd: {
    binds: ['/run/resolvconf:/etc'],
    capabilities: ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'],
  },
  getty: {
    pid: 'host',
    net: 'host',
    binds: HOST_BINDS,
    devices: [
      { path: '/dev/console', type: 'c', major: 5, minor: 1, mode: '0666' },
      { path: '/dev/tty0', type: 'c', major: 4, minor: 0, mode: '0666' },
      { path: '/dev/ttyS0', type: 'c', major: 4, minor: 64, mode: '0666' },
      { path: '/dev/ttyAMA0', type: 'c', major: 204, minor: 64, mode: '0666' },
      { path: '/dev/hvc0', type: 'c', major: 229, minor: 0, mode: '0666' },
    ],
    capabilities: ['all'],
  },
  sshd: { pid: 'host', binds: HOST_BINDS, capabilities: ['all'], devices: [{ path: 'all', type: 'a' }] },
  format: {
    binds: ['/dev:/dev'],
    devices: [{ path: 'all', type: 'b' }],
    capabilities: ['CAP_SYS_ADMIN', 'CAP_MKNOD'],
    net: 'new',
    ipc: 'new',
  },
  mount: {
    binds: ['/dev:/dev', '/var:/var:rshared,rbind', '/:/hostroot'],
    devices: [{ path: 'all', type: 'b' }],
    capabilities: ['CAP_SYS_ADMIN'],
    rootfsPropagation: 'shared',
    net: 'new',
    ipc: 'new',
  },
  node_exporter: { pid: 'host', binds: ['/proc:/host/proc', '/sys:/host/sys', '/:/rootfs'], capabilities: ['all'] },
  openntpd: {
    binds: ['/etc/resolv.conf:/etc/resolv.conf'],
    capabilities: ['CAP_SYS_TIME', 'CAP_SYS_NICE', 'CAP_SYS_CHROOT', 'CAP_SETUID', 'CAP_SETGID'],
  },
  ip: { capabilities: ['CAP_NET_ADMIN', 'CAP_NET_RAW'] },
  sysfs: { net: 'new', ipc: 'new' },
  swap: {
    binds: ['/dev:/dev', '/var:/var'],
    devices: [{ path: 'all', type: 'a' }],
    capabilities: ['CAP_SYS_ADMIN', 'CAP_MKNOD'],
    net: 'new',
    ipc: 'new',
  },
};

const PACKAGE_PROCESS: Record<string, Pick<OciImageConfig, 'Entrypoint' | 'Cmd'>> = {
  getty: { Entrypoint: ['/sbin/tini', '-s', '-v', '--'], Cmd: ['/usr/bin/rungetty.sh'] },
  rngd: { Cmd: ['/sbin/rngd'] },
  dhcpcd: { Cmd: ['/sbin/dhcpcd', '--nobackground', '-f', '/dhcpcd.conf'] },
  sshd: { Cmd: ['/sbin/tini', '-s', '/usr/bin/ssh.sh'] },
  sysctl: { Cmd: ['/usr/bin/sysctl'] },
  format: { Cmd: ['/usr/bin/format'] },
  mount: { Cmd: ['/usr/bin/mountie'] },
  node_exporter: { Entrypoint: ['/bin/node_exporter', '--path.procfs', '/host/proc'] },
  openntpd: { Cmd: ['/usr/sbin/ntpd', '-d'] },
  sysfs: { Cmd: ['/usr/bin/sysfs'] },
  swap: { Entrypoint: ['swap.sh'] },
};

/** Image config for a reference: LinuxKit packages get their label; other images none. */
export function standInConfig(ref: string): OciImageConfig {
  const m = /^linuxkit\/([a-z_-]+):/.exec(ref);
  const name = m?.[1];
  if (name && (name in PACKAGE_CONFIG || name in PACKAGE_PROCESS)) {
    const config = PACKAGE_CONFIG[name];
    return {
      Env: PATH_ENV,
      WorkingDir: '/',
      ...PACKAGE_PROCESS[name],
      Labels: config ? { 'org.mobyproject.config': JSON.stringify(config) } : {},
    };
  }
  // e.g. docker:20.10.6-dind, redis:4.0.5-alpine, nginx: a plain Docker Hub image, no label
  return { Env: PATH_ENV, Cmd: ['sh'], WorkingDir: '' };
}
