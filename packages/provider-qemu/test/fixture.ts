// A tiny guest for the qemu provider's tests: the machine's Debian kernel and a busybox initramfs
// that finds the config drive (by its label, as pkg/metadata does), prints the sha256 of its
// user-data — never the data itself — and stays up. Written as `stele build --format
// kernel+initrd` names its outputs.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuiltImage } from '@stele/fleet';
import { debianKernel, debianKernelModules, makeBusyboxInitramfs } from '@stele/test-peers';

export const GUEST_UP = 'STELE-GUEST-UP';

/** Builds the guest once in `dir`; the returned function gives it under any identity. */
export async function guestImage(dir: string): Promise<(identity: string) => BuiltImage> {
  const out = join(dir, 'build');
  await mkdir(out, { recursive: true });
  // q35's AHCI controller, the CD-ROM on it, and ISO 9660: all modules in Debian's kernel.
  const modules = debianKernelModules(['ahci', 'sr_mod', 'isofs']);
  const initrd = await makeBusyboxInitramfs({
    dir,
    extraFiles: modules.files,
    init: [
      'mount -t proc proc /proc',
      'mount -t sysfs sysfs /sys',
      'mount -t devtmpfs devtmpfs /dev',
      modules.load,
      'for i in 1 2 3 4 5 6 7 8 9 10; do dev=$(findfs LABEL=cidata 2>/dev/null) && break; sleep 1; done',
      'mkdir -p /mnt/cidata',
      'if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /mnt/cidata; then',
      '  echo "CIDATA $dev $(sha256sum </mnt/cidata/user-data | cut -d" " -f1)"',
      'else',
      '  echo "CIDATA none"',
      'fi',
      `echo ${GUEST_UP}`,
      'while true; do sleep 60; done',
    ].join('\n'),
  });
  const files = [join(out, 'guest-kernel'), join(out, 'guest-initrd.img'), join(out, 'guest-cmdline')] as const;
  await copyFile(debianKernel(), files[0]);
  await copyFile(initrd, files[1]);
  await writeFile(files[2], 'console=ttyS0 panic=-1 quiet\n');
  return (identity) => ({ identity, format: 'kernel+initrd', files: [...files] });
}

/** A host port base of this test file's own (files run side by side), `offset` apart. */
export function portBase(offset: number): number {
  return 20000 + ((process.pid * 37) % 2000) * 20 + offset;
}
