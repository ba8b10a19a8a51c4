import { relative } from 'node:path';
import { ARCHES } from '@stele/manifest';
import { contextTar } from './context.ts';
import { BuildFailedError, type Engine } from './engine.ts';
import type { Git } from './git.ts';
import {
  buildIndex,
  type Descriptor,
  exportDockerArchive,
  importDockerArchive,
  type Platform,
  type Store,
} from './oci.ts';
import {
  findPackageDirs,
  gitOrigin,
  gitRevision,
  loadPackage,
  type Package,
  PackageError,
  packageName,
  qualify,
} from './package.ts';
import type { Remote, Signer } from './remote.ts';
import { ensureImageSbom, pushSbom } from './sbom-artifact.ts';

/** A failure worth one clear message (no stack): bad input, failed step, refused push. */
export class PkgError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PkgError';
  }
}

export interface BuildOptions {
  git: Git;
  store: Store;
  /** The default engine (DOCKER_HOST). Called only when something needs building. */
  engine: () => Engine;
  /** Engines for other arches: `arm64` → a builder on an arm64 machine. */
  builders?: Record<string, () => Engine>;
  /** Registry access, for "already built?" and push. Without it, only the store is checked. */
  remote?: Remote;
  /** Arches to build (default: each package's `arches`). */
  arches?: string[];
  /** Rebuild even when the tag is in the store or the registry. */
  force?: boolean;
  push?: boolean;
  /** Signs pushed indexes (and per-arch images) when a key is configured. */
  sign?: Signer;
  /** Generate an SPDX SBOM per built image, store it next to it and push it with it (default true). */
  sbom?: boolean;
  /** Override of build.yml `org` (LinuxKit's --org). */
  org?: string;
  /** Where to look for the packages a Dockerfile builds FROM (default: the git top level). */
  root?: string;
  /** Progress lines (what is built, cached, pushed). */
  log?: (line: string) => void;
  /** Engine output, line by line. */
  buildLog?: (line: string) => void;
}

export type ArchStatus = 'built' | 'cached' | 'in-registry' | 'skipped';

export interface ArchResult {
  arch: string;
  status: ArchStatus;
  /** Why it was skipped or where it was found. */
  reason?: string;
  /** The per-arch image manifest, when in the store. */
  digest?: string;
  seconds?: number;
}

export interface PackageResult {
  dir: string;
  /** `org/image:tag`. */
  ref: string;
  fullRef: string;
  tag: string;
  dirty: boolean;
  arches: ArchResult[];
  /** The local index over the per-arch images in the store. */
  index?: string;
  /** Packages (fullRef) this one builds FROM. */
  dependsOn: string[];
  /** Pushed references (per-arch tags and the index). */
  pushed: string[];
  signed: string[];
  /** Pushed SBOM artifacts (`<repo>:sha256-<hex>.sbom`, one per pushed per-arch image). */
  sboms?: string[];
}

interface Node {
  pkg: Package;
  deps: Node[];
  requested: boolean;
  /** Images in the namespace of the repo's packages that no package builds (maybe a missing package). */
  orphans: string[];
}

export function normaliseArches(list: string[]): string[] {
  const out: string[] = [];
  for (const raw of list.flatMap((s) => s.split(','))) {
    const a = raw.trim().replace(/^linux\//, '');
    if (!a) continue;
    if (!(ARCHES as readonly string[]).includes(a)) {
      throw new PkgError(`unknown arch '${raw.trim()}' (known: ${ARCHES.join(', ')})`);
    }
    if (!out.includes(a)) out.push(a);
  }
  return out;
}

/** Loads the packages and the repo packages their Dockerfiles build FROM, in build order. */
export async function planBuild(
  dirs: string[],
  opts: Pick<BuildOptions, 'git' | 'org' | 'root' | 'log'>,
): Promise<Node[]> {
  const loadOpts = { git: opts.git, ...(opts.org ? { org: opts.org } : {}) };
  const byDir = new Map<string, Node>();
  const load = async (dir: string, requested: boolean): Promise<Node> => {
    const pkg = await loadPackage(dir, loadOpts);
    const existing = byDir.get(pkg.dir);
    if (existing) {
      existing.requested ||= requested;
      return existing;
    }
    const node: Node = { pkg, deps: [], requested, orphans: [] };
    byDir.set(pkg.dir, node);
    return node;
  };
  const roots: Node[] = [];
  for (const d of dirs) roots.push(await load(d, true));

  // Repo packages by repository (org/image, qualified), read lazily.
  let repoNames: Map<string, string> | undefined;
  const repoPackages = async (): Promise<Map<string, string>> => {
    if (repoNames) return repoNames;
    repoNames = new Map();
    const root = opts.root ?? (await opts.git.topLevel(roots[0]?.pkg.dir ?? '.'));
    if (!root) return repoNames;
    for (const d of await findPackageDirs(root)) {
      try {
        const name = qualify(await packageName(d, opts.org));
        repoNames.set(name.replace(/:latest$/, ''), d);
      } catch {
        /* a broken package elsewhere in the repo is not this build's problem */
      }
    }
    return repoNames;
  };

  const queue = [...byDir.values()];
  const expanded = new Set<Node>();
  while (queue.length) {
    const node = queue.shift() as Node;
    if (expanded.has(node)) continue;
    expanded.add(node);
    for (const use of node.pkg.dockerfileInfo.images) {
      let full: string;
      try {
        full = qualify(use.image);
      } catch (err) {
        throw new PkgError(
          `${node.pkg.dir}/${node.pkg.dockerfile}:${use.line}: ${use.kind} ${use.image}: ${(err as Error).message}`,
        );
      }
      const repo = full.replace(/@.*$/, '').replace(/:[^:/]+$/, '');
      const names = await repoPackages();
      const depDir = names.get(repo);
      if (!depDir) {
        const ns = repo.slice(0, repo.lastIndexOf('/'));
        if ([...names.keys()].some((n) => n.slice(0, n.lastIndexOf('/')) === ns)) {
          node.orphans.push(`${use.kind} ${use.image} (line ${use.line})`);
        }
        continue;
      }
      const dep = await load(depDir, false);
      if (dep.pkg.fullRef !== full) {
        opts.log?.(
          `note: ${relative(process.cwd(), node.pkg.dir) || '.'}: ${use.kind} ${use.image} pins another tag than the repo's package (${dep.pkg.ref}); using the pinned image`,
        );
        continue;
      }
      if (dep === node) throw new PkgError(`${node.pkg.dir}: the Dockerfile builds FROM its own image ${use.image}`);
      if (!node.deps.includes(dep)) node.deps.push(dep);
      queue.push(dep);
    }
  }

  // Depth-first topological order, with cycle detection.
  const order: Node[] = [];
  const state = new Map<Node, 'visiting' | 'done'>();
  const visit = (n: Node, path: Node[]) => {
    const s = state.get(n);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(n)), n].map((x) => x.pkg.name).join(' -> ');
      throw new PkgError(`packages build FROM each other in a cycle: ${cycle}`);
    }
    state.set(n, 'visiting');
    for (const d of n.deps) visit(d, [...path, n]);
    state.set(n, 'done');
    order.push(n);
  };
  for (const r of roots) visit(r, []);
  return order;
}

const archTag = (fullRef: string, arch: string) => `${fullRef}-${arch}`;

async function storeHas(store: Store, name: string): Promise<Descriptor | undefined> {
  try {
    return await store.resolve(name);
  } catch {
    return undefined;
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Builds packages (and the repo packages they build FROM, first): per arch, unless the store
 * or the registry already has `<tag>-<arch>`; results land in the store as per-arch manifests
 * plus an index at `<tag>`. With `push`, sends the per-arch tags and an index over every arch
 * the registry has, then signs. Nothing is pushed unless every build succeeded.
 */
export async function buildPackages(dirs: string[], opts: BuildOptions): Promise<PackageResult[]> {
  const log = opts.log ?? (() => {});
  const wanted = opts.arches ? normaliseArches(opts.arches) : undefined;
  let nodes: Node[];
  try {
    nodes = await planBuild(dirs, opts);
  } catch (err) {
    if (err instanceof PackageError) throw new PkgError(err.message);
    throw err;
  }
  if (opts.push) {
    const dirty = nodes.filter((n) => n.requested && n.pkg.dirty);
    if (dirty.length) {
      throw new PkgError(
        `refusing to push dirty package${dirty.length > 1 ? 's' : ''} ${dirty.map((n) => n.pkg.ref).join(', ')}: commit the changes first (a dirty tag names no commit)`,
      );
    }
  }

  const engines = new Map<string, Engine>();
  const engineFor = (key: string, make: () => Engine) => {
    let e = engines.get(key);
    if (!e) {
      e = make();
      engines.set(key, e);
    }
    return e;
  };
  let native: string | undefined;
  const results: PackageResult[] = [];
  const resultByDir = new Map<string, PackageResult>();

  for (const node of nodes) {
    const pkg = node.pkg;
    const result: PackageResult = {
      dir: pkg.dir,
      ref: pkg.ref,
      fullRef: pkg.fullRef,
      tag: pkg.tag,
      dirty: pkg.dirty,
      arches: [],
      dependsOn: node.deps.map((d) => d.pkg.fullRef),
      pushed: [],
      signed: [],
    };
    results.push(result);
    resultByDir.set(pkg.dir, result);
    const arches = wanted ? wanted.filter((a) => pkg.arches.includes(a)) : pkg.arches;
    for (const a of wanted ?? []) {
      if (!pkg.arches.includes(a)) {
        result.arches.push({
          arch: a,
          status: 'skipped',
          reason: `not in build.yml arches (${pkg.arches.join(', ')})`,
        });
        log(`${pkg.ref}: ${a}: skipped, not in build.yml arches (${pkg.arches.join(', ')})`);
      }
    }

    const toBuild: string[] = [];
    for (const arch of arches) {
      const name = archTag(pkg.fullRef, arch);
      if (!opts.force) {
        const local = await storeHas(opts.store, name);
        if (local) {
          result.arches.push({ arch, status: 'cached', reason: 'in the store', digest: local.digest });
          continue;
        }
        if (opts.remote) {
          try {
            const remote = await opts.remote.resolve(name);
            if (remote) {
              result.arches.push({ arch, status: 'in-registry', reason: 'in the registry', digest: remote.digest });
              log(`${pkg.ref}: ${arch}: found in the registry, not rebuilt`);
              continue;
            }
          } catch (err) {
            log(`${pkg.ref}: ${arch}: could not check the registry (${describeError(err)}); building`);
          }
        }
      }
      toBuild.push(arch);
    }
    if (toBuild.length === 0) {
      log(`${pkg.ref}: up to date (${result.arches.map((a) => `${a.arch} ${a.status}`).join(', ')})`);
    }

    for (const arch of toBuild) {
      const builder = opts.builders?.[arch];
      let engine: Engine;
      if (builder) {
        engine = engineFor(`builder:${arch}`, builder);
      } else {
        engine = engineFor('default', opts.engine);
        native ??= await engine.nativeArch();
        if (arch !== native && pkg.dockerfileInfo.hasRun) {
          const reason = `the Dockerfile RUNs programs and ${engine.describe()} is ${native}; give a builder with --builder linux/${arch}=unix:///…`;
          result.arches.push({ arch, status: 'skipped', reason });
          log(`${pkg.ref}: ${arch}: skipped: ${reason}`);
          continue;
        }
      }
      const t0 = Date.now();
      log(`${pkg.ref}: building ${arch} on ${engine.describe()}`);
      await prepareDependencies(node, arch, engine, opts.store, log);
      const labels: Record<string, string> = {};
      const source = pkg.buildYml.gitrepo ?? (await gitOrigin(pkg.dir));
      if (source) labels['org.opencontainers.image.source'] = source;
      const revision = pkg.dirty ? undefined : await gitRevision(pkg.dir);
      if (revision) labels['org.opencontainers.image.revision'] = revision;
      if (pkg.buildYml.config) labels['org.mobyproject.config'] = JSON.stringify(pkg.buildYml.config);
      const buildArgs: Record<string, string> = { ...pkg.buildArgs };
      if (source && buildArgs.SOURCE === undefined) buildArgs.SOURCE = source;
      if (revision && buildArgs.REVISION === undefined) buildArgs.REVISION = revision;
      buildArgs.PKG_HASH ??= pkg.hash;
      buildArgs.PKG_IMAGE ??= pkg.name;
      try {
        await engine.build({
          context: await contextTar(pkg.sources, [pkg.dockerfile]),
          dockerfile: pkg.dockerfile,
          tag: archTag(pkg.fullRef, arch),
          platform: `linux/${arch}`,
          buildArgs,
          labels,
          network: pkg.network ? 'host' : 'none',
          noCache: pkg.disableCache || (opts.force ?? false),
          ...(opts.buildLog ? { onLog: opts.buildLog } : {}),
        });
      } catch (err) {
        if (err instanceof BuildFailedError) {
          const where = `${pkg.dir}/${pkg.dockerfile}`;
          const lines = [`building ${pkg.ref} for ${arch} failed${err.step ? ` at step ${err.step}` : ''} (${where})`];
          lines.push(`  ${err.message}`);
          if (err.logTail.length) lines.push('--- last lines of its output ---', ...err.logTail.map((l) => `  ${l}`));
          if (
            node.orphans.length &&
            /not found|failed to (do request|resolve|load metadata)|pull access denied|no such host/i.test(err.message)
          ) {
            lines.push(
              `hint: no package in this repository builds ${node.orphans.join(', ')}: a missing package, or an image the engine cannot pull`,
            );
          }
          throw new PkgError(lines.join('\n'));
        }
        throw err;
      }
      const imported = await importDockerArchive(opts.store, await engine.save(archTag(pkg.fullRef, arch)));
      if (imported.descriptor.platform?.architecture !== arch) {
        throw new PkgError(
          `${pkg.ref}: the engine built ${imported.descriptor.platform?.architecture} when asked for ${arch} (${engine.describe()} ignores --platform; it needs BuildKit)`,
        );
      }
      await opts.store.tag(archTag(pkg.fullRef, arch), imported.descriptor);
      if (opts.sbom !== false) await sbomFor(pkg, arch, imported.descriptor, opts.store, log);
      const seconds = (Date.now() - t0) / 1000;
      result.arches.push({ arch, status: 'built', digest: imported.descriptor.digest, seconds });
      log(`${pkg.ref}: ${arch}: built ${imported.descriptor.digest.slice(0, 19)} in ${seconds.toFixed(1)} s`);
    }
    result.arches.sort((a, b) => pkg.arches.indexOf(a.arch) - pkg.arches.indexOf(b.arch));
    const index = await writeLocalIndex(opts.store, pkg);
    if (index) result.index = index.digest;
  }

  if (opts.push) {
    if (!opts.remote) throw new PkgError('--push needs a registry client');
    for (const node of nodes) {
      const result = resultByDir.get(node.pkg.dir) as PackageResult;
      if (node.pkg.dirty) {
        log(`${node.pkg.ref}: dirty, not pushed`);
        continue;
      }
      await pushPackage(node.pkg, result, opts.store, opts.remote, opts.sign, log, opts.sbom !== false);
    }
  }
  return results;
}

/**
 * Makes sure the engine building `node` for `arch` has each repo package it builds FROM under
 * that package's name, for that arch: the engine's own `<tag>-<arch>` if it has it, else the
 * store's, loaded. (BuildKit uses a local image only when its platform matches.)
 */
async function prepareDependencies(
  node: Node,
  arch: string,
  engine: Engine,
  store: Store,
  log: (l: string) => void,
): Promise<void> {
  for (const dep of node.deps) {
    const perArch = archTag(dep.pkg.fullRef, arch);
    const stored = await storeHas(store, perArch);
    const inEngine = await engine.imageId(perArch);
    if (inEngine && (!stored || (await storedConfigIs(stored, inEngine, store)))) {
      await engine.tag(perArch, dep.pkg.fullRef);
      continue;
    }
    if (stored) {
      log(`${node.pkg.ref}: loading ${dep.pkg.ref} (${arch}) from the store into ${engine.describe()}`);
      await engine.load(await exportDockerArchive(store, stored, [dep.pkg.fullRef, perArch]));
      continue;
    }
    log(`${node.pkg.ref}: ${dep.pkg.ref} has no ${arch} image in the store; the engine will pull it`);
  }
}

/** Does the stored manifest's config digest equal the engine's image id? */
function storedConfigIs(stored: Descriptor, imageId: string, store: Store): Promise<boolean> {
  return store
    .fetchManifest(stored)
    .then((b) => (JSON.parse(b.toString('utf8')) as { config?: { digest?: string } }).config?.digest === imageId)
    .catch(() => false);
}

/** Points `<tag>` in the store at an index over the per-arch images the store has. */
async function writeLocalIndex(store: Store, pkg: Package): Promise<Descriptor | undefined> {
  const manifests: { descriptor: Descriptor; platform: Platform }[] = [];
  const entries = await store.list();
  for (const arch of pkg.arches) {
    const e = entries.find((x) => x.name === archTag(pkg.fullRef, arch));
    if (!e) continue;
    const { annotations: _a, ...desc } = e.descriptor;
    manifests.push({ descriptor: desc, platform: desc.platform ?? { os: 'linux', architecture: arch } });
  }
  if (!manifests.length) return undefined;
  const { bytes, descriptor } = buildIndex(manifests);
  const current = entries.find((x) => x.name === pkg.fullRef);
  if (current?.descriptor.digest === descriptor.digest) return descriptor;
  await store.writeBlob(bytes, descriptor);
  await store.tag(pkg.fullRef, descriptor);
  return descriptor;
}

const repositoryOf = (pkg: Package) => pkg.fullRef.slice(0, pkg.fullRef.length - pkg.tag.length - 1);

/** The image's SBOM in the store (generated unless it is there); an SBOM failure fails the build. */
async function sbomFor(pkg: Package, arch: string, image: Descriptor, store: Store, log: (l: string) => void) {
  try {
    const made = await ensureImageSbom(store, image, { name: repositoryOf(pkg), version: pkg.tag });
    if (made) log(`${pkg.ref}: ${arch}: sbom ${made.packages} packages, ${made.files} files`);
  } catch (err) {
    throw new PkgError(`${pkg.ref}: ${arch}: SBOM: ${describeError(err)} (build with --no-sbom to skip it)`);
  }
}

/**
 * An index over every `<tag>-<arch>` the registry has for the package's arches, pushed as
 * `<tag>` (LinuxKit's `pkg manifest`). Returns undefined when the registry has none.
 */
export async function pushIndexFromRegistry(
  pkg: Package,
  remote: Remote,
  log: (l: string) => void = () => {},
): Promise<{ descriptor: Descriptor; arches: string[] } | undefined> {
  const manifests: { descriptor: Descriptor; platform: Platform }[] = [];
  const arches: string[] = [];
  for (const arch of pkg.arches) {
    const desc = await remote.resolve(archTag(pkg.fullRef, arch));
    if (!desc) continue;
    manifests.push({ descriptor: desc, platform: { os: 'linux', architecture: arch } });
    arches.push(arch);
  }
  if (!manifests.length) {
    log(
      `${pkg.ref}: the registry has no per-arch tags (${pkg.arches.map((a) => `${pkg.tag}-${a}`).join(', ')}); no index`,
    );
    return undefined;
  }
  const { bytes, descriptor } = buildIndex(manifests);
  const existing = await remote.resolve(pkg.fullRef);
  if (existing?.digest !== descriptor.digest) {
    await remote.putManifest(pkg.fullRef, descriptor, bytes);
    log(`${pkg.ref}: pushed index ${descriptor.digest.slice(0, 19)} (${arches.join(', ')})`);
  } else {
    log(`${pkg.ref}: index up to date (${arches.join(', ')})`);
  }
  return { descriptor, arches };
}

async function pushPackage(
  pkg: Package,
  result: PackageResult,
  store: Store,
  remote: Remote,
  sign: Signer | undefined,
  log: (l: string) => void,
  sbom = true,
): Promise<void> {
  for (const a of result.arches) {
    if (a.status !== 'built' && a.status !== 'cached') continue;
    const name = archTag(pkg.fullRef, a.arch);
    const desc = await store.resolve(name);
    const there = await remote.resolve(name).catch(() => undefined);
    if (there?.digest === desc.digest) {
      log(`${pkg.ref}: ${a.arch}: already in the registry`);
    } else {
      await remote.push(store, desc, name);
      log(`${pkg.ref}: pushed ${pkg.tag}-${a.arch}`);
    }
    result.pushed.push(name);
    if (sbom) {
      await sbomFor(pkg, a.arch, desc, store, log);
      const ref = await pushSbom(store, remote, desc, repositoryOf(pkg));
      if (ref) result.sboms = [...(result.sboms ?? []), ref];
    }
  }
  const index = await pushIndexFromRegistry(pkg, remote, log);
  if (!index) return;
  result.pushed.push(pkg.fullRef);
  if (sign) {
    await sign(pkg.fullRef, index.descriptor);
    result.signed.push(pkg.fullRef);
    log(`${pkg.ref}: signed ${index.descriptor.digest.slice(0, 19)}`);
  }
}
