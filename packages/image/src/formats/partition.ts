// Partition tables written by our own code (Debian's sfdisk/sgdisk are not needed): an MBR with
// one partition, and a GPT (protective MBR, primary and backup header + entry array) with one.
// All identifiers come from the caller (derived from a content hash), so the bytes are a pure
// function of the inputs.
import { crc32 } from 'node:zlib';

export const SECTOR = 512;

/** LBA → the 3-byte CHS of an MBR entry (255 heads, 63 sectors; clamped as everyone does). */
function chs(lba: number): Buffer {
  const heads = 255;
  const spt = 63;
  let c = Math.floor(lba / (heads * spt));
  let h = Math.floor(lba / spt) % heads;
  let s = (lba % spt) + 1;
  if (c > 1023) {
    c = 1023;
    h = 254;
    s = 63;
  }
  return Buffer.from([h, ((c >> 2) & 0xc0) | s, c & 0xff]);
}

export interface MbrPartition {
  bootable?: boolean;
  type: number;
  startLba: number;
  sectors: number;
}

/**
 * Fills the disk signature, partition table and boot signature (bytes 440–511) of `sector0`
 * (512 bytes; its first 440 bytes, the boot code, are kept).
 */
export function writeMbr(sector0: Buffer, signature: number, parts: readonly MbrPartition[]): Buffer {
  if (sector0.length !== SECTOR) throw new Error(`MBR sector must be ${SECTOR} bytes`);
  if (parts.length > 4) throw new Error('an MBR holds at most 4 partitions');
  const mbr = Buffer.from(sector0);
  mbr.fill(0, 440);
  mbr.writeUInt32LE(signature >>> 0, 440);
  parts.forEach((p, i) => {
    const o = 446 + 16 * i;
    if (p.startLba > 0xffffffff || p.sectors > 0xffffffff) throw new Error('partition beyond 2 TiB needs GPT');
    mbr[o] = p.bootable ? 0x80 : 0;
    chs(p.startLba).copy(mbr, o + 1);
    mbr[o + 4] = p.type;
    chs(p.startLba + p.sectors - 1).copy(mbr, o + 5);
    mbr.writeUInt32LE(p.startLba, o + 8);
    mbr.writeUInt32LE(p.sectors, o + 12);
  });
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}

/** "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" → the 16 bytes of GPT's mixed-endian encoding. */
export function guidBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`bad GUID ${guid}`);
  const b = Buffer.from(hex, 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8, 16),
  ]);
}

/** A version-4-shaped GUID string from 16 bytes of a hash. */
export function guidFromHash(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`.toUpperCase();
}

export const ESP_TYPE_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const GPT_ENTRIES = 128;
const GPT_ENTRY_SIZE = 128;
/** Sectors of the entry array: 128 × 128 bytes = 32 sectors. */
export const GPT_ARRAY_SECTORS = (GPT_ENTRIES * GPT_ENTRY_SIZE) / SECTOR;

export interface GptPartition {
  typeGuid: string;
  uniqueGuid: string;
  firstLba: number;
  lastLba: number;
  name: string;
  attributes?: bigint;
}

export interface GptLayout {
  /** Protective MBR + primary header + primary entry array, for LBA 0 … 33. */
  head: Buffer;
  /** Backup entry array + backup header, for the last 33 sectors of the disk. */
  tail: Buffer;
  /** LBA where `tail` starts. */
  tailLba: number;
}

/** The GPT structures of a disk of `totalSectors` sectors (which must hold the partitions). */
export function gptLayout(totalSectors: number, diskGuid: string, parts: readonly GptPartition[]): GptLayout {
  const lastLba = totalSectors - 1;
  const firstUsable = 2 + GPT_ARRAY_SECTORS;
  const lastUsable = lastLba - 1 - GPT_ARRAY_SECTORS;
  const array = Buffer.alloc(GPT_ENTRIES * GPT_ENTRY_SIZE);
  parts.forEach((p, i) => {
    if (p.firstLba < firstUsable || p.lastLba > lastUsable || p.firstLba > p.lastLba) {
      throw new Error(
        `GPT partition ${i + 1} (${p.firstLba}–${p.lastLba}) outside usable ${firstUsable}–${lastUsable}`,
      );
    }
    const o = i * GPT_ENTRY_SIZE;
    guidBytes(p.typeGuid).copy(array, o);
    guidBytes(p.uniqueGuid).copy(array, o + 16);
    array.writeBigUInt64LE(BigInt(p.firstLba), o + 32);
    array.writeBigUInt64LE(BigInt(p.lastLba), o + 40);
    array.writeBigUInt64LE(p.attributes ?? 0n, o + 48);
    const name = Buffer.from(p.name, 'utf16le');
    if (name.length > 72) throw new Error(`GPT partition name ${p.name} longer than 36 characters`);
    name.copy(array, o + 56);
  });
  const arrayCrc = crc32(array);

  const header = (myLba: number, altLba: number, entriesLba: number): Buffer => {
    const h = Buffer.alloc(SECTOR);
    h.write('EFI PART', 0, 'latin1');
    h.writeUInt32LE(0x00010000, 8);
    h.writeUInt32LE(92, 12);
    h.writeBigUInt64LE(BigInt(myLba), 24);
    h.writeBigUInt64LE(BigInt(altLba), 32);
    h.writeBigUInt64LE(BigInt(firstUsable), 40);
    h.writeBigUInt64LE(BigInt(lastUsable), 48);
    guidBytes(diskGuid).copy(h, 56);
    h.writeBigUInt64LE(BigInt(entriesLba), 72);
    h.writeUInt32LE(GPT_ENTRIES, 80);
    h.writeUInt32LE(GPT_ENTRY_SIZE, 84);
    h.writeUInt32LE(arrayCrc, 88);
    h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
    return h;
  };

  const pmbr = writeMbr(Buffer.alloc(SECTOR), 0, [
    { type: 0xee, startLba: 1, sectors: Math.min(totalSectors - 1, 0xffffffff) },
  ]);
  const head = Buffer.concat([pmbr, header(1, lastLba, 2), array]);
  const tailLba = lastLba - GPT_ARRAY_SECTORS;
  const tail = Buffer.concat([array, header(lastLba, 1, tailLba)]);
  return { head, tail, tailLba };
}
