/**
 * What the plugin keeps from each YAML file (see `read.ts`). Plain data, so parsed results can
 * live in the JSON parse cache; type-only imports, so loading this loads no schema code.
 */
import type { ManifestError } from '@stele/manifest';

export type SourceError = ManifestError;

/** LinuxKit's default org for build.yml files without `org:`. */
export const DEFAULT_ORG = 'linuxkit';

interface Common {
  /** Workspace-relative path of the YAML file. */
  file: string;
  errors: SourceError[];
}

export interface PackageInfo extends Common {
  kind: 'package';
  /** Empty when build.yml has no `org:`; the plugin's `org` option (default linuxkit) applies. */
  org: string;
  image: string;
  /** Workspace-relative Dockerfile path. */
  dockerfile: string;
  /**
   * Repositories (registry, tag and digest stripped) of the images the Dockerfile uses: FROM,
   * COPY --from, RUN --mount from.
   */
  froms: string[];
  /** Workspace-relative extra source paths (files or directories). */
  extraSources: string[];
}

export interface SourceRef {
  path: string;
  optional: boolean;
  /** Where to point an error about this source. */
  at: Omit<SourceError, 'message'>;
}

export interface OsInfo extends Common {
  kind: 'os';
  /** Repositories referenced as images, registry, tag and digest stripped. */
  images: string[];
  /** Workspace-relative package directories referenced by LinuxKit `@pkg:PATH` templates. */
  packages: string[];
  /** Workspace-relative `files[].source` paths (checked against the disk by `scan.ts`). */
  sources: SourceRef[];
}

export interface FleetInfo extends Common {
  kind: 'fleet';
  /** Workspace-relative OS manifest named by `image:`. */
  manifest: string | undefined;
  at: Omit<SourceError, 'message'>;
}

export type ProjectInfo = PackageInfo | OsInfo | FleetInfo;
export type Kind = ProjectInfo['kind'];
