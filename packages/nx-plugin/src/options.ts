/**
 * Plugin options (nx.json `plugins[].options`) and their defaults. Every option that shapes
 * inferred projects is hashed into the parse-cache file name by `index.ts`.
 */
import { isAbsolute, join } from 'node:path';
import { defaultStoreDir } from '@stele/oci/store-paths';
import { DEFAULT_ORG } from './info.ts';

/**
 * Command templates the executors run. Placeholders: `{file}` the YAML file, `{dir}` its
 * directory, `{descriptor}` where to write the result descriptor, `{outDir}` the artifact
 * directory, `{formats}` comma-separated OS formats, `{project}` the Nx project name.
 */
export interface SteleCommands {
  pkgBuild?: string;
  pkgPush?: string;
  osBuild?: string;
  fleetPlan?: string;
  fleetRollout?: string;
}

export interface SteleNxPluginOptions {
  /** Globs for package build files (default `pkg/**\/build.yml`). */
  packages?: string[];
  /** Extra globs for OS manifests; `fleets/**\/os.yml` always counts. */
  manifests?: string[];
  /** Globs for fleet files (default `fleets/**\/fleet.yml`). */
  fleets?: string[];
  /** Output formats for OS image builds (default `kernel+initrd`). */
  formats?: string[];
  /** Org for build.yml files without `org:` (default `linuxkit`). */
  org?: string;
  /** Where descriptors and artifacts go, relative to the workspace (default `dist/stele`). */
  outDir?: string;
  /** OCI layout store checked for built digests, relative to the workspace (default: `@stele/oci`'s `defaultStoreDir`). */
  storeDir?: string;
  commands?: SteleCommands;
}

export interface NormalizedOptions {
  packages: string[];
  manifests: string[];
  fleets: string[];
  formats: string[];
  org: string;
  outDir: string;
  storeDir: string | undefined;
  commands: Required<SteleCommands>;
}

export const DEFAULT_COMMANDS: Required<SteleCommands> = {
  pkgBuild: 'stele pkg build {dir} --descriptor {descriptor}',
  pkgPush: 'stele pkg push {dir} --descriptor {descriptor}',
  osBuild: 'stele build {file} --format {formats} --dir {outDir} --descriptor {descriptor}',
  fleetPlan: 'stele fleet plan {file}',
  fleetRollout: 'stele fleet rollout {file}',
};

export function normalizeOptions(o: SteleNxPluginOptions | undefined): NormalizedOptions {
  return {
    packages: o?.packages?.length ? o.packages : ['pkg/**/build.yml'],
    manifests: ['fleets/**/os.yml', ...(o?.manifests ?? [])],
    fleets: o?.fleets?.length ? o.fleets : ['fleets/**/fleet.yml'],
    formats: o?.formats?.length ? o.formats : ['kernel+initrd'],
    org: o?.org || DEFAULT_ORG,
    outDir: (o?.outDir || 'dist/stele').replace(/\/+$/, ''),
    storeDir: o?.storeDir,
    commands: { ...DEFAULT_COMMANDS, ...(o?.commands ?? {}) },
  };
}

/** The store the plugin checks: the `storeDir` option (relative to the workspace root), else the CLI's default. */
export function resolveStoreDir(configured: string | undefined, workspaceRoot: string, env = process.env): string {
  if (configured) return isAbsolute(configured) ? configured : join(workspaceRoot, configured);
  return defaultStoreDir(env);
}
