// The parallel gzip writer (pgzip.ts) against zlib and the system's gzip: every input size around
// the 1 MiB block boundary comes back byte for byte (Node's gunzip, `gzip -t`, `zcat`), the header
// and trailer hold what gzip specifies (CRC-32 computed here, independently), the deflate data is
// one stream that ends exactly at the trailer, and the output depends only on the input: not on
// how it was cut into writes, nor on how many blocks are compressed at once.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParallelGzip } from '../src/pgzip.ts';
import { prng } from './prng.ts';

const BLOCK = 1 << 20;

let work: string;
let seq = 0;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'stele-pgzip-'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** CRC-32 (IEEE 802.3, as gzip uses it), bit by bit from its table: not zlib's. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const b of data) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** `n` bytes (the same for the same seed) alternating incompressible runs, text that repeats (also across blocks) and zeros. */
function mixed(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  const r = prng(seed);
  const text = Buffer.from('the quick brown fox jumps over the lazy dog; 0123456789\n'.repeat(40));
  for (let at = 0, kind = 0; at < n; kind = (kind + 1) % 3) {
    const len = Math.min(n - at, 1000 + Math.floor(r() * 90_000));
    if (kind === 0) for (let i = 0; i < len; i++) out[at + i] = Math.floor(r() * 256);
    else if (kind === 1) for (let i = 0; i < len; i++) out[at + i] = text[(at + i) % text.length] as number;
    // kind 2: zeros, already there
    at += len;
  }
  return out;
}

type Chunking = 'one' | 'thousand' | 'random' | 'blocks';

function chunks(data: Buffer, how: Chunking, seed = 5): Buffer[] {
  if (how === 'one') return [data];
  const sizes =
    how === 'thousand'
      ? () => 1000
      : how === 'blocks'
        ? () => BLOCK
        : (() => {
            const r = prng(seed);
            return () => 1 + Math.floor(r() * 300_000);
          })();
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const n = sizes();
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

interface Written {
  path: string;
  bytes: Buffer;
  written: number;
  /** How many write() calls returned a promise (backpressure). */
  waits: number;
}

async function gzipFile(
  data: Buffer,
  opts: { how?: Chunking; concurrency?: number; level?: number; seed?: number } = {},
): Promise<Written> {
  const path = join(work, `out-${seq++}.gz`);
  const fh = await open(path, 'w');
  let waits = 0;
  let written: number;
  try {
    const gz = new ParallelGzip(fh, opts.level ?? 6, opts.concurrency ?? 2);
    for (const c of chunks(data, opts.how ?? 'one', opts.seed)) {
      const p = gz.write(c);
      if (p) {
        waits++;
        await p;
      }
    }
    await gz.end();
    written = gz.written;
  } finally {
    await fh.close();
  }
  return { path, bytes: readFileSync(path), written, waits };
}

const SIZES: [string, number][] = [
  ['0', 0],
  ['1', 1],
  ['BLOCK-1', BLOCK - 1],
  ['BLOCK', BLOCK],
  ['BLOCK+1', BLOCK + 1],
  ['2×BLOCK', 2 * BLOCK],
  ['3.5×BLOCK', 3.5 * BLOCK],
];

describe('ParallelGzip', () => {
  describe.each(SIZES)('%s bytes', (_label, size) => {
    const data = mixed(size, size + 1);
    let out: Written;

    beforeAll(async () => {
      out = await gzipFile(data, { how: 'random' });
    });

    it('gunzips to exactly the input (zlib, gzip -t, zcat)', () => {
      expect(gunzipSync(out.bytes).equals(data)).toBe(true);
      execFileSync('gzip', ['-t', out.path], { stdio: 'pipe' }); // throws on a bad CRC, length or stream
      const z = execFileSync('zcat', [out.path], { maxBuffer: 64 << 20 });
      expect(z.length).toBe(data.length);
      expect(z.equals(data)).toBe(true);
    });

    it('has the fixed gzip header: magic, deflate, no flags, mtime 0, OS Unix', () => {
      expect([...out.bytes.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0]);
      expect(out.bytes.readUInt32LE(4)).toBe(0); // mtime
      expect(out.bytes[9]).toBe(3);
    });

    it('ends with the CRC-32 and the size of the input', () => {
      const end = out.bytes.length;
      expect(out.bytes.readUInt32LE(end - 8)).toBe(crc32(data));
      expect(out.bytes.readUInt32LE(end - 4)).toBe(data.length);
    });

    it('is one deflate stream that ends exactly at the trailer (a single gzip member)', () => {
      const body = out.bytes.subarray(10, out.bytes.length - 8);
      const { buffer, engine } = inflateRawSync(body, { info: true }) as unknown as {
        buffer: Buffer;
        engine: { bytesWritten: number };
      };
      expect(buffer.equals(data)).toBe(true);
      expect(engine.bytesWritten).toBe(body.length); // input consumed: no second member, no slack
    });

    it('`written` is the size of the file', () => {
      expect(out.written).toBe(statSync(out.path).size);
      expect(out.written).toBe(out.bytes.length);
    });
  });

  it.each([
    ['BLOCK+1', BLOCK + 1],
    ['3.5×BLOCK', 3.5 * BLOCK],
  ])('%s bytes: the same output however the input is cut and however many blocks run at once', async (_l, size) => {
    const data = mixed(size, 42);
    const ref = await gzipFile(data, { how: 'one', concurrency: 1 });
    expect(gunzipSync(ref.bytes).equals(data)).toBe(true);
    const variants: { how: Chunking; concurrency: number; seed?: number }[] = [
      { how: 'one', concurrency: 2 },
      { how: 'one', concurrency: 8 },
      { how: 'thousand', concurrency: 1 },
      { how: 'thousand', concurrency: 8 },
      { how: 'random', concurrency: 2, seed: 1 },
      { how: 'random', concurrency: 8, seed: 2 },
      { how: 'blocks', concurrency: 1 },
    ];
    for (const v of variants) {
      const got = await gzipFile(data, v);
      expect(got.bytes.equals(ref.bytes), JSON.stringify(v)).toBe(true);
    }
  });

  it('the output is really compressed, and the level is the one asked for', async () => {
    const text = Buffer.from('a line of very repetitive text\n'.repeat(150_000)); // ~4.4 MiB
    const fast = await gzipFile(text, { level: 1 });
    const best = await gzipFile(text, { level: 9 });
    for (const o of [fast, best]) expect(gunzipSync(o.bytes).equals(text)).toBe(true);
    expect(best.bytes.length).toBeLessThan(text.length / 100);
    expect(best.bytes.equals(fast.bytes)).toBe(false);
    const data = mixed(BLOCK + 7, 3);
    const stored = await gzipFile(data, { level: 0 });
    expect(stored.bytes.length).toBeGreaterThan(data.length); // level 0: stored blocks
    expect(gunzipSync(stored.bytes).equals(data)).toBe(true);
  });

  it('pushes back: with concurrency 1 some write() returns a promise before 16 blocks are queued', async () => {
    const data = mixed(16 * BLOCK, 9);
    const out = await gzipFile(data, { how: 'blocks', concurrency: 1 });
    expect(out.waits).toBeGreaterThan(0);
    expect(gunzipSync(out.bytes).equals(data)).toBe(true);
  });

  it('empty writes are ignored', async () => {
    const path = join(work, 'empty-writes.gz');
    const fh = await open(path, 'w');
    const gz = new ParallelGzip(fh, 6, 2);
    expect(gz.write(Buffer.alloc(0))).toBeUndefined();
    await gz.write(Buffer.from('abc'));
    await gz.write(Buffer.alloc(0));
    await gz.end();
    await fh.close();
    expect(gunzipSync(readFileSync(path)).toString()).toBe('abc');
  });
});
