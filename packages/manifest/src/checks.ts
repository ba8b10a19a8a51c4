/**
 * Syntax checks that LinuxKit defers to build time (capabilities, rlimits, binds, tmpfs,
 * modes). Each returns a message when the value is wrong, undefined when it is fine.
 */
import { suggest } from './schema/common.ts';

/** Every capability the Linux kernel knows (as of 5.9+), `CAP_` spelling. */
export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];
const CAPABILITY_SET = new Set(CAPABILITIES);

/** `all` and `none` are keywords only as the single entry of a list (any case). */
export function isCapabilityKeyword(value: string): boolean {
  const v = value.toLowerCase();
  return v === 'all' || v === 'none';
}

export function checkCapability(value: string): string | undefined {
  if (CAPABILITY_SET.has(value)) return undefined;
  if (isCapabilityKeyword(value)) return undefined; // placement is checked on the list
  const upper = value.toUpperCase();
  const spelled = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (CAPABILITY_SET.has(spelled)) return `unknown capability '${value}' (write it as '${spelled}')`;
  return `unknown capability '${value}'`;
}

/** A capability list: names, or exactly one of `all` / `none`. Returns [index, message] pairs. */
export function checkCapabilityList(values: readonly string[]): Array<[number, string]> {
  const problems: Array<[number, string]> = [];
  values.forEach((v, i) => {
    if (isCapabilityKeyword(v) && values.length > 1) {
      problems.push([i, `'${v}' must be the only entry of a capability list`]);
      return;
    }
    const bad = checkCapability(v);
    if (bad) problems.push([i, bad]);
  });
  return problems;
}

export const RLIMITS: readonly string[] = [
  'RLIMIT_CPU',
  'RLIMIT_FSIZE',
  'RLIMIT_DATA',
  'RLIMIT_STACK',
  'RLIMIT_CORE',
  'RLIMIT_RSS',
  'RLIMIT_NPROC',
  'RLIMIT_NOFILE',
  'RLIMIT_MEMLOCK',
  'RLIMIT_AS',
  'RLIMIT_LOCKS',
  'RLIMIT_SIGPENDING',
  'RLIMIT_MSGQUEUE',
  'RLIMIT_NICE',
  'RLIMIT_RTPRIO',
  'RLIMIT_RTTIME',
];
const UINT64_MAX = 18446744073709551615n;

function checkRlimitValue(s: string, which: string): string | undefined {
  if (s.toLowerCase() === 'unlimited') return undefined;
  if (!/^[0-9]+$/.test(s)) return `${which} limit '${s}' is not a number or 'unlimited'`;
  if (BigInt(s) > UINT64_MAX) return `${which} limit '${s}' is larger than 2^64-1`;
  return undefined;
}

/** `NAME,SOFT,HARD`, NAME with or without `RLIMIT_`, limits numbers or `unlimited`. */
export function checkRlimit(value: string): string | undefined {
  const parts = value.split(',');
  if (parts.length !== 3) return `rlimit '${value}' must be NAME,SOFT,HARD (e.g. nofile,1024,4096)`;
  const [rawName, soft, hard] = parts.map((p) => p.trim()) as [string, string, string];
  let name = rawName.toUpperCase();
  if (!name.startsWith('RLIMIT_')) name = `RLIMIT_${name}`;
  if (!RLIMITS.includes(name)) return `unknown rlimit '${rawName}'`;
  const softBad = checkRlimitValue(soft, 'soft');
  if (softBad) return softBad;
  const hardBad = checkRlimitValue(hard, 'hard');
  if (hardBad) return hardBad;
  if (soft.toLowerCase() !== 'unlimited') {
    const h = hard.toLowerCase() === 'unlimited' ? UINT64_MAX : BigInt(hard);
    if (BigInt(soft) > h) return `rlimit '${value}': soft limit is above the hard limit`;
  }
  return undefined;
}

/** `SRC:DEST[:OPTS]` with non-empty SRC and an absolute DEST. */
export function checkBind(value: string): string | undefined {
  const parts = value.split(':');
  if (parts.length < 2) return `bind '${value}' is missing ':' (write SOURCE:DESTINATION[:OPTIONS])`;
  if (parts.length > 3) return `bind '${value}' has too many ':' (write SOURCE:DESTINATION[:OPTIONS])`;
  const [src, dest, opts] = parts as [string, string, string | undefined];
  if (src === '') return `bind '${value}' has an empty source`;
  if (!dest.startsWith('/')) return `bind '${value}': destination '${dest}' must be an absolute path`;
  if (opts?.split(',').some((o) => o === '')) return `bind '${value}' has an empty option`;
  return undefined;
}

/** What a bind needs to know of a declared volume. */
export interface VolumeInfo {
  readonly?: boolean | null | undefined;
}

/**
 * A bind whose source does not start with '/' names a volume: LinuxKit binds the volume's
 * merged directory instead. The volume must be declared, and a read-only one bound read-only.
 */
function checkVolumeSource(
  source: string,
  what: string,
  volumes: ReadonlyMap<string, VolumeInfo>,
): VolumeInfo | string | undefined {
  if (source.startsWith('/')) return undefined;
  if (source === '') return `${what} has an empty source`;
  const volume = volumes.get(source);
  if (volume) return volume;
  const hint = suggest(source, [...volumes.keys()]);
  return `${what} source '${source}' is neither an absolute path nor a volume declared under volumes:${hint ? ` (did you mean '${hint}'?)` : ''}`;
}

/**
 * A `binds` entry's source against the declared volumes (its syntax is checkBind's); LinuxKit
 * takes a bind as read-only when its options are exactly `ro`.
 */
export function checkVolumeBind(bind: string, volumes: ReadonlyMap<string, VolumeInfo>): string | undefined {
  if (checkBind(bind)) return undefined;
  const [source = '', dest = '', options] = bind.split(':');
  const volume = checkVolumeSource(source, 'bind', volumes);
  if (typeof volume !== 'object') return volume;
  if (volume.readonly === true && options !== 'ro') {
    return `volume '${source}' is read-only: bind it with the option ro alone (${source}:${dest}:ro)`;
  }
  return undefined;
}

/** A bind mount against the declared volumes; the first of `ro` and `rw` among its options decides. */
export function checkVolumeMount(
  m: { type?: string | undefined; source?: string | undefined; options?: readonly string[] | undefined },
  volumes: ReadonlyMap<string, VolumeInfo>,
): string | undefined {
  if (m.type !== 'bind') return undefined;
  const source = m.source ?? '';
  const volume = checkVolumeSource(source, 'bind mount', volumes);
  if (typeof volume !== 'object') return volume;
  if (volume.readonly === true && (m.options ?? []).find((o) => o === 'ro' || o === 'rw') !== 'ro') {
    return `volume '${source}' is read-only: mount it with the option ro`;
  }
  return undefined;
}

/** `DEST[:OPTS]` with an absolute DEST. */
export function checkTmpfs(value: string): string | undefined {
  const parts = value.split(':');
  if (parts.length > 2) return `tmpfs '${value}' has too many ':' (write DESTINATION[:OPTIONS])`;
  const dest = parts[0] as string;
  if (!dest.startsWith('/')) return `tmpfs destination '${dest}' must be an absolute path`;
  return undefined;
}

const MOUNT_SOURCES_AS_TYPES = new Set(['mqueue', 'devpts', 'proc', 'sysfs', 'cgroup']);
const DEFAULT_MOUNTPOINTS: Record<string, string> = {
  proc: '/proc',
  devpts: '/dev/pts',
  sysfs: '/sys',
  cgroup: '/sys/fs/cgroup',
  mqueue: '/dev/mqueue',
};

/** A mount must end up with a type and a destination after LinuxKit's defaulting. */
export function checkMount(m: { type?: string; source?: string; destination?: string }): string | undefined {
  let type = m.type ?? '';
  const source = m.source ?? '';
  const dest = m.destination ?? '';
  if (type === '' && MOUNT_SOURCES_AS_TYPES.has(source)) type = source;
  if (type === '' && dest === '/dev') type = 'tmpfs';
  if (type === '') return `mount${dest ? ` for ${dest}` : ''} is missing 'type'`;
  if (dest === '' && !Object.hasOwn(DEFAULT_MOUNTPOINTS, type)) return `mount of type ${type} is missing 'destination'`;
  return undefined;
}

/**
 * A `files` entry's path: where the entry lands in the image. LinuxKit drops one leading '/';
 * what remains must stay below /: no '..' segment, no second '/', and no control character (a
 * NUL ends a name in a tar header, so `bin/sh\0x` would replace bin/sh).
 */
export function checkFilePath(value: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it refuses
  const control = /[\u0000-\u001f\u007f]/.exec(value)?.[0];
  if (control !== undefined) {
    return `path has control character U+${control.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  }
  const relative = value.startsWith('/') ? value.slice(1) : value;
  const segments = relative.split('/');
  if (segments.every((s) => s === '' || s === '.')) return 'path must name a file below /';
  if (relative.startsWith('/'))
    return `path '${value}' is absolute even without its first '/': start it with one '/' at most`;
  if (segments.includes('..')) return `path '${value}' has a '..' segment: a file must stay inside the image`;
  return undefined;
}

/** An octal file or device mode such as `0644`. */
export function checkOctalMode(value: string): string | undefined {
  if (!/^[0-7]+$/.test(value)) return `mode '${value}' is not a valid octal mode (e.g. "0644")`;
  if (Number.parseInt(value, 8) > 0o7777) return `mode '${value}' is larger than 07777`;
  return undefined;
}

/** `KEY=VALUE`; `@lkt:pkgs:` values need a `%` in the key. */
export function checkBuildArg(value: string): string | undefined {
  const eq = value.indexOf('=');
  if (eq < 0) return `build arg '${value}' must be KEY=VALUE`;
  const key = value.slice(0, eq);
  const val = value.slice(eq + 1);
  if (key === '') return `build arg '${value}' has an empty key`;
  if (val.startsWith('@lkt:')) {
    const special = val.slice('@lkt:'.length);
    if (special.startsWith('pkgs:')) {
      if (!key.includes('%')) return `build arg key '${key}' must contain '%' for an @lkt:pkgs: value`;
    } else if (!special.startsWith('pkg:')) {
      return `build arg '${value}': unknown @lkt: value (use @lkt:pkg:PATH or @lkt:pkgs:GLOB)`;
    }
  }
  return undefined;
}

/** `SRC:DEST` — exactly one ':'. */
export function checkExtraSource(value: string): string | undefined {
  const parts = value.split(':');
  if (parts.length !== 2) return `extra source '${value}' must be SOURCE:DESTINATION (exactly one ':')`;
  if (parts[0] === '' || parts[1] === '') return `extra source '${value}' has an empty side`;
  return undefined;
}

/**
 * A package tag template (Go text/template over `{ Hash }`): every `{{` closes, and the only
 * field it can use is `.Hash`.
 */
export function checkTagTemplate(value: string): string | undefined {
  let i = 0;
  for (;;) {
    const open = value.indexOf('{{', i);
    const strayClose = value.indexOf('}}', i);
    if (open < 0) {
      if (strayClose >= 0) return `invalid tag template '${value}': '}}' without '{{'`;
      return undefined;
    }
    if (strayClose >= 0 && strayClose < open) return `invalid tag template '${value}': '}}' without '{{'`;
    const close = value.indexOf('}}', open + 2);
    if (close < 0) return `invalid tag template '${value}': unclosed action (missing '}}')`;
    const body = value
      .slice(open + 2, close)
      .replace(/^-\s/, '')
      .replace(/\s-$/, '')
      .trim();
    if (body === '') return `invalid tag template '${value}': empty action`;
    for (const field of body.match(/(?<![\w$])\.[A-Za-z_]\w*/g) ?? []) {
      if (field !== '.Hash') return `invalid tag template '${value}': unknown field ${field} (only .Hash is set)`;
    }
    i = close + 2;
  }
}
