// ISO 9660 images with xorriso (mkisofs emulation), from a staged tree whose every file and
// directory carries the build timestamp (xorriso takes file dates from the tree; it applies
// SOURCE_DATE_EPOCH only to the volume dates and UUID).
//
// iso-bios: isolinux (El Torito no-emulation, isohybrid MBR so it also boots from a USB stick);
//   /boot/kernel, /boot/initrd.img, /isolinux/{isolinux.bin,ldlinux.c32,isolinux.cfg}.
// iso-efi / iso-efi-initrd: El Torito EFI boot image = a small FAT (efiboot.img, hidden) holding
//   GRUB's BOOTX64.EFI, whose embedded config finds the ISO by its volume id and loads kernel and
//   initrd from the ISO 9660 tree. iso-efi-initrd has LinuxKit's layout (/kernel, /initrd.img);
//   iso-efi keeps /boot/kernel, /boot/initrd.img. (LinuxKit's iso-efi instead puts the root file
//   system itself on the ISO; ours always boots the initrd.)
import { copyFile, mkdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FormatContext } from './common.ts';
import { derive, MiB, roundUp, stampTree } from './common.ts';
import { makeFat } from './fat.ts';
import { grubEfiImage } from './grub.ts';

export const ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin';
export const ISOHDPFX = '/usr/lib/ISOLINUX/isohdpfx.bin';
export const LDLINUX_C32 = '/usr/lib/syslinux/modules/bios/ldlinux.c32';

async function mustExist(path: string, pkg: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new Error(`${path} not found: apt-get install ${pkg}`);
  }
}

/** Volume id, unique per image (GRUB finds the ISO by it): STELE_ + 10 hex digits of the seed. */
export function isoVolumeId(ctx: FormatContext): string {
  return `STELE_${derive(ctx.seed, 'iso-volume-id', 5).toString('hex').toUpperCase()}`;
}

async function xorriso(ctx: FormatContext, tree: string, out: string, bootArgs: string[]): Promise<void> {
  await stampTree(tree, ctx.epoch);
  await ctx.tools.run('xorriso', [
    '-as',
    'mkisofs',
    '-quiet',
    '-o',
    out,
    '-V',
    isoVolumeId(ctx),
    '-r',
    '-J',
    ...bootArgs,
    tree,
  ]);
}

export async function buildBiosIso(ctx: FormatContext, out: string): Promise<void> {
  await mustExist(ISOLINUX_BIN, 'isolinux');
  await mustExist(ISOHDPFX, 'isolinux');
  await mustExist(LDLINUX_C32, 'syslinux-common');
  if (/[\r\n]/.test(ctx.cmdline)) throw new Error('the kernel command line must be one line');
  const tree = join(ctx.workDir, 'iso-bios');
  await mkdir(join(tree, 'isolinux'), { recursive: true });
  await mkdir(join(tree, 'boot'), { recursive: true });
  await copyFile(ISOLINUX_BIN, join(tree, 'isolinux', 'isolinux.bin'));
  await copyFile(LDLINUX_C32, join(tree, 'isolinux', 'ldlinux.c32'));
  await copyFile(ctx.kernel, join(tree, 'boot', 'kernel'));
  await copyFile(ctx.initrd, join(tree, 'boot', 'initrd.img'));
  await writeFile(
    join(tree, 'isolinux', 'isolinux.cfg'),
    [
      'DEFAULT linux',
      'PROMPT 0',
      'TIMEOUT 0',
      'LABEL linux',
      '  KERNEL /boot/kernel',
      `  APPEND initrd=/boot/initrd.img ${ctx.cmdline}`,
      '',
    ].join('\n'),
  );
  await xorriso(ctx, tree, out, [
    '-isohybrid-mbr',
    ISOHDPFX,
    '-c',
    'isolinux/boot.cat',
    '-b',
    'isolinux/isolinux.bin',
    '-no-emul-boot',
    '-boot-load-size',
    '4',
    '-boot-info-table',
  ]);
}

export async function buildEfiIso(ctx: FormatContext, out: string, layout: 'boot-dir' | 'root'): Promise<void> {
  const tree = join(ctx.workDir, `iso-efi-${layout}`);
  const kernelPath = layout === 'boot-dir' ? '/boot/kernel' : '/kernel';
  const initrdPath = layout === 'boot-dir' ? '/boot/initrd.img' : '/initrd.img';
  await mkdir(join(tree, 'EFI', 'BOOT'), { recursive: true });
  if (layout === 'boot-dir') await mkdir(join(tree, 'boot'), { recursive: true });
  await copyFile(ctx.kernel, join(tree, kernelPath));
  await copyFile(ctx.initrd, join(tree, initrdPath));
  const efi = join(tree, 'EFI', 'BOOT', 'BOOTX64.EFI');
  await grubEfiImage(ctx, { search: { label: isoVolumeId(ctx) }, kernelPath, initrdPath, cmdline: ctx.cmdline }, efi);

  const efiboot = join(tree, 'efiboot.img');
  const fatSize = Math.max(2 * MiB, roundUp((await stat(efi)).size + 512 * 1024, 64 * 1024));
  await writeFile(efiboot, '');
  await truncate(efiboot, fatSize);
  await makeFat(ctx, {
    image: efiboot,
    offset: 0,
    size: fatSize,
    serial: derive(ctx.seed, 'efiboot-serial', 4).readUInt32BE(0),
    label: 'EFIBOOT',
    files: [{ src: efi, dest: '/EFI/BOOT/BOOTX64.EFI' }],
  });
  await xorriso(ctx, tree, out, [
    '-e',
    'efiboot.img',
    '-no-emul-boot',
    '-hide',
    'efiboot.img',
    '-hide',
    'boot.catalog',
  ]);
}
