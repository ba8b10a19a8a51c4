/**
 * The per-image schema: an entry of `onboot`, `onshutdown` or `services` in an OS manifest,
 * and (without `name`/`image`) the `config` of a build.yml. Keys and types are LinuxKit's;
 * the syntax checks LinuxKit only does at build time happen here too.
 */
import { z } from 'zod';
import { checkBind, checkCapabilityList, checkMount, checkOctalMode, checkRlimit, checkTmpfs } from '../checks.ts';
import { checkedString, imageRef, int, report, strict, stringMap, stringOrInt, strings } from './common.ts';

const capabilityList = strings.superRefine((caps, ctx) => {
  for (const [i, message] of checkCapabilityList(caps)) report(ctx, [i], message);
});

const idMapping = strict({ hostID: int, containerID: int, size: int }).partial();
const idMappings = z.array(idMapping);

export const mountSchema = strict({
  destination: z.string(),
  type: z.string(),
  source: z.string(),
  options: strings,
  uidmappings: idMappings,
  gidmappings: idMappings,
})
  .partial()
  .superRefine((m, ctx) => {
    const bad = checkMount(m);
    if (bad) report(ctx, [], bad);
  });

export const deviceSchema = strict({
  path: z.string(),
  type: z.string(),
  major: int,
  minor: int,
  mode: z.string(),
})
  .partial()
  .superRefine((d, ctx) => {
    if (d.path === 'all') return; // every device of `type`
    if (d.path === undefined || d.path === '') report(ctx, [], "device is missing 'path'");
    if (d.mode === undefined) report(ctx, [], 'device is missing \'mode\' (e.g. "0666")');
    else {
      const bad = checkOctalMode(d.mode);
      if (bad) report(ctx, ['mode'], bad);
    }
  });

const deviceCgroup = strict({
  allow: z.boolean(),
  type: z.string(),
  major: int,
  minor: int,
  access: z.string(),
}).partial();
const memory = strict({
  limit: int,
  reservation: int,
  swap: int,
  kernel: int,
  kernelTCP: int,
  swappiness: int,
  disableOOMKiller: z.boolean(),
}).partial();
const cpu = strict({
  shares: int,
  quota: int,
  period: int,
  realtimeRuntime: int,
  realtimePeriod: int,
  cpus: z.string(),
  mems: z.string(),
}).partial();
const weightDevice = strict({ major: int, minor: int, weight: int, leafWeight: int }).partial();
const throttleDevice = strict({ major: int, minor: int, rate: int }).partial();
const blockio = strict({
  weight: int,
  leafWeight: int,
  weightDevice: z.array(weightDevice),
  throttleReadBpsDevice: z.array(throttleDevice),
  throttleWriteBpsDevice: z.array(throttleDevice),
  throttleReadIOPSDevice: z.array(throttleDevice),
  throttleWriteIOPSDevice: z.array(throttleDevice),
}).partial();
const hugepageLimit = strict({ pageSize: int, limit: int }).partial();
const interfacePriority = strict({ name: z.string(), priority: int }).partial();
const network = strict({ classID: int, priorities: z.array(interfacePriority) }).partial();

export const resourcesSchema = strict({
  devices: z.array(deviceCgroup),
  memory,
  cpu,
  pids: strict({ limit: int }).partial(),
  blockio,
  hugepageLimits: z.array(hugepageLimit),
  network,
}).partial();

const runtimeInterface = strict({
  name: z.string(),
  add: z.string(),
  peer: z.string(),
  createInRoot: z.boolean(),
}).partial();
const namespaces = strict({
  cgroup: z.string(),
  ipc: z.string(),
  mnt: z.string(),
  net: z.string(),
  pid: z.string(),
  user: z.string(),
  uts: z.string(),
}).partial();

export const runtimeSchema = strict({
  cgroups: strings,
  mounts: z.array(mountSchema),
  mkdir: strings,
  interfaces: z.array(runtimeInterface),
  bindNS: namespaces,
  namespace: z.string(),
}).partial();

/** Every key of an image's configuration, all optional. */
export const imageConfigShape = {
  capabilities: capabilityList,
  'capabilities.add': capabilityList,
  ambient: capabilityList,
  mounts: z.array(mountSchema),
  binds: z.array(checkedString(checkBind)),
  'binds.add': z.array(checkedString(checkBind)),
  devices: z.array(deviceSchema),
  tmpfs: z.array(checkedString(checkTmpfs)),
  command: strings,
  env: strings,
  cwd: z.string(),
  net: z.string(),
  pid: z.string(),
  ipc: z.string(),
  uts: z.string(),
  userns: z.string(),
  readonly: z.boolean(),
  maskedPaths: strings,
  readonlyPaths: strings,
  uid: stringOrInt,
  gid: stringOrInt,
  additionalGids: z.array(stringOrInt),
  noNewPrivileges: z.boolean(),
  hostname: z.string(),
  oomScoreAdj: int,
  rootfsPropagation: z.string(),
  cgroupsPath: z.string(),
  resources: resourcesSchema,
  sysctl: stringMap,
  rlimits: z.array(checkedString(checkRlimit)),
  uidMappings: idMappings,
  gidMappings: idMappings,
  annotations: stringMap,
  runtime: runtimeSchema,
} as const;

/** `config:` of a build.yml, or the `org.mobyproject.config` label of an image. */
export const imageConfigSchema = strict(imageConfigShape).partial();

/** containerd's rule for container ids, which service names become. */
const CONTAINER_NAME = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

/** An `onboot` / `onshutdown` / `services` entry. */
export const imageSchema = strict({
  name: z.string().superRefine((s, ctx) => {
    if (!CONTAINER_NAME.test(s)) {
      report(
        ctx,
        [],
        s === ''
          ? 'name must not be empty'
          : `name '${s}' must be letters and digits, separated by single '.', '_' or '-'`,
      );
    }
  }),
  image: imageRef(),
  ...imageConfigShape,
}).partial({ ...Object.fromEntries(Object.keys(imageConfigShape).map((k) => [k, true])) } as {
  [K in keyof typeof imageConfigShape]: true;
});

export type ImageConfig = z.infer<typeof imageConfigSchema>;
export type ImageEntry = z.infer<typeof imageSchema>;
export type Mount = z.infer<typeof mountSchema>;
export type Device = z.infer<typeof deviceSchema>;
export type Resources = z.infer<typeof resourcesSchema>;
export type RuntimeConfig = z.infer<typeof runtimeSchema>;
