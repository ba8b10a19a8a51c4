// Fleet hosts as local qemu VMs, for development and tests. Images are published to
// `<dir>/images/` (see images.ts) and booted from there; each host lives in `<dir>/hosts/<name>/`
// (mode 0700): `host.json` (fleet, name, image, create token, slot — written before qemu starts,
// so a host is found again after a crash), its config drive, the serial console and qemu's pid
// file. VMs keep running after the command that started them exits (`-daemonize`). Host slot i
// forwards 127.0.0.1:`sshPortBase + i` to the guest's port 22 (and each extra forward's host
// port + i). User data reaches the guest on a config drive (ISO 9660, label `cidata`, file
// `user-data`, mode 0600) attached read-only as a CD-ROM on q35's AHCI controller, never on the
// kernel command line, where any local user could read it in /proc/<pid>/cmdline.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type {
  BuiltImage,
  CreateRequest,
  HostRecord,
  ProvidedHost,
  Provider,
  PublishedImage,
  PublishProgress,
} from '@stele/fleet';
import { type HostTools, spawnHostTools, writeConfigDrive } from '@stele/image';
import { writeJsonAtomic } from '@stele/oci';
import { QemuProviderError } from './errors.ts';
import { BOOT_FORMAT, ImageStore, identityHex } from './images.ts';
import { qemuPid, stopQemu } from './process.ts';

const run = promisify(execFile);

export interface QemuProviderOptions {
  /** The fleet whose hosts these are (recorded on each; list() shows only this fleet's). */
  fleet: string;
  /** Where published images and VM directories live (created when missing). */
  dir: string;
  cpus?: number;
  memoryMiB?: number;
  /** `auto` uses KVM when /dev/kvm exists. */
  accel?: 'auto' | 'kvm' | 'tcg';
  sshPortBase?: number;
  /** Extra `HOSTPORT:GUESTPORT` forwards; host slot i adds i to the host port. */
  forwards?: string[];
  /** qemu binary (default qemu-system-x86_64). */
  qemu?: string;
  /** Runs xorriso for the config drives (default: spawns it). */
  tools?: HostTools;
}

/** What is recorded in a VM's directory about its host. */
interface HostFile {
  fleet: string;
  name: string;
  /** Identity of the image it boots. */
  image: string;
  /** Token of the create request that made it. */
  token: string;
  slot: number;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A path as a value of a qemu option, where a comma ends the value unless doubled. */
const optValue = (s: string) => s.replace(/,/g, ',,');

export class QemuProvider implements Provider {
  readonly bootFormat = BOOT_FORMAT;
  private readonly dir: string;
  private readonly images: ImageStore;
  private readonly sshPortBase: number;
  /** Creating and unpublishing one at a time: slots are picked, images checked, before qemu runs. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: QemuProviderOptions) {
    this.dir = resolve(opts.dir);
    this.images = new ImageStore(join(this.dir, 'images'));
    this.sshPortBase = opts.sshPortBase ?? 2222;
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private vmDir(name: string): string {
    if (!NAME.test(name)) throw new QemuProviderError(`bad host name ${JSON.stringify(name)}`, 'user');
    return join(this.dir, 'hosts', name);
  }

  private async readHost(name: string): Promise<HostFile | undefined> {
    const text = await readFile(join(this.vmDir(name), 'host.json'), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const h = JSON.parse(text) as HostFile;
      return h.name === name && Number.isInteger(h.slot) ? h : undefined;
    } catch {
      return undefined;
    }
  }

  /** The running qemu of VM `name` (of any fleet in this directory). */
  private pid(name: string): Promise<number | undefined> {
    return qemuPid(join(this.vmDir(name), 'qemu.pid'), `stele-${name}`);
  }

  /** Every VM in this directory whose qemu runs, of any fleet (they share slots and images). */
  private async running(): Promise<{ host: HostFile; pid: number }[]> {
    const out: { host: HostFile; pid: number }[] = [];
    for (const name of await readdir(join(this.dir, 'hosts')).catch(() => [] as string[])) {
      if (!NAME.test(name)) continue;
      const host = await this.readHost(name);
      const pid = host && (await this.pid(name));
      if (host && pid) out.push({ host, pid });
    }
    return out;
  }

  private provided(h: HostFile, pid: number): ProvidedHost {
    const port = this.sshPortBase + h.slot;
    return { name: h.name, image: h.image, ref: { pid, port, slot: h.slot }, address: `127.0.0.1:${port}` };
  }

  private accel(): string {
    const want = this.opts.accel ?? 'auto';
    if (want === 'tcg') return 'tcg';
    if (want === 'kvm') return 'kvm';
    return existsSync('/dev/kvm') ? 'kvm:tcg' : 'tcg';
  }

  findPublished(identity: string): Promise<PublishedImage | undefined> {
    return this.images.find(identity);
  }

  publish(image: BuiltImage, onProgress?: (p: PublishProgress) => void): Promise<PublishedImage & { reused: boolean }> {
    return this.images.publish(image, onProgress);
  }

  listPublished(): Promise<PublishedImage[]> {
    return this.images.list();
  }

  async unpublish(image: PublishedImage): Promise<'removed' | 'in-use' | 'gone'> {
    identityHex(image.identity);
    return this.serially(async () => {
      const users = (await this.running()).filter((r) => r.host.image === image.identity);
      if (users.length > 0) return 'in-use';
      return this.images.remove(image.identity);
    });
  }

  async create(req: CreateRequest): Promise<ProvidedHost> {
    const dir = this.vmDir(req.name);
    return this.serially(async () => {
      const pid = await this.pid(req.name);
      if (pid) {
        const had = await this.readHost(req.name);
        if (had?.fleet === this.opts.fleet && had.token === req.token) return this.provided(had, pid);
        throw new QemuProviderError(`a VM named ${req.name} is already running, made by another request`);
      }
      const image = await this.images.find(req.image.identity);
      if (!image) {
        throw new QemuProviderError(`image ${req.image.identity} is not published in ${this.images.root}`);
      }
      const slot = await this.freeSlot();
      const port = this.sshPortBase + slot;
      if (port > 65535) throw new QemuProviderError(`no free port for ${req.name} (sshPortBase ${this.sshPortBase})`);
      // Whatever was here belongs to a VM that no longer runs.
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
      try {
        return await this.start(req, dir, String(image.ref.dir), slot);
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    });
  }

  private async start(req: CreateRequest, dir: string, imageDir: string, slot: number): Promise<ProvidedHost> {
    const drive = join(dir, 'config.iso');
    await writeConfigDrive({
      out: drive,
      files: { 'user-data': JSON.stringify(req.userdata) },
      tools: this.opts.tools ?? spawnHostTools(),
    });
    const cmdline = (await readFile(join(imageDir, 'cmdline'), 'utf8')).trim();
    const host: HostFile = {
      fleet: this.opts.fleet,
      name: req.name,
      image: req.image.identity,
      token: req.token,
      slot,
    };
    // Before qemu starts: a VM that runs is always one this provider can find.
    await writeJsonAtomic(join(dir, 'host.json'), host);
    const forwards = [
      `hostfwd=tcp:127.0.0.1:${this.sshPortBase + slot}-:22`,
      ...(this.opts.forwards ?? []).map((f) => {
        const [h, g] = f.split(':').map(Number);
        return `hostfwd=tcp:127.0.0.1:${(h ?? 0) + slot}-:${g}`;
      }),
    ];
    const pidFile = join(dir, 'qemu.pid');
    const args = [
      '-name',
      `stele-${req.name}`,
      '-machine',
      `q35,accel=${this.accel()}`,
      '-m',
      String(this.opts.memoryMiB ?? 1024),
      '-smp',
      String(this.opts.cpus ?? 1),
      '-kernel',
      join(imageDir, 'kernel'),
      '-initrd',
      join(imageDir, 'initrd.img'),
      ...(cmdline ? ['-append', cmdline] : []),
      '-drive',
      `if=none,id=cidata,file=${optValue(drive)},format=raw,media=cdrom,readonly=on`,
      '-device',
      'ide-cd,drive=cidata',
      '-netdev',
      `user,id=net0,${forwards.join(',')}`,
      '-device',
      'virtio-net-pci,netdev=net0,romfile=',
      '-display',
      'none',
      '-serial',
      `file:${join(dir, 'console.log')}`,
      '-pidfile',
      pidFile,
      '-daemonize',
    ];
    try {
      await run(this.opts.qemu ?? 'qemu-system-x86_64', args, { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new QemuProviderError(`qemu did not start ${req.name}: ${(e.stderr || e.message).trim()}`);
    }
    const pid = await qemuPid(pidFile, `stele-${req.name}`);
    if (!pid) {
      throw new QemuProviderError(`qemu started ${req.name} but is not running (see ${join(dir, 'console.log')})`);
    }
    return this.provided(host, pid);
  }

  /** The lowest slot no running VM of this directory uses. */
  private async freeSlot(): Promise<number> {
    const used = new Set((await this.running()).map((r) => r.host.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    return slot;
  }

  async find(name: string): Promise<ProvidedHost | undefined> {
    const host = await this.readHost(name);
    if (host?.fleet !== this.opts.fleet) return undefined;
    const pid = await this.pid(name);
    return pid ? this.provided(host, pid) : undefined;
  }

  async list(): Promise<ProvidedHost[]> {
    return (await this.running())
      .filter((r) => r.host.fleet === this.opts.fleet)
      .map((r) => this.provided(r.host, r.pid));
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
    const had = await this.readHost(host.name);
    // Another fleet's VM of the same name (a shared directory) is not ours to touch.
    if (had && had.fleet !== this.opts.fleet) return;
    const pid = await this.pid(host.name);
    if (pid) await stopQemu(pid);
    await rm(dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {}

  /** The VM's serial console so far (for logs and errors). */
  async console(name: string): Promise<string> {
    return readFile(join(this.vmDir(name), 'console.log'), 'utf8').catch(() => '');
  }
}
