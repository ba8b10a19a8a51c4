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
      await breakIfStale(path, staleMs);
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for lock ${path} (${await describe(path)})`);
      }
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 50);
    }
  } finally {
    await unlink(mine).catch(() => {});
  }
  return async () => {
    // Only remove the lock if it is still ours.
    const owner = await readOwner(path);
    if (owner?.nonce === me.nonce) await unlink(path).catch(() => {});
  };
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

async function describe(path: string): Promise<string> {
  const o = await readOwner(path);
  return o ? `held by pid ${o.pid} on ${o.host} since ${new Date(o.time).toISOString()}` : 'owner unknown';
}

async function breakIfStale(path: string, staleMs: number): Promise<void> {
  const owner = await readOwner(path);
  let stale = false;
  if (owner && owner.host === hostname()) stale = !processAlive(owner.pid);
  if (!stale) {
    try {
      const st = await stat(path);
      stale = Date.now() - st.mtimeMs > staleMs;
    } catch {
      return;
    }
  }
  if (!stale) return;
  // Move it aside, then check we moved the one we judged: if another process already replaced
  // it with a live lock, put that one back (link fails if a third took the name meanwhile).
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  const moved = await readOwner(aside);
  if (owner && moved && moved.nonce !== owner.nonce) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
}
