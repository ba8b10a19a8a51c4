import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  ARCHES,
  type BuildYml,
  DEFAULT_ARCHES,
  DEFAULT_ORG,
  formatError,
  formatImageRef,
  parseBuildYml,
  sortErrors,
} from '@stele/manifest';
import { type DockerfileInfo, readDockerfile } from './dockerfile.ts';
import type { Git } from './git.ts';
import { parseReference } from './oci.ts';
import { packageTag } from './tag.ts';

/** A package could not be loaded: bad build.yml, missing Dockerfile, bad build arg… */
export class PackageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PackageError';
  }
}

export interface Package {
  /** Absolute package directory. */
  dir: string;
  buildYml: BuildYml;
  /** `org/image`, as LinuxKit prints it. */
  name: string;
  /** The tag alone. */
  tag: string;
  /** `org/image:tag` — what `show-tag` prints. */
  ref: string;
  /** Fully qualified (`docker.io/org/image:tag`): the name in the store and the engine. */
  fullRef: string;
  hash: string;
  dirty: boolean;
  arches: string[];
  sources: { src: string; dst: string }[];
  /** Dockerfile path inside the build context. */
  dockerfile: string;
  dockerfileText: string;
  dockerfileInfo: DockerfileInfo;
  /** build.yml buildArgs with `@lkt:` values resolved (not the automatic ones). */
  buildArgs: Record<string, string>;
  network: boolean;
  disableCache: boolean;
}

export interface LoadOptions {
  git: Git;
  /** Overrides build.yml `org` (LinuxKit's `--org`), e.g. a registry namespace `127.0.0.1:5000/stele`. */
  org?: string;
}

/** Fully qualifies a reference the way docker does (`docker.io/library/…`). */
export function qualify(ref: string): string {
  return formatImageRef(parseReference(ref));
}

async function readBuildYml(dir: string): Promise<BuildYml> {
  const file = join(dir, 'build.yml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const st = await stat(dir).catch(() => undefined);
      throw new PackageError(
        st?.isDirectory() ? `${dir} is not a package: it has no build.yml` : `${dir}: no such package directory`,
      );
    }
    throw err;
  }
  const parsed = parseBuildYml(text, file);
  if (!parsed.ok) throw new PackageError(sortErrors(parsed.errors).map(formatError).join('\n'));
  return parsed.value;
}

/** The `org/image` a package directory builds, from its build.yml alone (no git). */
export async function packageName(dir: string, org?: string): Promise<string> {
  const y = await readBuildYml(resolve(dir));
  return `${org ?? y.org ?? DEFAULT_ORG}/${y.image}`;
}

function splitArg(arg: string): [string, string] {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new PackageError(`build arg '${arg}' is not of the form KEY=VALUE`);
  return [arg.slice(0, eq), arg.slice(eq + 1)];
}

async function globDirs(pattern: string): Promise<string[]> {
  // Only the last path element may hold `*`/`?` (LinuxKit's `@lkt:pkgs:../*` use).
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  if (/[*?[]/.test(dir)) throw new PackageError(`@lkt:pkgs: only the last path element may be a pattern: ${pattern}`);
  const re = new RegExp(
    `^${base
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.') || !re.test(n)) continue;
    const st = await stat(join(dir, n)).catch(() => undefined);
    if (st?.isDirectory()) out.push(join(dir, n));
  }
  return out;
}

/**
 * Loads a package: build.yml with LinuxKit's defaults, `@lkt:pkg:`/`@lkt:pkgs:` build args
 * resolved to the tags of those packages (recursively), the Dockerfile read, and the tag.
 * The resolved build args go into the tag, so a package changes tag when one it names does.
 */
export async function loadPackage(dirIn: string, opts: LoadOptions, loading: string[] = []): Promise<Package> {
  const dir = resolve(dirIn);
  if (loading.includes(dir)) {
    throw new PackageError(
      `build args form a cycle: ${[...loading, dir].map((d) => relative(process.cwd(), d) || '.').join(' -> ')}`,
    );
  }
  const y = await readBuildYml(dir);
  const org = opts.org ?? y.org ?? DEFAULT_ORG;
  const name = `${org}/${y.image}`;

  const buildArgs: Record<string, string> = {};
  const resolvedArgs: string[] = [];
  for (const arg of y.buildArgs ?? []) {
    const [key, value] = splitArg(arg);
    if (!value.startsWith('@lkt:')) {
      buildArgs[key] = value;
      resolvedArgs.push(arg);
      continue;
    }
    const spec = value.slice('@lkt:'.length);
    if (spec.startsWith('pkg:')) {
      const target = resolve(dir, spec.slice('pkg:'.length));
      let other: Package;
      try {
        other = await loadPackage(target, opts, [...loading, dir]);
      } catch (err) {
        if (err instanceof PackageError) {
          throw new PackageError(`${join(dir, 'build.yml')}: buildArgs ${key}=${value}: ${err.message}`);
        }
        throw err;
      }
      buildArgs[key] = other.ref;
      resolvedArgs.push(`${key}=${other.ref}`);
    } else if (spec.startsWith('pkgs:')) {
      if (!key.includes('%')) throw new PackageError(`build arg key '${key}' must contain '%' for @lkt:pkgs:`);
      const dirs = await globDirs(resolve(dir, spec.slice('pkgs:'.length)));
      if (!dirs.length)
        throw new PackageError(`${join(dir, 'build.yml')}: buildArgs ${key}: no packages match ${spec}`);
      for (const d of dirs) {
        const other = await loadPackage(d, opts, [...loading, dir]);
        const stem = other.name.replace(/[/-]/g, '_').toUpperCase();
        const k = key.replaceAll('%', stem);
        buildArgs[k] = other.ref;
        resolvedArgs.push(`${k}=${other.ref}`);
      }
    } else {
      throw new PackageError(`${join(dir, 'build.yml')}: unknown linuxkit build arg value '${value}'`);
    }
  }

  const dockerfileRel = y.dockerfile ?? 'Dockerfile';
  const t = await packageTag(
    dir,
    {
      ...(y.tag !== undefined ? { tag: y.tag } : {}),
      ...(y['extra-sources'] ? { extraSources: y['extra-sources'] } : {}),
      ...(resolvedArgs.length ? { buildArgs: resolvedArgs } : {}),
      dockerfile: dockerfileRel,
    },
    opts.git,
  );

  // The Dockerfile must be inside the context: the package dir or an extra source.
  const dockerfilePath = resolve(dir, dockerfileRel);
  let inContext: string | undefined;
  for (const s of t.sources) {
    const rel = relative(s.src, dockerfilePath);
    if (rel && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel)) {
      inContext = join(s.dst, rel).replace(/^\/+/, '').split(sep).join('/');
      break;
    }
  }
  if (inContext === undefined) {
    throw new PackageError(`${join(dir, 'build.yml')}: dockerfile ${dockerfileRel} is outside the build context`);
  }
  let dockerfileText: string;
  try {
    dockerfileText = await readFile(dockerfilePath, 'utf8');
  } catch {
    throw new PackageError(`${dir}: dockerfile ${dockerfileRel} does not exist or cannot be read`);
  }

  const ref = `${name}:${t.tag}`;
  let fullRef: string;
  try {
    fullRef = qualify(ref);
  } catch (err) {
    throw new PackageError(`${dir}: '${ref}' is not a valid image reference: ${(err as Error).message}`);
  }
  const arches = [...(y.arches ?? DEFAULT_ARCHES)];
  for (const a of arches) {
    if (!(ARCHES as readonly string[]).includes(a)) throw new PackageError(`${dir}: unknown arch '${a}'`);
  }
  return {
    dir,
    buildYml: y,
    name,
    tag: t.tag,
    ref,
    fullRef,
    hash: t.hash,
    dirty: t.dirty,
    arches,
    sources: t.sources,
    dockerfile: inContext,
    dockerfileText,
    dockerfileInfo: readDockerfile(dockerfileText, buildArgs),
    buildArgs,
    network: y.network ?? false,
    disableCache: y['disable-cache'] ?? false,
  };
}

/** Every package directory (with a build.yml) under `root`, skipping dot dirs and node_modules. */
export async function findPackageDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    if (names.includes('build.yml')) out.push(dir);
    if (depth > 6) return;
    for (const n of names.sort()) {
      if (n.startsWith('.') || n === 'node_modules') continue;
      const p = join(dir, n);
      const st = await stat(p).catch(() => undefined);
      if (st?.isDirectory()) await walk(p, depth + 1);
    }
  };
  await walk(resolve(root), 0);
  return out;
}

/** `git rev-parse HEAD` in `dir`, or undefined outside git. */
export function gitRevision(dir: string): Promise<string | undefined> {
  return new Promise((res) => {
    execFile('git', ['-C', dir, 'rev-parse', 'HEAD'], (err, stdout) => res(err ? undefined : stdout.trim()));
  });
}

/** `git remote get-url origin` in `dir`, or undefined. */
export function gitOrigin(dir: string): Promise<string | undefined> {
  return new Promise((res) => {
    execFile('git', ['-C', dir, 'remote', 'get-url', 'origin'], (err, stdout) =>
      res(err ? undefined : stdout.trim() || undefined),
    );
  });
}
