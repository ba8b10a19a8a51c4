/** Building blocks shared by the schemas, and the messages zod issues are turned into. */
import { z } from 'zod';
import { checkImageTemplate, parseImageRef } from '../image-ref.ts';

/** `scheme://user:password@…`, a URL that carries a password; group 1 is what comes before it. */
export const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#@\s:]*):[^/?#@\s]*@/i;

/** What a YAML value is, for messages: `a string ("yes")`, `a list`, `an empty value`. */
export function describeValue(input: unknown): string {
  if (input === null) return 'an empty value';
  if (input === undefined) return 'nothing';
  if (Array.isArray(input)) return 'a list';
  switch (typeof input) {
    case 'string': {
      // Never echo a password written into a URL.
      const safe = input.replace(URL_PASSWORD, '$1:…@');
      const shown = safe.length > 40 ? `${safe.slice(0, 37)}...` : safe;
      return `a string (${JSON.stringify(shown)})`;
    }
    case 'number':
      return Number.isInteger(input) ? `an integer (${input})` : `a number (${input})`;
    case 'boolean':
      return `a boolean (${input})`;
    case 'bigint':
      return `an integer (${input})`;
    case 'object':
      return 'a mapping';
    default:
      return typeof input;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  map: 'a mapping',
};

/** Plain-language wording of a zod issue; used as the parse-level error map. */
export function issueMessage(iss: z.core.$ZodRawIssue): string | undefined {
  const last = iss.path?.[iss.path.length - 1];
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return `missing required key${last !== undefined ? ` '${String(last)}'` : ''}`;
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}; got ${describeValue(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'string')
        return iss.minimum === 1 ? 'must not be empty' : `must be at least ${iss.minimum} characters`;
      if (iss.origin === 'array') return `needs at least ${iss.minimum} entr${iss.minimum === 1 ? 'y' : 'ies'}`;
      return `must be at least ${iss.minimum}${iss.inclusive ? '' : ' (exclusive)'}`;
    case 'too_big':
      if (iss.origin === 'string') return `must be at most ${iss.maximum} characters`;
      if (iss.origin === 'array') return `allows at most ${iss.maximum} entries`;
      return `must be at most ${iss.maximum}`;
    case 'invalid_format':
      return iss.message ?? `has the wrong format (${iss.format})`;
    case 'invalid_union': {
      const u = iss as { discriminator?: string; options?: unknown[] };
      if (u.discriminator !== undefined && iss.input !== null && typeof iss.input === 'object') {
        const value = (iss.input as Record<string, unknown>)[u.discriminator];
        const allowed = (u.options ?? []).map((o) => JSON.stringify(o)).join(', ');
        if (value === undefined) return `missing required key '${u.discriminator}' (one of ${allowed})`;
        return `must be one of ${allowed}; got ${describeValue(value)}`;
      }
      return `got ${describeValue(iss.input)}, which matches none of the allowed forms`;
    }
    default:
      return undefined;
  }
}

/** Edit distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + cost);
      diag = up;
    }
  }
  return prev[b.length] as number;
}

export function suggest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(input, c);
    if (d < bestScore) {
      best = c;
      bestScore = d;
    }
  }
  const limit = input.length <= 3 ? 1 : Math.max(2, Math.floor(input.length / 3));
  return bestScore <= limit ? best : undefined;
}

/**
 * One message per unknown key, joined by newlines in the order of `keys`
 * (the issue converter splits them so each key gets its own located error).
 */
export function unknownKeysMessage(keys: readonly string[], known: readonly string[]): string {
  return keys
    .map((k) => {
      const hint = suggest(k, known);
      return `unknown key '${k}'${hint ? ` (did you mean '${hint}'?)` : ''}`;
    })
    .join('\n');
}

/** A mapping with exactly these keys: an unknown key is an error that names the nearest known one. */
export function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? unknownKeysMessage(iss.keys, known) : undefined),
  });
}

/** Adds a custom issue at `path` (relative to the value being checked). */
export function report(
  ctx: z.core.$RefinementCtx,
  path: PropertyKey[],
  message: string,
  at: 'key' | 'value' = 'value',
): void {
  ctx.addIssue({ code: 'custom', message, path, params: { at }, input: undefined });
}

/** A string checked by `check` (which returns a message when the value is wrong). */
export function checkedString(check: (s: string) => string | undefined) {
  return z.string().superRefine((s, ctx) => {
    const bad = check(s);
    if (bad) report(ctx, [], bad);
  });
}

export const strings = z.array(z.string());
export const int = z.int({
  error: (iss) => {
    if (typeof iss.input === 'number' && Number.isInteger(iss.input) && !Number.isSafeInteger(iss.input)) {
      return `integer ${iss.input} is too large to be exact (the limit is 2^53-1)`;
    }
    return iss.code === 'invalid_type' ? `expected an integer, got ${describeValue(iss.input)}` : undefined;
  },
});
export const stringOrInt = z.union([z.string(), z.int()], {
  error: (iss) => `expected a name or a numeric id, got ${describeValue(iss.input)}`,
});
export const stringMap = z.record(z.string(), z.string());

/** An image reference; `allowEmpty` for fields where "" means "none" (LinuxKit's kernel.image). */
export function imageRef(allowEmpty = false) {
  return checkedString((s) => {
    if (s === '' && allowEmpty) return undefined;
    if (s.startsWith('@')) return checkImageTemplate(s);
    const r = parseImageRef(s);
    return r.ok ? undefined : r.message;
  });
}
