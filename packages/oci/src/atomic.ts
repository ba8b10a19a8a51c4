// Files that appear whole or not at all: written under a temp name beside the target, flushed to
// disk, then renamed, and the directory flushed too, so the new name survives a power cut and not
// only a killed process. A temp name says who writes it (pid and a tag of the host and pid
// namespace), so a later run can tell the temp files of a writer that died from those of one
// still at work.
import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { processAlive } from './lock.ts';

/**
 * 8 hex digits naming this host and pid namespace: a pid means something only where both match
 * (a store shared over NFS, or with a container, holds temp files of pids that are not ours).
 */
function ownerHost(): string {
  let ns = '';
  try {
    ns = readlinkSync('/proc/self/ns/pid');
  } catch {
    /* not Linux: the host name alone */
  }
  return createHash('sha256').update(`${hostname()}\0${ns}`).digest('hex').slice(0, 8);
}

const HOST = ownerHost();

/** `<pid>-<host tag>-<random>`: the part of a temp file's name that names its writer. */
export function tempTag(): string {
  return `${process.pid}-${HOST}-${randomBytes(4).toString('hex')}`;
}

const TAG = /(?:^|[.])(\d+)-([a-f0-9]{8})-[a-f0-9]+(?:\.tmp)?$/;

/**
 * True when the temp file `name` (made with tempTag) belongs to a writer on this host that is no
 * longer running: it can be removed at once. Names of other hosts, or without a tag, are false.
 */
export function writerGone(name: string): boolean {
  const m = TAG.exec(name);
  if (!m || m[2] !== HOST) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !processAlive(pid);
}

/** A temp name beside `path` (same filesystem, so the final rename is atomic). */
export function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${tempTag()}.tmp`);
}

/** Flushes a directory's entries (a rename in it) to disk; a filesystem that can't is let be. */
export async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw err;
  } finally {
    await d.close();
  }
}

/** `data` written to a temp file, flushed, renamed into place, and the rename flushed. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempBeside(path);
  try {
    const f = await open(tmp, 'wx', mode);
    try {
      await f.writeFile(data);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** JSON written atomically and durably (see writeFileAtomic): readers never see half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
