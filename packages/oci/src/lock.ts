import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

export interface LockOptions {
  /** Give up after this long (default 120 s). */
  timeoutMs?: number;
  /** A lock file older than this whose owner cannot be checked is taken as abandoned (default 10 min). */
  staleMs?: number;
}

interface Owner {
  pid: number;
  host: string;
  nonce: string;
  time: number;
}

/** Whether a process of this machine exists (one of another user's counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock that could not be taken: the message names the lock file and says what to do. */
export class LockError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'LockError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An exclusive lock between processes, held as a file created atomically with link(2) (which
 * fails if the name exists, also on NFS). A lock whose owner died (same host, pid gone) or that
 * is older than `staleMs` is broken by renaming it away first, so two breakers never both win.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquire(path, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

export async function acquire(path: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const staleMs = opts.staleMs ?? 600_000;
  const me: Owner = { pid: process.pid, host: hostname(), nonce: randomBytes(8).toString('hex'), time: Date.now() };
  const mine = `${path}.${me.nonce}`;
  await writeFile(mine, JSON.stringify(me));
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  try {
    for (;;) {
      try {
        await link(mine, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = await breakIfStale(path, staleMs);
      if (owner === 'unreadable') {
        throw new LockError(
          `the lock file ${path} is unreadable (not written by stele, or damaged); ` +
            'if no stele command that could hold it is running, remove that file and run again',
          path,
        );
      }
      if (Date.now() > deadline) throw new LockError(timedOut(path, timeoutMs, owner), path);
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 50);
    }
  } finally {
    await unlink(mine).catch(() => {});
  }
  return async () => {
    // Only remove the lock if it is still ours.
    const owner = await readOwner(path);
    if (typeof owner === 'object' && owner.nonce === me.nonce) await unlink(path).catch(() => {});
  };
}

function isOwner(o: unknown): o is Owner {
  const x = o as Partial<Owner> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    Number.isSafeInteger(x.pid) &&
    typeof x.host === 'string' &&
    typeof x.nonce === 'string' &&
    typeof x.time === 'number'
  );
}

/** The lock's owner; undefined when the file is gone, 'unreadable' when it holds no owner we can read. */
async function readOwner(path: string): Promise<Owner | 'unreadable' | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : 'unreadable';
  }
  try {
    const o = JSON.parse(text) as unknown;
    return isOwner(o) ? o : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

function timedOut(path: string, timeoutMs: number, owner: Owner | undefined): string {
  const waited = `timed out after ${timeoutMs / 1000} s waiting for the lock ${path}`;
  if (!owner) return `${waited}; it changed hands all the time: try again`;
  const since = new Date(owner.time).toISOString();
  if (owner.host === hostname()) {
    return (
      `${waited}, held by pid ${owner.pid} (still running) since ${since}: ` +
      `wait for that process, or stop it; once it has ended, stele takes the lock over by itself`
    );
  }
  return (
    `${waited}, held by pid ${owner.pid} on ${owner.host} since ${since}: ` +
    `if that process no longer runs on ${owner.host}, remove ${path} and run again`
  );
}

/**
 * Breaks the lock when its owner is gone; returns the owner it found (when the lock stays), or
 * 'unreadable' for a lock file that is not one of ours and is not old enough to break.
 */
async function breakIfStale(path: string, staleMs: number): Promise<Owner | 'unreadable' | undefined> {
  const found = await readOwner(path);
  const owner = found === 'unreadable' ? undefined : found;
  let stale = false;
  if (owner && owner.host === hostname()) stale = !processAlive(owner.pid);
  if (!stale) {
    try {
      const st = await stat(path);
      stale = Date.now() - st.mtimeMs > staleMs;
    } catch {
      return undefined;
    }
  }
  if (!stale) return found;
  // Move it aside, then check we moved the one we judged: if another process already replaced
  // it with a live lock, put that one back (link fails if a third took the name meanwhile).
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  const moved = await readOwner(aside);
  if (typeof moved === 'object' && moved.nonce !== owner?.nonce) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
  return undefined;
}
