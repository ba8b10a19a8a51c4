// The tar format at the byte level, for the build's hot path: a streaming header scanner that
// reports where each entry's contents sit in the archive (so a cached, uncompressed layer can
// later be read by range without parsing it again), and a header encoder for the output tar.
// Formats read: POSIX ustar with pax extended headers ('x' per entry, 'g' global), GNU long
// names ('L', 'K') and base-256 numbers, and old v7 headers. Written: ustar + a pax header per
// entry. (tar-stream, used elsewhere, reports no offsets — see docs/decisions.md.)

const BLOCK = 512;

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (fractions from pax are dropped). */
  mtime: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** pax records other than the ones folded into the fields above. */
  pax?: Record<string, string>;
}

export interface ScannedEntry extends TarHeader {
  /** Offset of the entry's contents in the archive (the byte after its header). */
  offset: number;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const TYPEFLAGS: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};
/** Types whose size field is not followed by contents (as Go's archive/tar reads them). */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function cstring(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

function numeric(b: Buffer, start: number, len: number, what: string): number {
  const first = b[start] ?? 0;
  if (first & 0x80) {
    // base-256 (GNU): big-endian two's complement with the top bit of the first byte as flag
    if (first === 0xff) throw new TarFormatError(`negative ${what} in a tar header`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (b[start + i] ?? 0);
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} too large in a tar header`);
    return v;
  }
  // Octal digits, maybe led by spaces (v7 wrote "%6o "), ended by a NUL or a space.
  const text = b
    .toString('latin1', start, start + len)
    .replace(/^ +/, '')
    .replace(/[\0 ].*$/s, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`bad ${what} ${JSON.stringify(text)} in a tar header`);
  return Number.parseInt(text, 8);
}

function checksumOk(b: Buffer): boolean {
  const want = numeric(b, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : (b[i] ?? 0);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return want === unsigned || want === signed;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** pax records: "LEN key=value\n", LEN counting the whole record. */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number.parseInt(data.toString('latin1', i, sp), 10);
    if (!Number.isInteger(len) || len <= sp - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw new TarFormatError('malformed pax record');
    }
    const record = data.toString('utf8', sp + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

type Need =
  | { kind: 'header' }
  | { kind: 'ext'; flag: string; size: number }
  | { kind: 'skip'; bytes: number }
  | { kind: 'done' };

/**
 * Reads a tar archive pushed chunk by chunk and reports each entry with the offset of its
 * contents. Stops at the end-of-archive marker (the rest is ignored); `end()` throws when the
 * archive stopped inside an entry.
 */
export class TarScanner {
  private pos = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private need: Need = { kind: 'header' };
  private globalPax: Record<string, string> = {};
  private localPax: Record<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private sawZero = false;

  constructor(private readonly onEntry: (e: ScannedEntry) => void) {}

  /** Bytes consumed so far. */
  get position(): number {
    return this.pos;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.need.kind !== 'done') {
      if (this.need.kind === 'skip') {
        const n = Math.min(this.need.bytes, chunk.length - at);
        this.need.bytes -= n;
        this.pos += n;
        at += n;
        if (this.need.bytes === 0) this.need = { kind: 'header' };
        continue;
      }
      const want = this.need.kind === 'header' ? BLOCK : padded(this.need.size);
      const take = Math.min(want - this.heldBytes, chunk.length - at);
      this.held.push(chunk.subarray(at, at + take));
      this.heldBytes += take;
      at += take;
      if (this.heldBytes < want) break;
      const block = this.held.length === 1 ? (this.held[0] as Buffer) : Buffer.concat(this.held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
      this.pos += want;
      if (this.need.kind === 'header') this.header(block);
      else this.extension(this.need.flag, block.subarray(0, this.need.size));
    }
    if (this.need.kind === 'done') this.pos += chunk.length - at;
  }

  end(): void {
    if (this.need.kind === 'done') return;
    const pending = this.localPax !== undefined || this.longName !== undefined || this.longLink !== undefined;
    if (this.need.kind === 'header' && this.heldBytes === 0 && !pending) return; // no end marker: accepted
    throw new TarFormatError(`the tar stops inside an entry (at byte ${this.pos + this.heldBytes})`);
  }

  private extension(flag: string, data: Buffer): void {
    this.need = { kind: 'header' };
    if (flag === 'x') this.localPax = { ...this.localPax, ...parsePax(data) };
    else if (flag === 'g') Object.assign(this.globalPax, parsePax(data));
    else {
      const text = cstring(data, 0, data.length);
      if (flag === 'L') this.longName = text;
      else this.longLink = text;
    }
  }

  private header(b: Buffer): void {
    if (isZero(b)) {
      if (this.sawZero) this.need = { kind: 'done' };
      this.sawZero = true;
      return;
    }
    this.sawZero = false;
    if (!checksumOk(b)) throw new TarFormatError(`bad tar header checksum at byte ${this.pos - BLOCK}`);
    const flag = String.fromCharCode(b[156] ?? 0);
    const size = numeric(b, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > 64 * 1024 * 1024) throw new TarFormatError(`a ${size}-byte tar extension header`);
      this.need = size === 0 ? { kind: 'header' } : { kind: 'ext', flag, size };
      return;
    }
    const pax = { ...this.globalPax, ...this.localPax };
    this.localPax = undefined;
    const magic = b.toString('latin1', 257, 263);
    let name = cstring(b, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = cstring(b, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (this.longName !== undefined) name = this.longName;
    let linkname = this.longLink ?? cstring(b, 157, 100);
    this.longName = undefined;
    this.longLink = undefined;
    let type: TarType = TYPEFLAGS[flag] ?? 'other';
    // v7 archives mark directories only by the trailing slash
    if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'dir';
    const header: TarHeader = {
      name,
      type,
      mode: numeric(b, 100, 8, 'mode'),
      uid: numeric(b, 108, 8, 'uid'),
      gid: numeric(b, 116, 8, 'gid'),
      mtime: numeric(b, 136, 12, 'mtime'),
      size,
      linkname,
      devmajor: magic.startsWith('ustar') ? numeric(b, 329, 8, 'devmajor') : 0,
      devminor: magic.startsWith('ustar') ? numeric(b, 337, 8, 'devminor') : 0,
    };
    const rest: Record<string, string> = {};
    for (const [k, v] of Object.entries(pax)) {
      switch (k) {
        case 'path':
          header.name = v;
          break;
        case 'linkpath':
          linkname = v;
          header.linkname = v;
          break;
        case 'size':
        case 'uid':
        case 'gid': {
          const n = Number(v);
          if (!Number.isSafeInteger(n) || n < 0) throw new TarFormatError(`bad pax ${k} ${JSON.stringify(v)}`);
          header[k] = n;
          break;
        }
        case 'mtime': {
          const n = Number.parseFloat(v);
          if (Number.isFinite(n)) header.mtime = Math.floor(n);
          break;
        }
        case 'atime':
        case 'ctime':
        case 'uname':
        case 'gname':
          break;
        default:
          rest[k] = v;
      }
    }
    if (Object.keys(rest).length) header.pax = rest;
    const dataBytes = HEADER_ONLY.has(flag) ? 0 : header.size;
    if (HEADER_ONLY.has(flag)) header.size = 0;
    this.onEntry({ ...header, offset: this.pos });
    if (dataBytes > 0) this.need = { kind: 'skip', bytes: padded(dataBytes) };
  }
}

// ---- writing ----

const FLAG_OF: Record<Exclude<TarType, 'other'>, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

function octal(b: Buffer, start: number, len: number, value: number): boolean {
  const text = value.toString(8);
  if (text.length > len - 1) return false;
  b.write(`${text.padStart(len - 1, '0')}\0`, start, len, 'latin1');
  return true;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length + bodyLen !== len) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

function ustarBlock(h: Omit<TarHeader, 'type' | 'pax'> & { flag: string }): {
  block: Buffer;
  overflow: Record<string, string>;
} {
  const b = Buffer.alloc(BLOCK);
  const overflow: Record<string, string> = {};
  const name = Buffer.from(h.name, 'utf8');
  if (name.length <= 100) name.copy(b, 0);
  else {
    overflow.path = h.name;
    name.copy(b, 0, 0, 100);
  }
  octal(b, 100, 8, h.mode & 0o7777);
  if (!octal(b, 108, 8, h.uid)) overflow.uid = String(h.uid);
  if (!octal(b, 116, 8, h.gid)) overflow.gid = String(h.gid);
  if (!octal(b, 124, 12, h.size)) {
    overflow.size = String(h.size);
    octal(b, 124, 12, 0);
  }
  if (!octal(b, 136, 12, Math.max(0, h.mtime))) octal(b, 136, 12, 0);
  b.write(h.flag, 156, 1, 'latin1');
  const link = Buffer.from(h.linkname, 'utf8');
  if (link.length <= 100) link.copy(b, 157);
  else {
    overflow.linkpath = h.linkname;
    link.copy(b, 157, 0, 100);
  }
  b.write('ustar\x0000', 257, 8, 'latin1');
  octal(b, 329, 8, h.devmajor);
  octal(b, 337, 8, h.devminor);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i] ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return { block: b, overflow };
}

/**
 * The header blocks of one entry: a pax header carrying `pax` (and whatever does not fit ustar)
 * when there is anything to carry, then the ustar header. Contents and their padding follow.
 */
export function encodeTarHeader(h: Omit<TarHeader, 'type'> & { type: Exclude<TarType, 'other'> }): Buffer {
  const name = h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const main = ustarBlock({ ...h, name, flag: FLAG_OF[h.type], size: h.type === 'file' ? h.size : 0 });
  const records = { ...main.overflow, ...h.pax };
  const keys = Object.keys(records);
  if (keys.length === 0) return main.block;
  const body = Buffer.from(keys.map((k) => paxRecord(k, records[k] ?? '')).join(''), 'utf8');
  const paxName = `PaxHeader/${name}`.slice(0, 99);
  const ext = ustarBlock({
    name: Buffer.byteLength(paxName) <= 100 ? paxName : 'PaxHeader',
    flag: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: Math.max(0, h.mtime),
    size: body.length,
    linkname: '',
    devmajor: 0,
    devminor: 0,
  }).block;
  return Buffer.concat([ext, body, Buffer.alloc(padded(body.length) - body.length), main.block]);
}

/** Zero bytes that pad `size` bytes of contents to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc(padded(size) - size);
}

/** The end-of-archive marker: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);
