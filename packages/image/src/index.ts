// @stele/image — output formats: the deterministic initrd writer and every disk/ISO/archive
// format LinuxKit knows, and config drives, behind one HostTools port.
export {
  InitrdError,
  type InitrdResult,
  newcHeader,
  newcTrailer,
  type WriteInitrdOptions,
  writeInitrd,
} from './cpio.ts';
export { type ConfigDriveOptions, writeConfigDrive } from './formats/configdrive.ts';
export { fixVhdFooter, fixVmdkCid } from './formats/convert.ts';
export { LINUXKIT_EPOCH, sourceDateEpoch } from './formats/epoch.ts';
export {
  type BuildFormatOptions,
  type BuildFormatResult,
  buildFormat,
  FORMATS,
  FormatError,
  type FormatInfo,
  type FormatName,
  isFormatName,
} from './formats/index.ts';
export { gptLayout, guidBytes, guidFromHash, writeMbr } from './formats/partition.ts';
export { HostToolError, type HostTools, type RunOptions, type RunResult, spawnHostTools } from './hosttools.ts';
export { type ImageIdentity, imageIdentity } from './pipeline/identity.ts';
export {
  BUILD_FORMATS,
  BuildError,
  type BuildEvent,
  type BuildImageOptions,
  type BuildImageResult,
  buildImage,
  type LockFile,
  lockPathOf,
  manifestRefs,
  type PlanSummary,
  type ResolvedImage,
} from './pipeline/index.ts';
export { pruneUnpacked, unpackedDir, unpackedLayer } from './pipeline/layercache.ts';
