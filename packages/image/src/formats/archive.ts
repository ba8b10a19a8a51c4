// Tar outputs, streamed from files: tar-kernel-initrd (LinuxKit's NAME-initrd.tar: kernel,
// initrd.img, cmdline, ucode.cpio) and gcp (NAME.img.tar.gz holding disk.raw, the layout Google
// Compute Engine imports). Every header is fixed: mode 0644, uid/gid 0, no user/group names, the
// build timestamp; the gzip header has mtime 0 and OS byte 3.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';

export interface TarMember {
  name: string;
  /** A host file, or literal content. */
  file?: string;
  content?: Buffer;
}

/** Pins the gzip header's OS byte (offset 9) to 3 (Unix). */
function fixGzipOs(): Transform {
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (first && chunk.length > 9) {
        chunk[9] = 3;
        first = false;
      }
      cb(null, chunk);
    },
  });
}

export async function writeTar(
  out: string,
  members: readonly TarMember[],
  epoch: number,
  gzip: boolean,
): Promise<void> {
  const p = pack();
  const mtime = new Date(epoch * 1000);
  const sink: Writable = createWriteStream(out, { flags: 'wx' });
  const stages: (Readable | Transform | Writable)[] = [p as unknown as Readable];
  if (gzip) stages.push(createGzip({ level: 6 }), fixGzipOs());
  stages.push(sink);
  const done = pipeline(stages as unknown as [Readable, Writable]);
  try {
    for (const m of members) {
      const size = m.file !== undefined ? (await stat(m.file)).size : (m.content?.length ?? 0);
      const header = {
        name: m.name,
        size,
        mode: 0o644,
        mtime,
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
        type: 'file' as const,
      };
      await new Promise<void>((resolve, reject) => {
        const entry = p.entry(header, (err) => (err ? reject(err) : resolve()));
        const src: Readable =
          m.file !== undefined ? createReadStream(m.file) : Readable.from([m.content ?? Buffer.alloc(0)]);
        src.once('error', reject);
        src.pipe(entry);
      });
    }
    p.finalize();
  } catch (err) {
    p.destroy(err as Error);
  }
  await done;
}
