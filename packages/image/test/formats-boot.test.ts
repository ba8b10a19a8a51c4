// End to end under qemu (TCG): each bootable format, built from the machine's Debian kernel and a
// busybox initramfs, must boot to /init, which prints a marker made fresh for this run and powers
// off. kernel+initrd goes the whole product path: a rootfs tar stream (with boot/kernel and
// boot/cmdline, LinuxKit's layout) → writeInitrd → buildFormat. One qemu at a time.
// STELE_BOOT_ALL=1 also boots iso-efi-initrd, qcow2-efi, vmdk and vhd.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type BootSource, bootQemu, debianKernel, makeBusyboxInitramfs } from '@stele/test-peers';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFormat, FORMATS, type FormatName, spawnHostTools, writeInitrd } from '../src/index.ts';

const CMDLINE = 'console=ttyS0 panic=-1 quiet';
const marker = `STELE-BOOT-${randomBytes(6).toString('hex')}`;
const tools = spawnHostTools();
let root: string;

/** /init prints the marker assembled at run time (the kernel's echo of a script can't match). */
function initScript(printf = 'printf'): string {
  return [
    '#!/bin/sh',
    'mount -t proc proc /proc',
    `M1='${marker.slice(0, 14)}'`,
    `M2='${marker.slice(14)}'`,
    `${printf} '%s%s via %s\\n' "$M1" "$M2" "$(uname -r)"`,
    'poweroff -f',
    '',
  ].join('\n');
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'stele-boot-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const timings: Record<string, number> = {};
afterAll(() => {
  console.log(`boot times (marker seen after, ms): ${JSON.stringify(timings)}`);
});

/**
 * Each test builds a format and boots it; a boot may take up to its own 120 s bound (TCG on two
 * busy cores), so the test gets that and room for the build.
 */
const BOOT_TEST = { timeout: 300_000 };

async function boot(format: string, source: BootSource, firmware: 'bios' | 'efi'): Promise<void> {
  const res = await bootQemu({ ...source, firmware, marker, timeoutMs: 120_000, name: `boot-${format}` });
  expect(res.log).toContain(`${marker} via `);
  timings[format] = res.markerSeenAfterMs;
}

describe('kernel+initrd from a tar stream through writeInitrd', BOOT_TEST, () => {
  it('boots, with busybox applets reached through a symlink and a hard link', async () => {
    const kernelBytes = readFileSync(debianKernel());
    const p = pack();
    const dir = (name: string) => p.entry({ name, type: 'directory', mode: 0o755 });
    for (const d of ['boot', 'bin', 'dev', 'proc', 'sys']) dir(d);
    p.entry({ name: 'boot/kernel', mode: 0o644 }, kernelBytes);
    p.entry({ name: 'boot/cmdline', mode: 0o644 }, CMDLINE);
    p.entry({ name: 'bin/busybox', mode: 0o755 }, readFileSync('/bin/busybox'));
    for (const a of ['sh', 'mount', 'uname', 'poweroff'])
      p.entry({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
    // printf only exists as a hard link: if links were broken, /init could not print the marker.
    p.entry({ name: 'bin/printf', type: 'link', linkname: 'bin/busybox' });
    p.entry({ name: 'dev/console', type: 'character-device', mode: 0o600, devmajor: 5, devminor: 1 });
    p.entry({ name: 'init', mode: 0o755 }, initScript('/bin/printf'));
    p.finalize();

    const initrd = join(root, 'rootfs-initrd.img');
    const split = await writeInitrd(p as unknown as Readable, initrd);
    expect(split.kernel?.length).toBe(kernelBytes.length);
    const out = join(root, 'kernel+initrd');
    const res = await buildFormat('kernel+initrd', {
      name: 'stele',
      dir: out,
      kernel: split.kernel ?? Buffer.alloc(0),
      initrd,
      cmdline: split.cmdline ?? '',
      tools,
    });
    const [kernel, initrdOut, cmdline] = res.files;
    await boot(
      'kernel+initrd',
      { kernel: kernel ?? '', initrd: initrdOut ?? '', append: readFileSync(cmdline ?? '', 'utf8') },
      'bios',
    );
  });
});

describe('bootable formats', BOOT_TEST, () => {
  let initrd: string;
  const all = process.env.STELE_BOOT_ALL === '1';
  const lean: FormatName[] = ['iso-bios', 'iso-efi', 'raw-bios', 'raw-efi', 'qcow2-bios'];
  const extra: FormatName[] = ['iso-efi-initrd', 'qcow2-efi', 'vmdk', 'vhd'];

  beforeAll(async () => {
    initrd = await makeBusyboxInitramfs({ dir: root, name: 'peer-initrd.img', init: initScript() });
  });

  const source = (format: FormatName, file: string): BootSource => {
    if (file.endsWith('.iso')) return { iso: file };
    if (format === 'vmdk' || format === 'vhd') {
      // bootQemu's type names raw/qcow2 only, but it passes the format to qemu as is; name it, as
      // qemu's probe does not recognise a fixed VHD (its footer is only at the end).
      return { disk: file, format: (format === 'vmdk' ? 'vmdk' : 'vpc') as 'raw' };
    }
    return { disk: file, format: file.endsWith('.qcow2') ? 'qcow2' : 'raw' };
  };

  for (const format of [...lean, ...extra]) {
    it.runIf(lean.includes(format) || all)(`${format} boots to /init`, async () => {
      const res = await buildFormat(format, {
        name: 'stele',
        dir: join(root, format),
        kernel: debianKernel(),
        initrd,
        cmdline: CMDLINE,
        tools,
      });
      const file = res.files[0] ?? '';
      const firmware = FORMATS[format].firmware;
      if (!firmware) throw new Error(`${format} is not bootable`);
      await boot(format, source(format, file), firmware);
    });
  }
});
