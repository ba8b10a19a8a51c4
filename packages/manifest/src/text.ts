/**
 * What a manifest's text must be before YAML is read from it: UTF-8, at most 1 MiB (the
 * largest LinuxKit manifest is 5 KB), and free of raw control characters (YAML allows them only
 * as escapes in double-quoted strings). Files in another encoding are named as such.
 */
import type { ManifestError } from './errors.ts';

/** The largest manifest Stele reads, in bytes (of a file) or characters (of a text). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export type TextResult = { ok: true; text: string } | { ok: false; errors: ManifestError[] };

const wholeFile = (file: string, message: string): ManifestError => ({ file, line: 0, col: 0, path: '', message });

export const tooLarge = (file: string): ManifestError =>
  wholeFile(file, 'file is larger than 1 MiB, the limit for a manifest');

const atStart = (file: string, message: string): ManifestError => ({ file, line: 1, col: 1, path: '', message });

function wrongEncoding(file: string, encoding: string): ManifestError {
  return atStart(file, `the file is ${encoding} text: save it as UTF-8 (e.g. iconv -f ${encoding} -t UTF-8)`);
}

/** Line and column (from 1) of character `index` of `text`. */
function linePos(text: string, index: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: index - start + 1 };
}

/** The encoding a byte-order mark or the NUL pattern of the first character gives away. */
function otherEncoding(b: Uint8Array): string | undefined {
  if (b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) return 'UTF-32BE';
  if (b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) return 'UTF-32LE';
  if (b[0] === 0xfe && b[1] === 0xff) return 'UTF-16BE';
  if (b[0] === 0xff && b[1] === 0xfe) return 'UTF-16LE';
  // Without a mark, YAML's own rule: the first character is ASCII, so its other byte is NUL.
  if (b.length >= 2 && b[0] === 0 && b[1] !== 0) return 'UTF-16BE';
  if (b.length >= 2 && b[0] !== 0 && b[1] === 0) return 'UTF-16LE';
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });

/** Bytes of a manifest to its text, or one error saying why they are not UTF-8 text. */
export function decodeManifest(bytes: Uint8Array, file: string): TextResult {
  if (bytes.length > MAX_MANIFEST_BYTES) return { ok: false, errors: [tooLarge(file)] };
  const encoding = otherEncoding(bytes);
  if (encoding) return { ok: false, errors: [wrongEncoding(file, encoding)] };
  const text = utf8.decode(bytes); // drops a UTF-8 byte-order mark
  const bad = text.indexOf('\ufffd');
  if (bad >= 0) {
    // A replacement character may be real text (EF BF BD); find the first that is not.
    let offset = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    let i = 0;
    for (const ch of text) {
      const cp = ch.codePointAt(0) as number;
      if (cp === 0xfffd && !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) {
        const { line, col } = linePos(text, i);
        const byte = (bytes[offset] ?? 0).toString(16).padStart(2, '0');
        return {
          ok: false,
          errors: [{ file, line, col, path: '', message: `the file is not UTF-8 text (byte 0x${byte})` }],
        };
      }
      offset += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      i += ch.length;
    }
  }
  return { ok: true, text };
}

/** YAML's printable set, less what it allows: tab, line feed, carriage return and NEL. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it finds
const RAW_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/;

/** Problems of a text that no YAML reading should start on: too large, UTF-16, raw controls. */
export function textProblem(text: string, file: string): ManifestError | undefined {
  if (text.length > MAX_MANIFEST_BYTES) return tooLarge(file);
  // UTF-16 bytes read as UTF-8 by a caller: a NUL next to the first character (after the mark).
  const first = text.startsWith('\ufeff') ? 1 : text.startsWith('\ufffd\ufffd') ? 2 : 0;
  if (text.length >= first + 2 && (text.charCodeAt(first) === 0) !== (text.charCodeAt(first + 1) === 0)) {
    return atStart(file, 'the file is UTF-16 text: save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)');
  }
  const m = RAW_CONTROL.exec(text);
  if (m) {
    const { line, col } = linePos(text, m.index);
    const code = (m[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
    const message = `control character U+${code}: YAML allows it only as an escape in a double-quoted string`;
    return { file, line, col, path: '', message };
  }
  return undefined;
}
