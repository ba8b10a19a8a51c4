import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every process a peer starts is recorded here (one file per pid) so that the suite runner can
 * assert afterwards that none is left running, and kill any that is. Set STELE_PEERS_RUN_DIR to
 * share one record across vitest workers; by default each worker has its own.
 */
export const RUN_DIR: string = process.env.STELE_PEERS_RUN_DIR ?? join(tmpdir(), `stele-peers-${process.pid}`);
const PID_DIR = join(RUN_DIR, 'pids');

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A fresh temp dir for one peer; removed by `removeDir` when the peer stops. */
export function tempDir(prefix: string): string {
  mkdirSync(RUN_DIR, { recursive: true });
  return mkdtempSync(join(RUN_DIR, `${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface PeerProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<PeerProcess>();

/**
 * Spawns a peer in its own process group (so children die with it) and records its pid.
 * Output is kept in memory (bounded) for error messages and console checks.
 */
export function spawnPeer(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): PeerProcess {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  mkdirSync(PID_DIR, { recursive: true });
  const pidFile = join(PID_DIR, String(pid));
  writeFileSync(pidFile, `${name}\n${cmd} ${args.join(' ')}\n`);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  void exited.then(() => {
    try {
      unlinkSync(pidFile);
    } catch {
      /* already gone */
    }
  });
  const proc: PeerProcess = {
    name,
    pid,
    child,
    exited,
    output: () => out,
    async stop(graceMs = 10_000) {
      live.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) {
        killGroup(pid, 'SIGKILL'); // stray children of an exited leader
        return;
      }
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL');
    },
  };
  live.add(proc);
  return proc;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

// Last resort: a worker that exits without stopping its peers still takes them down.
// A private run dir (not shared through STELE_PEERS_RUN_DIR) goes with the worker once it is empty.
process.once('exit', () => {
  for (const p of live) killGroup(p.pid, 'SIGKILL');
  if (!process.env.STELE_PEERS_RUN_DIR && leftovers().length === 0) removeDir(RUN_DIR);
});

/** Pids recorded under RUN_DIR whose process is still alive, with the command that started them. */
export function leftovers(runDir: string = RUN_DIR): { pid: number; what: string }[] {
  const dir = join(runDir, 'pids');
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => ({ pid: Number(n), what: readFileSync(join(dir, n), 'utf8').trim().replace(/\n/g, ': ') }))
    .filter((p) => Number.isInteger(p.pid) && isAlive(p.pid));
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Fail early (with its output) if this process exits while we wait. */
  proc?: PeerProcess;
  what: string;
}

/** Polls `probe` until it returns a value other than undefined/false; throws on timeout. */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastErr: unknown;
  for (;;) {
    if (opts.proc && (opts.proc.child.exitCode !== null || opts.proc.child.signalCode !== null)) {
      throw new Error(`${opts.what}: ${opts.proc.name} exited early\n${tail(opts.proc.output())}`);
    }
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
      const out = opts.proc ? `\n${tail(opts.proc.output())}` : '';
      throw new Error(`${opts.what}: not ready after ${opts.timeoutMs} ms${why}${out}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

export function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export function runCommand(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}\n${tail(stderr || stdout)}`));
    });
    child.stdin?.end(opts.input);
  });
}
