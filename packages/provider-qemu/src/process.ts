// Which qemu is which: a daemonized qemu is not our child, and its pid may be reused once it is
// gone, so a pid is trusted only while its command line is still that VM's (checked before any
// signal is sent to it).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** The process exists and is not a zombie (a daemonized qemu is not our child to reap). */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The pid in `pidFile` if that process is still the qemu started with `-name <qemuName>` and that
 * very pid file (not a reused pid, nor a same-named VM of another directory).
 */
export async function qemuPid(pidFile: string, qemuName: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10);
  if (!alive(pid)) return undefined;
  const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  return args.includes(qemuName) && args.includes(pidFile) ? pid : undefined;
}

/** Stops qemu `pid` (SIGTERM, then SIGKILL after 10 s) and waits until it is gone. */
export async function stopQemu(pid: number): Promise<void> {
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) signal(pid, 'SIGKILL');
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
}

/** Sends `sig`; a process that has exited meanwhile is what was wanted. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
