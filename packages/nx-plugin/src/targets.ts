/**
 * Nx project configurations for resolved projects: exact inputs, descriptor outputs, the
 * executors that run the Stele commands, and `metadata.stele` for `createDependencies`.
 */
import { posix } from 'node:path';
import type { SteleMetadata } from './graph.ts';
import type { NormalizedOptions } from './options.ts';
import type { ResolvedProject } from './scan.ts';

/** The env var `preTasksExecution` sets when a project's last digest is gone from the store. */
export function storeEnvVar(project: string): string {
  return `STELE_NX_STORE_${project.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
}

export const DESCRIPTOR = 'descriptor.json';

/** Workspace-relative directory a target writes its descriptor and artifacts into. */
export function targetOutDir(opts: Pick<NormalizedOptions, 'outDir'>, project: string, target: string): string {
  return posix.join(opts.outDir, project, target);
}

type Input = string | { env: string } | { dependentTasksOutputFiles: string; transitive?: boolean };

interface Target {
  executor: string;
  cache: boolean;
  dependsOn?: string[];
  inputs?: Input[];
  outputs?: string[];
  options: Record<string, unknown>;
  metadata?: { description: string; technologies?: string[] };
}

export interface ProjectConfig {
  name: string;
  root: string;
  projectType: 'application' | 'library';
  tags: string[];
  targets: Record<string, Target>;
  metadata: { stele: SteleMetadata };
}

const ws = (p: string) => `{workspaceRoot}/${p}`;
const depDescriptors: Input = { dependentTasksOutputFiles: `**/${DESCRIPTOR}`, transitive: true };

/**
 * `nestedRoots`: roots of other projects inside this one, excluded from `{projectRoot}/**`
 * so a package never hashes a nested package's files.
 */
export function projectConfig(
  p: ResolvedProject,
  opts: NormalizedOptions,
  executors: string,
  nestedRoots: string[],
): ProjectConfig {
  const { info } = p;
  const out = (target: string) => targetOutDir(opts, p.name, target);
  const descriptor = (target: string) => posix.join(out(target), DESCRIPTOR);
  const storeEnv: Input = { env: storeEnvVar(p.name) };
  const base = { file: info.file, dir: posix.dirname(info.file), storeDir: opts.storeDir };
  if (info.kind === 'package') {
    const own = [`{projectRoot}/**/*`, ...nestedRoots.map((r) => `!{projectRoot}/${posix.relative(p.root, r)}/**/*`)];
    const inputs: Input[] = [...own, ...p.extraInputs.map(ws), depDescriptors, storeEnv];
    const dockerfileInRoot = info.dockerfile.startsWith(`${p.root}/`);
    return {
      name: p.name,
      root: p.root,
      projectType: 'library',
      tags: ['stele:package'],
      metadata: {
        stele: {
          kind: 'package',
          file: info.file,
          repository: `${info.org}/${info.image}`.toLowerCase(),
          froms: info.froms,
          ...(dockerfileInRoot ? { dockerfile: info.dockerfile } : {}),
        },
      },
      targets: {
        build: {
          executor: `${executors}:build`,
          cache: true,
          dependsOn: ['^build'],
          inputs,
          outputs: [ws(out('build'))],
          options: { ...base, kind: 'package', descriptor: descriptor('build'), command: opts.commands.pkgBuild },
          metadata: { description: `Build ${info.org}/${info.image} (stele pkg build)`, technologies: ['docker'] },
        },
        push: {
          executor: `${executors}:build`,
          cache: false,
          dependsOn: ['build'],
          inputs,
          outputs: [ws(out('push'))],
          options: { ...base, kind: 'push', descriptor: descriptor('push'), command: opts.commands.pkgPush },
          metadata: { description: `Push ${info.org}/${info.image} (stele pkg push)` },
        },
      },
    };
  }
  if (info.kind === 'os') {
    return {
      name: p.name,
      root: p.root,
      projectType: 'application',
      tags: ['stele:os'],
      metadata: { stele: { kind: 'os', file: info.file, images: info.images, packages: info.packages } },
      targets: {
        build: {
          executor: `${executors}:build`,
          cache: true,
          dependsOn: ['^build'],
          inputs: [ws(info.file), ...p.extraInputs.map(ws), depDescriptors, storeEnv],
          outputs: [ws(out('build'))],
          options: {
            ...base,
            kind: 'os',
            descriptor: descriptor('build'),
            outDir: out('build'),
            formats: opts.formats,
            command: opts.commands.osBuild,
          },
          metadata: { description: `Build the OS image ${info.file} (stele build)` },
        },
      },
    };
  }
  const fleetInputs: Input[] = [ws(info.file), depDescriptors];
  const fleetTarget = (action: 'plan' | 'rollout', command: string): Target => ({
    executor: `${executors}:fleet`,
    cache: false,
    dependsOn: ['^build'],
    inputs: fleetInputs,
    options: { ...base, action, command },
    metadata: { description: `stele fleet ${action} ${info.file}` },
  });
  return {
    name: p.name,
    root: p.root,
    projectType: 'application',
    tags: ['stele:fleet'],
    metadata: { stele: { kind: 'fleet', file: info.file, ...(info.manifest ? { manifest: info.manifest } : {}) } },
    targets: {
      plan: fleetTarget('plan', opts.commands.fleetPlan),
      rollout: fleetTarget('rollout', opts.commands.fleetRollout),
    },
  };
}
