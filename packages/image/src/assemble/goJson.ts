// JSON text as Go's encoding/json MarshalIndent(v, "", "    ") writes it, for the values assembly
// produces: objects keep insertion order (build them in Go struct order), `undefined` members are
// left out (Go's omitempty is applied when building), bigint is written as an integer, and <, >, &,
// U+2028 and U+2029 are escaped as \u003c, \u003e, \u0026, \u2028 and \u2029 like Go does.

export type GoJsonValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | readonly GoJsonValue[]
  | { readonly [key: string]: GoJsonValue };

const GO_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] ?? c);
}

function write(value: GoJsonValue, indent: string, out: string[]): void {
  if (value === null || value === undefined) {
    out.push('null');
  } else if (typeof value === 'string') {
    out.push(goString(value));
  } else if (typeof value === 'bigint') {
    out.push(value.toString());
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot encode ${value} as JSON`);
    out.push(String(value));
  } else if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
  } else if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push('[]');
      return;
    }
    const inner = `${indent}    `;
    out.push('[');
    value.forEach((item: GoJsonValue, i: number) => {
      out.push(i === 0 ? '\n' : ',\n', inner);
      write(item, inner, out);
    });
    out.push('\n', indent, ']');
  } else {
    const entries = Object.entries(value as { [key: string]: GoJsonValue }).filter(([, v]) => v !== undefined);
    if (entries.length === 0) {
      out.push('{}');
      return;
    }
    const inner = `${indent}    `;
    out.push('{');
    entries.forEach(([k, v], i) => {
      out.push(i === 0 ? '\n' : ',\n', inner, goString(k), ': ');
      write(v, inner, out);
    });
    out.push('\n', indent, '}');
  }
}

/** Go's json.MarshalIndent(value, "", "    "), without a trailing newline. */
export function goJsonIndent(value: GoJsonValue): string {
  const out: string[] = [];
  write(value, '', out);
  return out.join('');
}

/** A Go map[string]T marshals with its keys sorted by byte order. */
export function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  const sorted: Record<string, T> = {};
  for (const key of Object.keys(record).sort(compareBytes)) sorted[key] = record[key] as T;
  return sorted;
}

/** Go's string comparison (byte-wise on UTF-8), which sort.Strings and sort.Slice on strings use. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
