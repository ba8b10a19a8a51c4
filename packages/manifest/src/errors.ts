/**
 * One problem found in a file. Lines and columns count from 1; line and column 0 mean the file
 * as a whole (it cannot be read, or is too large to read).
 */
export interface ManifestError {
  file: string;
  line: number;
  col: number;
  /** Dotted path to the field, e.g. `services.0.uid`; empty for the whole file. */
  path: string;
  message: string;
  /** Set on the last entry of a list cut at MAX_ERRORS: how many errors it stands for. */
  more?: number;
}

export type PathSegment = string | number;

/** Errors reported per file; the rest are counted in one last error. */
export const MAX_ERRORS = 100;
/** Longest message kept: a longer one (a huge value echoed) is cut in the middle. */
export const MAX_MESSAGE_CHARS = 300;
/** Longest key kept whole in a path. */
const MAX_SEGMENT_CHARS = 40;

const PLAIN_SEGMENT = /^[A-Za-z0-9_-]+$/;

/** `text` cut to `max` characters, keeping its start and its end around a note of what was cut. */
function cut(text: string, max: number, tail: number): string {
  if (text.length <= max) return text;
  const note = (n: number) => `…(${n} characters cut)…`;
  let head = Math.max(0, max - tail - note(text.length).length);
  let from = text.length - tail;
  // Never split a surrogate pair.
  if (/[\ud800-\udbff]/.test(text.charAt(head - 1))) head--;
  if (/[\udc00-\udfff]/.test(text.charAt(from))) from++;
  return text.slice(0, head) + note(from - head) + text.slice(from);
}

/**
 * `services.0.uid`; a key that is not a plain word is quoted in brackets:
 * `onboot.0["binds.add"]`, `services.1.sysctl["net.ipv4.ip_forward"]`. A very long key is cut.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    const s = typeof seg === 'number' ? String(seg) : cut(seg, MAX_SEGMENT_CHARS, 8);
    if (typeof seg === 'number' || PLAIN_SEGMENT.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/**
 * Characters that act on a terminal instead of showing: C0 and C1 controls, DEL, the bidi
 * embeddings, overrides, isolates and marks, and the Unicode line and paragraph separators.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it finds
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it finds
const CONTROL_BUT_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/**
 * `text` safe to print on a terminal: every control or bidi character written as `\uXXXX`
 * (tabs kept; newlines too when `keepNewlines`). The form is also valid inside a JSON string.
 */
export function escapeControl(text: string, options: { keepNewlines?: boolean } = {}): string {
  const pattern = options.keepNewlines ? CONTROL_BUT_NEWLINE : CONTROL;
  return text.replace(pattern, (c) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * `FILE:LINE:COL: path.to.field: message` (the path part left out when empty; `FILE: message`
 * for the file as a whole), with control characters escaped: one line, safe on a terminal.
 */
export function formatError(e: ManifestError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.col}` : e.file;
  return escapeControl(`${where}: ${e.path ? `${e.path}: ` : ''}${e.message}`);
}

/** In file order; the same message at the same place only once. */
export function sortErrors(errors: readonly ManifestError[]): ManifestError[] {
  const seen = new Set<string>();
  const out: ManifestError[] = [];
  for (const e of [...errors].sort((a, b) => a.line - b.line || a.col - b.col)) {
    const key = formatError(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

/**
 * What a parser returns: sorted without repeats, each message at most MAX_MESSAGE_CHARS long,
 * and at most MAX_ERRORS of them, followed by one that counts the rest.
 */
export function finishErrors(errors: readonly ManifestError[]): ManifestError[] {
  const sorted = sortErrors(
    errors.map((e) =>
      e.message.length > MAX_MESSAGE_CHARS ? { ...e, message: cut(e.message, MAX_MESSAGE_CHARS, 100) } : e,
    ),
  );
  const first = sorted[MAX_ERRORS];
  if (first === undefined) return sorted;
  const more = sorted.length - MAX_ERRORS;
  return [
    ...sorted.slice(0, MAX_ERRORS),
    { file: first.file, line: first.line, col: first.col, path: '', message: `… and ${more} more errors`, more },
  ];
}

/** How many errors a finished list reports, counting those its last entry stands for. */
export function countErrors(errors: readonly ManifestError[]): number {
  return errors.reduce((n, e) => n + (e.more ?? 1), 0);
}
