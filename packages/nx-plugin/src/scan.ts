/**
 * From matched file paths to resolved project descriptions: reads each YAML file once,
 * parses through a content-hash-keyed cache (YAML and Dockerfile parsing are skipped for
 * unchanged files across Nx runs), then checks the few things that depend on the disk
 * (`files.source` existence, a fleet's OS manifest, extra sources being files or dirs).
 * The reader (`read.ts`, which loads the schemas) is imported only when something misses.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { Kind, ProjectInfo, SourceError } from './info.ts';
import type { NormalizedOptions } from './options.ts';

/**
 * Bump when the shape of cached values changes, or what is read from a file does (the
 * Dockerfile reader, `@stele/pkg/dockerfile`, is not part of the key).
 */
const CACHE_VERSION = '4';

export interface ResolvedProject {
  name: string;
  /** Nx project root: the YAML file's directory, or the file itself for manifests sharing a directory. */
  root: string;
  info: ProjectInfo;
  /** Workspace-relative input globs besides the project's own files. */
  extraInputs: string[];
  errors: SourceError[];
}

export class ParseCache {
  private entries: Record<string, unknown> = {};
  private dirty = false;

  constructor(private readonly path?: string) {
    if (path && existsSync(path)) {
      try {
        this.entries = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      } catch {
        this.entries = {};
      }
    }
  }

  has(key: string): boolean {
    return key in this.entries;
  }

  get<T>(key: string, make: () => T): T {
    if (key in this.entries) return this.entries[key] as T;
    const v = make();
    this.entries[key] = v;
    this.dirty = true;
    return v;
  }

  /** Writes only the entries used this run, so the file never grows stale keys. */
  save(used: Set<string>): void {
    if (!this.path || (!this.dirty && used.size === Object.keys(this.entries).length)) return;
    const out: Record<string, unknown> = {};
    for (const k of used) if (k in this.entries) out[k] = this.entries[k];
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(out));
    renameSync(tmp, this.path);
  }
}

function hash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 32);
}

function readText(root: string, file: string): string | undefined {
  try {
    return readFileSync(join(root, file), 'utf8');
  } catch {
    return undefined;
  }
}

function isDir(root: string, p: string): boolean {
  try {
    return statSync(join(root, p)).isDirectory();
  } catch {
    return false;
  }
}

/** `pkg/net/sshd/build.yml` → `pkg-net-sshd`; `fleets/swarm/prod/fleet.yml` → `fleet-swarm-prod`. */
export function projectName(kind: Kind, file: string, root: string): string {
  const dir = posix.dirname(file);
  const strip = (p: string, prefix: string) => (p.startsWith(`${prefix}/`) ? p.slice(prefix.length + 1) : p);
  const slug = (s: string) =>
    s
      .replace(/\.ya?ml$/, '')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '');
  if (kind === 'package') return `pkg-${slug(strip(dir, 'pkg')) || 'root'}`;
  if (kind === 'fleet') return `fleet-${slug(strip(dir, 'fleets')) || 'root'}`;
  return `os-${slug(strip(root === file ? file : dir, 'fleets')) || 'root'}`;
}

export interface Matched {
  file: string;
  kind: Kind;
}

type Reader = typeof import('./read.ts');

/**
 * `import()` on demand, falling back to `require`: under Nx the plugin is CommonJS compiled by
 * tsx (plugin.cjs), where `import()` of a .ts file bypasses tsx but the module's `require`
 * handles it; under vitest and tsx's ESM mode `import()` works.
 */
export async function lazyImport<T>(esm: () => Promise<T>, cjs: () => unknown): Promise<T> {
  try {
    return await esm();
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
    return cjs() as T;
  }
}

const loadReader = (): Promise<Reader> =>
  lazyImport(
    () => import('./read.ts'),
    () => require('./read.ts'),
  );

/**
 * Resolves every matched file. `cache` is keyed by content hash so renames and edits both
 * miss; only the keys this run used are written back.
 */
export async function scan(
  root: string,
  matched: Matched[],
  opts: NormalizedOptions,
  cache: ParseCache,
): Promise<ResolvedProject[]> {
  const texts = matched.map(({ file }) => readText(root, file) ?? '');
  const keys = matched.map(({ file, kind }, i) => `${CACHE_VERSION}:${kind}:${file}:${hash(texts[i] ?? '')}`);
  const used = new Set<string>();
  let reader: Reader | undefined;
  const load = async () => {
    reader ??= await loadReader();
    return reader;
  };
  if (keys.some((k) => !cache.has(k))) await load();
  const cached = <T>(key: string, make: (r: Reader) => T): T => {
    used.add(key);
    return cache.get(key, () => make(reader as Reader));
  };
  // manifests that share a directory with another project file get the file itself as root
  const dirCount = new Map<string, number>();
  for (const m of matched) dirCount.set(posix.dirname(m.file), (dirCount.get(posix.dirname(m.file)) ?? 0) + 1);

  const out: ResolvedProject[] = [];
  for (let i = 0; i < matched.length; i++) {
    const { file, kind } = matched[i] as Matched;
    const text = texts[i] ?? '';
    const info: ProjectInfo = structuredClone(cached(keys[i] as string, (r) => r.readProject(file, kind, text)));
    const errors = [...info.errors];
    const dir = posix.dirname(file);
    const ownDir = kind !== 'os' || posix.basename(file) === 'os.yml' || dirCount.get(dir) === 1;
    const projectRoot = ownDir ? dir : file;
    const extraInputs: string[] = [];
    if (info.kind === 'package') {
      if (!info.org) info.org = opts.org;
      const docker = readText(root, info.dockerfile);
      if (docker === undefined) {
        errors.push({ file, line: 1, col: 1, path: 'dockerfile', message: `no Dockerfile at ${info.dockerfile}` });
      } else {
        const key = `${CACHE_VERSION}:images:${hash(docker)}`;
        if (!cache.has(key)) await load();
        info.froms = cached(key, (r) => r.dockerfileRepositories(docker));
        if (!info.dockerfile.startsWith(`${dir}/`)) extraInputs.push(info.dockerfile);
      }
      for (const p of info.extraSources) extraInputs.push(isDir(root, p) ? `${p}/**/*` : p);
    } else if (info.kind === 'os') {
      for (const s of info.sources) {
        if (!existsSync(join(root, s.path))) {
          if (!s.optional) errors.push({ ...s.at, message: `no such file: ${s.path}` });
          continue;
        }
        extraInputs.push(isDir(root, s.path) ? `${s.path}/**/*` : s.path);
      }
    } else if (info.manifest && !existsSync(join(root, info.manifest))) {
      errors.push({ ...info.at, message: `no OS manifest at ${info.manifest}` });
      info.manifest = undefined;
    }
    out.push({ name: projectName(kind, file, projectRoot), root: projectRoot, info, extraInputs, errors });
  }
  cache.save(used);
  return out;
}
