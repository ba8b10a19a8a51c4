// GRUB 2 from Debian's grub-pc-bin / grub-efi-amd64-bin, built with `grub-mkimage` and an embedded
// configuration (no grub.cfg on disk, no menu, no timeout): it finds the file system holding the
// kernel by a per-image identifier, loads kernel and initrd, and boots. grub-mkimage's output is a
// pure function of modules + config (checked by the reproducibility tests).
//
// BIOS disks: boot.img in the MBR (its BPB/boot code, our partition table) and core.img in the
// gap between the MBR and the first partition at 1 MiB — what `grub-install` does, done without
// a block device. EFI: the same config in a standalone BOOTX64.EFI.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FormatContext } from './common.ts';
import { grubQuote } from './common.ts';

export const GRUB_PC_DIR = '/usr/lib/grub/i386-pc';
export const GRUB_EFI_DIR = '/usr/lib/grub/x86_64-efi';

/** How GRUB finds the file system with the kernel. */
export type GrubSearch = { fsUuid: string } | { label: string };

export interface GrubBoot {
  search: GrubSearch;
  kernelPath: string;
  initrdPath: string;
  cmdline: string;
}

export function grubConfig(b: GrubBoot): string {
  const search =
    'fsUuid' in b.search
      ? `search --no-floppy --set=root --fs-uuid ${b.search.fsUuid}`
      : `search --no-floppy --set=root --label ${grubQuote(b.search.label)}`;
  return [
    'set timeout=0',
    'set gfxpayload=keep',
    search,
    `linux ${b.kernelPath} ${grubQuote(b.cmdline)}`,
    `initrd ${b.initrdPath}`,
    'boot',
    '',
  ].join('\n');
}

const COMMON_MODULES = ['search', 'search_fs_uuid', 'search_label', 'fat', 'linux', 'boot', 'echo'];

async function mkimage(
  ctx: FormatContext,
  target: 'i386-pc' | 'x86_64-efi',
  out: string,
  boot: GrubBoot,
  modules: string[],
): Promise<void> {
  const cfg = join(ctx.workDir, `grub-${target}.cfg`);
  await writeFile(cfg, grubConfig(boot));
  const dir = target === 'i386-pc' ? GRUB_PC_DIR : GRUB_EFI_DIR;
  await ctx.tools.run('grub-mkimage', [
    '-d',
    dir,
    '-O',
    target,
    '-o',
    out,
    '-c',
    cfg,
    '-p',
    target === 'i386-pc' ? '/boot/grub' : '/EFI/BOOT',
    ...modules,
  ]);
}

/** A BOOTX64.EFI that boots `boot`. */
export async function grubEfiImage(ctx: FormatContext, boot: GrubBoot, out: string): Promise<void> {
  // efi_gop: the kernel gets the firmware's framebuffer (efifb) — without it GRUB says "no
  // suitable video mode found" and the screen stays dark on real machines.
  await mkimage(ctx, 'x86_64-efi', out, boot, ['part_gpt', 'part_msdos', 'iso9660', 'efi_gop', ...COMMON_MODULES]);
}

/** boot.img (512 bytes, patched) and core.img for an MBR disk that boots `boot`. */
export async function grubBiosImages(
  ctx: FormatContext,
  boot: GrubBoot,
): Promise<{ bootImg: Buffer; coreImg: Buffer }> {
  const core = join(ctx.workDir, 'core.img');
  await mkimage(ctx, 'i386-pc', core, boot, ['biosdisk', 'part_msdos', ...COMMON_MODULES]);
  const bootImg = Buffer.from(await readFile(join(GRUB_PC_DIR, 'boot.img')));
  if (bootImg.length !== 512) throw new Error(`${GRUB_PC_DIR}/boot.img is ${bootImg.length} bytes, expected 512`);
  // boot.S: 0x5c kernel_sector (LBA of core.img's first sector) = 1, 0x64 boot_drive = 0xff (use
  // the drive the BIOS booted from), 0x66 a `jmp` that forces drive 0x80 only for floppies;
  // grub-setup replaces it with two NOPs on hard disks, and so do we.
  bootImg.writeBigUInt64LE(1n, 0x5c);
  bootImg[0x64] = 0xff;
  bootImg[0x66] = 0x90;
  bootImg[0x67] = 0x90;
  return { bootImg, coreImg: await readFile(core) };
}
