// A private network for peers that must talk to each other as separate machines (a Swarm manager
// and its workers): a bridge in a network namespace of its own (the hub) and, per machine, a
// network namespace joined to it by a veth pair. Nothing is added to the host's own network: the
// veth ends live in the hub and in the machine's namespace, so deleting the namespaces deletes
// them, and every LAN can use the same addresses without meeting another.
//
// Run a program in a machine with `nsenter --net=PATH` (not `ip netns exec`, which remounts /sys
// and breaks dockerd); startDockerd({ netns }) does.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_DIR, runCommand } from './process.ts';

/** The LAN's addresses: the hub has none, machine n gets .(n+1). */
const SUBNET = '10.213.0';
const NETNS_DIR = '/var/run/netns';

export interface Netns {
  /** Its name for `ip netns` (`ip -n NAME …`). */
  readonly name: string;
  /** Its file, for `nsenter --net=PATH` and startDockerd({ netns }). */
  readonly path: string;
  /** Its IPv4 address on the LAN (interface eth0). */
  readonly address: string;
}

export interface Lan {
  /** Name of the hub namespace (holding the bridge `br0`). */
  readonly hub: string;
  /** Adds a machine: a network namespace with loopback and eth0 on the LAN at the next address. */
  attach(): Promise<Netns>;
  /** Deletes every namespace of the LAN (the hub last); their veth pairs go with them. */
  stop(): Promise<void>;
}

/** Each namespace is recorded here (one file per name) until it is deleted; see leftoverNamespaces. */
function recordDir(runDir: string): string {
  return join(runDir, 'netns');
}

/** Namespaces of this process not deleted yet: the exit hook's last resort. */
const live = new Set<string>();

async function ip(...args: string[]): Promise<void> {
  await runCommand('ip', args, { timeoutMs: 30_000 });
}

async function addNamespace(name: string): Promise<void> {
  const dir = recordDir(RUN_DIR);
  mkdirSync(dir, { recursive: true });
  // Recorded before it exists: a crash in between still leaves a trace to clean up.
  writeFileSync(join(dir, name), `network namespace of process ${process.pid}\n`);
  live.add(name);
  await ip('netns', 'add', name);
}

async function deleteNamespace(name: string): Promise<void> {
  if (existsSync(join(NETNS_DIR, name))) await ip('netns', 'delete', name);
  live.delete(name);
  rmSync(join(recordDir(RUN_DIR), name), { force: true });
}

export async function startLan(): Promise<Lan> {
  const prefix = `stele-${process.pid}-${randomBytes(3).toString('hex')}`;
  const hub = `${prefix}-hub`;
  const machines: string[] = [];
  let stopped: Promise<void> | undefined;

  const stop = async () => {
    const errors: string[] = [];
    for (const name of [...machines].reverse().concat(hub)) {
      try {
        await deleteNamespace(name);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) throw new Error(`LAN ${hub}: stop left namespaces behind:\n${errors.join('\n')}`);
  };

  try {
    await addNamespace(hub);
    await runCommand('ip', ['-n', hub, '-batch', '-'], {
      input: 'link set lo up\nlink add br0 type bridge\nlink set br0 up\n',
      timeoutMs: 30_000,
    });
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    hub,
    async attach() {
      if (stopped) throw new Error(`LAN ${hub} is stopped`);
      const n = machines.length + 1;
      if (n > 250) throw new Error(`LAN ${hub} is full`);
      const name = `${prefix}-${n}`;
      const address = `${SUBNET}.${n + 1}`;
      machines.push(name);
      await addNamespace(name);
      await runCommand('ip', ['-n', hub, '-batch', '-'], {
        input: `link add p${n} type veth peer name eth0 netns ${name}\nlink set p${n} master br0\nlink set p${n} up\n`,
        timeoutMs: 30_000,
      });
      await runCommand('ip', ['-n', name, '-batch', '-'], {
        input: `link set lo up\naddr add ${address}/24 dev eth0\nlink set eth0 up\n`,
        timeoutMs: 30_000,
      });
      return { name, path: join(NETNS_DIR, name), address };
    },
    stop() {
      stopped ??= stop();
      return stopped;
    },
  };
}

/** Namespaces recorded under `runDir` that still exist (a LAN that was never stopped). */
export function leftoverNamespaces(runDir: string = RUN_DIR): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(recordDir(runDir));
  } catch {
    return [];
  }
  return names.filter((n) => existsSync(join(NETNS_DIR, n)));
}

/** Deletes a leftover namespace and its record (for tools/check-leftovers.ts). */
export function deleteLeftoverNamespace(name: string, runDir: string = RUN_DIR): void {
  execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
  rmSync(join(recordDir(runDir), name), { force: true });
}

// Last resort, like spawnPeer's: a worker that exits without stopping its LANs still deletes them
// (before spawnPeer's hook decides whether the run dir is empty).
process.prependOnceListener('exit', () => {
  for (const name of live) {
    try {
      deleteLeftoverNamespace(name);
    } catch {
      /* check-leftovers reports it */
    }
  }
});
