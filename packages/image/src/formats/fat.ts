// FAT file systems without mounting: mkfs.vfat writes the file system into an image file (at an
// offset, so a disk image needs no second copy), mtools fills it. Reproducible: `--invariant`
// plus an explicit volume serial, and mtools stamps entries with $SOURCE_DATE_EPOCH (mtools ≥ 4.0.
// 25; set by reproducibleTools); the order of mmd/mcopy calls is fixed by the caller's list.
import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { FormatContext } from './common.ts';
import { MiB, roundUp } from './common.ts';

export interface FatFile {
  /** Host file to copy. */
  src: string;
  /** Absolute path inside the FAT, e.g. "/EFI/BOOT/BOOTX64.EFI". */
  dest: string;
}

export interface FatSpec {
  /** Image file (must exist and be large enough). */
  image: string;
  /** Byte offset of the file system in the image (a multiple of 512). */
  offset: number;
  /** Size of the file system in bytes (a multiple of 1 KiB). */
  size: number;
  /** 32-bit volume serial (shown by GRUB as XXXX-XXXX, lower case). */
  serial: number;
  label: string;
  files: readonly FatFile[];
}

/** FAT12 below 8 MiB, FAT16 below 64 MiB, FAT32 above (≥ 65525 clusters of 512 bytes). */
export function fatBits(size: number): 12 | 16 | 32 {
  return size >= 64 * MiB ? 32 : size >= 8 * MiB ? 16 : 12;
}

/** MBR partition type of a FAT of `size` bytes (LBA variants). */
export function fatMbrType(size: number): number {
  return { 12: 0x01, 16: 0x0e, 32: 0x0c }[fatBits(size)];
}

/** The GRUB/blkid spelling of a FAT volume serial. */
export function fatUuid(serial: number): string {
  const h = (serial >>> 0).toString(16).padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

/** Bytes needed for a FAT holding `files` (contents + 5 % + 2 MiB for tables and slack), in MiB. */
export async function fatSizeFor(paths: readonly string[], minMb = 8): Promise<number> {
  let total = 0;
  for (const p of paths) total += (await stat(p)).size;
  return Math.max(minMb * MiB, roundUp(total * 1.05 + 2 * MiB, MiB));
}

export async function makeFat(ctx: FormatContext, spec: FatSpec): Promise<void> {
  if (spec.offset % 512 !== 0 || spec.size % 1024 !== 0) throw new Error('FAT offset/size must be sector/KiB aligned');
  const sectors = spec.offset / 512;
  await ctx.tools.run('mkfs.vfat', [
    '--invariant',
    '-F',
    String(fatBits(spec.size)),
    '-i',
    (spec.serial >>> 0).toString(16).padStart(8, '0'),
    '-n',
    spec.label,
    '-h',
    String(sectors),
    '--offset',
    String(sectors),
    spec.image,
    String(spec.size / 1024),
  ]);
  const img = `${spec.image}@@${spec.offset}`;
  const dirs = new Set<string>();
  for (const f of spec.files) {
    for (let d = posix.dirname(f.dest); d !== '/' && d !== '.'; d = posix.dirname(d)) dirs.add(d);
  }
  const sortedDirs = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  if (sortedDirs.length > 0) await ctx.tools.run('mmd', ['-i', img, ...sortedDirs.map((d) => `::${d}`)]);
  for (const f of spec.files) await ctx.tools.run('mcopy', ['-i', img, f.src, `::${f.dest}`]);
}
