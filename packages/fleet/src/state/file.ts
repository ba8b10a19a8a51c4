// The state as a local JSON file (state.backend: file, the default). Its version is a hash of
// its bytes; a write compares and replaces it under a short lock, durably (temp file, fsync,
// rename, fsync of the directory). The fleet's lease is a file beside it, created exclusively:
// it lapses at its expiry, or at once when its holder was a process on this machine that is gone.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { processAlive, withLock, writeFileAtomic } from '@stele/oci';
import type { Lease, LeaseHolder, StateBackend } from '../ports.ts';
import { describeLease, LeaseLostError, LockHeldError, StateConflictError, StateError } from './store.ts';

const versionOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/** A lease as stored, or `garbage` when the file holds something else. */
function parseLease(text: string): Lease | 'garbage' {
  try {
    const l = JSON.parse(text) as Partial<Lease>;
    if (typeof l.id === 'string' && typeof l.expires === 'string' && l.holder && typeof l.holder.pid === 'number') {
      return l as Lease;
    }
  } catch {}
  return 'garbage';
}

/** Over: past its expiry, or held by a process of this machine that no longer exists. */
export function lapsed(lease: Lease, now = Date.now()): boolean {
  if (Date.parse(lease.expires) <= now) return true;
  return lease.holder.host === hostname() && !processAlive(lease.holder.pid);
}

export class FileStateBackend implements StateBackend {
  readonly lockPath: string;

  constructor(readonly path: string) {
    this.lockPath = `${path}.lock`;
  }

  get location(): string {
    return this.path;
  }

  async read(): Promise<{ text: string; version: string } | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'EISDIR') throw new StateError(`the state ${this.path} is a directory, not a file`);
      throw new StateError(`cannot read the state ${this.path}: ${code ?? (err as Error).message}`);
    }
    return { text, version: versionOf(text) };
  }

  async write(text: string, expected: string | undefined): Promise<string> {
    await mkdir(dirname(this.path), { recursive: true });
    return withLock(
      `${this.path}.write-lock`,
      async () => {
        const now = await this.read();
        if (now?.version !== expected) {
          throw new StateConflictError(
            `the state ${this.path} changed since it was read (expected ${expected ?? 'none'}, found ${now?.version ?? 'none'})`,
          );
        }
        await writeFileAtomic(this.path, text, 0o600);
        return versionOf(text);
      },
      { timeoutMs: 30_000, staleMs: 60_000 },
    );
  }

  private async readLease(): Promise<Lease | 'garbage' | undefined> {
    try {
      return parseLease(await readFile(this.lockPath, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async lease(): Promise<Lease | undefined> {
    const l = await this.readLease();
    return l === 'garbage' ? undefined : l;
  }

  async acquire(holder: LeaseHolder, ttlMs: number): Promise<Lease> {
    await mkdir(dirname(this.path), { recursive: true });
    const now = Date.now();
    const lease: Lease = {
      id: randomUUID(),
      holder,
      since: new Date(now).toISOString(),
      expires: new Date(now + ttlMs).toISOString(),
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const f = await open(this.lockPath, 'wx', 0o644);
        try {
          await f.writeFile(`${JSON.stringify(lease, null, 2)}\n`);
          await f.sync();
        } finally {
          await f.close();
        }
        return lease;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = await this.readLease();
      if (held === undefined) continue; // released meanwhile
      if (held === 'garbage') {
        throw new LockHeldError(
          `the lock file ${this.lockPath} is unreadable (not written by this Stele?): if no stele command is changing ` +
            "this fleet, remove it or run 'stele fleet unlock --force'",
          undefined,
        );
      }
      if (!lapsed(held)) {
        throw new LockHeldError(`another command holds the lock of this fleet: ${describeLease(held)}`, held);
      }
      await this.breakIfStill(held);
    }
    throw new LockHeldError(`could not take the lock ${this.lockPath}: it keeps changing hands`, undefined);
  }

  /**
   * Removes the lapsed lease `judged`: moved aside first, and put back if what was moved is not
   * the one judged (another process replaced it meanwhile), so two breakers never both win.
   */
  private async breakIfStill(judged: Lease): Promise<void> {
    const aside = `${this.lockPath}.lapsed-${randomBytes(6).toString('hex')}`;
    try {
      await rename(this.lockPath, aside);
    } catch {
      return;
    }
    const moved = await readFile(aside, 'utf8').then(parseLease, () => 'garbage' as const);
    if (moved === 'garbage' || moved.id !== judged.id) await link(aside, this.lockPath).catch(() => {});
    await unlink(aside).catch(() => {});
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    const held = await this.readLease();
    if (held === undefined || held === 'garbage' || held.id !== lease.id) {
      throw new LeaseLostError(
        held && held !== 'garbage'
          ? `the lock was taken by ${describeLease(held)}`
          : `the lock file ${this.lockPath} was removed (stele fleet unlock --force?)`,
      );
    }
    const next = { ...lease, expires: new Date(Date.now() + ttlMs).toISOString() };
    await writeFileAtomic(this.lockPath, `${JSON.stringify(next, null, 2)}\n`);
    return next;
  }

  async release(lease: Lease): Promise<void> {
    const held = await this.readLease();
    if (held && held !== 'garbage' && held.id === lease.id) await unlink(this.lockPath).catch(() => {});
  }

  async breakLease(): Promise<Lease | undefined> {
    const held = await this.readLease();
    await unlink(this.lockPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    return held === 'garbage' ? undefined : held;
  }
}
