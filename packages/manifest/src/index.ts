/**
 * @stele/manifest: schemas and positioned validation for the three YAML kinds Stele reads —
 * LinuxKit OS manifests, package build.yml files and Stele fleet.yml files. Pure: text in,
 * typed values or located errors out.
 */
export * from './checks.ts';
export {
  countErrors,
  escapeControl,
  finishErrors,
  formatError,
  formatPath,
  MAX_ERRORS,
  type ManifestError,
  type PathSegment,
  sortErrors,
} from './errors.ts';
export * from './image-ref.ts';
export {
  type AnyDocument,
  detectKind,
  KINDS,
  type Kind,
  type ParseResult,
  parseBuildYml,
  parseFleet,
  parseKind,
  parseOsManifest,
} from './parse.ts';
export { readManifestFile, readOsManifest } from './read.ts';
export * from './schema/fleet.ts';
export * from './schema/image.ts';
export * from './schema/os.ts';
export * from './schema/pkg.ts';
export { decodeManifest, MAX_MANIFEST_BYTES, type TextResult } from './text.ts';
export {
  errorAtPath,
  type LoadedYaml,
  type LoadResult,
  loadYaml,
  MAX_DEPTH,
  offsetOf,
  positionOf,
} from './yaml.ts';
