// A real Docker Engine: Debian's dockerd 20.10 with its own data root, exec root, unix socket and
// containerd, no iptables and no bridge. stop() takes down dockerd, its containerd (which dockerd
// starts in a session of its own, so a process-group kill does not reach it) and any shim, then
// unmounts what dockerd left under the dir and removes it. For a multi-node Swarm it runs as a
// machine of a LAN (netns.ts): in that network namespace, with a hostname of its own.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { type PeerProcess, RUN_DIR, removeDir, runCommand, spawnPeer, tempDir, waitFor } from './process.ts';

export interface DockerdOptions {
  /** `--registry-mirror` for docker.io pulls, e.g. `http://127.0.0.1:PORT` of a startRegistry(). */
  registryMirror?: string;
  /** `--insecure-registry` entries, e.g. `127.0.0.1:PORT`. */
  insecureRegistries?: string[];
  /**
   * Which containerd to use. `managed` (dockerd starts its own), `own` (we start one next to it
   * with private root/state/socket) or `auto` (default): `managed`, unless a system containerd
   * socket exists — dockerd 20.10 would then silently use the system one.
   */
  containerd?: 'auto' | 'managed' | 'own';
  /** Extra dockerd flags. */
  extraArgs?: string[];
  /** How long to wait for the API to answer a ping (default 60 s). */
  readyTimeoutMs?: number;
  /**
   * Run in this network namespace (its file, e.g. a LAN machine's `Netns.path`), entered with
   * `nsenter --net`; its containerd runs there too. The API socket stays a file in `dir`.
   */
  netns?: string;
  /** Run in a UTS namespace of its own with this hostname (a Swarm node is named by it). */
  hostname?: string;
}

export interface Dockerd {
  /** The engine's API socket. */
  readonly socketPath: string;
  /** A dockerode client on socketPath. */
  readonly docker: Dockerode;
  /** Temp dir holding data-root, exec-root, socket, pidfile and config; removed by stop(). */
  readonly dir: string;
  readonly process: PeerProcess;
  /** Pid of the containerd this dockerd talks to (read at start). */
  readonly containerdPid: number | undefined;
  /** Milliseconds from spawn until docker.ping() succeeded. */
  readonly startMs: number;
  /** dockerd's log so far (stdout and stderr). */
  log(): string;
  stop(): Promise<void>;
}

const SYSTEM_CONTAINERD_SOCK = '/run/containerd/containerd.sock';
/** The longest socket path created below the dir (sun_path holds 108 bytes with the NUL). */
const LONGEST_SOCKET_SUFFIX = '/exec/containerd/containerd-debug.sock.ttrpc';

export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  let dir = tempDir('dockerd');
  if (Buffer.byteLength(dir + LONGEST_SOCKET_SUFFIX) > 107) {
    removeDir(dir);
    dir = mkdtempSync('/tmp/stele-dk-');
  }
  const socketPath = join(dir, 'docker.sock');
  const mode = opts.containerd ?? 'auto';
  const ownContainerd = mode === 'own' || (mode === 'auto' && existsSync(SYSTEM_CONTAINERD_SOCK));

  let containerd: PeerProcess | undefined;
  let proc: PeerProcess | undefined;
  let containerdPid: number | undefined;
  let pidRecord: string | undefined;

  const cleanup = async () => {
    const errors: string[] = [];
    if (proc) await proc.stop(20_000);
    // dockerd stops its managed containerd on SIGTERM; make sure, by pid and by anything else
    // (shims) whose command line names our dir.
    const managedPid = containerdPid ?? readPid(join(dir, 'exec', 'containerd', 'containerd.pid'));
    if (containerd) await containerd.stop(10_000);
    // Containers outlive a dockerd that died hard (their shims are in sessions of their own):
    // find them by their cgroup, named after container ids this engine created.
    const containerIds = listDir(join(dir, 'data', 'containers')).filter((n) => /^[0-9a-f]{64}$/.test(n));
    const stragglers = [
      ...new Set([
        ...(managedPid ? [managedPid] : []),
        ...processesMentioning(`${dir}/`),
        ...processesInCgroups(containerIds),
      ]),
    ];
    for (const pid of stragglers) signal(pid, 'SIGKILL');
    const notDead = await waitGone(stragglers, 10_000);
    if (notDead.length) errors.push(`processes still alive: ${notDead.join(', ')}`);
    removeContainerCgroups(containerIds);
    try {
      await unmountUnder(dir);
    } catch (err) {
      errors.push((err as Error).message);
    }
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      errors.push(`remove ${dir}: ${(err as Error).message}`);
    }
    if (pidRecord && !notDead.length) rmSync(pidRecord, { force: true });
    if (errors.length) throw new Error(`dockerd in ${dir}: stop left things behind:\n${errors.join('\n')}`);
  };

  try {
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, 'exec'));
    // An explicit (empty) config file: never pick up the host's /etc/docker/daemon.json.
    const configFile = join(dir, 'daemon.json');
    writeFileSync(configFile, '{}\n');

    const args = [
      '--config-file',
      configFile,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '-H',
      `unix://${socketPath}`,
      '--pidfile',
      join(dir, 'docker.pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      // Peers are throwaway: do not wait the default 15 s for containers to stop on shutdown.
      '--shutdown-timeout',
      '5',
    ];
    if (opts.registryMirror) args.push('--registry-mirror', opts.registryMirror);
    for (const r of opts.insecureRegistries ?? []) args.push('--insecure-registry', r);

    const t0 = Date.now();
    if (ownContainerd) {
      const c = await startOwnContainerd(dir, (cmd, a) => inNamespaces(opts, cmd, a));
      containerd = c.proc;
      containerdPid = c.proc.pid;
      args.push('--containerd', c.socket);
    }
    args.push(...(opts.extraArgs ?? []));

    proc = spawnPeer('dockerd', ...inNamespaces(opts, 'dockerd', args), {
      cwd: dir,
      env: { ...process.env, DOCKER_CONFIG: join(dir, 'cli') },
    });
    const docker = new Dockerode({ socketPath });
    const running = proc;
    try {
      await waitFor(
        async () => {
          if (!existsSync(socketPath)) return false;
          await docker.ping();
          return true;
        },
        { timeoutMs: opts.readyTimeoutMs ?? 60_000, intervalMs: 100, proc: running, what: `dockerd in ${dir}` },
      );
    } catch (err) {
      // waitFor's message ends with the raw log tail, mostly gRPC chatter: keep what matters.
      const headline = (err as Error).message.split('\n')[0];
      throw new Error(`${headline}\n--- dockerd log (tail) ---\n${logTail(running.output())}`);
    }
    const startMs = Date.now() - t0;

    if (!ownContainerd) {
      containerdPid = readPid(join(dir, 'exec', 'containerd', 'containerd.pid'));
      if (containerdPid === undefined) {
        throw new Error(`dockerd in ${dir}: no managed containerd pid file\n${logTail(running.output())}`);
      }
      // Record it next to spawnPeer's records so leftovers() also watches it.
      const pidDir = join(RUN_DIR, 'pids');
      mkdirSync(pidDir, { recursive: true });
      pidRecord = join(pidDir, String(containerdPid));
      writeFileSync(pidRecord, `containerd (managed by dockerd ${running.pid})\n${dir}\n`);
    }

    let stopped: Promise<void> | undefined;
    return {
      socketPath,
      docker,
      dir,
      process: running,
      containerdPid,
      startMs,
      log: () => running.output(),
      stop() {
        stopped ??= cleanup();
        return stopped;
      },
    };
  } catch (err) {
    try {
      await cleanup();
    } catch (cleanupErr) {
      (err as Error).message += `\n(cleanup also failed: ${(cleanupErr as Error).message})`;
    }
    throw err;
  }
}

/**
 * The command line that runs `cmd` in the namespaces `opts` asks for. Each wrapper execs the next
 * (nsenter without --pid does not fork, nor does unshare without --fork), so the pid is cmd's.
 */
function inNamespaces(opts: DockerdOptions, cmd: string, args: string[]): [string, string[]] {
  let command: [string, string[]] = [cmd, args];
  if (opts.hostname !== undefined) {
    const script = 'hostname "$0" && exec "$@"';
    command = ['unshare', ['--uts', '--', 'sh', '-c', script, opts.hostname, command[0], ...command[1]]];
  }
  if (opts.netns !== undefined) command = ['nsenter', [`--net=${opts.netns}`, '--', command[0], ...command[1]]];
  return command;
}

async function startOwnContainerd(
  dir: string,
  wrap: (cmd: string, args: string[]) => [string, string[]],
): Promise<{ proc: PeerProcess; socket: string }> {
  const base = join(dir, 'ctd');
  mkdirSync(base);
  const socket = join(base, 'containerd.sock');
  const q = (s: string) => JSON.stringify(s); // a JSON string is a valid TOML basic string
  const config = join(base, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = ${q(join(base, 'root'))}`,
      `state = ${q(join(base, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${q(socket)}`,
      '[debug]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const proc = spawnPeer('containerd', ...wrap('containerd', ['--config', config]), { cwd: dir });
  try {
    await waitFor(async () => existsSync(socket), {
      timeoutMs: 30_000,
      intervalMs: 50,
      proc,
      what: `containerd in ${base}`,
    });
  } catch (err) {
    await proc.stop(2_000);
    throw err;
  }
  return { proc, socket };
}

/** The last lines of dockerd's log without the gRPC connection chatter. */
export function logTail(log: string, lines = 25): string {
  const useful = log.split('\n').filter((l) => l.trim() && !l.includes('module=grpc'));
  return (useful.length ? useful : log.split('\n')).slice(-lines).join('\n');
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Live (non-zombie) processes whose command line contains `text`. */
function processesMentioning(text: string): number[] {
  return livePids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(text);
    } catch {
      return false; // exited meanwhile
    }
  });
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function livePids(): number[] {
  return listDir('/proc')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid && !processGone(pid));
}

/** Live processes whose cgroup path names one of these container ids. */
function processesInCgroups(ids: string[]): number[] {
  if (!ids.length) return [];
  return livePids().filter((pid) => {
    try {
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      return ids.some((id) => cg.includes(id));
    } catch {
      return false;
    }
  });
}

/** Best effort: the (now empty) cgroups dockerd's cgroupfs driver made for these containers. */
function removeContainerCgroups(ids: string[]): void {
  if (!ids.length) return;
  const roots = ['/sys/fs/cgroup', ...listDir('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))];
  for (const root of roots) {
    for (const id of ids) {
      const cg = join(root, 'docker', id);
      if (!existsSync(cg)) continue;
      try {
        rmdirSync(cg);
      } catch {
        /* busy or already gone */
      }
    }
  }
}

/** True if the pid does not exist or is a zombie (dead, waiting to be reaped). */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter((p) => !processGone(p));
    if (!alive.length || Date.now() > deadline) return alive;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Mount points at or below `dir` (from /proc/self/mountinfo), deepest first. */
export function mountsUnder(dir: string): string[] {
  const unescapeOctal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => unescapeOctal(line.split(' ')[4] ?? ''))
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below dir: a plain umount first, a lazy one if it is busy. */
async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const points = mountsUnder(dir);
    if (!points.length) return;
    for (const mp of points) {
      try {
        await runCommand('umount', [mp], { timeoutMs: 10_000 });
      } catch {
        try {
          await runCommand('umount', ['-l', mp], { timeoutMs: 10_000 });
        } catch {
          /* maybe already gone with its parent; the next round sees */
        }
      }
    }
  }
  const left = mountsUnder(dir);
  if (left.length) throw new Error(`could not unmount: ${left.join(', ')}`);
}
