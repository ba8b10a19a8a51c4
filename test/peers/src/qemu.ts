// The qemu peer: boots a kernel+initrd, an ISO or a disk image under TCG with the serial console
// on qemu's stdout, waits for a marker on the console and (by default) for the guest to power
// off. qemu is always stopped — on success, on timeout, on any error. Recipe: PEERS.md "qemu".
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { type PeerProcess, removeDir, spawnPeer, tail, tempDir } from './process.ts';

export const QEMU = 'qemu-system-x86_64';
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export type Firmware = 'bios' | 'efi';
export type Marker = string | RegExp;

/** What to boot: a kernel (direct boot through fw_cfg), an ISO as a CD-ROM, or a disk image. */
export type BootSource =
  | { kernel: string; initrd?: string; append?: string }
  | { iso: string }
  | {
      disk: string;
      format?: 'raw' | 'qcow2';
      /** Bus of the disk; default virtio (virtio-blk). "sata" uses q35's built-in AHCI. */
      diskBus?: 'virtio' | 'sata';
      /** Let the guest write to the image; by default writes go to a throw-away overlay. */
      writable?: boolean;
    };

export interface HostForward {
  /** Port on 127.0.0.1 of the host. */
  hostPort: number;
  guestPort: number;
}

export interface QemuCommonOptions {
  /** Default "bios" (SeaBIOS). "efi": OVMF code read-only + a private copy of its vars. */
  firmware?: Firmware;
  /** Default 512. */
  memoryMb?: number;
  /** Default 1. */
  cpus?: number;
  /** User-mode networking with these TCP forwards (127.0.0.1 only); without it: `-nic none`. */
  hostForwards?: HostForward[];
  /** Appended to the qemu command line as is. */
  extraArgs?: string[];
  /** A name for error messages and the pid record; default "qemu". */
  name?: string;
}

export type QemuBootOptions = BootSource &
  QemuCommonOptions & {
    /**
     * Waited for on the serial console (a string is matched literally). A RegExp is tested
     * against windows of the console (new output plus the previous 64 KiB), not the whole log.
     */
    marker: Marker;
    /** Marker and power-off must both happen within this time. Default 120 000. */
    timeoutMs?: number;
    keepRunning?: false;
  };

export type QemuStartOptions = BootSource &
  QemuCommonOptions & {
    /** If given, bootQemu resolves only after it is seen (else as soon as qemu is started). */
    marker?: Marker;
    timeoutMs?: number;
    keepRunning: true;
  };

export interface QemuBootResult {
  /** The serial console (and qemu's own messages), CRLF normalised to LF. */
  log: string;
  /** Milliseconds from spawning qemu until the marker was on the console. */
  markerSeenAfterMs: number;
  /** Milliseconds from spawning qemu until it exited. */
  exitedAfterMs: number;
  exitCode: number | null;
}

export interface QemuHandle {
  readonly pid: number;
  /** Milliseconds from spawning qemu until the start marker (undefined without a marker). */
  readonly markerSeenAfterMs: number | undefined;
  log(): string;
  /** Resolves with ms since spawn when `marker` is on the console; throws with the log tail. */
  waitForMarker(marker: Marker, timeoutMs: number): Promise<number>;
  /** Resolves with qemu's exit code once the guest powers off; throws on timeout. */
  waitForExit(timeoutMs: number): Promise<number | null>;
  /** Kills qemu (SIGTERM, then SIGKILL) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A failed boot: the message ends with the console's tail; `pid` is the (stopped) qemu. */
export class QemuBootError extends Error {
  override readonly name = 'QemuBootError';
  constructor(
    message: string,
    readonly pid: number,
    readonly log: string,
  ) {
    super(message);
  }
}

/**
 * Boots a VM. Without `keepRunning`: resolves once the marker was seen AND qemu exited (the
 * guest powered off); with `keepRunning: true`: resolves with a handle while the VM runs.
 * On timeout (or early exit) qemu is killed and the Error carries the console's tail.
 */
export function bootQemu(opts: QemuBootOptions): Promise<QemuBootResult>;
export function bootQemu(opts: QemuStartOptions): Promise<QemuHandle>;
export async function bootQemu(opts: QemuBootOptions | QemuStartOptions): Promise<QemuBootResult | QemuHandle> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const vm = startVm(opts);
  try {
    if (opts.keepRunning) {
      const seen = opts.marker === undefined ? undefined : await vm.waitForMarker(opts.marker, timeoutMs);
      return { ...vm.handle, markerSeenAfterMs: seen };
    }
    const deadline = Date.now() + timeoutMs;
    const markerSeenAfterMs = await vm.waitForMarker(opts.marker, timeoutMs);
    const exitCode = await vm.waitForExit(
      Math.max(0, deadline - Date.now()),
      ` after the marker (seen at ${markerSeenAfterMs} ms)`,
    );
    const exitedAfterMs = Date.now() - vm.startedAt;
    await vm.handle.stop();
    return { log: vm.handle.log(), markerSeenAfterMs, exitedAfterMs, exitCode };
  } catch (err) {
    await vm.handle.stop();
    throw err;
  }
}

/** The qemu command line for `opts` (exported for tests and for debugging by hand). */
export function qemuArgs(opts: BootSource & QemuCommonOptions, vmDir: string): string[] {
  const args = [
    '-machine',
    'q35,accel=tcg',
    '-m',
    String(opts.memoryMb ?? 512),
    '-smp',
    String(opts.cpus ?? 1),
    '-nographic',
    '-no-reboot',
  ];
  if ((opts.firmware ?? 'bios') === 'efi') {
    for (const f of [OVMF_CODE, OVMF_VARS]) if (!existsSync(f)) throw new Error(`${f} not found: apt-get install ovmf`);
    const vars = join(vmDir, 'OVMF_VARS.fd');
    copyFileSync(OVMF_VARS, vars);
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${driveFile(OVMF_CODE)}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${driveFile(vars)}`,
    );
  }
  if ('kernel' in opts) {
    args.push('-kernel', mustExist(opts.kernel, 'kernel'));
    if (opts.initrd) args.push('-initrd', mustExist(opts.initrd, 'initrd'));
    args.push('-append', opts.append ?? 'console=ttyS0 panic=-1');
  } else if ('iso' in opts) {
    args.push('-drive', `media=cdrom,if=ide,readonly=on,format=raw,file=${driveFile(mustExist(opts.iso, 'iso'))}`);
  } else {
    const file = driveFile(mustExist(opts.disk, 'disk'));
    const format = opts.format ?? (opts.disk.endsWith('.qcow2') ? 'qcow2' : 'raw');
    const snapshot = opts.writable ? '' : ',snapshot=on';
    if ((opts.diskBus ?? 'virtio') === 'virtio') {
      args.push('-drive', `if=virtio,format=${format},file=${file}${snapshot}`);
    } else {
      args.push(
        '-drive',
        `if=none,id=disk0,format=${format},file=${file}${snapshot}`,
        '-device',
        'ide-hd,drive=disk0,bus=ide.0',
      );
    }
  }
  if (opts.hostForwards && opts.hostForwards.length > 0) {
    const fwd = opts.hostForwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`).join('');
    // romfile= skips iPXE's option ROM, which costs 2–6 s of boot under TCG.
    args.push('-netdev', `user,id=net0${fwd}`, '-device', 'virtio-net-pci,netdev=net0,romfile=');
  } else {
    args.push('-nic', 'none');
  }
  args.push(...(opts.extraArgs ?? []));
  return args;
}

function mustExist(path: string, what: string): string {
  if (!existsSync(path)) throw new Error(`qemu: ${what} ${path} does not exist`);
  return path;
}

/** qemu's -drive option list uses "," as separator; a literal comma is written ",,". */
function driveFile(path: string): string {
  return path.replace(/,/g, ',,');
}

/** How far back each marker check reaches into output it has already seen. */
const MARKER_OVERLAP = 64 * 1024;

function describe(m: Marker): string {
  return typeof m === 'string' ? JSON.stringify(m) : String(m);
}

function matcher(m: Marker): (text: string) => boolean {
  if (typeof m === 'string') return (text) => text.includes(m);
  const re = new RegExp(m.source, m.flags.replace(/[gy]/g, '')); // no lastIndex state
  return (text) => re.test(text);
}

function normalise(raw: string): string {
  return raw.replace(/\r\n/g, '\n').replace(/\r/g, '');
}

interface Vm {
  startedAt: number;
  proc: PeerProcess;
  handle: Omit<QemuHandle, 'markerSeenAfterMs'>;
  waitForMarker(marker: Marker, timeoutMs: number): Promise<number>;
  waitForExit(timeoutMs: number, context?: string): Promise<number | null>;
}

function startVm(opts: BootSource & QemuCommonOptions): Vm {
  const name = opts.name ?? 'qemu';
  const dir = tempDir('qemu');
  let args: string[];
  try {
    args = qemuArgs(opts, dir);
  } catch (err) {
    removeDir(dir);
    throw err;
  }
  const startedAt = Date.now();
  let proc: PeerProcess;
  try {
    proc = spawnPeer(name, QEMU, args, { cwd: dir });
  } catch (err) {
    removeDir(dir);
    throw new Error(`${name}: could not start ${QEMU} (apt-get install qemu-system-x86): ${(err as Error).message}`);
  }
  const log = () => normalise(proc.output());
  // 'close' (not 'exit'): the process is gone AND its stdout/stderr are drained.
  let closed = false;
  const closedP = new Promise<void>((resolve) => {
    proc.child.once('close', () => {
      closed = true;
      resolve();
    });
  });
  const exitText = () => `exit ${proc.child.exitCode ?? proc.child.signalCode}`;
  const fail = (what: string) =>
    new QemuBootError(`${name}: ${what}\n--- console (last 40 lines) ---\n${tail(log(), 40)}`, proc.pid, log());

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= proc.stop(3_000).finally(() => removeDir(dir));
    return stopped;
  };

  const waitForMarker = (marker: Marker, timeoutMs: number): Promise<number> => {
    const test = matcher(marker);
    // Each check looks at the new output plus an overlap, not the whole log again: a chatty
    // console must not make waiting quadratic. The first check sees the log from its start.
    let scanned = 0;
    return new Promise<number>((resolve, reject) => {
      const check = () => {
        const raw = proc.output();
        if (raw.length < scanned) scanned = 0; // the bounded buffer was trimmed
        const window = raw.slice(Math.max(0, scanned - MARKER_OVERLAP));
        scanned = raw.length;
        if (test(normalise(window))) return done(() => resolve(Date.now() - startedAt));
        if (closed) {
          return done(() =>
            reject(fail(`qemu ended (${exitText()}) before ${describe(marker)} appeared on the console`)),
          );
        }
      };
      const timer = setTimeout(() => {
        done(() => reject(fail(`${describe(marker)} not seen on the console after ${timeoutMs} ms`)));
      }, timeoutMs);
      const onData = () => check();
      const onExit = () => check();
      const done = (settle: () => void) => {
        clearTimeout(timer);
        proc.child.stdout?.off('data', onData);
        proc.child.stderr?.off('data', onData);
        proc.child.off('close', onExit);
        settle();
      };
      proc.child.stdout?.on('data', onData);
      proc.child.stderr?.on('data', onData);
      proc.child.once('close', onExit);
      check();
    });
  };

  const waitForExit = async (timeoutMs: number, context = ''): Promise<number | null> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([closedP.then(() => 'closed' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      throw fail(`the VM did not power off${context} within ${timeoutMs} ms`);
    }
    return proc.child.exitCode;
  };

  return {
    startedAt,
    proc,
    waitForMarker,
    waitForExit,
    handle: {
      pid: proc.pid,
      log,
      waitForMarker,
      waitForExit: (t) => waitForExit(t),
      stop,
    },
  };
}
