// Gzip on every core, with output that depends only on the input: the input is cut into blocks of
// a fixed size, each block is deflated on zlib's worker threads with the previous 32 KiB as its
// dictionary and ends on a byte boundary (a sync flush; the last block finishes the stream), and
// the blocks are joined in order under one gzip header and trailer. Same idea as pigz and as
// LinuxKit's initrd writer (klauspost/pgzip); the result is a single ordinary gzip member.
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';

const BLOCK = 1 << 20;
const WINDOW = 32 * 1024;

function deflateBlock(input: Buffer, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(input, opts, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** Writes a gzip stream to `fh`. Call `write` for each chunk (await what it returns), then `end`. */
export class ParallelGzip {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dictionary: Buffer | undefined;
  private crc = 0;
  private size = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
  private readonly maxInFlight: number;
  /** Bytes written to the file so far. */
  written = 0;
  private headerDone = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly level = 6,
    concurrency = availableParallelism(),
  ) {
    this.maxInFlight = 2 * Math.max(1, concurrency) + 1;
  }

  private async output(buf: Buffer): Promise<void> {
    let at = 0;
    while (at < buf.length) at += (await this.fh.write(buf, at, buf.length - at)).bytesWritten;
    this.written += buf.length;
  }

  private async header(): Promise<void> {
    if (this.headerDone) return;
    this.headerDone = true;
    // magic, deflate, no flags, mtime 0, no extra flags, OS 3 (Unix): the same bytes everywhere
    await this.output(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]));
  }

  private start(block: Buffer, last: boolean): void {
    this.crc = crc32(block, this.crc);
    this.size += block.length;
    const opts: ZlibOptions = {
      level: this.level,
      chunkSize: BLOCK + 64 * 1024, // one round trip to the worker thread per block
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      ...(this.dictionary ? { dictionary: this.dictionary } : {}),
    };
    const job = deflateBlock(block, opts);
    job.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
    this.inFlight.push(job);
    this.dictionary = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : undefined;
  }

  private async drainTo(limit: number): Promise<void> {
    await this.header();
    while (this.inFlight.length > limit) {
      const next = this.inFlight.shift() as Promise<Buffer>;
      await this.output(await next);
    }
  }

  private takeBlock(): Buffer {
    const all =
      this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    const block = all.subarray(0, BLOCK);
    const rest = all.subarray(BLOCK);
    this.pending = rest.length ? [rest] : [];
    this.pendingBytes = rest.length;
    return block;
  }

  /** Queues `chunk`; the promise (when there is one) says when to write more. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Keep one block back: the last block of the stream must be deflated with Z_FINISH.
    if (this.pendingBytes <= BLOCK) return;
    while (this.pendingBytes > BLOCK) this.start(this.takeBlock(), false);
    if (this.inFlight.length >= this.maxInFlight) return this.drainTo(this.maxInFlight - 1);
    return;
  }

  /** Deflates what is left, writes the trailer. */
  async end(): Promise<void> {
    const rest = this.pendingBytes ? this.takeBlock() : Buffer.alloc(0);
    this.start(rest, true);
    await this.drainTo(0);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.size % 2 ** 32, 4);
    await this.output(trailer);
  }
}
