/**
 * @stele/nx-plugin: infers one Nx project per `pkg/**\/build.yml`, OS manifest and
 * `fleets/**\/fleet.yml`, with no project.json. This file only wires Nx's hooks to the modules
 * that do the work (scan, targets, graph, hooks) and keys the parse cache by the options hash.
 */
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { minimatch } from 'minimatch';
import type {
  CreateDependencies,
  CreateNodesContextV2,
  CreateNodesResultV2,
  CreateNodesV2,
  PostTasksExecution,
  PreTasksExecution,
  RawProjectGraphDependency,
} from 'nx/src/devkit-exports.js';
import { type SteleMetadata, steleEdges } from './graph.ts';
import { checkCacheHits, missingStoreEnv } from './hooks.ts';
import type { Kind } from './info.ts';
import { executorsRef } from './location.ts';
import { type NormalizedOptions, normalizeOptions, type SteleNxPluginOptions } from './options.ts';
import { lazyImport, type Matched, ParseCache, type ResolvedProject, scan } from './scan.ts';
import { projectConfig } from './targets.ts';

export type { SourceError } from './info.ts';
export type { SteleNxPluginOptions } from './options.ts';

export const name = '@stele/nx-plugin';

/**
 * Nx matches this natively; the options' globs then pick the Stele files out in memory.
 * It has to cover any `manifests` glob a user sets, hence every YAML file, but no file is
 * read unless a Stele glob matches it.
 */
const PATTERN = '**/*.{yml,yaml}';

function classify(files: readonly string[], opts: NormalizedOptions): Matched[] {
  const kinds: [Kind, string[]][] = [
    ['package', opts.packages],
    ['fleet', opts.fleets],
    ['os', opts.manifests],
  ];
  const out: Matched[] = [];
  for (const file of files) {
    const kind = kinds.find(([, globs]) => globs.some((g) => minimatch(file, g, { dot: true })))?.[0];
    if (kind) out.push({ file, kind });
  }
  return out;
}

function optionsHash(opts: NormalizedOptions): string {
  return createHash('sha256').update(JSON.stringify(opts)).digest('hex').slice(0, 16);
}

/** Projects nested inside `root` (a package dir holding another package). */
function nestedIn(root: string, all: ResolvedProject[]): string[] {
  return all.filter((p) => p.root !== root && p.root.startsWith(`${root}/`)).map((p) => p.root);
}

/** `@stele/manifest` on demand (see `lazyImport` for why not plain `import()`). */
const loadManifest = (): Promise<typeof import('@stele/manifest')> =>
  lazyImport(
    () => import('@stele/manifest'),
    () => require('@stele/manifest'),
  );

/** One readable error for Nx to print: every problem as FILE:LINE:COL, no stack. */
export class SteleManifestError extends Error {
  constructor(lines: string[]) {
    super(`Stele found ${lines.length} problem(s) in project files:\n${lines.map((l) => `  ${l}`).join('\n')}`);
    this.name = 'SteleManifestError';
    this.stack = this.message;
  }
}

export async function inferProjects(
  files: readonly string[],
  options: SteleNxPluginOptions | undefined,
  context: Pick<CreateNodesContextV2, 'workspaceRoot'>,
  cacheDir?: string,
): Promise<CreateNodesResultV2> {
  const opts = normalizeOptions(options);
  const cache = new ParseCache(cacheDir ? join(cacheDir, `stele-nx-plugin-${optionsHash(opts)}.json`) : undefined);
  const projects = await scan(context.workspaceRoot, classify(files, opts), opts, cache);
  const problems = projects.flatMap((p) => p.errors);
  const errors: string[] = [];
  if (problems.length > 0) {
    const { formatError } = await loadManifest();
    errors.push(...problems.map(formatError));
  }
  const seen = new Map<string, string>();
  for (const p of projects) {
    const other = seen.get(p.name);
    if (other) errors.push(`${p.info.file}:1:1: project name ${p.name} is also inferred from ${other}`);
    seen.set(p.name, p.info.file);
  }
  if (errors.length > 0) throw new SteleManifestError(errors);
  const executors = executorsRef(context.workspaceRoot);
  return projects.map((p) => [
    p.info.file,
    { projects: { [p.root]: projectConfig(p, opts, executors, nestedIn(p.root, projects)) } },
  ]);
}

export const createNodesV2: CreateNodesV2<SteleNxPluginOptions> = [
  PATTERN,
  async (files, options, context) => {
    const { workspaceDataDirectoryForWorkspace } = await import('nx/src/utils/cache-directory.js');
    return inferProjects(files, options, context, workspaceDataDirectoryForWorkspace(context.workspaceRoot));
  },
];

export const createNodes = createNodesV2;

export const createDependencies: CreateDependencies<SteleNxPluginOptions> = (_options, context) => {
  const meta: Record<string, SteleMetadata> = {};
  for (const [key, p] of Object.entries(context.projects)) {
    const stele = (p.metadata as { stele?: SteleMetadata } | undefined)?.stele;
    if (stele) meta[p.name ?? key] = stele;
  }
  return steleEdges(meta).map(
    (e): RawProjectGraphDependency => ({
      source: e.source,
      target: e.target,
      sourceFile: e.sourceFile,
      type: 'static' as RawProjectGraphDependency['type'],
    }),
  );
};

export const preTasksExecution: PreTasksExecution<SteleNxPluginOptions> = (options, context) => {
  Object.assign(process.env, missingStoreEnv(context.workspaceRoot, normalizeOptions(options)));
};

/**
 * Best effort: Nx pipes an isolated plugin worker's output through unref'd streams, so a line
 * written here can be lost when Nx exits. The rebuild on the next run does not depend on it.
 */
export const postTasksExecution: PostTasksExecution<SteleNxPluginOptions> = (options, context) => {
  for (const line of checkCacheHits(context.workspaceRoot, normalizeOptions(options), context.taskResults)) {
    writeSync(2, `stele: ${line}\n`);
  }
};
