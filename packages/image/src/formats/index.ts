// The output formats (LinuxKit's names and file names, src/cmd/linuxkit/moby/build/output.go)
// behind one function. Every build runs in a private temp dir beside the outputs and renames
// the finished files into place, so a failed or interrupted build leaves no partial output.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { HostTools } from '../hosttools.ts';
import { writeTar } from './archive.ts';
import { type FormatContext, reproducibleTools, sha256File } from './common.ts';
import { rawToQcow2, rawToVhd, rawToVmdk } from './convert.ts';
import { buildBiosDisk, buildEfiDisk } from './disk.ts';
import { sourceDateEpoch } from './epoch.ts';
import { buildBiosIso, buildEfiIso } from './iso.ts';

export interface FormatInfo {
  /** Output files for image name `name`, in the order they are written. */
  outputs(name: string): string[];
  /** How it boots; undefined for formats that are not bootable by themselves. */
  firmware?: 'bios' | 'efi';
  description: string;
}

const FORMAT_TABLE = {
  'kernel+initrd': {
    outputs: (n: string) => [`${n}-kernel`, `${n}-initrd.img`, `${n}-cmdline`],
    description: 'kernel, initrd (ucode.cpio in front when present) and command line as separate files',
  },
  'tar-kernel-initrd': {
    outputs: (n: string) => [`${n}-initrd.tar`],
    description: 'a tar of kernel, initrd.img, cmdline (and ucode.cpio)',
  },
  'iso-bios': {
    outputs: (n: string) => [`${n}.iso`],
    firmware: 'bios',
    description: 'BIOS-bootable hybrid ISO (isolinux)',
  },
  'iso-efi': {
    outputs: (n: string) => [`${n}-efi.iso`],
    firmware: 'efi',
    description: 'UEFI-bootable ISO (GRUB), kernel and initrd under /boot',
  },
  'iso-efi-initrd': {
    outputs: (n: string) => [`${n}-efi-initrd.iso`],
    firmware: 'efi',
    description: 'UEFI-bootable ISO (GRUB), LinuxKit layout /kernel, /initrd.img',
  },
  'raw-bios': {
    outputs: (n: string) => [`${n}-bios.img`],
    firmware: 'bios',
    description: 'raw MBR disk, GRUB, FAT partition with kernel and initrd',
  },
  'raw-efi': {
    outputs: (n: string) => [`${n}-efi.img`],
    firmware: 'efi',
    description: 'raw GPT disk with an EFI system partition (GRUB, kernel, initrd)',
  },
  'qcow2-bios': {
    outputs: (n: string) => [`${n}.qcow2`],
    firmware: 'bios',
    description: 'the raw-bios disk as qcow2',
  },
  'qcow2-efi': {
    outputs: (n: string) => [`${n}-efi.qcow2`],
    firmware: 'efi',
    description: 'the raw-efi disk as qcow2',
  },
  vmdk: {
    outputs: (n: string) => [`${n}.vmdk`],
    firmware: 'bios',
    description: 'the raw-bios disk as a monolithic sparse VMDK',
  },
  vhd: {
    outputs: (n: string) => [`${n}.vhd`],
    firmware: 'bios',
    description: 'the raw-bios disk as a fixed VHD',
  },
  aws: {
    outputs: (n: string) => [`${n}.raw`],
    firmware: 'bios',
    description: 'the raw-bios disk, for an EBS snapshot',
  },
  gcp: {
    outputs: (n: string) => [`${n}.img.tar.gz`],
    firmware: 'bios',
    description: 'the raw-bios disk as disk.raw in a gzip’d tar, for a Compute Engine image',
  },
} as const satisfies Record<string, FormatInfo>;

export type FormatName = keyof typeof FORMAT_TABLE;

/** Every format LinuxKit's `-format` knows (except squashfs/erofs/rpi3), with its output files. */
export const FORMATS: Readonly<Record<FormatName, FormatInfo>> = FORMAT_TABLE;

export function isFormatName(s: string): s is FormatName {
  return Object.hasOwn(FORMATS, s);
}

export interface BuildFormatOptions {
  /** Base name of the outputs. */
  name: string;
  /** Output directory (created if missing). */
  dir: string;
  /** The kernel: a file path or its bytes. */
  kernel: string | Uint8Array;
  /** The initrd (e.g. from writeInitrd): a file path or its bytes. */
  initrd: string | Uint8Array;
  cmdline: string;
  /** Uncompressed early-microcode cpio (boot/ucode.cpio): put in front of the initrd. */
  ucode?: string | Uint8Array;
  tools: HostTools;
  /** Build timestamp; default $SOURCE_DATE_EPOCH, else LinuxKit's 2017-04-18T16:30Z. */
  sourceDateEpoch?: number;
  /** Disk formats: total disk size in MiB; default as small as fits. */
  sizeMb?: number;
}

export interface BuildFormatResult {
  format: FormatName;
  /** Absolute paths of the outputs, as listed by FORMATS[format].outputs. */
  files: string[];
}

export class FormatError extends Error {
  constructor(
    message: string,
    readonly format: string,
    options?: ErrorOptions,
  ) {
    super(`${format}: ${message}`, options);
    this.name = 'FormatError';
  }
}

type Builder = (ctx: FormatContext & { initrdOnly: string; ucode?: string }, files: string[]) => Promise<void>;

const BUILDERS: Record<FormatName, Builder> = {
  'kernel+initrd': async (ctx, [kernel, initrd, cmdline]) => {
    await copyFile(ctx.kernel, must(kernel));
    await copyFile(ctx.initrd, must(initrd));
    await writeFile(must(cmdline), ctx.cmdline);
  },
  'tar-kernel-initrd': async (ctx, [tar]) => {
    await writeTar(
      must(tar),
      [
        { name: 'kernel', file: ctx.kernel },
        { name: 'initrd.img', file: ctx.initrdOnly },
        { name: 'cmdline', content: Buffer.from(ctx.cmdline) },
        ...(ctx.ucode ? [{ name: 'ucode.cpio', file: ctx.ucode }] : []),
      ],
      ctx.epoch,
      false,
    );
  },
  'iso-bios': (ctx, [iso]) => buildBiosIso(ctx, must(iso)),
  'iso-efi': (ctx, [iso]) => buildEfiIso(ctx, must(iso), 'boot-dir'),
  'iso-efi-initrd': (ctx, [iso]) => buildEfiIso(ctx, must(iso), 'root'),
  'raw-bios': (ctx, [raw]) => buildBiosDisk(ctx, must(raw)),
  'raw-efi': (ctx, [raw]) => buildEfiDisk(ctx, must(raw)),
  'qcow2-bios': async (ctx, [out]) => rawToQcow2(ctx, await biosRaw(ctx), must(out)),
  'qcow2-efi': async (ctx, [out]) => {
    const raw = join(ctx.workDir, 'disk-efi.raw');
    await buildEfiDisk(ctx, raw);
    await rawToQcow2(ctx, raw, must(out));
  },
  vmdk: async (ctx, [out]) => rawToVmdk(ctx, await biosRaw(ctx), must(out)),
  vhd: async (ctx, [out]) => rawToVhd(ctx, await biosRaw(ctx), must(out)),
  aws: (ctx, [raw]) => buildBiosDisk(ctx, must(raw)),
  gcp: async (ctx, [out]) => writeTar(must(out), [{ name: 'disk.raw', file: await biosRaw(ctx) }], ctx.epoch, true),
};

function must(s: string | undefined): string {
  if (s === undefined) throw new Error('internal: missing output path');
  return s;
}

async function biosRaw(ctx: FormatContext): Promise<string> {
  const raw = join(ctx.workDir, 'disk.raw');
  await buildBiosDisk(ctx, raw);
  return raw;
}

async function materialise(input: string | Uint8Array, path: string, what: string): Promise<string> {
  if (typeof input !== 'string') {
    await writeFile(path, input);
    return path;
  }
  try {
    const st = await stat(input);
    if (!st.isFile()) throw new Error(`${what} ${input} is not a file`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${what} ${input} does not exist`);
    throw err;
  }
  return input;
}

const UNSEEDED: ReadonlySet<FormatName> = new Set(['kernel+initrd', 'tar-kernel-initrd']);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/**
 * Builds one output format from kernel + initrd + command line into `dir`, atomically: the files
 * appear only when all of them are complete. Byte-identical for identical inputs and timestamp.
 */
export async function buildFormat(format: string, opts: BuildFormatOptions): Promise<BuildFormatResult> {
  if (!isFormatName(format)) {
    throw new FormatError(`unknown format; known: ${Object.keys(FORMATS).join(', ')}`, format);
  }
  if (!NAME_RE.test(opts.name)) {
    throw new FormatError(`image name ${JSON.stringify(opts.name)} must match ${NAME_RE}`, format);
  }
  if (opts.sizeMb !== undefined && (!Number.isInteger(opts.sizeMb) || opts.sizeMb <= 0)) {
    throw new FormatError(`sizeMb must be a positive integer, got ${opts.sizeMb}`, format);
  }
  const epoch = sourceDateEpoch(opts.sourceDateEpoch);
  await mkdir(opts.dir, { recursive: true });
  const tmp = await mkdtemp(join(opts.dir, `.stele-${format.replace(/\+/g, '_')}-`));
  const outDir = join(tmp, 'out');
  const workDir = join(tmp, 'work');
  const names = FORMATS[format].outputs(opts.name);
  const placed: string[] = [];
  try {
    await mkdir(outDir);
    await mkdir(workDir);
    const kernel = await materialise(opts.kernel, join(workDir, 'input-kernel'), 'kernel');
    const initrdOnly = await materialise(opts.initrd, join(workDir, 'input-initrd'), 'initrd');
    const ucode =
      opts.ucode === undefined ? undefined : await materialise(opts.ucode, join(workDir, 'input-ucode'), 'ucode');
    let initrd = initrdOnly;
    if (ucode) {
      initrd = join(workDir, 'ucode+initrd.img');
      const out = createWriteStream(initrd);
      await pipeline(createReadStream(ucode), out, { end: false });
      await pipeline(createReadStream(initrdOnly), out);
    }
    // Only formats that make identifiers (disk GUIDs, serials, volume ids) need the seed; hashing
    // the inputs is skipped for the plain copies.
    const seed = UNSEEDED.has(format) ? Buffer.alloc(0) : await seedOf(kernel, initrd, opts.cmdline, epoch);
    const ctx = {
      name: opts.name,
      outDir,
      workDir,
      kernel,
      initrd,
      initrdOnly,
      ucode,
      cmdline: opts.cmdline,
      epoch,
      seed,
      sizeMb: opts.sizeMb ?? 0,
      tools: reproducibleTools(opts.tools, epoch),
    };
    const files = names.map((n) => join(outDir, n));
    await BUILDERS[format](ctx, files);
    for (const f of files) {
      const st = await stat(f).catch(() => undefined);
      if (!st?.isFile()) throw new Error(`internal: ${f} was not written`);
    }
    for (const n of names) {
      await rename(join(outDir, n), join(opts.dir, n));
      placed.push(join(opts.dir, n));
    }
    return { format, files: names.map((n) => join(opts.dir, n)) };
  } catch (err) {
    for (const p of placed) await unlink(p).catch(() => undefined);
    if (err instanceof FormatError) throw err;
    throw new FormatError((err as Error).message, format, { cause: err });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function seedOf(kernel: string, initrd: string, cmdline: string, epoch: number): Promise<Buffer> {
  return createHash('sha256')
    .update('stele-image-v1\0')
    .update(await sha256File(kernel))
    .update(await sha256File(initrd))
    .update(`${cmdline}\0${epoch}`)
    .digest();
}
