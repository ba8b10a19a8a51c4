// Input types for the assembly core. Field names are LinuxKit's (moby/config.go, moby/schema.go),
// so the inferred types of @stele/manifest can be passed in with at most a type alias.

/** The parts of an OCI image config (`config` in the image's config blob) that assembly reads. */
export interface OciImageConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  /** Not used by LinuxKit: the container user comes from `uid`/`gid` in the label or manifest. */
  User?: string;
  Labels?: Record<string, string> | null;
}

/** A mount as written in a manifest or label (runtime-spec field names; yaml spells them lower case). */
export interface MountSpec {
  destination?: string;
  type?: string;
  source?: string;
  options?: string[] | null;
}

/** A device to create in the container, or `path: all` for a whole class in the device cgroup. */
export interface DeviceSpec {
  path: string;
  type: string;
  major?: number;
  minor?: number;
  /** Octal string such as "0666". A number is read as the octal digits a YAML 1.1 parser would keep. */
  mode?: string | number;
}

export interface IdMappingSpec {
  containerID?: number;
  hostID?: number;
  size?: number;
  /** yaml.v3's lower-cased spellings, also accepted. */
  containerid?: number;
  hostid?: number;
}

export interface InterfaceSpec {
  name?: string;
  add?: string;
  peer?: string;
  createInRoot?: boolean;
}

export interface NamespacesSpec {
  cgroup?: string;
  ipc?: string;
  mnt?: string;
  net?: string;
  pid?: string;
  user?: string;
  uts?: string;
}

/** LinuxKit's `runtime` section: handled by the init at boot, not by runc. */
export interface RuntimeSpec {
  cgroups?: string[] | null;
  mounts?: MountSpec[] | null;
  mkdir?: string[] | null;
  interfaces?: InterfaceSpec[] | null;
  bindNS?: NamespacesSpec | null;
  namespace?: string | null;
}

/** runtime-spec LinuxResources, with the schema's field names (`blockio` is accepted for `blockIO`). */
export type ResourcesSpec = Record<string, unknown>;

export type Id = string | number;

/**
 * The configurable part of an image: what may appear in the `org.mobyproject.config` label and,
 * together with `name` and `image`, in a manifest's onboot/onshutdown/services entries.
 */
export interface ImageConfigFields {
  capabilities?: string[] | null;
  'capabilities.add'?: string[] | null;
  ambient?: string[] | null;
  mounts?: MountSpec[] | null;
  binds?: string[] | null;
  'binds.add'?: string[] | null;
  devices?: DeviceSpec[] | null;
  tmpfs?: string[] | null;
  command?: string[] | null;
  env?: string[] | null;
  cwd?: string | null;
  net?: string | null;
  pid?: string | null;
  ipc?: string | null;
  uts?: string | null;
  userns?: string | null;
  hostname?: string | null;
  readonly?: boolean | null;
  maskedPaths?: string[] | null;
  readonlyPaths?: string[] | null;
  uid?: Id | null;
  gid?: Id | null;
  additionalGids?: Id[] | null;
  noNewPrivileges?: boolean | null;
  oomScoreAdj?: number | null;
  rootfsPropagation?: string | null;
  cgroupsPath?: string | null;
  resources?: ResourcesSpec | null;
  sysctl?: Record<string, string> | null;
  rlimits?: string[] | null;
  uidMappings?: IdMappingSpec[] | null;
  gidMappings?: IdMappingSpec[] | null;
  annotations?: Record<string, string> | null;
  runtime?: RuntimeSpec | null;
}

/** One entry of a manifest's onboot, onshutdown or services list. */
export interface ImageEntry extends ImageConfigFields {
  name: string;
  image: string;
}

export interface KernelSection {
  image?: string;
  cmdline?: string;
  binary?: string;
  tar?: string;
  ucode?: string;
}

export interface FileSection {
  path: string;
  directory?: boolean;
  symlink?: string;
  contents?: string;
  source?: string;
  metadata?: string;
  optional?: boolean;
  mode?: string | number;
  uid?: Id;
  gid?: Id;
}

export interface VolumeSection {
  name: string;
  image?: string;
  readonly?: boolean;
  format?: 'oci' | 'filesystem';
  platforms?: string[];
}

/** The OS manifest (LinuxKit's `Moby` type). */
export interface OsManifest {
  kernel?: KernelSection;
  init?: string[];
  onboot?: ImageEntry[];
  onshutdown?: ImageEntry[];
  services?: ImageEntry[];
  files?: FileSection[];
  volumes?: VolumeSection[];
}

/** Named ids usable as uid/gid: LinuxKit gives each container a number by name. */
export type IdMap = ReadonlyMap<string, number>;
