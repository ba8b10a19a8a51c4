import { posix } from 'node:path';

/**
 * Dependency edges from what the YAML says: an OS image on each repo package it references by
 * `org/image` or by a LinuxKit `@pkg:PATH` template, a package on each repo package whose image
 * its Dockerfile uses (FROM, COPY --from, RUN --mount from), a fleet on its OS image. Pure: works
 * on the `metadata.stele` the plugin put on each project.
 */
export interface SteleMetadata {
  kind: 'package' | 'os' | 'fleet';
  file: string;
  /** package: `org/image`. */
  repository?: string;
  /** package: repositories of the images its Dockerfile uses. */
  froms?: string[];
  /** package: the Dockerfile, when it lives in the project (the source file of its edges). */
  dockerfile?: string;
  /** os: repositories it references. */
  images?: string[];
  /** os: package directories it references with `@pkg:PATH`. */
  packages?: string[];
  /** fleet: the OS manifest it runs. */
  manifest?: string;
}

export interface Edge {
  source: string;
  target: string;
  sourceFile: string;
}

export function steleEdges(projects: Record<string, SteleMetadata>): Edge[] {
  const byRepo = new Map<string, string>();
  const byDir = new Map<string, string>();
  const byManifest = new Map<string, string>();
  for (const [name, m] of Object.entries(projects)) {
    if (m.kind === 'package') {
      if (m.repository) byRepo.set(m.repository, name);
      byDir.set(posix.dirname(m.file), name);
    } else if (m.kind === 'os') {
      byManifest.set(m.file, name);
    }
  }
  const edges: Edge[] = [];
  const add = (source: string, target: string | undefined, sourceFile: string) => {
    if (target && target !== source && !edges.some((e) => e.source === source && e.target === target)) {
      edges.push({ source, target, sourceFile });
    }
  };
  for (const [name, m] of Object.entries(projects)) {
    if (m.kind === 'package') {
      for (const repo of m.froms ?? []) add(name, byRepo.get(repo), m.dockerfile ?? m.file);
    } else if (m.kind === 'os') {
      for (const repo of m.images ?? []) add(name, byRepo.get(repo), m.file);
      for (const dir of m.packages ?? []) add(name, byDir.get(dir), m.file);
    } else if (m.manifest) {
      add(name, byManifest.get(m.manifest), m.file);
    }
  }
  return edges;
}
