// Fleet hosts as local qemu VMs, for development and tests. Each host lives in `<dir>/<name>/`
// (its own copy of kernel and initrd, the serial console, qemu's pid file) and keeps running
// after the command that started it exits (`-daemonize`). Host slot i forwards 127.0.0.1:
// `sshPortBase + i` to the guest's port 22 (and each extra forward's host port + i); user data
// goes on the kernel command line as `stele.userdata=<base64 JSON>`, which pkg/metadata reads.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { HostRecord, ProvidedHost, Provider } from '@stele/fleet';

const run = promisify(execFile);

export interface QemuProviderOptions {
  /** Where VM directories live (created when missing). */
  dir: string;
  /** The OS image to boot new hosts from (not needed to find or destroy hosts). */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  cpus?: number;
  memoryMiB?: number;
  /** `auto` uses KVM when /dev/kvm can be opened. */
  accel?: 'auto' | 'kvm' | 'tcg';
  sshPortBase?: number;
  /** Extra `HOSTPORT:GUESTPORT` forwards; host slot i adds i to the host port. */
  forwards?: string[];
  /** qemu binary (default qemu-system-x86_64). */
  qemu?: string;
}

export class QemuProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QemuProviderError';
  }
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The process exists and is not a zombie (a daemonized qemu is not our child to reap). */
function alive(pid: number): boolean {
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

/** The pid in `<vm>/qemu.pid` if that process is still this VM's qemu (not a reused pid). */
async function vmPid(vmDir: string, name: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(join(vmDir, 'qemu.pid'), 'utf8').catch(() => ''), 10);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(`stele-${name}`) ? pid : undefined;
}

export class QemuProvider implements Provider {
  private readonly sshPortBase: number;

  constructor(private readonly opts: QemuProviderOptions) {
    this.sshPortBase = opts.sshPortBase ?? 2222;
  }

  private vmDir(name: string): string {
    if (!NAME.test(name)) throw new QemuProviderError(`bad host name ${JSON.stringify(name)}`);
    return join(this.opts.dir, name);
  }

  /** The lowest slot no running VM of this provider uses. */
  private async freeSlot(): Promise<number> {
    const used = new Set<number>();
    for (const name of await readdir(this.opts.dir).catch(() => [] as string[])) {
      if (!NAME.test(name)) continue;
      const slot = Number.parseInt(await readFile(join(this.opts.dir, name, 'slot'), 'utf8').catch(() => ''), 10);
      if (Number.isInteger(slot) && (await vmPid(join(this.opts.dir, name), name))) used.add(slot);
    }
    let slot = 0;
    while (used.has(slot)) slot++;
    return slot;
  }

  private accel(): string {
    const want = this.opts.accel ?? 'auto';
    if (want === 'tcg') return 'tcg';
    if (want === 'kvm') return 'kvm';
    return existsSync('/dev/kvm') ? 'kvm:tcg' : 'tcg';
  }

  async create(name: string, userdata: Record<string, unknown>): Promise<ProvidedHost> {
    const dir = this.vmDir(name);
    const { kernel, initrd } = this.opts;
    if (!kernel || !initrd) throw new QemuProviderError('no kernel and initrd to boot new hosts from');
    if (await vmPid(dir, name)) throw new QemuProviderError(`a VM named ${name} is already running`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const slot = await this.freeSlot();
    const port = this.sshPortBase + slot;
    if (port > 65535) throw new QemuProviderError(`no free port for ${name} (sshPortBase ${this.sshPortBase})`);
    // Its own copies: the next rollout may build a new image where these are.
    await copyFile(kernel, join(dir, 'kernel'));
    await copyFile(initrd, join(dir, 'initrd.img'));
    await writeFile(join(dir, 'slot'), `${slot}\n`);
    const forwards = [
      `hostfwd=tcp:127.0.0.1:${port}-:22`,
      ...(this.opts.forwards ?? []).map((f) => {
        const [h, g] = f.split(':').map(Number);
        return `hostfwd=tcp:127.0.0.1:${(h ?? 0) + slot}-:${g}`;
      }),
    ];
    const data = Buffer.from(JSON.stringify(userdata)).toString('base64');
    const args = [
      '-name',
      `stele-${name}`,
      '-machine',
      `q35,accel=${this.accel()}`,
      '-m',
      String(this.opts.memoryMiB ?? 1024),
      '-smp',
      String(this.opts.cpus ?? 1),
      '-kernel',
      join(dir, 'kernel'),
      '-initrd',
      join(dir, 'initrd.img'),
      '-append',
      `${this.opts.cmdline ?? 'console=ttyS0'} stele.userdata=${data}`,
      '-netdev',
      `user,id=net0,${forwards.join(',')}`,
      '-device',
      'virtio-net-pci,netdev=net0,romfile=',
      '-display',
      'none',
      '-serial',
      `file:${join(dir, 'console.log')}`,
      '-pidfile',
      join(dir, 'qemu.pid'),
      '-daemonize',
    ];
    try {
      await run(this.opts.qemu ?? 'qemu-system-x86_64', args, { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      await rm(dir, { recursive: true, force: true });
      throw new QemuProviderError(`qemu did not start ${name}: ${(e.stderr || e.message).trim()}`);
    }
    const pid = await vmPid(dir, name);
    if (!pid) throw new QemuProviderError(`qemu started ${name} but is not running (see ${join(dir, 'console.log')})`);
    return { ref: { pid, port, slot }, address: `127.0.0.1:${port}` };
  }

  async find(name: string): Promise<ProvidedHost | undefined> {
    const dir = this.vmDir(name);
    const pid = await vmPid(dir, name);
    if (!pid) return undefined;
    const slot = Number.parseInt(await readFile(join(dir, 'slot'), 'utf8'), 10);
    const port = this.sshPortBase + slot;
    return { ref: { pid, port, slot }, address: `127.0.0.1:${port}` };
  }

  async address(host: HostRecord): Promise<string | undefined> {
    return (await this.find(host.name))?.address;
  }

  async endpoint(host: HostRecord, guestPort: number): Promise<{ host: string; port: number } | undefined> {
    const found = await this.find(host.name);
    if (!found) return undefined;
    const slot = Number(found.ref.slot);
    if (guestPort === 22) return { host: '127.0.0.1', port: this.sshPortBase + slot };
    const fwd = (this.opts.forwards ?? []).map((f) => f.split(':').map(Number)).find(([, g]) => g === guestPort);
    return fwd ? { host: '127.0.0.1', port: (fwd[0] ?? 0) + slot } : undefined;
  }

  async destroy(host: HostRecord): Promise<void> {
    const dir = this.vmDir(host.name);
    const pid = await vmPid(dir, host.name);
    if (pid) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
    }
    await rm(dir, { recursive: true, force: true });
  }

  /** The VM's serial console so far (for logs and errors). */
  async console(name: string): Promise<string> {
    return readFile(join(this.vmDir(name), 'console.log'), 'utf8').catch(() => '');
  }
}
