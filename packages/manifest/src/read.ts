/**
 * The one place this package touches the file system: reading a manifest from disk without
 * trusting its size (a device such as /dev/zero never ends). Everything else is text in.
 */
import { open } from 'node:fs/promises';
import { type ParseResult, parseOsManifest } from './parse.ts';
import type { OsManifest } from './schema/os.ts';
import { decodeManifest, MAX_MANIFEST_BYTES, type TextResult, tooLarge } from './text.ts';

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
};

/** Reads at most MAX_MANIFEST_BYTES of `path` as UTF-8; errors name the file as `file`. */
export async function readManifestFile(path: string, file: string): Promise<TextResult> {
  const buffer = new Uint8Array(MAX_MANIFEST_BYTES + 1);
  let length = 0;
  try {
    const handle = await open(path, 'r');
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > MAX_MANIFEST_BYTES) return { ok: false, errors: [tooLarge(file)] };
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = (e.code && REASONS[e.code]) ?? e.code ?? e.message;
    return { ok: false, errors: [{ file, line: 0, col: 0, path: '', message: `cannot read: ${why}` }] };
  }
  return decodeManifest(buffer.subarray(0, length), file);
}

/** Reads and parses an OS manifest; errors name the file as `file`. */
export async function readOsManifest(path: string, file: string = path): Promise<ParseResult<OsManifest>> {
  const read = await readManifestFile(path, file);
  return read.ok ? parseOsManifest(read.text, file) : read;
}
