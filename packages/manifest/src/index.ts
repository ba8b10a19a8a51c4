/**
 * @stele/manifest: schemas and positioned validation for the three YAML kinds Stele reads —
 * LinuxKit OS manifests, package build.yml files and Stele fleet.yml files. Pure: text in,
 * typed values or located errors out.
 */
export * from './checks.ts';
export { formatError, formatPath, type ManifestError, type PathSegment, sortErrors } from './errors.ts';
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
export * from './schema/fleet.ts';
export * from './schema/image.ts';
export * from './schema/os.ts';
export * from './schema/pkg.ts';
export { errorAtPath, type LoadedYaml, type LoadResult, loadYaml, offsetOf, positionOf } from './yaml.ts';
