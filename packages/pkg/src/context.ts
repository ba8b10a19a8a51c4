import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ignore } from '@balena/dockerignore';
import { pack } from 'tar-stream';

// A CommonJS module whose types claim an ES default export.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as (opts?: { ignorecase?: boolean }) => Ignore;

export interface ContextSource {
  /** Directory on disk. */
  src: string;
  /** Where it lands in the context (`/` for the package itself). */
  dst: string;
}

export interface ContextEntry {
  /** Path inside the context, no leading slash. */
  name: string;
  path: string;
  type: 'file' | 'directory' | 'symlink';
}

/** The `.dockerignore` rules of the context root (the package directory), if any. */
async function dockerignore(dir: string): Promise<{ rules: Ignore; negations: boolean } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, '.dockerignore'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  return { rules: ignore().add(lines), negations: lines.some((l) => l.trim().startsWith('!')) };
}

/**
 * Every entry of the build context in tar order: the package directory at `/`, then each extra
 * source at its destination, with `.dockerignore` applied to the context paths. The Dockerfile
 * and `.dockerignore` themselves are always sent, as the docker CLI does.
 */
export async function contextEntries(sources: ContextSource[], keep: string[] = []): Promise<ContextEntry[]> {
  const root = sources[0]?.src;
  if (!root) throw new Error('a build context needs at least one source');
  const ign = await dockerignore(root);
  const always = new Set(['.dockerignore', ...keep.map((k) => posix.normalize(k))]);
  const seen = new Map<string, ContextEntry>();

  const walk = async (dir: string, prefix: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const n of names) {
      const path = join(dir, n);
      const name = prefix ? `${prefix}/${n}` : n;
      const st = await lstat(path);
      const ignored = ign !== undefined && !always.has(name) && ign.rules.ignores(name);
      if (st.isDirectory()) {
        if (ignored && !ign?.negations) continue;
        if (!ignored) seen.set(name, { name, path, type: 'directory' });
        await walk(path, name);
      } else if (!ignored && (st.isFile() || st.isSymbolicLink())) {
        seen.set(name, { name, path, type: st.isFile() ? 'file' : 'symlink' });
      }
    }
  };

  for (const s of sources) {
    const dst = posix.normalize(s.dst).replace(/^\/+|\/+$/g, '');
    const st = await lstat(s.src).catch(() => undefined);
    if (!st) throw new Error(`build context source ${s.src} does not exist`);
    if (st.isDirectory()) {
      if (dst) {
        // Parent directories of the destination.
        const parts = dst.split('/');
        for (let i = 1; i <= parts.length; i++) {
          const name = parts.slice(0, i).join('/');
          if (!seen.has(name)) seen.set(name, { name, path: s.src, type: 'directory' });
        }
      }
      await walk(s.src, dst);
    } else {
      seen.set(dst, { name: dst, path: s.src, type: st.isFile() ? 'file' : 'symlink' });
    }
  }
  return [...seen.values()];
}

/** The build context as a tar stream. */
export async function contextTar(sources: ContextSource[], keep: string[] = []): Promise<Readable> {
  const entries = await contextEntries(sources, keep);
  const tar = pack();
  (async () => {
    for (const e of entries) {
      const st = await lstat(e.path);
      const header = { name: e.name, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (e.type === 'directory') {
        tar.entry({ ...header, type: 'directory' });
      } else if (e.type === 'symlink') {
        tar.entry({ ...header, type: 'symlink', linkname: await readlink(e.path) });
      } else {
        const sink = tar.entry({ ...header, type: 'file', size: st.size });
        await pipeline(createReadStream(e.path), sink);
      }
    }
    tar.finalize();
  })().catch((err: unknown) => tar.destroy(err as Error));
  return tar as unknown as Readable;
}
