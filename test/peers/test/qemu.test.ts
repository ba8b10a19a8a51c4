// The qemu boot peer against real qemu (TCG): the machine's Debian kernel and a busybox
// initramfs this test builds, whose /init prints a marker made fresh for each run.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  debianKernel,
  debianKernelModules,
  listInitramfs,
  makeBusyboxInitramfs,
  makeIsolinuxIso,
} from '../src/initramfs.ts';
import { freePort, isAlive, leftovers, removeDir, runCommand, tempDir, waitFor } from '../src/process.ts';
import { bootQemu, OVMF_CODE, QemuBootError, type QemuHandle, qemuArgs } from '../src/qemu.ts';

const APPEND = 'console=ttyS0 panic=-1 quiet';

function initScript(marker: string): string {
  return [
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    // The marker is assembled at run time so that the kernel's echo of the command line or of
    // this script can never satisfy the check — only a running /init prints it.
    `M1='${marker.slice(0, 8)}'`,
    `M2='${marker.slice(8)}'`,
    'if [ -d /sys/firmware/efi ]; then FW=efi; else FW=bios; fi',
    'echo "STELE-BOOT $M1$M2 firmware=$FW uname=$(uname -r)"',
    'poweroff -f',
    '',
  ].join('\n');
}

describe('busybox initramfs (newc writer)', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('initramfs');
  });
  afterAll(() => removeDir(dir));

  it('is a valid newc archive that the system cpio reads, byte-identical on rebuild', async () => {
    const a = await makeBusyboxInitramfs({
      dir,
      name: 'a.img',
      init: 'echo hi\n',
      extraFiles: [{ path: '/etc/stele/hello.txt', content: 'hello\n' }],
    });
    const b = await makeBusyboxInitramfs({
      dir,
      name: 'b.img',
      init: 'echo hi\n',
      extraFiles: [{ path: '/etc/stele/hello.txt', content: 'hello\n' }],
    });
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    const names = listInitramfs(a);
    expect(names).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'bin/sh', 'bin/poweroff', 'dev/console']));
    expect(names).toEqual(expect.arrayContaining(['etc/stele', 'etc/stele/hello.txt']));
    // Parents come before children, as the kernel's unpacker needs.
    expect(names.indexOf('etc/stele')).toBeLessThan(names.indexOf('etc/stele/hello.txt'));
  });
});

describe('qemuArgs', () => {
  it('builds the documented command lines', () => {
    const dir = tempDir('qemu-args');
    try {
      const kernel = debianKernel();
      const bios = qemuArgs({ kernel, initrd: kernel }, dir).join(' ');
      expect(bios).toContain('-machine q35,accel=tcg -m 512 -smp 1 -nographic -no-reboot');
      expect(bios).toContain('-append console=ttyS0 panic=-1');
      expect(bios).toMatch(/-nic none$/);
      expect(bios).not.toContain('pflash');
      const efi = qemuArgs(
        {
          disk: kernel,
          format: 'raw',
          firmware: 'efi',
          memoryMb: 1024,
          hostForwards: [{ hostPort: 2222, guestPort: 22 }],
        },
        dir,
      ).join(' ');
      expect(efi).toContain('-m 1024');
      expect(efi).toContain(`if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
      expect(efi).toContain(`if=pflash,format=raw,unit=1,file=${join(dir, 'OVMF_VARS.fd')}`);
      expect(readFileSync(join(dir, 'OVMF_VARS.fd')).length).toBeGreaterThan(0);
      expect(efi).toContain(`if=virtio,format=raw,file=${kernel},snapshot=on`);
      expect(efi).toContain('user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22');
      expect(efi).not.toContain('-nic none');
      expect(() => qemuArgs({ iso: join(dir, 'missing.iso') }, dir)).toThrow(/does not exist/);
    } finally {
      removeDir(dir);
    }
  });
});

describe('qemu boot peer (Debian kernel + busybox initramfs, TCG)', () => {
  let dir: string;
  let kernel: string;
  let initrd: string;
  const marker = `m${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    dir = tempDir('qemu-test');
    kernel = debianKernel();
    initrd = await makeBusyboxInitramfs({ dir, init: initScript(marker) });
  });
  afterAll(() => removeDir(dir));

  it('boots kernel+initrd (BIOS), sees the marker and qemu exits after poweroff', async () => {
    const res = await bootQemu({
      kernel,
      initrd,
      append: APPEND,
      firmware: 'bios',
      marker: new RegExp(`STELE-BOOT ${marker} firmware=bios uname=\\S+`),
      timeoutMs: 120_000,
    });
    console.log(
      `[qemu] kernel+initrd BIOS: marker after ${res.markerSeenAfterMs} ms, exited after ${res.exitedAfterMs} ms`,
    );
    expect(res.log).toContain(`STELE-BOOT ${marker}`);
    expect(res.exitCode).toBe(0);
    expect(res.exitedAfterMs).toBeGreaterThanOrEqual(res.markerSeenAfterMs);
    expect(leftovers().filter((l) => l.what.startsWith('qemu'))).toEqual([]);
  });

  it('times out on a marker that never comes, with the console in the error and qemu gone', async () => {
    const wrong = `never-${randomBytes(6).toString('hex')}`;
    // An /init that prints, then stays up: the VM is alive when the timeout hits.
    const hangDir = tempDir('qemu-hang');
    try {
      const hanging = await makeBusyboxInitramfs({
        dir: hangDir,
        init: `echo "STELE-ALIVE ${marker}"\nwhile true; do sleep 1; done\n`,
      });
      const before = new Set(leftovers().map((l) => l.pid));
      const started = Date.now();
      const err = await bootQemu({ kernel, initrd: hanging, append: APPEND, marker: wrong, timeoutMs: 20_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const took = Date.now() - started;
      console.log(`[qemu] wrong marker: failed after ${took} ms`);
      if (!(err instanceof QemuBootError)) throw new Error(`expected a QemuBootError, got ${String(err)}`);
      expect(err.message).toContain(`${JSON.stringify(wrong)} not seen on the console after 20000 ms`);
      // The tail of the console is in the message: the kernel booted and our /init ran.
      expect(err.message).toContain('--- console');
      expect(err.message).toMatch(/Linux version|STELE-ALIVE/);
      expect(took).toBeLessThan(30_000);
      expect(isAlive(err.pid)).toBe(false);
      expect(leftovers().filter((l) => l.pid === err.pid || (!before.has(l.pid) && l.what.startsWith('qemu')))).toEqual(
        [],
      );
    } finally {
      removeDir(hangDir);
    }
  });

  it('fails fast, with the console, when the guest powers off before the marker', async () => {
    const wrong = `never-${randomBytes(6).toString('hex')}`;
    const err = await bootQemu({ kernel, initrd, append: APPEND, marker: wrong, timeoutMs: 120_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof QemuBootError)) throw new Error(`expected a QemuBootError, got ${String(err)}`);
    expect(err.message).toContain(`qemu ended (exit 0) before ${JSON.stringify(wrong)} appeared`);
    expect(err.message).toContain(`STELE-BOOT ${marker}`); // the tail shows what the guest did
    expect(isAlive(err.pid)).toBe(false);
  });

  it('keepRunning: hands back a live VM that waits for later markers and stops on demand', async () => {
    const hangDir = tempDir('qemu-keep');
    let vm: QemuHandle | undefined;
    try {
      const later = `later-${randomBytes(6).toString('hex')}`;
      const init = [
        `echo "STELE-UP ${marker}"`,
        'sleep 2',
        `echo "${later.slice(0, 6)}""${later.slice(6)}"`,
        'while true; do sleep 1; done',
        '',
      ].join('\n');
      const img = await makeBusyboxInitramfs({ dir: hangDir, init });
      vm = await bootQemu({
        kernel,
        initrd: img,
        append: APPEND,
        marker: `STELE-UP ${marker}`,
        keepRunning: true,
        timeoutMs: 120_000,
      });
      expect(vm.markerSeenAfterMs).toBeGreaterThan(0);
      expect(isAlive(vm.pid)).toBe(true);
      const at = await vm.waitForMarker(later, 30_000);
      expect(at).toBeGreaterThan(vm.markerSeenAfterMs ?? 0);
      const pid = vm.pid;
      await vm.stop();
      expect(isAlive(pid)).toBe(false);
    } finally {
      await vm?.stop();
      removeDir(hangDir);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Second smoke cases: the same kernel and initrd through firmware — an isolinux ISO under BIOS
// (SeaBIOS → El Torito → isolinux), and a direct kernel boot under EFI (OVMF pflash + a private
// copy of its vars). The image-build work reuses these paths.
describe('qemu boot peer: firmware paths (ISO under BIOS, kernel under EFI)', () => {
  let dir: string;
  let kernel: string;
  let initrd: string;
  const marker = `m${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    dir = tempDir('qemu-fw');
    kernel = debianKernel();
    initrd = await makeBusyboxInitramfs({ dir, init: initScript(marker) });
  });
  afterAll(() => removeDir(dir));

  it('boots an isolinux ISO under BIOS', async () => {
    const iso = await makeIsolinuxIso({ dir, kernel, initrd, append: APPEND });
    const res = await bootQemu({ iso, firmware: 'bios', marker: `STELE-BOOT ${marker}`, timeoutMs: 120_000 });
    console.log(`[qemu] ISO BIOS: marker after ${res.markerSeenAfterMs} ms, exited after ${res.exitedAfterMs} ms`);
    expect(res.log).toMatch(/ISOLINUX/);
    expect(res.log).toContain(`STELE-BOOT ${marker} firmware=bios`);
    expect(res.log).toContain(`STELE-BOOT ${marker}`);
    expect(res.exitCode).toBe(0);
  });

  it('boots the isohybrid image as a qcow2 disk (BIOS), leaving the image unchanged', async () => {
    const iso = await makeIsolinuxIso({ dir, kernel, initrd, append: APPEND, name: 'hybrid.iso' });
    const disk = join(dir, 'hybrid.qcow2');
    await runCommand('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', iso, disk]);
    const digest = () => createHash('sha256').update(readFileSync(disk)).digest('hex');
    const before = digest();
    const res = await bootQemu({
      disk,
      format: 'qcow2',
      firmware: 'bios',
      marker: `STELE-BOOT ${marker} firmware=bios`,
      timeoutMs: 120_000,
    });
    console.log(
      `[qemu] qcow2 disk BIOS: marker after ${res.markerSeenAfterMs} ms, exited after ${res.exitedAfterMs} ms`,
    );
    expect(res.exitCode).toBe(0);
    expect(digest()).toBe(before); // booted with snapshot=on
  });

  it('boots kernel+initrd under EFI (OVMF)', async () => {
    const res = await bootQemu({
      kernel,
      initrd,
      append: APPEND,
      firmware: 'efi',
      marker: `STELE-BOOT ${marker}`,
      timeoutMs: 150_000,
    });
    console.log(
      `[qemu] kernel+initrd EFI: marker after ${res.markerSeenAfterMs} ms, exited after ${res.exitedAfterMs} ms`,
    );
    // /sys/firmware/efi exists only when the kernel was started by EFI firmware.
    expect(res.log).toContain(`STELE-BOOT ${marker} firmware=efi`);
    expect(res.log).toContain(`STELE-BOOT ${marker}`);
    expect(res.exitCode).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// User-mode networking: a guest HTTP server (busybox httpd, virtio-net from the kernel's own
// modules) reached through a hostfwd on 127.0.0.1 — the path later ssh-based tests take.
describe('qemu boot peer: hostForwards', () => {
  let dir: string;
  let vm: QemuHandle | undefined;
  afterAll(async () => {
    await vm?.stop();
    removeDir(dir);
  });

  it('forwards a 127.0.0.1 port to a guest port', async () => {
    dir = tempDir('qemu-net');
    const kernel = debianKernel();
    const token = randomBytes(8).toString('hex');
    const mods = debianKernelModules(['virtio_pci', 'virtio_net'], kernel);
    const init = [
      'mount -t proc proc /proc',
      'mount -t sysfs sysfs /sys',
      mods.load,
      'ip link set lo up',
      'ip link set eth0 up',
      'ip addr add 10.0.2.15/24 dev eth0',
      'mkdir -p /www',
      `echo "token-${token}" > /www/index.html`,
      'httpd -p 8080 -h /www',
      'echo HTTPD-READY',
      'while true; do sleep 1; done',
      '',
    ].join('\n');
    const initrd = await makeBusyboxInitramfs({ dir, init, extraFiles: mods.files });
    const hostPort = await freePort();
    vm = await bootQemu({
      kernel,
      initrd,
      append: APPEND,
      hostForwards: [{ hostPort, guestPort: 8080 }],
      marker: 'HTTPD-READY',
      keepRunning: true,
      timeoutMs: 120_000,
    });
    console.log(`[qemu] net guest: httpd ready after ${vm.markerSeenAfterMs} ms`);
    const body = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${hostPort}/index.html`, { signal: AbortSignal.timeout(5_000) });
        return res.ok ? await res.text() : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'guest httpd through hostfwd' },
    );
    expect(body.trim()).toBe(`token-${token}`);
    const pid = vm.pid;
    await vm.stop();
    expect(isAlive(pid)).toBe(false);
    // Nothing listens on the forwarded port once qemu is gone.
    await expect(fetch(`http://127.0.0.1:${hostPort}/`, { signal: AbortSignal.timeout(3_000) })).rejects.toThrow();
  });
});
