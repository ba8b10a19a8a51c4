/** One problem found in a file. Lines and columns count from 1. */
export interface ManifestError {
  file: string;
  line: number;
  col: number;
  /** Dotted path to the field, e.g. `services.0.uid`; empty for the whole file. */
  path: string;
  message: string;
}

export type PathSegment = string | number;

const PLAIN_SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * `services.0.uid`; a key that is not a plain word is quoted in brackets:
 * `onboot.0["binds.add"]`, `services.1.sysctl["net.ipv4.ip_forward"]`.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    const s = String(seg);
    if (typeof seg === 'number' || PLAIN_SEGMENT.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** `FILE:LINE:COL: path.to.field: message` (the path part left out when empty). */
export function formatError(e: ManifestError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.path ? `${e.path}: ` : ''}${e.message}`;
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
