// From an image's OCI config, its `org.mobyproject.config` label and the manifest's entry for it,
// the OCI runtime bundle config (config.json) and LinuxKit's runtime.json, following the rules of
// LinuxKit's ConfigToOCI (moby/config.go). Precedence, lowest to highest: image config (only for
// command, env and cwd), then the label, then the manifest entry.

import { ALL_CAPABILITIES, isKnownCapability } from './capabilities.ts';
import { AssembleError } from './errors.ts';
import { compareBytes, type GoJsonValue, goJsonIndent, sortedRecord } from './goJson.ts';
import { resolveId } from './ids.ts';
import { type Converted, convertIdMappings, convertResources } from './resources.ts';
import type {
  DeviceSpec,
  Id,
  IdMap,
  ImageConfigFields,
  ImageEntry,
  InterfaceSpec,
  MountSpec,
  OciImageConfig,
  RuntimeSpec,
} from './types.ts';

/** The runtime-spec version LinuxKit writes (the vendored opencontainers/runtime-spec v1.2.1). */
export const OCI_VERSION = '1.2.1';
export const CONFIG_LABEL = 'org.mobyproject.config';
/** 2^64 - 1, what `unlimited` means in an rlimit. */
export const RLIMIT_INFINITY = 18446744073709551615n;

// ---------------------------------------------------------------- output shapes (Go field order)

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciRlimit {
  type: string;
  hard: bigint;
  soft: bigint;
}

export interface OciNamespace {
  type: 'network' | 'ipc' | 'uts' | 'pid' | 'user' | 'mount';
  path?: string;
}

export interface OciDevice {
  path: string;
  type: string;
  major: number;
  minor: number;
  fileMode?: number;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciSpec {
  ociVersion: string;
  process: {
    user: { uid: number; gid: number; additionalGids?: number[] };
    args?: string[];
    env?: string[];
    cwd: string;
    capabilities: {
      bounding?: string[];
      effective?: string[];
      inheritable?: string[];
      permitted?: string[];
      ambient?: string[];
    };
    rlimits?: OciRlimit[];
    noNewPrivileges?: boolean;
    oomScoreAdj?: number;
  };
  root: { path: 'rootfs'; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  annotations?: Record<string, string>;
  linux: {
    uidMappings?: Converted[];
    gidMappings?: Converted[];
    sysctl?: Record<string, string>;
    resources: Converted & { devices?: OciDeviceCgroup[] };
    cgroupsPath?: string;
    namespaces: OciNamespace[];
    devices?: OciDevice[];
    rootfsPropagation?: string;
    maskedPaths?: string[];
    readonlyPaths?: string[];
  };
}

/** LinuxKit's runtime.json (moby.Runtime): every member is always written. */
export interface LinuxkitRuntime {
  cgroups: string[];
  mounts: OciMount[];
  mkdir: string[];
  interfaces: { name?: string; add?: string; peer?: string; createInRoot: boolean }[];
  bindNS: { cgroup: string; ipc: string; mnt: string; net: string; pid: string; user: string; uts: string };
  namespace: string;
}

export interface ContainerConfig {
  spec: OciSpec;
  /** runtime.json before the bundle's rootfs mounts are put in front (see layout). */
  runtime: LinuxkitRuntime;
  readonly: boolean;
}

export interface ContainerConfigInput {
  /** The manifest's entry, with volume names in binds/mounts already replaced by paths. */
  entry: ImageEntry;
  imageConfig: OciImageConfig;
  /** Named uids/gids (LinuxKit: container names, see containerIdMap). */
  ids: IdMap;
  /** How errors name the image, e.g. `services[1] "sshd"`. Defaults to the entry's name and image. */
  subject?: string;
}

// ---------------------------------------------------------------- the label

type FieldKind = 'strings' | 'string' | 'bool' | 'int' | 'id' | 'ids' | 'list' | 'map' | 'object';
const FIELD_KINDS: Record<keyof ImageConfigFields, FieldKind> = {
  capabilities: 'strings',
  'capabilities.add': 'strings',
  ambient: 'strings',
  mounts: 'list',
  binds: 'strings',
  'binds.add': 'strings',
  devices: 'list',
  tmpfs: 'strings',
  command: 'strings',
  env: 'strings',
  cwd: 'string',
  net: 'string',
  pid: 'string',
  ipc: 'string',
  uts: 'string',
  userns: 'string',
  hostname: 'string',
  readonly: 'bool',
  maskedPaths: 'strings',
  readonlyPaths: 'strings',
  uid: 'id',
  gid: 'id',
  additionalGids: 'ids',
  noNewPrivileges: 'bool',
  oomScoreAdj: 'int',
  rootfsPropagation: 'string',
  cgroupsPath: 'string',
  resources: 'object',
  sysctl: 'map',
  rlimits: 'strings',
  uidMappings: 'list',
  gidMappings: 'list',
  annotations: 'map',
  runtime: 'object',
};

function kindError(kind: FieldKind, value: unknown): string | undefined {
  const isId = (v: unknown) => typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  switch (kind) {
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string')
        ? undefined
        : 'expected a list of strings';
    case 'string':
      return typeof value === 'string' ? undefined : 'expected a string';
    case 'bool':
      return typeof value === 'boolean' ? undefined : 'expected a boolean';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) ? undefined : 'expected an integer';
    case 'id':
      return isId(value) ? undefined : 'expected a name or an integer';
    case 'ids':
      return Array.isArray(value) && value.every(isId) ? undefined : 'expected a list of names or integers';
    case 'list':
      return Array.isArray(value) ? undefined : 'expected a list';
    case 'map':
      return typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value) &&
        Object.values(value).every((v) => typeof v === 'string')
        ? undefined
        : 'expected a map of strings';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'expected an object';
  }
}

/** Checks the top-level shape of an image config (label or manifest entry) and returns it typed. */
export function checkImageConfigFields(
  value: unknown,
  subject: string,
  where: string,
  allowed: readonly string[] = [],
): ImageConfigFields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AssembleError(subject, where, 'expected an object');
  }
  for (const [key, v] of Object.entries(value)) {
    if (v === null || v === undefined || allowed.includes(key)) continue;
    const kind = FIELD_KINDS[key as keyof ImageConfigFields];
    if (kind === undefined) throw new AssembleError(subject, `${where}.${key}`, 'unknown field');
    const problem = kindError(kind, v);
    if (problem) throw new AssembleError(subject, `${where}.${key}`, problem);
  }
  return value as ImageConfigFields;
}

/**
 * The `org.mobyproject.config` label: a JSON object with the configurable image fields. `name` and
 * `image` may not be set in it. An absent or empty label is an empty config.
 */
export function parseConfigLabel(
  labels: Record<string, string> | null | undefined,
  subject: string,
): ImageConfigFields {
  const text = labels?.[CONFIG_LABEL];
  if (text === undefined || text === '') return {};
  const where = `${CONFIG_LABEL} label`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new AssembleError(subject, where, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AssembleError(subject, where, 'must be a JSON object');
  }
  for (const forbidden of ['name', 'image']) {
    if (forbidden in parsed)
      throw new AssembleError(subject, `${where}.${forbidden}`, `${forbidden} cannot be set in the label`);
  }
  return checkImageConfigFields(parsed, subject, where);
}

// ---------------------------------------------------------------- precedence

const isSet = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;

/** The highest-precedence value that is present (not null/undefined); layers are lowest first. */
function pick<T>(...layers: (T | null | undefined)[]): T | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const v = layers[i];
    if (isSet(v)) return v;
  }
  return undefined;
}

/** Like pick, but an empty string counts as absent (LinuxKit's non-pointer string fields). */
function pickText(...layers: (string | null | undefined)[]): string | undefined {
  return pick(...layers.map((v) => (v === '' ? undefined : v)));
}

/** A base list plus an `.add` list, keeping the first of any repeated value. */
function withAdded(base: string[] | null | undefined, added: string[] | null | undefined): string[] | undefined {
  if (!isSet(base) && !isSet(added)) return undefined;
  return [...new Set([...(base ?? []), ...(added ?? [])])];
}

const nonEmpty = <T>(list: T[] | undefined): T[] | undefined => (list && list.length > 0 ? list : undefined);
const nonEmptyRecord = (r: Record<string, string> | undefined) =>
  r && Object.keys(r).length > 0 ? sortedRecord(r) : undefined;

// ---------------------------------------------------------------- mounts

/** Where a filesystem type is mounted when a mount gives no destination. */
export function defaultMountpoint(type: string): string | undefined {
  return (
    { proc: '/proc', devpts: '/dev/pts', sysfs: '/sys', cgroup: '/sys/fs/cgroup', mqueue: '/dev/mqueue' } as Record<
      string,
      string
    >
  )[type];
}

/** The mounts every container gets (as Docker does, without /dev/shm and /dev/mqueue). */
function defaultMounts(readonly: boolean): OciMount[] {
  const ro = readonly ? ['ro'] : [];
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec', 'relatime'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k', ...ro],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...ro] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
  ];
}

/** `tmpfs` entries: `dest` or `dest:opt,opt`. */
function tmpfsMount(spec: string, fail: (d: string) => never): OciMount {
  const parts = spec.split(':');
  if (parts.length > 2) fail(`cannot parse tmpfs, too many ':': ${spec}`);
  const [destination = '', opts] = parts;
  return { destination, type: 'tmpfs', source: 'tmpfs', options: opts === undefined ? undefined : opts.split(',') };
}

/** `binds` entries: `src:dest` (rw, rbind, rshared) or `src:dest:opt,opt` (those plus rbind). */
function bindMount(spec: string, fail: (d: string) => never): OciMount {
  const parts = spec.split(':');
  if (parts.length < 2) fail(`cannot parse bind, missing ':': ${spec}`);
  if (parts.length > 3) fail(`cannot parse bind, too many ':': ${spec}`);
  const [source = '', destination = '', opts] = parts;
  const options = opts === undefined ? ['rw', 'rbind', 'rshared'] : [...opts.split(','), 'rbind'];
  return { destination, type: 'bind', source, options };
}

/** `mounts` entries: the type may be implied by the source or by /dev; source and destination default. */
function explicitMount(m: MountSpec, fail: (d: string) => never): OciMount {
  let type = m.type ?? '';
  const source = m.source ?? '';
  let destination = m.destination ?? '';
  if (type === '' && ['mqueue', 'devpts', 'proc', 'sysfs', 'cgroup'].includes(source)) type = source;
  if (type === '' && destination === '/dev') type = 'tmpfs';
  if (type === '') fail(`mount for destination ${destination} is missing type`);
  if (destination === '') destination = defaultMountpoint(type) ?? '';
  if (destination === '') fail(`mount type ${type} is missing destination`);
  return { destination, type, source: source === '' ? type : source, options: nonEmpty(m.options ?? undefined) };
}

// ---------------------------------------------------------------- namespaces

/**
 * A namespace setting: `host`/`root` share the init's namespace (no entry), `new`, an empty value
 * (and, for net, `none`) make a new one, anything else is the path of a namespace to join.
 */
function namespaceEntry(type: OciNamespace['type'], setting: string, alsoNew: string[] = []): OciNamespace[] {
  if (setting === 'host' || setting === 'root') return [];
  if (setting === '' || setting === 'new' || alsoNew.includes(setting)) return [{ type }];
  return [{ type, path: setting }];
}

// ---------------------------------------------------------------- capabilities and rlimits

function expandCapabilities(list: string[], field: string, fail: (f: string, d: string) => never): string[] {
  if (list.length === 1) {
    const only = (list[0] ?? '').toLowerCase();
    if (only === 'none') return [];
    if (only === 'all') return [...ALL_CAPABILITIES];
  }
  for (const cap of list) {
    if (!isKnownCapability(cap)) {
      fail(field, `unknown capability: ${cap} (use names like CAP_NET_ADMIN, or a single "all" or "none")`);
    }
  }
  return list;
}

const RLIMITS = new Set(
  [
    'CPU',
    'FSIZE',
    'DATA',
    'STACK',
    'CORE',
    'RSS',
    'NPROC',
    'NOFILE',
    'MEMLOCK',
    'AS',
    'LOCKS',
    'SIGPENDING',
    'MSGQUEUE',
    'NICE',
    'RTPRIO',
    'RTTIME',
  ].map((n) => `RLIMIT_${n}`),
);

function rlimitValue(text: string, fail: (d: string) => never): bigint {
  const t = text.trim();
  if (t.toLowerCase() === 'unlimited') return RLIMIT_INFINITY;
  if (!/^[0-9]+$/.test(t) || BigInt(t) > RLIMIT_INFINITY) fail(`cannot parse ${t} as uint64`);
  return BigInt(t);
}

/** `type,soft,hard` where type may omit `RLIMIT_` and soft/hard may be `unlimited`. */
function rlimit(spec: string, fail: (d: string) => never): OciRlimit {
  const comma1 = spec.indexOf(',');
  const comma2 = comma1 < 0 ? -1 : spec.indexOf(',', comma1 + 1);
  if (comma2 < 0) fail(`cannot parse rlimit ${JSON.stringify(spec)}: expected type,soft,hard`);
  let type = spec.slice(0, comma1).trim().toUpperCase();
  if (!type.startsWith('RLIMIT_')) type = `RLIMIT_${type}`;
  const soft = rlimitValue(spec.slice(comma1 + 1, comma2), fail);
  const hard = rlimitValue(spec.slice(comma2 + 1), fail);
  if (!RLIMITS.has(type)) fail(`unknown limit: ${spec.slice(0, comma1).trim()}`);
  return { type, hard, soft };
}

// ---------------------------------------------------------------- devices

/** An octal mode string; a number stands for the digits a YAML 1.1 parser would have kept (0666 → "666"). */
export function parseOctalMode(mode: string | number | undefined): number | undefined {
  const text = typeof mode === 'number' ? String(mode) : mode;
  if (text === undefined || !/^[0-7]+$/.test(text)) return undefined;
  const value = Number.parseInt(text, 8);
  return value <= 0x7fffffff ? value : undefined;
}

function devices(list: DeviceSpec[], fail: (f: string, d: string) => never) {
  const linuxDevices: OciDevice[] = [];
  const rules: OciDeviceCgroup[] = [];
  list.forEach((d, i) => {
    if (d.path === 'all') {
      // a whole class (b, c or a) in the device cgroup allow-list
      rules.push({ allow: true, type: d.type, access: 'rwm' });
      return;
    }
    const fileMode = parseOctalMode(d.mode);
    if (fileMode === undefined) {
      fail(`devices[${i}].mode`, `cannot parse device mode as octal value: ${JSON.stringify(d.mode ?? '')}`);
    }
    const major = d.major ?? 0;
    const minor = d.minor ?? 0;
    linuxDevices.push({ path: d.path, type: d.type, major, minor, fileMode });
    rules.push({ allow: true, type: d.type, major, minor, access: 'rwm' });
  });
  return { linuxDevices, rules };
}

// ---------------------------------------------------------------- runtime.json

function runtimeMount(m: MountSpec): OciMount {
  return {
    destination: m.destination ?? '',
    type: m.type || undefined,
    source: m.source || undefined,
    options: nonEmpty(m.options ?? undefined),
  };
}

function runtimeInterface(i: InterfaceSpec) {
  return {
    name: i.name || undefined,
    add: i.add || undefined,
    peer: i.peer || undefined,
    createInRoot: !!i.createInRoot,
  };
}

/** Each runtime member is taken from the manifest entry if set there, else from the label. */
export function mergeRuntime(
  label: RuntimeSpec | null | undefined,
  entry: RuntimeSpec | null | undefined,
): LinuxkitRuntime {
  const l = label ?? {};
  const e = entry ?? {};
  const ns = (k: keyof NonNullable<RuntimeSpec['bindNS']>) => pick(l.bindNS?.[k], e.bindNS?.[k]) ?? '';
  return {
    cgroups: pick(l.cgroups, e.cgroups) ?? [],
    mounts: (pick(l.mounts, e.mounts) ?? []).map(runtimeMount),
    mkdir: pick(l.mkdir, e.mkdir) ?? [],
    interfaces: (pick(l.interfaces, e.interfaces) ?? []).map(runtimeInterface),
    bindNS: {
      cgroup: ns('cgroup'),
      ipc: ns('ipc'),
      mnt: ns('mnt'),
      net: ns('net'),
      pid: ns('pid'),
      user: ns('user'),
      uts: ns('uts'),
    },
    namespace: pick(l.namespace, e.namespace) ?? '',
  };
}

// ---------------------------------------------------------------- ConfigToOCI

export function containerConfig(input: ContainerConfigInput): ContainerConfig {
  const { imageConfig, ids } = input;
  const subject = input.subject ?? `"${input.entry.name}" (${input.entry.image})`;
  const entry = checkImageConfigFields(input.entry, subject, 'manifest', ['name', 'image']) as ImageEntry;
  const label = parseConfigLabel(imageConfig.Labels, subject);
  const fail = (field: string, detail: string): never => {
    throw new AssembleError(subject, field, detail);
  };

  // command, env and cwd may come from the image config (a Dockerfile sets them)
  const imageArgs =
    isSet(imageConfig.Entrypoint) || isSet(imageConfig.Cmd)
      ? [...(imageConfig.Entrypoint ?? []), ...(imageConfig.Cmd ?? [])]
      : undefined;
  const args = pick(imageArgs, label.command, entry.command);
  const env = pick(imageConfig.Env, label.env, entry.env);
  const cwd = pickText('/', imageConfig.WorkingDir, label.cwd, entry.cwd) ?? '/';

  const readonly = pick(label.readonly, entry.readonly) ?? false;

  // mounts, keyed by destination: defaults, then tmpfs, then binds, then mounts; later wins
  const mounts = new Map<string, OciMount>();
  for (const m of defaultMounts(readonly)) mounts.set(m.destination, m);
  for (const t of pick(label.tmpfs, entry.tmpfs) ?? []) {
    const m = tmpfsMount(t, (d) => fail('tmpfs', d));
    mounts.set(m.destination, m);
  }
  for (const b of pick(withAdded(label.binds, entry['binds.add']), entry.binds) ?? []) {
    const m = bindMount(b, (d) => fail(isSet(entry.binds) ? 'binds' : 'binds.add', d));
    mounts.set(m.destination, m);
  }
  for (const spec of pick(label.mounts, entry.mounts) ?? []) {
    const m = explicitMount(spec, (d) => fail('mounts', d));
    mounts.set(m.destination, m);
  }
  const mountList = [...mounts.values()].sort((a, b) => compareBytes(a.destination, b.destination));

  // namespaces: net, ipc, uts and user default to the host's; pid defaults to a new one; mount always new
  const namespaces: OciNamespace[] = [
    ...namespaceEntry('network', pickText('root', label.net, entry.net) ?? 'root', ['none']),
    ...namespaceEntry('ipc', pickText('root', label.ipc, entry.ipc) ?? 'root'),
    ...namespaceEntry('uts', pickText('root', label.uts, entry.uts) ?? 'root'),
    ...namespaceEntry('pid', pickText(label.pid, entry.pid) ?? ''),
    ...namespaceEntry('user', pickText('root', label.userns, entry.userns) ?? 'root'),
    { type: 'mount' },
  ];

  // capabilities: effective as listed; bounding, inheritable and permitted also hold the ambient ones
  const capsField = isSet(entry.capabilities) ? 'capabilities' : 'capabilities.add';
  const caps = expandCapabilities(
    pick(withAdded(label.capabilities, entry['capabilities.add']), entry.capabilities) ?? [],
    capsField,
    fail,
  );
  const ambient = expandCapabilities(pick(label.ambient, entry.ambient) ?? [], 'ambient', fail);
  const bounding = [...new Set([...caps, ...ambient])].sort(compareBytes);

  const rlimits = (pick(label.rlimits, entry.rlimits) ?? []).map((r, i) => rlimit(r, (d) => fail(`rlimits[${i}]`, d)));

  const id = (value: Id | null | undefined, field: string): number => {
    const r = resolveId(value, ids);
    if (!r.ok) return fail(field, r.message);
    return r.id;
  };
  const uid = id(pick(label.uid, entry.uid), 'uid');
  const gid = id(pick(label.gid, entry.gid), 'gid');
  const additionalGids = (pick(label.additionalGids, entry.additionalGids) ?? []).map((g, i) =>
    id(g, `additionalGids[${i}]`),
  );

  let resources: Converted;
  try {
    resources = convertResources(pick(label.resources, entry.resources) ?? {});
  } catch (e) {
    return fail('resources', (e as Error).message);
  }
  const { linuxDevices, rules } = devices(pick(label.devices, entry.devices) ?? [], fail);
  const deviceRules = [...((resources.devices as OciDeviceCgroup[] | undefined) ?? []), ...rules];
  if (deviceRules.length > 0) resources.devices = deviceRules;

  const mappings = (field: 'uidMappings' | 'gidMappings') => {
    const value = pick(label[field], entry[field]);
    if (!isSet(value)) return undefined;
    try {
      return nonEmpty(convertIdMappings(value, field));
    } catch (e) {
      return fail(field, (e as Error).message);
    }
  };

  const oomScoreAdj = pick(label.oomScoreAdj, entry.oomScoreAdj);
  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      user: { uid, gid, additionalGids: nonEmpty(additionalGids) },
      args: nonEmpty(args),
      env: nonEmpty(env),
      cwd,
      capabilities: {
        bounding: nonEmpty(bounding),
        effective: nonEmpty(caps),
        inheritable: nonEmpty(bounding),
        permitted: nonEmpty(bounding),
        ambient: nonEmpty(ambient),
      },
      rlimits: nonEmpty(rlimits),
      noNewPrivileges: pick(label.noNewPrivileges, entry.noNewPrivileges) || undefined,
      oomScoreAdj,
    },
    root: { path: 'rootfs', readonly: readonly || undefined },
    hostname: pickText(label.hostname, entry.hostname),
    mounts: nonEmpty(mountList),
    annotations: nonEmptyRecord(pick(label.annotations, entry.annotations)),
    linux: {
      uidMappings: mappings('uidMappings'),
      gidMappings: mappings('gidMappings'),
      sysctl: nonEmptyRecord(pick(label.sysctl, entry.sysctl)),
      resources,
      cgroupsPath: pick(label.cgroupsPath, entry.cgroupsPath) || undefined,
      namespaces,
      devices: nonEmpty(linuxDevices),
      rootfsPropagation: pick(label.rootfsPropagation, entry.rootfsPropagation) || undefined,
      maskedPaths: nonEmpty(pick(label.maskedPaths, entry.maskedPaths)),
      readonlyPaths: nonEmpty(pick(label.readonlyPaths, entry.readonlyPaths)),
    },
  };
  return { spec, runtime: mergeRuntime(label.runtime, entry.runtime), readonly };
}

/** config.json as LinuxKit writes it (Go's json.MarshalIndent with four spaces). */
export function specJson(spec: OciSpec): string {
  return goJsonIndent(spec as unknown as GoJsonValue);
}

/** runtime.json as LinuxKit writes it. */
export function runtimeJson(runtime: LinuxkitRuntime): string {
  return goJsonIndent(runtime as unknown as GoJsonValue);
}
