import { createHash } from 'node:crypto';
import { isAbsolute, join, normalize, posix, relative, resolve, sep } from 'node:path';
import type { Git } from './git.ts';

/** The build.yml fields that decide a package's tag. */
export interface TagInputs {
  /** Go-template-style tag, LinuxKit's default `{{.Hash}}`. */
  tag?: string;
  /** `SRC:DST` pairs; SRC relative to the package directory. */
  extraSources?: string[];
  /** `KEY=VALUE` build arguments. */
  buildArgs?: string[];
  /** Dockerfile path relative to the package directory (default `Dockerfile`). */
  dockerfile?: string;
}

export interface PackageTag {
  /** The source hash: the git tree hash, mixed and suffixed as described in docs/pkg-tags.md. */
  hash: string;
  /** The tag template applied to the hash. */
  tag: string;
  dirty: boolean;
  /** Build-context sources: the package itself at `/`, then each extra source. */
  sources: { src: string; dst: string }[];
}

export class TagError extends Error {}

/** Parses `SRC:DST` extra sources the way LinuxKit does (exactly one colon). */
export function parseExtraSource(dir: string, spec: string): { src: string; dst: string } {
  const parts = spec.split(':');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new TagError(`extra-sources: '${spec}' is not of the form SRC:DST`);
  }
  const src = normalize(parts[0]);
  return { src: isAbsolute(src) ? src : join(dir, src), dst: posix.normalize(parts[1]) };
}

/** Applies a tag template; only `{{.Hash}}` (any inner spacing) is a placeholder. */
export function applyTagTemplate(template: string, hash: string): string {
  const out = template.replace(/\{\{-?\s*\.Hash\s*-?\}\}/g, hash);
  const leftover = /\{\{.*?\}\}/.exec(out);
  if (leftover) throw new TagError(`tag: unknown template field ${leftover[0]} (only {{.Hash}} is known)`);
  return out;
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

/**
 * LinuxKit's package tag, computed from git:
 * - clean: the tree hash of the package directory at `commit`;
 * - extra-sources: sha1(treeHash + each source's tree hash);
 * - dirty (tracked changes or untracked files): `<hash>-dirty-<7 hex of the content hash>`.
 * Beyond LinuxKit (its issue #4180), so that the tag changes whenever the build does:
 * - build args and a Dockerfile outside the package directory are mixed into the hash;
 * - an uncommitted change inside an extra-sources directory makes the tag dirty.
 * Without those inputs, the result is byte-for-byte LinuxKit's.
 */
export async function packageTag(dirIn: string, inputs: TagInputs, git: Git, commit = 'HEAD'): Promise<PackageTag> {
  const dir = resolve(dirIn);
  const sources = [{ src: dir, dst: '/' }];
  const top = await git.topLevel(dir);
  if (top === undefined) {
    throw new TagError(`${dir} is not inside a git work tree: a package's tag is its git tree hash`);
  }
  let srcHashes = '';
  const extraDirs: string[] = [];
  for (const spec of inputs.extraSources ?? []) {
    const source = parseExtraSource(dir, spec);
    if ((await git.topLevel(source.src)) === undefined) {
      throw new TagError(`extra-sources: ${source.src} is not in a git repository`);
    }
    srcHashes += await git.treeHash(source.src, commit);
    sources.push(source);
    extraDirs.push(source.src);
  }

  let hash = await git.treeHash(dir, commit);
  if (srcHashes !== '') hash = sha1(hash + srcHashes);

  const extras: string[] = [];
  if (inputs.buildArgs?.length) extras.push(`buildArgs:${[...inputs.buildArgs].sort().join('\n')}`);
  const dockerfile = resolve(dir, inputs.dockerfile ?? 'Dockerfile');
  const outside = relative(dir, dockerfile).startsWith(`..${sep}`) || isAbsolute(relative(dir, dockerfile));
  if (outside) extras.push(`dockerfile:${await git.hashObject(dockerfile)}`);
  if (extras.length) hash = sha1(`${hash}\n${extras.join('\n')}`);

  const commitIsHead = commit === 'HEAD';
  let dirty = commitIsHead && (await git.isDirty(dir, commit));
  const dirtyExtras: string[] = [];
  if (commitIsHead) {
    for (const d of extraDirs) if (await git.isDirty(d, commit)) dirtyExtras.push(d);
  }
  if (dirty || dirtyExtras.length) {
    let content = dirty ? await git.contentHash(dir) : '';
    if (dirtyExtras.length) {
      const parts = [content];
      for (const d of dirtyExtras) parts.push(await git.contentHash(d));
      content = createHash('sha256').update(parts.join('\n')).digest('hex');
    }
    dirty = true;
    hash += `-dirty-${content.slice(0, 7)}`;
  }
  return { hash, tag: applyTagTemplate(inputs.tag ?? '{{.Hash}}', hash), dirty, sources };
}
