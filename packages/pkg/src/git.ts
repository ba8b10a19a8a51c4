import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** What tag computation needs from git; `gitCli()` runs the real `git`. */
export interface Git {
  /** The work tree's top directory, or undefined when `dir` is not inside a git work tree. */
  topLevel(dir: string): Promise<string | undefined>;
  /** The tree object id of `dir` at `commit` (the commit's root tree for the top directory). */
  treeHash(dir: string, commit: string): Promise<string>;
  /** Tracked changes against `commit`, or untracked (not ignored) files, under `dir`. */
  isDirty(dir: string, commit: string): Promise<boolean>;
  /** sha256 over the contents of tracked then untracked files under `dir` (LinuxKit's rule). */
  contentHash(dir: string): Promise<string>;
  /** The blob id of `file` as it is in the work tree (`git hash-object`). */
  hashObject(file: string): Promise<string>;
}

export class GitError extends Error {}

function git(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', dir, ...args], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') {
        reject(new GitError(`git is not available: ${err.message}`));
        return;
      }
      resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr });
    });
  });
}

async function gitOk(dir: string, args: string[]): Promise<string> {
  const r = await git(dir, args);
  if (r.code !== 0) throw new GitError(`git ${args.join(' ')} (in ${dir}) failed: ${r.stderr.trim()}`);
  return r.stdout;
}

const LS_TREE_LINE = /^[0-7]{6} tree ([0-9a-f]{40})\t.+\n$/;

export function gitCli(): Git {
  return {
    async topLevel(dir) {
      const r = await git(dir, ['rev-parse', '--show-toplevel']);
      return r.code === 0 ? r.stdout.trim() : undefined;
    },

    async treeHash(dir, commit) {
      const abs = await realpath(dir);
      const top = await realpath(await gitOk(abs, ['rev-parse', '--show-toplevel']).then((s) => s.trim()));
      if (abs === top) return (await gitOk(abs, ['show', '--format=%T', '-s', commit])).trim();
      const out = await gitOk(abs, ['ls-tree', '--full-tree', commit, '--', relative(top, abs)]);
      if (out === '') throw new GitError(`${dir} is not committed in git (no tree at ${commit})`);
      const m = LS_TREE_LINE.exec(out);
      if (!m?.[1]) throw new GitError(`unexpected git ls-tree output for ${dir}: ${JSON.stringify(out)}`);
      return m[1];
    },

    async isDirty(dir, commit) {
      const diff = await git(dir, ['diff', '--no-ext-diff', '--exit-code', '--quiet', commit, '--', '.']);
      if (diff.code === 1) return true;
      if (diff.code !== 0) throw new GitError(`git diff in ${dir} failed: ${diff.stderr.trim()}`);
      const untracked = await gitOk(dir, ['ls-files', '--exclude-standard', '--others', '--', '.']);
      return untracked.trim() !== '';
    },

    async contentHash(dir) {
      // Same walk as LinuxKit: `ls-files` then untracked files, in git's order, contents only
      // (no names); entries that cannot be stat'ed (deleted, or names git quotes) are skipped,
      // as are directories and symlinks.
      const tracked = await gitOk(dir, ['ls-files']);
      const untracked = await gitOk(dir, ['ls-files', '--exclude-standard', '--others']);
      const names = `${tracked}\n${untracked}`
        .trim()
        .split('\n')
        .filter((n) => n !== '');
      const hash = createHash('sha256');
      for (const name of names) {
        const file = join(dir, name);
        const st = await lstat(file).catch(() => undefined);
        if (!st || st.isDirectory() || st.isSymbolicLink()) continue;
        for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
      }
      return hash.digest('hex');
    },

    async hashObject(file) {
      return (await gitOk('/', ['hash-object', '--no-filters', file])).trim();
    },
  };
}
