// Virtual disk formats from a raw image with qemu-img, made reproducible:
// - qcow2: qemu-img's output is already a pure function of the raw image.
// - vmdk (monolithicSparse, as LinuxKit): qemu-img picks a random content id (CID=…) in the
//   embedded descriptor; we rewrite it with one derived from the seed (same length region, zero
//   padded). The descriptor also names the extent file, so qemu-img writes to the final base name.
// - vhd (fixed, as LinuxKit's default "vhd" — what Azure wants): qemu-img writes a footer with the
//   time of creation and a random UUID; we set the time to the build timestamp, the UUID from the
//   seed, and recompute the footer checksum.
import { open } from 'node:fs/promises';
import type { FormatContext } from './common.ts';
import { derive } from './common.ts';
import { guidBytes, guidFromHash } from './partition.ts';

export async function rawToQcow2(ctx: FormatContext, raw: string, out: string): Promise<void> {
  await ctx.tools.run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, out]);
}

/** `out`'s base name is recorded in the descriptor: pass the final file name (in any directory). */
export async function rawToVmdk(ctx: FormatContext, raw: string, out: string): Promise<void> {
  await ctx.tools.run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', raw, out]);
  await fixVmdkCid(out, derive(ctx.seed, 'vmdk-cid', 4).readUInt32BE(0));
}

/** Rewrites CID=… in a monolithicSparse VMDK's embedded descriptor. */
export async function fixVmdkCid(path: string, cid: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const head = Buffer.alloc(512);
    await fh.read(head, 0, 512, 0);
    if (head.toString('latin1', 0, 4) !== 'KDMV') throw new Error(`${path}: not a sparse VMDK (no KDMV magic)`);
    const descOffset = Number(head.readBigUInt64LE(28)) * 512;
    const descSize = Number(head.readBigUInt64LE(36)) * 512;
    if (descOffset === 0 || descSize === 0) throw new Error(`${path}: VMDK has no embedded descriptor`);
    const desc = Buffer.alloc(descSize);
    await fh.read(desc, 0, descSize, descOffset);
    const end = desc.indexOf(0);
    const text = desc.toString('utf8', 0, end < 0 ? descSize : end);
    if (!/^CID=[0-9a-f]+$/m.test(text)) throw new Error(`${path}: VMDK descriptor has no CID line`);
    const fixed = Buffer.from(text.replace(/^CID=[0-9a-f]+$/m, `CID=${cid.toString(16).padStart(8, '0')}`), 'utf8');
    if (fixed.length > descSize) throw new Error(`${path}: VMDK descriptor would overflow`);
    const region = Buffer.alloc(descSize);
    fixed.copy(region);
    await fh.write(region, 0, descSize, descOffset);
  } finally {
    await fh.close();
  }
}

export async function rawToVhd(ctx: FormatContext, raw: string, out: string): Promise<void> {
  await ctx.tools.run('qemu-img', [
    'convert',
    '-q',
    '-f',
    'raw',
    '-O',
    'vpc',
    '-o',
    'subformat=fixed,force_size=on',
    raw,
    out,
  ]);
  await fixVhdFooter(out, ctx.epoch, guidFromHash(derive(ctx.seed, 'vhd-uuid')));
}

/** Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z). */
const VHD_EPOCH = 946684800;

/** Sets timestamp and UUID of a fixed VHD's footer (the last 512 bytes) and its checksum. */
export async function fixVhdFooter(path: string, epoch: number, uuid: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const footer = Buffer.alloc(512);
    await fh.read(footer, 0, 512, size - 512);
    if (footer.toString('latin1', 0, 8) !== 'conectix') throw new Error(`${path}: no VHD footer`);
    if (footer.readUInt32BE(60) !== 2)
      throw new Error(`${path}: not a fixed VHD (disk type ${footer.readUInt32BE(60)})`);
    footer.writeUInt32BE(Math.max(0, epoch - VHD_EPOCH), 24);
    guidBytes(uuid).copy(footer, 68);
    footer.writeUInt32BE(0, 64);
    let sum = 0;
    for (const b of footer) sum += b;
    footer.writeUInt32BE(~sum >>> 0, 64);
    await fh.write(footer, 0, 512, size - 512);
  } finally {
    await fh.close();
  }
}
