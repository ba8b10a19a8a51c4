// The manifest's `files` section as layout steps (LinuxKit's rules from moby/build/build.go).

import type { EntryOrigin, LayoutEntry, LayoutStep } from './entries.ts';
import { AssembleError } from './errors.ts';
import { resolveId } from './ids.ts';
import { parseOctalMode } from './runtimeConfig.ts';
import type { FileSection, IdMap } from './types.ts';

export interface FilesOptions {
  ids: IdMap;
  mtime: number;
  /** Where a `source` is read from (the caller resolves `~/` and relative paths). Default: as written. */
  resolveSource?: (source: string) => string;
  /** Whether a resolved source can be read; an unreadable `optional` file is skipped. Default: yes. */
  sourceExists?: (path: string) => boolean;
  /** The bytes of a `metadata: <format>` file; throws for an unsupported format. */
  metadata: (format: string) => Uint8Array;
}

/** A directory made for a file gets an x bit wherever the file's mode has any bit in that class. */
export function leadingDirMode(mode: number): number {
  let m = mode;
  if (m & 0o700) m |= 0o100;
  if (m & 0o070) m |= 0o010;
  if (m & 0o007) m |= 0o001;
  return m;
}

/** Go's path.Dir: everything before the last '/', cleaned; '.' when there is none. */
function parentDir(p: string): string {
  const i = p.lastIndexOf('/');
  if (i < 0) return '.';
  const parts: string[] = [];
  for (const part of p.slice(0, i).split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.length === 0 ? '.' : parts.join('/');
}

/**
 * Each file, after the directories leading to it that no earlier `files` entry made (those get the
 * file's owner and its mode with x bits added). Mode defaults to 0600 for files and 0700 for
 * directories. A file's contents come from exactly one of `contents`, `source` or `metadata`;
 * directories and symlinks take none of them.
 */
export function planFiles(files: FileSection[], opts: FilesOptions): LayoutStep[] {
  const steps: LayoutStep[] = [];
  const made = new Set<string>();
  files.forEach((f, index) => {
    const subject = `files[${index}]`;
    const fail = (field: string, detail: string): never => {
      throw new AssembleError(subject, field, detail);
    };
    if (!f.path) fail('path', 'did not specify path for file');
    const path = f.path.startsWith('/') ? f.path.slice(1) : f.path;
    let mode = f.directory ? 0o700 : 0o600;
    if (f.mode !== undefined && f.mode !== '') {
      const parsed = parseOctalMode(f.mode);
      if (parsed === undefined) fail('mode', `cannot parse file mode as octal value: ${JSON.stringify(f.mode)}`);
      mode = parsed as number;
    }
    const id = (value: FileSection['uid'], field: string) => {
      const r = resolveId(value, opts.ids);
      return r.ok ? r.id : fail(field, r.message);
    };
    const uid = id(f.uid, 'uid');
    const gid = id(f.gid, 'gid');

    let source: LayoutEntry['source'];
    const hasContents = f.contents !== undefined && f.contents !== null;
    if (!f.directory && !f.symlink && !hasContents) {
      if (!f.source && !f.metadata)
        fail('contents', `contents of file (${f.path}) not specified: give contents, source or metadata`);
      if (f.source && f.metadata) fail('source', `specified source and metadata for file: ${f.path}`);
      if (f.source) {
        const resolved = opts.resolveSource ? opts.resolveSource(f.source) : f.source;
        if (f.optional && opts.sourceExists && !opts.sourceExists(resolved)) return; // skipped, no directories either
        source = { kind: 'hostFile', path: resolved };
      } else {
        try {
          source = { kind: 'bytes', data: opts.metadata(f.metadata as string) };
        } catch (e) {
          fail('metadata', (e as Error).message);
        }
      }
    } else {
      if (f.metadata) fail('metadata', `specified contents and metadata for file: ${f.path}`);
      if (f.source) fail('source', `specified contents and source for file: ${f.path}`);
      if (hasContents) source = { kind: 'bytes', data: new TextEncoder().encode(f.contents) };
    }
    if (f.directory && hasContents) fail('contents', 'directory with contents not allowed');

    const origin: EntryOrigin = { source: 'linuxkit.files', location: subject };
    const dir = parentDir(path);
    if (dir !== '.') {
      const parts = dir.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const p = parts.slice(0, i).join('/');
        if (made.has(p)) continue;
        made.add(p);
        steps.push({
          kind: 'entry',
          entry: { path: p, type: 'dir', mode: leadingDirMode(mode), uid, gid, mtime: opts.mtime, origin },
        });
      }
    }
    made.add(path);
    const name = path.replace(/\/+$/, '');
    const entry: LayoutEntry = { path: name, type: 'file', mode, uid, gid, mtime: opts.mtime, origin };
    if (f.directory) entry.type = 'dir';
    else if (f.symlink) {
      entry.type = 'symlink';
      entry.linkname = f.symlink;
    } else entry.source = source ?? { kind: 'bytes', data: new Uint8Array() };
    steps.push({ kind: 'entry', entry });
  });
  return steps;
}
