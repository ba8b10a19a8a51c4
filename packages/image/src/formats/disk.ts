// Bootable raw disk images, built in an image file without loop devices or mounts.
//
// BIOS (raw-bios, and the disks behind qcow2-bios, vmdk, vhd, aws, gcp): MBR with GRUB's boot.img,
// GRUB's core.img in sectors 1…2047, one bootable FAT partition (type 0x0e FAT16 / 0x0c FAT32)
// from 1 MiB holding /boot/kernel and /boot/initrd.img. LinuxKit uses syslinux here; Debian's
// syslinux installer is not among our host packages, GRUB's images are (grub-pc-bin).
//
// EFI (raw-efi, qcow2-efi): GPT with one EFI system partition (FAT) from 1 MiB holding
// /EFI/BOOT/BOOTX64.EFI (GRUB) and /boot/kernel, /boot/initrd.img; backup GPT in the last 33
// sectors. Disk GUID, partition GUID, FAT serial and MBR signature are derived from the seed.
import { open, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FormatContext } from './common.ts';
import { derive, MiB, roundUp } from './common.ts';
import { type FatFile, fatMbrType, fatSizeFor, fatUuid, makeFat } from './fat.ts';
import { grubBiosImages, grubEfiImage } from './grub.ts';
import { ESP_TYPE_GUID, gptLayout, guidFromHash, SECTOR, writeMbr } from './partition.ts';

const PART_START = MiB;

async function writeAt(path: string, data: Buffer, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

/** FAT size in bytes: as small as fits, or what is left of a requested disk size. */
async function planFat(ctx: FormatContext, paths: string[], overhead: number): Promise<number> {
  const needed = await fatSizeFor(paths);
  if (ctx.sizeMb === 0) return needed;
  const fat = ctx.sizeMb * MiB - overhead;
  if (fat < needed) {
    throw new Error(
      `disk size ${ctx.sizeMb} MiB is too small: kernel and initrd need ${Math.ceil((needed + overhead) / MiB)} MiB`,
    );
  }
  return fat;
}

function bootFiles(ctx: FormatContext): FatFile[] {
  return [
    { src: ctx.kernel, dest: '/boot/kernel' },
    { src: ctx.initrd, dest: '/boot/initrd.img' },
  ];
}

/** Writes a BIOS-bootable MBR disk image to `out`. */
export async function buildBiosDisk(ctx: FormatContext, out: string): Promise<void> {
  const fatSize = await planFat(ctx, [ctx.kernel, ctx.initrd], PART_START);
  const serial = derive(ctx.seed, 'bios-fat-serial', 4).readUInt32BE(0);
  const { bootImg, coreImg } = await grubBiosImages(ctx, {
    search: { fsUuid: fatUuid(serial) },
    kernelPath: '/boot/kernel',
    initrdPath: '/boot/initrd.img',
    cmdline: ctx.cmdline,
  });
  if (SECTOR + coreImg.length > PART_START) {
    throw new Error(`GRUB core.img (${coreImg.length} bytes) does not fit before the partition at 1 MiB`);
  }
  const total = PART_START + fatSize;
  await writeFile(out, '');
  await truncate(out, total);
  const mbr = writeMbr(bootImg, derive(ctx.seed, 'mbr-signature', 4).readUInt32BE(0), [
    {
      bootable: true,
      type: fatMbrType(fatSize),
      startLba: PART_START / SECTOR,
      sectors: fatSize / SECTOR,
    },
  ]);
  await writeAt(out, Buffer.concat([mbr, coreImg]), 0);
  await makeFat(ctx, { image: out, offset: PART_START, size: fatSize, serial, label: 'STELE', files: bootFiles(ctx) });
}

/** Writes a UEFI-bootable GPT disk image to `out`. */
export async function buildEfiDisk(ctx: FormatContext, out: string): Promise<void> {
  const efi = join(ctx.workDir, 'BOOTX64.EFI');
  const serial = derive(ctx.seed, 'esp-serial', 4).readUInt32BE(0);
  await grubEfiImage(
    ctx,
    {
      search: { fsUuid: fatUuid(serial) },
      kernelPath: '/boot/kernel',
      initrdPath: '/boot/initrd.img',
      cmdline: ctx.cmdline,
    },
    efi,
  );
  // 1 MiB before the ESP, 1 MiB after it (the backup GPT needs 33 sectors; keep MiB alignment).
  const fatSize = await planFat(ctx, [ctx.kernel, ctx.initrd, efi], 2 * MiB);
  const total = roundUp(PART_START + fatSize + MiB, MiB);
  const sectors = total / SECTOR;
  const gpt = gptLayout(sectors, guidFromHash(derive(ctx.seed, 'gpt-disk-guid')), [
    {
      typeGuid: ESP_TYPE_GUID,
      uniqueGuid: guidFromHash(derive(ctx.seed, 'gpt-esp-guid')),
      firstLba: PART_START / SECTOR,
      lastLba: (PART_START + fatSize) / SECTOR - 1,
      name: 'EFI System Partition',
    },
  ]);
  await writeFile(out, '');
  await truncate(out, total);
  await writeAt(out, gpt.head, 0);
  await writeAt(out, gpt.tail, gpt.tailLba * SECTOR);
  await makeFat(ctx, {
    image: out,
    offset: PART_START,
    size: fatSize,
    serial,
    label: 'ESP',
    files: [{ src: efi, dest: '/EFI/BOOT/BOOTX64.EFI' }, ...bootFiles(ctx)],
  });
}
