// Reading tar archives someone else made (image archives to import, `docker save` output) with
// tar-stream: entry by entry, every stream error caught, a cut or damaged tar reported as such.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type Header } from 'tar-stream';

/** An image archive that cannot be read or imported: cut short, not a tar, or inconsistent. */
export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/**
 * Reads a tar stream entry by entry. `onEntry` gets each header and the entry's contents, and
 * may read them or not: what it leaves unread is skipped. A cut or malformed tar rejects with an
 * ArchiveError; no stream error is ever left without a listener.
 */
export async function eachTarEntry(
  source: Readable,
  onEntry: (header: Header, contents: Readable) => Promise<void> | void,
): Promise<void> {
  const ex = extract();
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      ex.destroy();
      source.destroy();
      reject(
        err instanceof Error && /^(Unexpected end of data|Invalid|Header exceeds|Premature close)/.test(err.message)
          ? new ArchiveError(tarProblem(err.message))
          : err,
      );
    };
    ex.on('entry', (header, entry, next) => {
      // A size field tar-stream cannot read comes as null, and the entry's stream never ends.
      if (!Number.isSafeInteger(header.size) || (header.size ?? -1) < 0) {
        fail(new ArchiveError(tarProblem('Invalid size')));
        return;
      }
      // tar-stream never ends the stream of a directory (nor reads its contents, if it claims
      // any): the callback gets an empty one, and the archive moves on at once.
      if (header.type === 'directory') {
        Promise.resolve()
          .then(() => onEntry(header, Readable.from([])))
          .then(() => {
            if (!failed) next();
          }, fail);
        return;
      }
      const contents = entry as unknown as Readable;
      let ended = false;
      contents.on('error', fail);
      contents.on('end', () => {
        ended = true;
      });
      Promise.resolve()
        .then(() => onEntry(header, contents))
        .then(() => {
          if (failed) return;
          if (ended) next();
          else {
            contents.on('end', () => next());
            contents.resume();
          }
        }, fail);
    });
    ex.on('error', fail);
    // Done when the extractor has taken the last byte: by then every entry was handed on.
    pipeline(source, ex).then(() => {
      if (!failed) resolve();
    }, fail);
  });
}

function tarProblem(message: string): string {
  if (message.startsWith('Unexpected end of data')) return 'the tar is cut short (it ends inside an entry)';
  if (message.startsWith('Header exceeds')) return 'the tar has an extended header larger than 4 MiB';
  if (message.startsWith('Premature close')) return 'the tar stream closed early';
  return 'not a tar, or a damaged one (a header does not read as tar)';
}

/** The whole contents of a small entry; an ArchiveError beyond `limit` bytes. */
export async function readSmall(contents: Readable, size: number, limit: number, what: string): Promise<Buffer> {
  if (size > limit) throw new ArchiveError(`${what} is ${size} bytes, more than the ${limit} it may have`);
  const chunks: Buffer[] = [];
  for await (const c of contents) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
