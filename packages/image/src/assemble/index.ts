export { ALL_CAPABILITIES, isKnownCapability } from './capabilities.ts';
export type { EntryOrigin, EntrySource, EntryType, LayoutEntry, LayoutStep } from './entries.ts';
export { AssembleError } from './errors.ts';
export { type FilesOptions, leadingDirMode, planFiles } from './files.ts';
export { compareBytes, goJsonIndent } from './goJson.ts';
export { containerIdMap, FIRST_CONTAINER_ID, resolveId } from './ids.ts';
export {
  bundleDir,
  type LayoutInput,
  type LayoutPlan,
  type PlannedContainer,
  planLayout,
  RESOLV_CONF_SYMLINK,
  rootfsMounts,
  type Section,
} from './layout.ts';
export { manifestMetadata, mobyDocument } from './metadata.ts';
export { expandReference } from './refs.ts';
export {
  APK_DATABASE,
  expandImageTree,
  expandKernel,
  type ImageFile,
  type KernelExpansion,
  mergeApkDatabases,
} from './rootfs.ts';
export {
  CONFIG_LABEL,
  type ContainerConfig,
  type ContainerConfigInput,
  containerConfig,
  defaultMountpoint,
  type LinuxkitRuntime,
  mergeRuntime,
  OCI_VERSION,
  type OciMount,
  type OciSpec,
  parseConfigLabel,
  parseOctalMode,
  RLIMIT_INFINITY,
  runtimeJson,
  specJson,
} from './runtimeConfig.ts';
export type * from './types.ts';
export { checkVolumes, substituteVolumes, volumeDirs } from './volumes.ts';
